using Warden.Cli;

return WardenCli.Run(args, Console.Out, Console.Error);
