using BenchmarkDotNet.Running;
using Warden.Bench;

// Usage:
//   compat [minSide...]          distances of each pipeline from Meta's outputs
//   throughput <corpus> [...]    images/s and MB/s, one core and all cores (corpus: test | large | DIR | LIST)
//   borders [DIR]                framed/letterboxed copies: recall and false matches with the trimmed hash
//   index [--size 10m] [--data uniform|clustered] [sweep]   matching index: build, queries/s, RSS
//   load [--entries 1m] [--rate 300] [--duration 60] [--connections 16]   warden serve: hash+match of 100 KB JPEGs
//   review [--items N]          cases/clusters, evidence vault, audit log and report delivery costs
//   console [--uploads N]       warden serve with the review console: matched-upload latency, case log replay
//   (anything else)              BenchmarkDotNet micro benchmarks, e.g. --filter '*Pdq*'
return args.FirstOrDefault() switch
{
    "compat" => CompatCommand.Run(args[1..]),
    "throughput" => ThroughputCommand.Run(args[1..]),
    "index" => IndexCommand.Run(args[1..]),
    "borders" => BordersCommand.Run(args[1..]),
    "load" => LoadCommand.Run(args[1..]),
    "review" => ReviewCommand.Run(args[1..]),
    "console" => ConsoleCommand.Run(args[1..]),
    _ => Run(args),
};

static int Run(string[] args)
{
    BenchmarkSwitcher.FromAssembly(typeof(Corpora).Assembly).Run(args);
    return 0;
}
