using System.Buffers;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace Warden.Core.Banks.Formats;

/// <summary>
/// JSON Lines lists (see <see cref="JsonLinesReader"/>); the one format that writes tombstones. Detected by
/// <c>.jsonl</c>/<c>.ndjson</c>, or a first line opening with <c>{</c>.
/// </summary>
internal sealed class JsonLinesFormat : BankFileFormat
{
    public static readonly JsonLinesFormat Instance = new();

    private static readonly JsonWriterOptions JsonOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping, SkipValidation = false };

    private JsonLinesFormat()
    {
    }

    public override string Name => "jsonl";

    public override IReadOnlyList<string> Aliases { get; } = ["ndjson", "jsonlines", "json-lines"];

    public override IReadOnlyList<string> Extensions { get; } = [".jsonl", ".ndjson"];

    public override string MimeType => "application/x-ndjson";

    public override bool CanWrite => true;

    public override bool Sniff(ReadOnlySpan<byte> firstLine) => firstLine[0] == (byte)'{';

    public override IEnumerable<BankEntryRecord> Read(ListInput input, ImportSession session) => JsonLinesReader.Read(input.Text, session);

    public override void Write(TextWriter writer, IEnumerable<BankEntryRecord> entries, ExportOptions options, ExportFilter filter)
    {
        var buffer = new ArrayBufferWriter<byte>(64 * 1024);
        var chars = new char[16 * 1024];
        using var json = new Utf8JsonWriter(buffer, JsonOptions);
        foreach (var record in entries)
        {
            if (!filter.Take(record, deletedAllowed: true))
            {
                continue;
            }

            json.WriteStartObject();
            json.WriteString("signal_type", record.SignalType);
            json.WriteString("signal", record.Signal);
            if (record.Labels.Count > 0)
            {
                json.WriteStartObject("labels");

                // Sorted, so that exports of the same data are byte-identical.
                foreach (var (key, value) in record.Labels.OrderBy(p => p.Key, StringComparer.Ordinal))
                {
                    json.WriteString(key, value);
                }

                json.WriteEndObject();
            }

            if (record.Note is not null)
            {
                json.WriteString("note", record.Note);
            }

            if (record.ExternalId is not null)
            {
                json.WriteString("external_id", record.ExternalId);
            }

            if (record.Deleted)
            {
                json.WriteBoolean("deleted", true);
            }

            json.WriteEndObject();
            json.Flush();
            json.Reset();
            buffer.GetSpan(1)[0] = (byte)'\n';
            buffer.Advance(1);
            if (buffer.WrittenCount >= 48 * 1024)
            {
                Drain(writer, buffer, ref chars);
            }
        }

        Drain(writer, buffer, ref chars);
    }

    private static void Drain(TextWriter writer, ArrayBufferWriter<byte> buffer, ref char[] chars)
    {
        var needed = Encoding.UTF8.GetMaxCharCount(buffer.WrittenCount);
        if (chars.Length < needed)
        {
            chars = new char[needed];
        }

        var n = Encoding.UTF8.GetChars(buffer.WrittenSpan, chars);
        writer.Write(chars, 0, n);
        buffer.ResetWrittenCount();
    }
}
