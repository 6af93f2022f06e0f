using System.Buffers.Binary;
using System.Diagnostics;
using System.Text;
using Warden.Core.ModelFiles;
using Xunit.Abstractions;

namespace Warden.Core.Tests.Models;

/// <summary>
/// Sniffing is never exclusive: every interpretation a loader could take of a file (pickle from any opcode, tar,
/// zip found by its end record, legacy tar checkpoint, stream after stream) is scanned; caps reached are dangerous.
/// Every hostile fixture only names a non-allowlisted global; nothing here is ever unpickled.
/// </summary>
public sealed class ContainerSniffingTests(ITestOutputHelper output)
{
    private static void AssertDangerous(ModelDocument doc, string module, string name, string why)
    {
        Assert.True(doc.Verdict == PickleVerdict.Dangerous, $"{why}: verdict {doc.Verdict}; pickles {string.Join("; ", doc.Pickles.Select(p => p.Member + "=" + p.Verdict + " [" + string.Join(" | ", p.Findings.Select(f => f.Kind + " " + f.Symbol + " @" + f.Offset + " " + f.Detail)) + "]"))}");
        Assert.True(doc.Pickles.Any(p => p.Globals.Contains($"{module}.{name}") || p.Findings.Any(f => f.Module == module && f.Name == name)),
            $"{why}: {module}.{name} not reported; globals {string.Join(",", doc.Pickles.SelectMany(p => p.Globals))}");
    }

    [SkippableFact]
    public void The_opcode_table_is_CPythons()
    {
        // Ground truth from CPython's own opcode table, where Python is installed.
        var python = Python.Run("import pickletools; print(' '.join(str(o.code.encode('latin-1')[0]) for o in pickletools.opcodes))");
        Skip.If(python is null, "python3 is not installed: the opcode table cannot be compared with CPython's");
        var cpython = python!.Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(byte.Parse).ToHashSet();
        for (var b = 0; b < 256; b++)
        {
            Assert.True(cpython.Contains((byte)b) == PickleOpcodes.IsOpcode((byte)b), $"byte 0x{b:x2}: CPython {cpython.Contains((byte)b)}");
        }
    }

    [Fact]
    public void A_pickle_starting_with_any_opcode_is_scanned()
    {
        var rng = new Random(12_001);
        using var dir = new TempDir();
        var firsts = new HashSet<byte>();
        for (var i = 0; i < 300; i++)
        {
            var (module, name) = ContainerWriters.HostileGlobals[i % ContainerWriters.HostileGlobals.Length];
            var payload = i % 2 == 0 ? ContainerWriters.Payload(module, name) : ContainerWriters.Payload2(module, name)[2..];
            var bytes = ContainerWriters.PrefixedPayload(rng, payload, out var first);
            firsts.Add(first);
            var doc = ModelReader.Read(dir.File($"p{i}.bin", bytes));
            Assert.Equal(ModelFormat.Pickle, doc.Format);
            AssertDangerous(doc, module, name, $"case {i} first byte 0x{first:x2}");
        }

        Assert.True(firsts.Count >= 25, $"only {firsts.Count} distinct first opcodes generated");
    }

    [Fact]
    public void Text_that_merely_starts_with_an_opcode_letter_is_not_a_model()
    {
        using var dir = new TempDir();
        foreach (var text in new[] { "Note: see the README", "just text", "(not a pickle)", "]] broken", "I am text\n", "}" })
        {
            var ex = Assert.Throws<ModelFormatException>(() => ModelReader.Read(dir.File("t.txt", Encoding.ASCII.GetBytes(text))));
            Assert.True(ex.NotAModel, text);
        }
    }

    [Fact]
    public void Ustar_at_257_does_not_hide_a_pickle()
    {
        using var dir = new TempDir();
        for (var pad = 0; pad < 240; pad += 7)
        {
            // The payload's string argument carries "ustar" at byte 257; tarfile rejects the header (checksum), CPython runs it.
            var head = Encoding.ASCII.GetBytes("cos\nsystem\n(S'");
            var filler = new string('A', 257 - head.Length);
            var bytes = Encoding.ASCII.GetBytes($"cos\nsystem\n(S'{filler}ustar{new string('B', pad)}'\ntR.");
            Assert.Equal("ustar"u8.ToArray(), bytes.AsSpan(257, 5).ToArray());
            var doc = ModelReader.Read(dir.File("u.pkl", bytes));
            AssertDangerous(doc, "os", "system", $"pad {pad}");
        }
    }

    [Fact]
    public void A_valid_tar_whose_first_bytes_are_a_pickle_is_scanned_both_ways()
    {
        using var dir = new TempDir();
        foreach (var (module, name) in ContainerWriters.HostileGlobals)
        {
            // The first member's name is the payload: tarfile.open accepts the archive, pickle.load runs the name.
            var payload = Encoding.ASCII.GetString(ContainerWriters.Payload(module, name));
            var tar = ContainerWriters.Tar([new(payload, "benign"u8.ToArray())]);
            Assert.True(TarReader.IsTarHeader(tar));
            var doc = ModelReader.Read(dir.File("t.tar", tar));
            AssertDangerous(doc, module, name, "tar+pickle " + module);
            Assert.Contains(doc.Pickles, p => p.Member == "as-pickle");
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(63)]
    [InlineData(64)]
    [InlineData(65)]
    [InlineData(500)]
    [InlineData(5000)]
    public void A_payload_after_any_number_of_benign_streams_is_found(int benign)
    {
        using var dir = new TempDir();
        using var s = new MemoryStream();
        var rng = new Random(benign);
        for (var i = 0; i < benign; i++)
        {
            s.Write(i % 3 == 0 ? new ModelWriters.Pickle().Proto(2).Op((byte)'}').Stop().ToArray() : [.. ContainerWriters.BenignFragments[rng.Next(ContainerWriters.BenignFragments.Length)], (byte)'N', (byte)'.']);
        }

        s.Write(ContainerWriters.Payload("builtins", "eval"));
        var doc = ModelReader.Read(dir.File("many.pkl", s.ToArray()));
        AssertDangerous(doc, "builtins", "eval", $"{benign} benign streams");
    }

    [Fact]
    public void Zero_padding_after_a_benign_stream_is_not_a_payload()
    {
        using var dir = new TempDir();
        var doc = ModelReader.Read(dir.File("z.pkl", [.. new ModelWriters.Pickle().Proto(2).Op((byte)'}').Stop().ToArray(), .. new byte[4096]]));
        Assert.Equal(PickleVerdict.Safe, doc.Verdict);
    }

    [Fact]
    public void A_stream_longer_than_the_scan_window_is_streamed_not_skipped()
    {
        using var dir = new TempDir();
        var big = new byte[20_000];
        var p = new ModelWriters.Pickle().Proto(4).Op(0x8e);
        var len = new byte[8];
        BinaryPrimitives.WriteInt64LittleEndian(len, big.Length);
        var bytes = p.Raw(len).Raw(big).Op((byte)'0').Raw(ContainerWriters.Payload2().AsSpan(2)).ToArray();
        var path = dir.File("w.pkl", bytes);

        // With the whole stream in view the payload is found; with a window smaller than the stream, the stream is
        // read past the window and the payload is still found.
        AssertDangerous(ModelReader.Read(path), "os", "system", "full window");
        foreach (var window in new[] { 1024, 4096, 16_384 })
        {
            AssertDangerous(ModelReader.Read(path, new ModelLimits { MaxPickleWindow = window }), "os", "system", $"{window}-byte window");
        }

        // A benign stream just as long: a stream that outruns its window is scanned again as a stream over the whole
        // file (bounded memory), so it is fully read and safe whatever the window.
        var benign = dir.File("b.pkl", new ModelWriters.Pickle().Proto(4).Op(0x8e).Raw(len).Raw(big).Stop().ToArray());
        Assert.Equal(PickleVerdict.Safe, ModelReader.Read(benign).Verdict);
        Assert.Equal(PickleVerdict.Safe, ModelReader.Read(benign, new ModelLimits { MaxPickleWindow = 4096 }).Verdict);
    }

    [Fact]
    public void Streams_past_the_first_window_are_scanned_in_later_windows()
    {
        using var dir = new TempDir();
        using var s = new MemoryStream();
        var benign = new ModelWriters.Pickle().Proto(2).Op((byte)'}').Stop().ToArray();
        for (var i = 0; i < 3000; i++)
        {
            s.Write(benign);
        }

        s.Write(ContainerWriters.Payload("subprocess", "Popen"));
        var doc = ModelReader.Read(dir.File("w.pkl", s.ToArray()), new ModelLimits { MaxPickleWindow = 1000 });
        AssertDangerous(doc, "subprocess", "Popen", "payload 12 KB into a 1 KB-window scan");
    }

    public static TheoryData<ContainerWriters.TarSlot> TarSlots() => [.. Enum.GetValues<ContainerWriters.TarSlot>().Where(s => s != ContainerWriters.TarSlot.None)];

    [Fact]
    public void A_benign_legacy_tar_checkpoint_is_parsed_member_by_member()
    {
        using var dir = new TempDir();
        foreach (var storages in new[] { 0, 1, 2, 7 })
        {
            var doc = ModelReader.Read(dir.File("old.pth", ContainerWriters.LegacyTar(storages, ContainerWriters.TarSlot.None, [])));
            Assert.Equal(ModelFormat.TorchLegacyTar, doc.Format);
            Assert.True(doc.Verdict != PickleVerdict.Dangerous, $"{storages} storages: {string.Join("; ", doc.Pickles.SelectMany(p => p.Findings).Select(f => f.Detail))}");
            Assert.Contains(doc.Pickles, p => p.Member == "tar:storages");
            Assert.Contains(doc.Pickles, p => p.Member == "tar:pickle");

            // The raw storage bytes spell "cos\nsystem": stepped over by their counts, never parsed as a stream.
            Assert.DoesNotContain(doc.Pickles, p => p.Globals.Contains("os.system"));
        }
    }

    [Theory]
    [MemberData(nameof(TarSlots))]
    public void A_hostile_stream_anywhere_in_a_legacy_tar_checkpoint_is_found(ContainerWriters.TarSlot slot)
    {
        using var dir = new TempDir();
        var i = 0;
        foreach (var (module, name) in ContainerWriters.HostileGlobals)
        {
            foreach (var storages in new[] { 1, 3 })
            {
                var payload = i++ % 2 == 0 ? ContainerWriters.Payload(module, name) : ContainerWriters.Payload2(module, name);
                var doc = ModelReader.Read(dir.File($"{slot}{i}.tar", ContainerWriters.LegacyTar(storages, slot, payload)));
                AssertDangerous(doc, module, name, $"{slot}, {storages} storages");
            }
        }
    }

    [Fact]
    public void A_symlinked_legacy_tar_member_is_dangerous()
    {
        using var dir = new TempDir();
        var tar = ContainerWriters.Tar([new("storages", [], (byte)'2', "/tmp/elsewhere"), new("pickle", ContainerWriters.Number(1))]);
        var doc = ModelReader.Read(dir.File("l.tar", tar));
        Assert.Equal(PickleVerdict.Dangerous, doc.Verdict);
    }

    [Fact]
    public void A_pickle_with_a_zip_appended_is_scanned_as_both()
    {
        using var dir = new TempDir();
        var i = 0;
        foreach (var (module, name) in ContainerWriters.HostileGlobals)
        {
            foreach (var member in new[] { "x/data.pkl", "evil", "a/b/c.pickle", "archive/data/0.pkl" })
            {
                foreach (var deflate in new[] { false, true })
                {
                    // The pickle is benign; the appended zip (found by zipfile.is_zipfile at the end) holds the payload.
                    var zip = ModelWriters.Zip([new("readme", "hello"u8.ToArray()), new(member, ContainerWriters.Payload2(module, name)) { Deflate = deflate }]);
                    byte[] bytes = [.. new ModelWriters.Pickle().Proto(2).Op((byte)'}').Stop().ToArray(), .. zip];
                    var doc = ModelReader.Read(dir.File($"z{i++}.bin", bytes));
                    Assert.Equal(ModelFormat.Pickle, doc.Format);
                    AssertDangerous(doc, module, name, $"pickle + zip member {member} deflate {deflate}");
                }
            }
        }
    }

    [Fact]
    public void Every_member_a_loader_could_unpickle_is_scanned_whatever_its_name()
    {
        using var dir = new TempDir();
        var i = 0;
        foreach (var member in new[] { "archive/evil", "archive/extra/state", "other/data.pkl", "archive/constants.pkl", "archive/x.PKL", "top/deeper/data.pkl" })
        {
            foreach (var deflate in new[] { false, true })
            {
                var zip = ModelWriters.TorchZip([new FixtureTensor("w", [2], [1, 2])], new ModelWriters.TorchOptions
                {
                    Tamper = e => [.. e, new ModelWriters.ZipEntry(member, ContainerWriters.Payload2("builtins", "eval")) { Deflate = deflate }],
                });
                var doc = ModelReader.Read(dir.File($"m{i++}.pt", zip));
                Assert.Equal(ModelFormat.TorchZip, doc.Format);
                AssertDangerous(doc, "builtins", "eval", $"member {member} deflate {deflate}");
                Assert.Single(doc.Tensors);
            }
        }
    }

    [Fact]
    public void A_data_pkl_padded_past_the_old_cap_is_scanned_to_its_payload()
    {
        using var dir = new TempDir();

        // 65 MiB of BINBYTES8 padding (the old cap was 64 MiB), then the payload, in the one data.pkl stream.
        var pad = new byte[65 << 20];
        var len = new byte[8];
        BinaryPrimitives.WriteInt64LittleEndian(len, pad.Length);
        var pkl = new ModelWriters.Pickle().Proto(4).Op(0x8e).Raw(len).Raw(pad).Op((byte)'0').Raw(ContainerWriters.Payload2().AsSpan(2)).ToArray();
        var zip = ModelWriters.Zip([new("archive/data.pkl", pkl), new("archive/version", "3\n"u8.ToArray())]);
        var clock = Stopwatch.StartNew();
        var doc = ModelReader.Read(dir.File("padded.pt", zip));
        output.WriteLine($"65 MiB stored data.pkl scanned in {clock.ElapsedMilliseconds} ms");
        AssertDangerous(doc, "os", "system", "padded data.pkl");
    }

    [Fact]
    public void A_deflated_pickle_member_past_the_inflate_cap_is_dangerous()
    {
        using var dir = new TempDir();
        var pkl = new ModelWriters.Pickle().Proto(2).Op((byte)']').Mark();
        for (var i = 0; i < 20_000; i++)
        {
            pkl.Op((byte)'N');
        }

        var bytes = pkl.Op((byte)'e').Stop().ToArray();
        var zip = ModelWriters.Zip([new("archive/data.pkl", bytes) { Deflate = true }, new("archive/version", "3\n"u8.ToArray())]);
        var path = dir.File("deflated.pt", zip);
        Assert.Equal(PickleVerdict.Safe, ModelReader.Read(path).Verdict);
        var capped = ModelReader.Read(path, new ModelLimits { MaxPickleBytes = 4096 });
        Assert.Equal(PickleVerdict.Dangerous, capped.Verdict);
        Assert.Contains(capped.Pickles.SelectMany(p => p.Findings), f => f.Kind == "limit");
    }

    [Fact]
    public void A_legacy_file_hides_nothing_after_its_storages()
    {
        using var dir = new TempDir();
        var legacy = ModelWriters.LegacyTorch([new FixtureTensor("w", [2], [1, 2])]);
        Assert.Equal(PickleVerdict.Safe, ModelReader.Read(dir.File("ok.pt", legacy)).Verdict);
        foreach (var (module, name) in ContainerWriters.HostileGlobals)
        {
            var doc = ModelReader.Read(dir.File("l.pt", [.. legacy, .. ContainerWriters.Payload(module, name)]));
            Assert.Equal(ModelFormat.TorchLegacy, doc.Format);
            AssertDangerous(doc, module, name, "after the storages");
        }
    }

    [Fact]
    public void Other_formats_whose_first_byte_is_an_opcode_are_also_scanned_as_pickles()
    {
        using var dir = new TempDir();

        // A GGUF starts with 'G' (BINFLOAT): a GGUF whose first bytes continue as a pickle stream is a polyglot.
        var gguf = ModelWriters.Gguf([new FixtureTensor("w", [32], new float[32])], []);
        var benign = ModelReader.Read(dir.File("ok.gguf", gguf));
        Assert.Equal(ModelFormat.Gguf, benign.Format);
        Assert.Equal(PickleVerdict.Safe, benign.Verdict);

        // Safetensors with a header length whose low byte is an opcode: the real benign files stay safe.
        foreach (var pad in new[] { 8, 16, 40, 48, 64 })
        {
            var st = ModelWriters.Safetensors([new FixtureTensor("a", [3], [1, 2, 3])], padTo: pad);
            var doc = ModelReader.Read(dir.File($"s{pad}.safetensors", st));
            Assert.Equal(ModelFormat.Safetensors, doc.Format);
            Assert.Equal(PickleVerdict.Safe, doc.Verdict);
        }
    }

    [Fact]
    public void Absurd_tensor_shapes_are_malformed_never_an_overflow()
    {
        using var dir = new TempDir();
        var rng = new Random(7);
        long[] huge = [1L << 31, 1L << 32, 1L << 40, (1L << 62) + 1, long.MaxValue / 2, 3_000_000_000];
        for (var i = 0; i < 200; i++)
        {
            var dims = Enumerable.Range(0, rng.Next(2, 5)).Select(_ => rng.Next(3) == 0 ? rng.Next(1, 9) : huge[rng.Next(huge.Length)]).ToArray();
            var json = "{\"a\":{\"dtype\":\"F32\",\"shape\":[" + string.Join(',', dims) + "],\"data_offsets\":[0,4]}}";
            Check(dir.File("h.safetensors", ModelWriters.RawSafetensors(json, 4)), $"safetensors {json}");
            Check(dir.File("h.gguf", ContainerWriters.GgufDims(dims)), $"gguf [{string.Join(',', dims)}]");
        }

        // The reported case: a 128-byte GGUF with dims 2^31 x 2^31.
        var small = ContainerWriters.GgufDims([1L << 31, 1L << 31]);
        Assert.True(small.Length <= 128, small.Length.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Assert.Throws<ModelFormatException>(() => ModelReader.Read(dir.File("128.gguf", small)));

        static void Check(string path, string why)
        {
            var ex = Record.Exception(() =>
            {
                var doc = ModelReader.Read(path);
                Assert.All(doc.Tensors, t => Assert.InRange(t.Count, 0, TensorShapes.MaxElements));
            });
            Assert.True(ex is null or ModelFormatException, $"{why}: {ex}");
        }
    }

    [Fact]
    public void Checked_shape_arithmetic_agrees_with_big_integers()
    {
        var rng = new Random(99);
        for (var i = 0; i < 20_000; i++)
        {
            var dims = Enumerable.Range(0, rng.Next(0, 6)).Select(_ => rng.Next(4) switch
            {
                0 => 0L,
                1 => rng.NextInt64(1, 100),
                2 => rng.NextInt64(1, 1L << 32),
                _ => rng.NextInt64(-5, long.MaxValue),
            }).ToArray();
            // Oracle: -1 for a negative dimension or when the non-zero dimensions' product exceeds a long.
            var nonZero = dims.Where(d => d != 0).Aggregate(System.Numerics.BigInteger.One, (a, d) => a * d);
            var count = TensorShapes.Count(dims);
            if (dims.Any(d => d < 0) || nonZero > long.MaxValue)
            {
                Assert.Equal(-1, count);
            }
            else
            {
                Assert.Equal(dims.Contains(0) ? 0 : (long)nonZero, count);
            }
        }
    }
}

/// <summary>Runs python3 for ground truth, where it is installed.</summary>
internal static class Python
{
    public static string? Run(string code)
    {
        try
        {
            using var p = Process.Start(new ProcessStartInfo("python3") { ArgumentList = { "-c", code }, RedirectStandardOutput = true, UseShellExecute = false });
            if (p is null)
            {
                return null;
            }

            var text = p.StandardOutput.ReadToEnd();
            p.WaitForExit();
            return p.ExitCode == 0 ? text.Trim() : null;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return null;
        }
    }
}
