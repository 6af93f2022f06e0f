using System.Buffers.Binary;
using System.Text;

namespace Warden.Core.Provenance.C2pa;

/// <summary>One ISO 19566-5 JUMBF box. A superbox (<c>jumb</c>) has a description and children.</summary>
internal sealed class JumbfBox
{
    /// <summary>The box type (TBox): jumb, jumd, cbor, json, uuid, bidb...</summary>
    public required string Type { get; init; }

    /// <summary>The whole box, header included.</summary>
    public required ReadOnlyMemory<byte> Raw { get; init; }

    /// <summary>The box without its header.</summary>
    public required ReadOnlyMemory<byte> Payload { get; init; }

    /// <summary>For a superbox: the first four bytes of its description UUID, as ASCII (c2pa, c2ma, c2as, cbor...).</summary>
    public string? UuidType { get; init; }

    /// <summary>For a superbox: the description's label.</summary>
    public string? Label { get; init; }

    /// <summary>For a superbox: the content boxes (description excluded).</summary>
    public List<JumbfBox> Children { get; } = [];

    /// <summary>The child superbox with <paramref name="label"/>.</summary>
    public JumbfBox? Child(string label) => Children.FirstOrDefault(c => c.Type == "jumb" && c.Label == label);

    /// <summary>The first content box that is not a superbox (the data of an assertion, claim or signature).</summary>
    public JumbfBox? Content => Children.FirstOrDefault(c => c.Type != "jumb");
}

/// <summary>Bounded JUMBF box parser (depth, count and size limited).</summary>
internal static class Jumbf
{
    private const int MaxBoxes = 100_000;

    /// <summary>Parses the boxes of <paramref name="data"/>.</summary>
    /// <exception cref="ProvenanceException">Truncated, malformed or too deep.</exception>
    public static List<JumbfBox> Parse(ReadOnlyMemory<byte> data, int maxDepth)
    {
        var count = 0;
        return ParseLevel(data, 0, maxDepth, ref count);
    }

    private static List<JumbfBox> ParseLevel(ReadOnlyMemory<byte> data, int depth, int maxDepth, ref int count)
    {
        if (depth > maxDepth)
        {
            throw new ProvenanceException(ProvenanceError.LimitExceeded, $"JUMBF boxes nested deeper than {maxDepth}");
        }

        var boxes = new List<JumbfBox>();
        var span = data.Span;
        var pos = 0;
        while (pos < span.Length)
        {
            if (++count > MaxBoxes)
            {
                throw new ProvenanceException(ProvenanceError.LimitExceeded, $"more than {MaxBoxes} JUMBF boxes");
            }

            if (pos + 8 > span.Length)
            {
                throw new ProvenanceException(ProvenanceError.Truncated, $"JUMBF box header at {pos} runs past its parent");
            }

            long length = BinaryPrimitives.ReadUInt32BigEndian(span[pos..]);
            var type = Encoding.ASCII.GetString(span.Slice(pos + 4, 4));
            var header = 8;
            if (length == 1)
            {
                if (pos + 16 > span.Length)
                {
                    throw new ProvenanceException(ProvenanceError.Truncated, $"JUMBF box {type} at {pos} has no extended length");
                }

                var xl = BinaryPrimitives.ReadUInt64BigEndian(span[(pos + 8)..]);
                length = xl > int.MaxValue ? long.MaxValue : (long)xl;
                header = 16;
            }
            else if (length == 0)
            {
                length = span.Length - pos;
            }

            // Compared as "more than what remains": pos + length overflows for an extended length near 2^63.
            if (length < header || length > span.Length - pos)
            {
                throw new ProvenanceException(ProvenanceError.Truncated, $"JUMBF box {Printable(type)} at {pos} announces {length} bytes; {span.Length - pos} remain");
            }

            var raw = data.Slice(pos, (int)length);
            var payload = raw[header..];
            if (type == "jumb")
            {
                boxes.Add(Superbox(raw, payload, depth, maxDepth, ref count));
            }
            else
            {
                boxes.Add(new JumbfBox { Type = type, Raw = raw, Payload = payload });
            }

            pos += (int)length;
        }

        return boxes;
    }

    private static JumbfBox Superbox(ReadOnlyMemory<byte> raw, ReadOnlyMemory<byte> payload, int depth, int maxDepth, ref int count)
    {
        var children = ParseLevel(payload, depth + 1, maxDepth, ref count);
        if (children.Count == 0 || children[0].Type != "jumd")
        {
            throw new ProvenanceException(ProvenanceError.Malformed, "JUMBF superbox without a description box");
        }

        var d = children[0].Payload.Span;
        if (d.Length < 17)
        {
            throw new ProvenanceException(ProvenanceError.Truncated, "JUMBF description box shorter than its UUID and toggles");
        }

        var uuidType = Printable(Encoding.ASCII.GetString(d[..4]));
        var toggles = d[16];
        string? label = null;
        if ((toggles & 0x02) != 0)
        {
            var rest = d[17..];
            var nul = rest.IndexOf((byte)0);
            if (nul < 0)
            {
                throw new ProvenanceException(ProvenanceError.Malformed, "JUMBF label not NUL-terminated");
            }

            label = Encoding.UTF8.GetString(rest[..nul]);
        }

        var box = new JumbfBox { Type = "jumb", Raw = raw, Payload = payload, UuidType = uuidType, Label = label };
        box.Children.AddRange(children.Skip(1));
        return box;
    }

    private static string Printable(string s) => new([.. s.Select(c => c is >= ' ' and < (char)127 ? c : '?')]);
}
