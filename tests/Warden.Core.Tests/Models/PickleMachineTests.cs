using System.Diagnostics;
using System.Text;
using Warden.Core.ModelFiles;

namespace Warden.Core.Tests.Models;

public class PickleMachineTests
{
    public static TheoryData<string> HostileNames() => [.. ModelFixtures.HostilePickles("/nonexistent").Select(h => h.Name)];

    [Theory]
    [MemberData(nameof(HostileNames))]
    public void Every_bypass_class_is_dangerous_and_nothing_runs(string name)
    {
        using var dir = new TempDir();
        var marker = Path.Combine(dir.Path, "MARKER");
        var bytes = ModelFixtures.HostilePickles(marker).Single(h => h.Name == name).Bytes;

        // Bare pickle file, and the same payload as a torch checkpoint's data.pkl.
        var bare = ModelReader.Read(dir.File(name + ".pkl", bytes));
        var zipped = ModelReader.Read(dir.File(name + ".ckpt", ModelWriters.Zip([new("archive/data.pkl", bytes), new("archive/version", "3\n"u8.ToArray())])));
        foreach (var doc in new[] { bare, zipped })
        {
            Assert.Equal(PickleVerdict.Dangerous, doc.Verdict);
            Assert.Contains(doc.Pickles.SelectMany(p => p.Findings), f => f.Verdict == PickleVerdict.Dangerous);
        }

        Assert.False(File.Exists(marker));
    }

    [Fact]
    public void Globals_before_a_corrupt_tail_are_kept()
    {
        var bytes = ModelFixtures.HostilePickles("x").Single(h => h.Name == "payload-then-corrupt").Bytes;
        var r = new PickleMachine().Run(bytes, "p");
        Assert.False(r.Report.Complete);
        Assert.Contains(r.Report.Findings, f => f.Symbol == "os.system" && f.Verdict == PickleVerdict.Dangerous);
        Assert.Contains(r.Report.Findings, f => f.Kind == "corrupt");
    }

    [Fact]
    public void A_second_pickle_after_stop_is_scanned()
    {
        var bytes = ModelFixtures.HostilePickles("x").Single(h => h.Name == "benign-then-payload").Bytes;
        var r = new PickleMachine().Run(bytes, "p");
        Assert.IsType<PyDict>(r.Root);
        Assert.Contains(r.Report.Findings, f => f.Kind == "trailing");
        Assert.Contains(r.Report.Findings, f => f.Symbol == "os.system");
    }

    [Theory]
    [InlineData("collections", "OrderedDict", PickleVerdict.Safe)]
    [InlineData("torch._utils", "_rebuild_tensor_v2", PickleVerdict.Safe)]
    [InlineData("torch", "BFloat16Storage", PickleVerdict.Safe)]
    [InlineData("numpy.core.multiarray", "_reconstruct", PickleVerdict.Safe)]
    [InlineData("pytorch_lightning.callbacks.model_checkpoint", "ModelCheckpoint", PickleVerdict.Safe)]
    [InlineData("__builtin__", "set", PickleVerdict.Safe)]
    [InlineData("my_package.layers", "CustomLayer", PickleVerdict.Dangerous)]
    [InlineData("builtins", "dict", PickleVerdict.Dangerous)]
    [InlineData("os", "system", PickleVerdict.Dangerous)]
    [InlineData("os.path", "join", PickleVerdict.Dangerous)]
    [InlineData("nt", "system", PickleVerdict.Dangerous)]
    [InlineData("__builtin__", "eval", PickleVerdict.Dangerous)]
    [InlineData("builtins", "getattr", PickleVerdict.Dangerous)]
    [InlineData("asyncio.unix_events", "_UnixSelectorEventLoop", PickleVerdict.Dangerous)]
    [InlineData("_operator", "attrgetter", PickleVerdict.Dangerous)]
    [InlineData("functools", "partial", PickleVerdict.Dangerous)]
    [InlineData("pip", "main", PickleVerdict.Dangerous)]
    [InlineData("torch.utils.collect_env", "run", PickleVerdict.Dangerous)]
    [InlineData("numpy.f2py", "compile", PickleVerdict.Dangerous)]
    [InlineData("logging", "FileHandler", PickleVerdict.Dangerous)]
    [InlineData("some.module", "__reduce_ex__", PickleVerdict.Dangerous)]
    public void Policy_classifies_globals(string module, string name, PickleVerdict expected) =>
        Assert.Equal(expected, PicklePolicy.Classify(module, name));

    [Fact]
    public void Huge_length_fields_do_not_allocate()
    {
        var bytes = new ModelWriters.Pickle().Proto(4).Op(0x8e).Raw(BitConverter.GetBytes(1L << 40)).Raw("abc"u8).ToArray();
        var before = GC.GetAllocatedBytesForCurrentThread();
        var r = new PickleMachine().Run(bytes, "p");
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 1 << 20);
        Assert.Contains(r.Report.Findings, f => f.Kind == "corrupt");
        var long4 = new ModelWriters.Pickle().Proto(2).Op(0x8b).Raw(BitConverter.GetBytes(int.MaxValue)).ToArray();
        Assert.False(new PickleMachine().Run(long4, "p").Report.Complete);
    }

    [Fact]
    public void Deep_nesting_and_mark_floods_are_bounded_in_time_and_memory()
    {
        var clock = Stopwatch.StartNew();
        var marks = new byte[1_000_002];
        marks[0] = 0x80;
        marks[1] = 2;
        marks.AsSpan(2).Fill((byte)'(');
        var r1 = new PickleMachine(ModelLimits.Default with { MaxStack = 100_000 }).Run(marks, "marks");
        Assert.Contains(r1.Report.Findings, f => f.Kind == "limit");

        // 1e6 nested one-element tuples: built without recursion, walked with a depth limit.
        var nest = new List<byte> { 0x80, 2, (byte)')' };
        nest.AddRange(Enumerable.Repeat((byte)0x85, 1_000_000));
        nest.Add((byte)'.');
        var r2 = new PickleMachine().Run(nest.ToArray(), "nest");
        Assert.True(r2.Report.Complete);
        var doc = new ModelDocument { Path = "x", Format = ModelFormat.Pickle };
        TorchReader.Walk(r2.Root, 64, (_, _) => doc.Tensors.Add(null!));
        Assert.Empty(doc.Tensors);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(20), $"took {clock.Elapsed}");
    }

    [Fact]
    public void Op_memo_and_time_limits_stop_the_scan()
    {
        var loop = new List<byte> { 0x80, 2 };
        for (var i = 0; i < 10_000; i++)
        {
            loop.AddRange([(byte)'N', (byte)'0']);
        }

        loop.Add((byte)'N');
        loop.Add((byte)'.');
        var r = new PickleMachine(ModelLimits.Default with { MaxPickleOps = 1000 }).Run(loop.ToArray(), "ops");
        Assert.Contains(r.Report.Findings, f => f.Kind == "limit");

        var memo = new List<byte> { 0x80, 4, (byte)'N' };
        for (var i = 0; i < 5000; i++)
        {
            memo.Add(0x94);
        }

        var m = new PickleMachine(ModelLimits.Default with { MaxMemo = 100 }).Run(memo.ToArray(), "memo");
        Assert.Contains(m.Report.Findings, f => f.Kind == "limit");

        var unset = new PickleMachine().Run(new byte[] { 0x80, 2, (byte)'j', 0xff, 0xff, 0xff, 0xff, (byte)'.' }, "memo-overflow");
        Assert.Contains(unset.Report.Findings, f => f.Kind == "corrupt");
    }

    [Fact]
    public void Protocol_zero_text_opcodes_are_read()
    {
        var bytes = Encoding.ASCII.GetBytes("(dp0\nS'a'\np1\nI42\nsS'b'\np2\nF1.5\nsS'c'\nL12345678901234567890L\ns.");
        var r = new PickleMachine().Run(bytes, "p0");
        Assert.True(r.Report.Complete);
        var d = Assert.IsType<PyDict>(r.Root);
        Assert.Equal(3, d.Entries.Count);
        Assert.Equal(42L, d.Entries[0].Value);
        Assert.Equal(PickleVerdict.Safe, r.Report.Verdict);
    }

    [Fact]
    public void Random_garbage_never_throws()
    {
        var rng = new Random(42);
        for (var i = 0; i < 2000; i++)
        {
            var b = new byte[rng.Next(1, 200)];
            rng.NextBytes(b);
            b[0] = 0x80;
            var r = new PickleMachine(ModelLimits.Default with { MaxPickleOps = 100_000 }).Run(b, "fuzz");
            Assert.NotNull(r.Report);
        }
    }
}
