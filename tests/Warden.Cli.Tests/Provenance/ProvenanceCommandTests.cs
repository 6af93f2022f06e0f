using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using NetVips;
using Warden.Core.Banks;
using Warden.Storage;

namespace Warden.Cli.Tests.Provenance;

/// <summary>`warden provenance` end to end: a generated image's model hashes found in a bank of model files.</summary>
public sealed class ProvenanceCommandTests : IDisposable
{
    private const string Infotext =
        "a lighthouse\nNegative prompt: blurry\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, Size: 64x48, Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, " +
        "Lora hashes: \"softlight: 0a1b2c3d4e5f\", Version: v1.10.1";

    private readonly string _dir = Directory.CreateTempSubdirectory("warden-prov-").FullName;

    public ProvenanceCommandTests()
    {
        var png = Encode("png");
        File.WriteAllBytes(Path.Combine(_dir, "a-generated.png"), [.. png.AsSpan(0, 33), .. TextChunk("parameters", Infotext), .. png.AsSpan(33)]);
        File.WriteAllBytes(Path.Combine(_dir, "b-photo.jpg"), Encode("jpg"));
        File.WriteAllText(Path.Combine(_dir, "c-notes.txt"), "not an image");
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static byte[] Encode(string format)
    {
        var px = new byte[64 * 48 * 3];
        new Random(4).NextBytes(px);
        using var image = Image.NewFromMemory(px, 64, 48, 3, Enums.BandFormat.Uchar);
        return image.WriteToBuffer("." + format);
    }

    private static byte[] TextChunk(string key, string text)
    {
        byte[] data = [.. Encoding.Latin1.GetBytes(key), 0, .. Encoding.Latin1.GetBytes(text)];
        var chunk = new byte[12 + data.Length];
        BinaryPrimitives.WriteUInt32BigEndian(chunk, (uint)data.Length);
        "tEXt"u8.CopyTo(chunk.AsSpan(4));
        data.CopyTo(chunk, 8);
        var crc = 0xFFFFFFFFu;
        foreach (var b in chunk.AsSpan(4, 4 + data.Length))
        {
            crc ^= b;
            for (var k = 0; k < 8; k++)
            {
                crc = (crc & 1) != 0 ? 0xEDB88320 ^ (crc >> 1) : crc >> 1;
            }
        }

        BinaryPrimitives.WriteUInt32BigEndian(chunk.AsSpan(8 + data.Length), crc ^ 0xFFFFFFFF);
        return chunk;
    }

    private static (int Exit, string Out, string Err) Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var exit = WardenCli.Run(args, output, error);
        return (exit, output.ToString(), error.ToString());
    }

    [Fact]
    public void JsonLinesLinkModelHashesToABankAndReportFailures()
    {
        var db = Path.Combine(_dir, "warden.db");
        using (var store = BankStore.Open(db))
        {
            var bank = store.CreateBank("model-files", BankKind.BlockList, description: "checkpoints and LoRAs");
            store.Import(bank.Id, [new BankEntryRecord("civitai_autov2", "6ce0161689", new Dictionary<string, string>()), new BankEntryRecord("civitai_autov3", "0a1b2c3d4e5f", new Dictionary<string, string>())], "test");
        }

        var (exit, output, error) = Run("provenance", "--format", "jsonl", "--db", db, _dir);
        Assert.Equal(WardenCli.SomeFailed, exit);
        Assert.Contains("c-notes.txt", error, StringComparison.Ordinal);
        var rows = output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal(2, rows.Count);
        var generated = rows[0];
        Assert.EndsWith("a-generated.png", generated.GetProperty("file").GetProperty("path").GetString(), StringComparison.Ordinal);
        Assert.Equal("AUTOMATIC1111", generated.GetProperty("generator").GetProperty("tool").GetString());
        Assert.Equal("yes", generated.GetProperty("verdict").GetProperty("aiGenerated").GetString());
        var models = generated.GetProperty("modelRefs").EnumerateArray().ToList();
        var checkpoint = models.Single(m => m.GetProperty("role").GetString() == "checkpoint");
        Assert.Equal("model-files", checkpoint.GetProperty("bankMatches")[0].GetProperty("bank").GetString());
        Assert.Equal("civitai_autov2", checkpoint.GetProperty("bankMatches")[0].GetProperty("signalType").GetString());
        var lora = models.Single(m => m.GetProperty("role").GetString() == "lora");
        Assert.Equal("civitai_autov3", lora.GetProperty("bankMatches")[0].GetProperty("signalType").GetString());

        // Prompts only as hashes; the caveat in every object.
        Assert.DoesNotContain("a lighthouse", output, StringComparison.Ordinal);
        Assert.Contains("absence proves nothing", generated.GetProperty("warnings")[0].GetString(), StringComparison.Ordinal);

        var photo = rows[1];
        Assert.Equal("unknown", photo.GetProperty("verdict").GetProperty("aiGenerated").GetString());
        Assert.Equal(0, photo.GetProperty("modelRefs").GetArrayLength());
    }

    [Fact]
    public void TableNamesTheMatchAndPromptsAppearOnlyWhenAsked()
    {
        var db = Path.Combine(_dir, "t.db");
        using (var store = BankStore.Open(db))
        {
            var bank = store.CreateBank("models");
            store.Import(bank.Id, [new BankEntryRecord("civitai_autov2", "6ce0161689", new Dictionary<string, string>())], "test");
        }

        var file = Path.Combine(_dir, "a-generated.png");
        var (exit, output, _) = Run("provenance", "--db", db, file);
        Assert.Equal(WardenCli.Ok, exit);
        Assert.Contains("generator=AUTOMATIC1111 v1.10.1", output, StringComparison.Ordinal);
        Assert.Contains("MATCH civitai_autov2:6ce0161689 in bank 'models'", output, StringComparison.Ordinal);
        Assert.Contains("absence proves nothing", output, StringComparison.Ordinal);
        Assert.DoesNotContain("a lighthouse", output, StringComparison.Ordinal);

        var (_, revealed, _) = Run("provenance", "--format", "jsonl", "--include-prompts", file);
        Assert.Contains("a lighthouse", revealed, StringComparison.Ordinal);
    }

    [Fact]
    public void HashOutputIsUnchangedByProvenance()
    {
        var (exit, output, _) = Run("hash", "--format", "jsonl", Path.Combine(_dir, "a-generated.png"));
        Assert.Equal(WardenCli.Ok, exit);
        Assert.DoesNotContain("generator", output, StringComparison.Ordinal);
    }

    [Fact]
    public void UnreadableTrustAnchorsAreAUsageError()
    {
        var (exit, _, error) = Run("provenance", "--trust-anchors", Path.Combine(_dir, "missing.pem"), Path.Combine(_dir, "b-photo.jpg"));
        Assert.Equal(WardenCli.UsageError, exit);
        Assert.Contains("--trust-anchors", error, StringComparison.Ordinal);
    }

    [Fact]
    public void PixelChecksRunWhenAsked()
    {
        var (exit, output, _) = Run("provenance", "--format", "jsonl", "--pixels", "always", Path.Combine(_dir, "b-photo.jpg"));
        Assert.Equal(WardenCli.Ok, exit);
        var row = JsonDocument.Parse(output).RootElement;
        Assert.True(row.GetProperty("pixelsChecked").GetBoolean());
        Assert.Equal(0, row.GetProperty("watermarks").GetArrayLength());
    }
}
