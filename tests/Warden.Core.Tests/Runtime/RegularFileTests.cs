using System.Diagnostics;
using FsCheck;
using FsCheck.Fluent;
using Warden.Core.Runtime;

namespace Warden.Core.Tests.Runtime;

/// <summary>
/// RegularFile opens only regular files, never waits on a FIFO, and reads whole files within a limit; BoundedRead
/// stops an endless stream at its limit.
/// </summary>
public sealed class RegularFileTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("warden-regular-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Fifo(string name)
    {
        var path = Path.Combine(_dir, name);
        using var p = Process.Start(new ProcessStartInfo("mkfifo", [path]) { RedirectStandardError = true })!;
        p.WaitForExit();
        Assert.Equal(0, p.ExitCode);
        return path;
    }

    /// <summary>Runs <paramref name="action"/> with a deadline: the bug guarded against is an open that never returns.</summary>
    private static T Within<T>(Func<T> action)
    {
        var task = Task.Run(action);
        Assert.True(task.Wait(TimeSpan.FromSeconds(30)), "did not return in 30 s");
        return task.Result;
    }

    [SkippableFact]
    public void Kinds_are_told_apart_through_links()
    {
        Skip.IfNot(OperatingSystem.IsLinux(), "statx is Linux-only; elsewhere every kind is Unknown");
        var file = Path.Combine(_dir, "f.bin");
        File.WriteAllBytes(file, [1, 2, 3]);
        var fifo = Fifo("p");
        var toZero = Path.Combine(_dir, "z");
        File.CreateSymbolicLink(toZero, "/dev/zero");
        var toFile = Path.Combine(_dir, "l");
        File.CreateSymbolicLink(toFile, file);
        var sock = Path.Combine(_dir, "s");
        using var socket = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Unspecified);
        socket.Bind(new System.Net.Sockets.UnixDomainSocketEndPoint(sock));

        Assert.Equal(FileKind.Regular, RegularFile.Kind(file));
        Assert.Equal(FileKind.Regular, RegularFile.Kind(toFile));
        Assert.Equal(FileKind.Directory, RegularFile.Kind(_dir));
        Assert.Equal(FileKind.Fifo, RegularFile.Kind(fifo));
        Assert.Equal(FileKind.CharacterDevice, RegularFile.Kind(toZero));
        Assert.Equal(FileKind.CharacterDevice, RegularFile.Kind("/dev/null"));
        Assert.Equal(FileKind.Socket, RegularFile.Kind(sock));
        Assert.Equal(FileKind.Unknown, RegularFile.Kind(Path.Combine(_dir, "missing")));
        Assert.Equal(FileKind.Unknown, RegularFile.Kind(Path.Combine(toZero, "under-a-device")));
    }

    [SkippableFact]
    public void Open_refuses_everything_but_regular_files_without_waiting()
    {
        Skip.IfNot(OperatingSystem.IsLinux(), "the non-blocking open is Linux-only");
        var fifo = Fifo("p");
        var toZero = Path.Combine(_dir, "z");
        File.CreateSymbolicLink(toZero, "/dev/zero");
        var sock = Path.Combine(_dir, "s");
        using var socket = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Unspecified);
        socket.Bind(new System.Net.Sockets.UnixDomainSocketEndPoint(sock));

        foreach (var (path, kind) in new[] { (fifo, FileKind.Fifo), (toZero, FileKind.CharacterDevice), ("/dev/null", FileKind.CharacterDevice) })
        {
            var ex = Within(() => Record.Exception(() => RegularFile.OpenRead(path).Dispose()));
            var refused = Assert.IsType<NotRegularFileException>(ex);
            Assert.Equal(kind, refused.Kind);
            Assert.Contains(path, refused.Message, StringComparison.Ordinal);
        }

        // A socket cannot be opened at all (ENXIO): .NET's own exception, still an IOException and still no wait.
        Assert.IsAssignableFrom<IOException>(Within(() => Record.Exception(() => RegularFile.OpenRead(sock).Dispose())));
        Assert.IsType<FileNotFoundException>(Record.Exception(() => RegularFile.OpenRead(Path.Combine(_dir, "missing")).Dispose()));
        Assert.Equal(FileKind.Directory, Assert.IsType<NotRegularFileException>(Record.Exception(() => RegularFile.OpenRead(_dir).Dispose())).Kind);
    }

    [SkippableFact]
    public void Regular_files_open_and_read_whole_within_the_limit()
    {
        var rng = new Random(5);
        foreach (var size in new[] { 0, 1, 4095, 4096, 4097, 100_000 })
        {
            var bytes = new byte[size];
            rng.NextBytes(bytes);
            var path = Path.Combine(_dir, $"f{size}");
            File.WriteAllBytes(path, bytes);
            using (var h = RegularFile.OpenRead(path, FileOptions.SequentialScan))
            {
                Assert.Equal(size, RandomAccess.GetLength(h));
                var back = new byte[size];
                Assert.Equal(size, size == 0 ? 0 : RandomAccess.Read(h, back, 0));
                Assert.Equal(bytes, back);
            }

            Assert.Equal(bytes, RegularFile.ReadAllBytes(path, size));
            if (size > 0)
            {
                var over = Assert.IsAssignableFrom<IOException>(Record.Exception(() => RegularFile.ReadAllBytes(path, size - 1)));
                Assert.Contains("limit", over.Message, StringComparison.Ordinal);
            }
        }

        Skip.IfNot(OperatingSystem.IsLinux(), "devices are refused on Linux only");
        Assert.IsType<NotRegularFileException>(Within(() => Record.Exception(() => RegularFile.ReadAllBytes("/dev/zero", 1 << 20))));
    }

    [SkippableFact]
    public void Bounded_read_returns_the_stream_up_to_the_limit_and_null_past_it()
    {
        Prop.ForAll(Gen.Choose(0, 300_000).ToArbitrary(), Gen.Choose(0, 300_000).ToArbitrary(), (size, max) =>
        {
            var data = new byte[size];
            new Random(size).NextBytes(data);
            using var stream = new MemoryStream(data);
            var read = BoundedRead.ReadAll(stream, max);
            Assert.Equal(size <= max ? data : null, read);
        }).Check(Config.QuickThrowOnFailure.WithMaxTest(200));

        Skip.IfNot(OperatingSystem.IsLinux(), "/dev/zero");
        using var zero = new FileStream("/dev/zero", FileMode.Open, FileAccess.Read);
        Assert.Null(Within(() => BoundedRead.ReadAll(zero, 10 << 20)));
    }
}
