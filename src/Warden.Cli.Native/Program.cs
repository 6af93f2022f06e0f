using System.Runtime.InteropServices;
using Warden.Cli.FrontEnd;

if (NativeFrontEnd.Decide(args) == Route.Native)
{
    return NativeFrontEnd.Run(args, Console.Out, Console.Error);
}

// Every other command: replace this process with the full program, same arguments, streams and environment, so
// its exit code and signals are the caller's directly (no child process to wait on or forward to).
var full = Path.Combine(AppContext.BaseDirectory, NativeFrontEnd.FullProgram);
var argv = new IntPtr[args.Length + 2];
argv[0] = Marshal.StringToCoTaskMemUTF8(full);
for (var i = 0; i < args.Length; i++)
{
    argv[i + 1] = Marshal.StringToCoTaskMemUTF8(args[i]);
}

Exec.Execv(full, argv);

// execv returns only when it failed (the full program missing or not executable).
var errno = Marshal.GetLastPInvokeError();
Console.Error.WriteLine($"warden: cannot run {full}: {Marshal.GetPInvokeErrorMessage(errno)} (reinstall with scripts/install)");
return 1;

/// <summary>The C library's execv.</summary>
internal static partial class Exec
{
    [LibraryImport("libc", EntryPoint = "execv", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    internal static partial int Execv(string path, IntPtr[] argv);
}
