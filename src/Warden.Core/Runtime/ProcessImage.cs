using System.Runtime.InteropServices;
using System.Text;

namespace Warden.Core.Runtime;

/// <summary>
/// Restarts the current process in place (<c>execve</c> of its own executable with the same arguments, same
/// process id, same open standard streams) with one more environment variable: for runtime settings (the JIT's) that
/// the runtime reads only at startup and that one command of a multi-command binary wants differently.
/// </summary>
public static class ProcessImage
{
    /// <summary>
    /// Re-executes this process with <paramref name="name"/>=<paramref name="value"/> added to its environment. Returns
    /// only when that cannot be done (not Linux, no <c>/proc</c>, the variable already set — by the operator or by a
    /// previous re-execution, so this never loops — or <c>execve</c> failed): the caller then just goes on.
    /// </summary>
    public static bool TryReexecWith(string name, string value)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        if (!OperatingSystem.IsLinux() || Environment.GetEnvironmentVariable(name) is not null)
        {
            return false;
        }

        byte[] cmdline;
        try
        {
            cmdline = File.ReadAllBytes("/proc/self/cmdline");
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return false;
        }

        var argv = SplitCommandLine(cmdline);
        if (argv.Count == 0)
        {
            return false;
        }

        var env = new List<byte[]>();
        foreach (System.Collections.DictionaryEntry e in Environment.GetEnvironmentVariables())
        {
            env.Add(Encoding.UTF8.GetBytes($"{e.Key}={e.Value}"));
        }

        env.Add(Encoding.UTF8.GetBytes($"{name}={value}"));
        // The real path, not /proc/self/exe: the kernel names the process after the file executed ("exe" otherwise).
        var exe = Environment.ProcessPath ?? "/proc/self/exe";
        return Exec(Encoding.UTF8.GetBytes(exe), argv, env);
    }

    /// <summary>The NUL-terminated strings of /proc/PID/cmdline (the arguments, empty ones included).</summary>
    public static List<byte[]> SplitCommandLine(ReadOnlySpan<byte> cmdline)
    {
        var list = new List<byte[]>();
        while (!cmdline.IsEmpty)
        {
            var end = cmdline.IndexOf((byte)0);
            var arg = end < 0 ? cmdline : cmdline[..end];
            list.Add(arg.ToArray());
            cmdline = end < 0 ? default : cmdline[(end + 1)..];
        }

        return list;
    }

    private static unsafe bool Exec(byte[] path, List<byte[]> argv, List<byte[]> env)
    {
        if (!NativeLibrary.TryLoad("libc.so.6", out var libc) || !NativeLibrary.TryGetExport(libc, "execve", out var execve))
        {
            return false;
        }

        // Native NUL-terminated copies: execve reads them after the call has started, so they must not move.
        var owned = new List<nint>();
        try
        {
            var p = Native(path, owned);
            var a = Array(argv, owned);
            var e = Array(env, owned);
            _ = ((delegate* unmanaged<nint, nint, nint, int>)execve)(p, a, e);
            return false; // execve returns only on failure
        }
        finally
        {
            foreach (var block in owned)
            {
                NativeMemory.Free((void*)block);
            }
        }
    }

    private static unsafe nint Native(byte[] s, List<nint> owned)
    {
        var block = (byte*)NativeMemory.Alloc((nuint)s.Length + 1);
        owned.Add((nint)block);
        s.CopyTo(new Span<byte>(block, s.Length));
        block[s.Length] = 0;
        return (nint)block;
    }

    private static unsafe nint Array(List<byte[]> items, List<nint> owned)
    {
        var table = (nint*)NativeMemory.Alloc((nuint)(items.Count + 1), (nuint)sizeof(nint));
        owned.Add((nint)table);
        for (var i = 0; i < items.Count; i++)
        {
            table[i] = Native(items[i], owned);
        }

        table[items.Count] = 0;
        return (nint)table;
    }
}
