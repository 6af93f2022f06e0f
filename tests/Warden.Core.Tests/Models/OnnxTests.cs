using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Warden.Core.ModelFiles;

namespace Warden.Core.Tests.Models;

/// <summary>
/// ONNX exports: initializers read in place (raw_data, packed float_data, external data files), mapped to the same
/// canonical components as every other container, and hostile protobuf (truncation, overlong lengths, groups,
/// varint overflow, path traversal in external data) refused cleanly.
/// </summary>
public class OnnxTests
{
    private static ModelFingerprint Print(string path) => Fingerprinter.Compute(ModelReader.Read(path), new FingerprintOptions { FileHashes = false });

    private static List<string> Identity(ModelFingerprint fp) =>
        [.. fp.Tensors.Select(t => t.Canonical.Key + "=" + (t.Hash is null ? "-" : Convert.ToHexStringLower(t.Hash))).Order(StringComparer.Ordinal)];

    public static TheoryData<string> Architectures() => [.. LayoutFixtures.Architectures];

    // An ONNX export of a diffusers pipeline (optimum's layout): one model.onnx per component folder, torch names on
    // the initializers, the denoiser's weights in an external data file beside it.
    private static void WriteOnnxFolder(string dir, string arch, Dictionary<string, List<FixtureTensor>> components, TensorDType dtype)
    {
        Directory.CreateDirectory(dir);
        var folders = components.Keys.Select(c => LayoutFixtures.Folder(arch, c)).ToList();
        File.WriteAllText(Path.Combine(dir, "model_index.json"), "{\"_class_name\":\"OnnxStableDiffusionPipeline\"," + string.Join(',', folders.Select(f => $"\"{f}\":[\"diffusers\",\"OnnxRuntimeModel\"]")) + "}");
        foreach (var (component, tensors) in components)
        {
            var sub = Path.Combine(dir, LayoutFixtures.Folder(arch, component));
            Directory.CreateDirectory(sub);
            var cast = ModelFixtures.Cast(tensors, dtype);
            if (component == "denoiser")
            {
                using var external = new MemoryStream();
                File.WriteAllBytes(Path.Combine(sub, "model.onnx"), OnnxWriter.Model(cast, OnnxStorage.External, external, "model.onnx_data"));
                File.WriteAllBytes(Path.Combine(sub, "model.onnx_data"), external.ToArray());
            }
            else
            {
                File.WriteAllBytes(Path.Combine(sub, "model.onnx"), OnnxWriter.Model(cast));
            }
        }
    }

    [Theory]
    [MemberData(nameof(Architectures))]
    public void An_onnx_export_is_the_same_model_as_the_original(string arch)
    {
        using var dir = new TempDir();
        var entries = LayoutFixtures.Entries(arch);
        var values = LayoutFixtures.Values(entries, seed: 5);
        var single = Fingerprinter.Compute(ModelReader.Read(dir.File("model.safetensors", ModelWriters.Safetensors(LayoutFixtures.Original(arch, entries, values)))), new FingerprintOptions { FileHashes = false, CastPaths = true });
        var onnx = Path.Combine(dir.Path, "onnx");
        WriteOnnxFolder(onnx, arch, LayoutFixtures.Diffusers(entries, values), TensorDType.F32);
        var doc = ModelReader.Read(onnx);
        Assert.DoesNotContain(doc.Anomalies, a => a.Severity == AnomalySeverity.Error);
        Assert.All(doc.Tensors, t => Assert.True(t.Readable, t.Name));
        var fp = Fingerprinter.Compute(doc, new FingerprintOptions { FileHashes = false });
        Assert.Equal(Identity(single), Identity(fp));
        Assert.Equal(single.ModelIdHex, fp.ModelIdHex);

        // An fp16 export matches the original's registered fp16 cast path.
        var half = Path.Combine(dir.Path, "half");
        WriteOnnxFolder(half, arch, LayoutFixtures.Diffusers(entries, values), TensorDType.F16);
        Assert.Equal(Convert.ToHexStringLower(single.CastModelIds["fp16"]), Print(half).ModelIdHex);

        // Another model of the same architecture exported the same way matches nothing.
        var other = Path.Combine(dir.Path, "other");
        WriteOnnxFolder(other, arch, LayoutFixtures.Diffusers(entries, LayoutFixtures.Values(entries, seed: 6)), TensorDType.F32);
        var o = Print(other);
        Assert.NotEqual(single.ModelIdHex, o.ModelIdHex);
        Assert.Empty(single.Components.Select(c => c.IdHex).Intersect(o.Components.Select(c => c.IdHex)));
    }

    [Theory]
    [InlineData(OnnxStorage.Raw)]
    [InlineData(OnnxStorage.FloatData)]
    [InlineData(OnnxStorage.External)]
    public void Every_storage_of_a_single_file_gives_the_safetensors_identity(OnnxStorage storage)
    {
        using var dir = new TempDir();
        var model = ModelFixtures.Base(7).Where(t => t.DType == TensorDType.F32).ToList();
        var reference = Print(dir.File("m.safetensors", ModelWriters.Safetensors(model)));
        using var external = new MemoryStream();
        var path = dir.File("export/model.onnx", OnnxWriter.Model(model, storage, external));
        if (storage == OnnxStorage.External)
        {
            dir.File("export/weights.bin", external.ToArray());
        }

        var doc = ModelReader.Read(path);
        Assert.Equal(ModelFormat.Onnx, doc.Format);
        Assert.Equal("pytorch", doc.Metadata["onnx.producer_name"]);
        Assert.Equal("ai.onnx:17", doc.Metadata["onnx.opset_import"]);
        Assert.All(doc.Tensors, t => Assert.True(t.Readable, t.Name));
        Assert.Equal(Identity(reference), Identity(Fingerprinter.Compute(doc, new FingerprintOptions { FileHashes = false })));
        Assert.Equal(reference.ModelIdHex, Print(path).ModelIdHex);
    }

    [Fact]
    public void Varint_typed_values_and_unknown_types_are_structure_only()
    {
        using var dir = new TempDir();
        var t = new FixtureTensor("model.diffusion_model.out.2.weight", [4, 8], ModelFixtures.Gaussian(1, 32, 0.02), TensorDType.F16);
        var bf = new FixtureTensor("model.diffusion_model.out.0.weight", [8], ModelFixtures.Gaussian(2, 8, 0.02));
        var odd = new Proto().Varint(1, 8).Varint(2, 21).Text(8, "int4").Bytes(9, new byte[4]); // UINT4
        var doc = ModelReader.Read(dir.File("m.onnx", OnnxWriter.Model([OnnxWriter.Tensor(t, OnnxStorage.Int32Data), OnnxWriter.Tensor(bf, OnnxStorage.Raw), odd])));
        Assert.Equal(3, doc.Tensors.Count);
        Assert.False(doc.Tensors[0].Readable);
        Assert.Contains(doc.Anomalies, a => a.Code == "onnx.varint-data");
        Assert.True(doc.Tensors[1].Readable);
        Assert.False(doc.Tensors[2].Readable);
        Assert.Contains(doc.Anomalies, a => a.Code == "onnx.unknown-dtype");
    }

    [Fact]
    public void Anonymous_initializers_are_reported_and_matched_by_content()
    {
        using var dir = new TempDir();
        var w = new FixtureTensor("model.diffusion_model.input_blocks.1.1.proj_in.weight", [64, 32], ModelFixtures.Gaussian(9, 64 * 32, 0.02));
        var named = Print(dir.File("named.safetensors", ModelWriters.Safetensors([w])));
        var doc = ModelReader.Read(dir.File("anon.onnx", OnnxWriter.Model([w.Renamed("onnx::Conv_1234")])));
        Assert.Contains(doc.Anomalies, a => a.Code == "onnx.anonymous-initializers");
        var anon = Fingerprinter.Compute(doc, new FingerprintOptions { FileHashes = false });

        // Same values and shape: the tensor hash is the same whatever the name, so the rows (T3) are too.
        Assert.Equal(named.Tensors.Single().Hash, anon.Tensors.Single().Hash);
        var record = ModelRecord.From(named, "n", "n", "bad", "sd1");
        Assert.Contains(NearMatcher.Contained(anon, [record]), h => h.Record.Id == "n");
    }

    public static TheoryData<string> EscapingLocations() =>
    [
        "../outside.bin", "sub/../../outside.bin", "/etc/hostname", "..\\outside.bin", "./../outside.bin", "a/b/../../../outside.bin",
    ];

    [Theory]
    [MemberData(nameof(EscapingLocations))]
    public void External_data_outside_the_folder_is_never_read(string location)
    {
        using var dir = new TempDir();
        dir.File("outside.bin", new byte[4096]);
        var t = new FixtureTensor("model.diffusion_model.out.2.weight", [4, 8], ModelFixtures.Gaussian(1, 32, 0.02));
        using var ext = new MemoryStream();
        var doc = ModelReader.Read(dir.File("model/m.onnx", OnnxWriter.Model([t], OnnxStorage.External, ext, location)));
        Assert.Contains(doc.Anomalies, a => a.Code == "onnx.external-path-escape");
        Assert.False(doc.Tensors.Single().Readable);
        Assert.Single(doc.Files);
    }

    [Fact]
    public void External_data_that_is_missing_a_link_or_too_short_is_flagged()
    {
        using var dir = new TempDir();
        var t = new FixtureTensor("model.diffusion_model.out.2.weight", [4, 8], ModelFixtures.Gaussian(1, 32, 0.02));
        using var ext = new MemoryStream();
        var missing = ModelReader.Read(dir.File("a/m.onnx", OnnxWriter.Model([t], OnnxStorage.External, ext, "nope.bin")));
        Assert.Contains(missing.Anomalies, a => a.Code == "onnx.external-missing");

        var target = dir.File("secret.bin", new byte[4096]);
        dir.File("b/m.onnx", OnnxWriter.Model([t], OnnxStorage.External, new MemoryStream(), "link.bin"));
        File.CreateSymbolicLink(Path.Combine(dir.Path, "b", "link.bin"), target);
        var link = ModelReader.Read(Path.Combine(dir.Path, "b", "m.onnx"));
        Assert.Contains(link.Anomalies, a => a.Code == "onnx.external-missing" && a.Message.Contains("link", StringComparison.Ordinal));
        Assert.False(link.Tensors.Single().Readable);

        dir.File("c/weights.bin", new byte[100]);
        var shortFile = ModelReader.Read(dir.File("c/m.onnx", OnnxWriter.Model([t], OnnxStorage.External, new MemoryStream(), "weights.bin")));
        Assert.Contains(shortFile.Anomalies, a => a.Code == "onnx.out-of-bounds");
    }

    public static TheoryData<string, byte[]> Hostile()
    {
        var big = new Proto().Varint(1, 8).Tag(7, 2).Raw(1UL << 40).ToArray();
        var group = new Proto().Varint(1, 8).Text(2, "p").Tag(7, 3).ToArray();
        var overflow = new Proto().Varint(1, 8).Tag(5, 0).Append([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]).ToArray();
        var longVarint = new Proto().Varint(1, 8).Tag(5, 0).Append([.. Enumerable.Repeat((byte)0x80, 11), 0]).ToArray();
        var field0 = new Proto().Varint(1, 8).Text(2, "p").Append([0x02, 0x00]).ToArray();
        var noGraph = new Proto().Varint(1, 8).Text(2, "x").ToArray();
        var tensorLength = new Proto().Varint(1, 8).Message(7, new Proto().Tag(5, 2).Raw(1000)).ToArray();
        var manyDims = new Proto();
        for (var i = 0; i < 40; i++)
        {
            manyDims.Varint(1, 2);
        }

        var dims = OnnxWriter.Model([manyDims.Varint(2, 1).Text(8, "w")]);
        var huge = OnnxWriter.Model([new Proto().Varint(1, 1UL << 40).Varint(1, 1UL << 40).Varint(2, 1).Text(8, "w")]);
        var negative = OnnxWriter.Model([new Proto().Varint(1, ulong.MaxValue).Varint(2, 1).Text(8, "w")]);
        var name = new Proto().Varint(1, 8).Message(7, new Proto().Message(5, new Proto().Tag(8, 2).Raw(1 << 20))).ToArray();
        return new()
        {
            { "length past the end", big },
            { "group wire type", group },
            { "varint past 64 bits", overflow },
            { "varint of 12 bytes", longVarint },
            { "field number 0", field0 },
            { "no graph", noGraph },
            { "initializer longer than its graph", tensorLength },
            { "40 dimensions", dims },
            { "2^80 elements", huge },
            { "negative dimension", negative },
            { "name longer than its message", name },
        };
    }

    [Theory]
    [MemberData(nameof(Hostile))]
    public void Hostile_protobuf_is_refused_with_a_reason(string label, byte[] bytes)
    {
        using var dir = new TempDir();
        var path = dir.File("m.onnx", bytes);
        var ex = Assert.Throws<ModelFormatException>(() => ModelReader.Read(path));
        Assert.StartsWith("onnx:", ex.Message, StringComparison.Ordinal);
        _ = label;
    }

    [Fact]
    public void Deeply_nested_subgraphs_cost_nothing()
    {
        // A Loop/If body nested 2,000 deep inside node attributes: skipped by length, never descended into.
        var inner = new Proto().Text(2, "g");
        for (var i = 0; i < 2_000; i++)
        {
            inner = new Proto().Message(1, new Proto().Text(4, "If").Message(5, new Proto().Text(1, "then_branch").Message(6, inner)));
        }

        using var dir = new TempDir();
        var t = new FixtureTensor("model.diffusion_model.out.2.weight", [4, 8], ModelFixtures.Gaussian(1, 32, 0.02));
        var doc = ModelReader.Read(dir.File("m.onnx", OnnxWriter.Model([OnnxWriter.Tensor(t, OnnxStorage.Raw)], extraGraphField: new Proto().Message(1, inner))));
        Assert.True(doc.Tensors.Single().Readable);
    }

    [Fact]
    public void Every_truncation_is_refused_or_read_without_reading_past_the_end()
    {
        using var dir = new TempDir();
        var model = ModelFixtures.Base(3).Take(3).Select(t => t with { Values = t.Values[..Math.Min(t.Values.Length, 64)], Shape = [Math.Min(t.Values.Length, 64)] }).ToList();
        var bytes = OnnxWriter.Model(model, OnnxStorage.Raw);
        for (var n = 3; n < bytes.Length; n++)
        {
            var path = dir.File($"t{n}.onnx", bytes[..n]);
            try
            {
                var doc = ModelReader.Read(path);
                Assert.All(doc.Tensors.Where(t => t.Readable), t => Assert.True(t.Offset + t.Length <= n));
            }
            catch (ModelFormatException)
            {
            }
        }
    }

    [Property(MaxTest = 200)]
    public Property Mutated_files_fail_closed() =>
        Prop.ForAll(Gen.Choose(0, int.MaxValue).ToArbitrary(), seed =>
        {
            var rng = new Random(seed);
            var model = ModelFixtures.Base(2).Take(4).Select(t => t with { Values = t.Values[..Math.Min(t.Values.Length, 32)], Shape = [Math.Min(t.Values.Length, 32)] }).ToList();
            var bytes = OnnxWriter.Model(model, (OnnxStorage)rng.Next(2));
            for (var k = rng.Next(1, 8); k > 0; k--)
            {
                bytes[rng.Next(3, bytes.Length)] = (byte)rng.Next(256);
            }

            using var dir = new TempDir();
            var path = dir.File("m.onnx", bytes);
            try
            {
                var doc = ModelReader.Read(path);
                return doc.Tensors.All(t => !t.Readable || (t.Offset >= 0 && t.Offset + t.Length <= bytes.Length));
            }
            catch (ModelFormatException)
            {
                return true;
            }
        });

    [Fact]
    public void Onnx_is_sniffed_by_content_and_not_confused_with_other_formats()
    {
        var bytes = OnnxWriter.Model([new FixtureTensor("w", [2], [1, 2])]);
        Assert.Equal(ModelFormat.Onnx, ModelReader.Sniff(bytes, bytes.Length));
        Assert.NotEqual(ModelFormat.Onnx, ModelReader.Sniff("\x08\x03hello"u8, 7));
        Assert.NotEqual(ModelFormat.Onnx, ModelReader.Sniff([0x80, 0x02, 0x7d], 3));
    }
}
