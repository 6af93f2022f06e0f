using System.Diagnostics;

namespace Warden.Cli.Tests;

/// <summary>Non-regular files for tests: named pipes and Unix sockets, made the way a hostile upload folder could hold them.</summary>
internal static class SpecialFiles
{
    /// <summary>Creates a named pipe (FIFO) at <paramref name="path"/> with coreutils' mkfifo.</summary>
    public static void Fifo(string path)
    {
        using var p = Process.Start(new ProcessStartInfo("mkfifo", [path]) { RedirectStandardError = true })!;
        var err = p.StandardError.ReadToEnd();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, $"mkfifo {path}: {err}");
    }

    /// <summary>Binds a Unix socket at <paramref name="path"/>; the socket file stays while the returned object lives.</summary>
    public static IDisposable Socket(string path)
    {
        var s = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Unspecified);
        s.Bind(new System.Net.Sockets.UnixDomainSocketEndPoint(path));
        return s;
    }
}
