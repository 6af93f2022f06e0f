using System.Xml;

namespace Warden.Core.Provenance;

/// <summary>The provenance fields of one XMP packet.</summary>
internal sealed class XmpFields
{
    public List<string> DigitalSourceTypes { get; } = [];

    public string? CreatorTool { get; set; }

    public string? AiSystemUsed { get; set; }

    public string? AiSystemVersionUsed { get; set; }

    public string? AiPromptInformation { get; set; }

    public string? AiPromptWriterName { get; set; }

    public string? Provenance { get; set; }

    public string? DataMining { get; set; }

    public string? UserComment { get; set; }
}

/// <summary>
/// Reads IPTC DigitalSourceType, the IPTC 2025.1 AI fields, xmp:CreatorTool and dcterms:provenance from an
/// XMP packet, as element text, attribute or rdf:resource. XML DTDs are refused and sizes are capped.
/// </summary>
internal static class Xmp
{
    private const string IptcExt = "http://iptc.org/std/Iptc4xmpExt/2008-02-29/";
    private const string Rdf = "http://www.w3.org/1999/02/22-rdf-syntax-ns#";

    public static XmpFields Read(ReadOnlySpan<byte> packet, ProvenanceLimits limits)
    {
        if (packet.Length > limits.MaxBlockBytes)
        {
            throw new ProvenanceException(ProvenanceError.LimitExceeded, $"XMP packet of {packet.Length} bytes");
        }

        var settings = new XmlReaderSettings
        {
            DtdProcessing = DtdProcessing.Prohibit,
            XmlResolver = null,
            MaxCharactersInDocument = limits.MaxBlockBytes,
            MaxCharactersFromEntities = 0,
            IgnoreComments = true,
            IgnoreProcessingInstructions = true,
            ConformanceLevel = ConformanceLevel.Fragment,
        };
        var fields = new XmpFields();
        try
        {
            using var stream = new MemoryStream(packet.TrimEnd((byte)0).ToArray(), writable: false);
            using var reader = XmlReader.Create(stream, settings);
            string? pending = null;
            while (reader.Read())
            {
                if (reader.Depth > 64)
                {
                    throw new ProvenanceException(ProvenanceError.LimitExceeded, "XMP nested deeper than 64 elements");
                }

                if (reader.NodeType == XmlNodeType.Element)
                {
                    // rdf:Alt/Seq/Bag/li inside a field keep the field (language alternatives, lists).
                    var isContainer = reader.NamespaceURI == Rdf && reader.LocalName is "Alt" or "Seq" or "Bag" or "li";
                    pending = isContainer ? pending : Field(reader.LocalName, reader.NamespaceURI);
                    var resource = reader.GetAttribute("resource", Rdf);
                    if (pending is not null && resource is not null)
                    {
                        Set(fields, pending, resource);
                        pending = null;
                    }

                    if (reader.MoveToFirstAttribute())
                    {
                        do
                        {
                            if (Field(reader.LocalName, reader.NamespaceURI) is { } attr)
                            {
                                Set(fields, attr, reader.Value);
                            }
                        }
                        while (reader.MoveToNextAttribute());
                        reader.MoveToElement();
                    }

                    if (reader.IsEmptyElement)
                    {
                        pending = null;
                    }
                }
                else if (reader.NodeType is XmlNodeType.Text or XmlNodeType.CDATA && pending is not null)
                {
                    // Also the text of rdf:Alt/rdf:li children of a field (language alternatives).
                    Set(fields, pending, reader.Value);
                }
                else if (reader.NodeType == XmlNodeType.EndElement && Field(reader.LocalName, reader.NamespaceURI) is not null)
                {
                    pending = null;
                }
            }
        }
        catch (XmlException ex)
        {
            throw new ProvenanceException(ProvenanceError.Malformed, $"XMP is not well-formed XML: {ex.Message}");
        }
        catch (ArgumentOutOfRangeException)
        {
            // System.Xml reading bytes throws ArgumentOutOfRangeException (Buffer.BlockCopy in SwitchEncoding) for an XML
            // declaration with a byte its encoding cannot decode, e.g. <?xml version="1.0\xDE" encoding="UTF-8"?>: malformed XML too.
            throw new ProvenanceException(ProvenanceError.Malformed, "XMP is not well-formed XML: its XML declaration cannot be decoded");
        }

        return fields;
    }

    private static string? Field(string local, string ns) => (local, ns) switch
    {
        ("DigitalSourceType", IptcExt) => "dst",
        ("AISystemUsed", IptcExt) => "ai_system",
        ("AISystemVersionUsed", IptcExt) => "ai_system_version",
        ("AIPromptInformation", IptcExt) => "ai_prompt",
        ("AIPromptWriterName", IptcExt) => "ai_prompt_writer",
        ("CreatorTool", "http://ns.adobe.com/xap/1.0/") => "creator_tool",
        ("provenance", "http://purl.org/dc/terms/") => "provenance",
        ("DataMining", "http://ns.useplus.org/ldf/xmp/1.0/") => "data_mining",
        ("UserComment", "http://ns.adobe.com/exif/1.0/") => "user_comment",
        _ => null,
    };

    private static void Set(XmpFields f, string field, string value)
    {
        value = value.Trim();
        if (value.Length == 0)
        {
            return;
        }

        switch (field)
        {
            case "dst":
                if (f.DigitalSourceTypes.Count < 16)
                {
                    f.DigitalSourceTypes.Add(value);
                }

                break;
            case "ai_system": f.AiSystemUsed ??= value; break;
            case "ai_system_version": f.AiSystemVersionUsed ??= value; break;
            case "ai_prompt": f.AiPromptInformation ??= value; break;
            case "ai_prompt_writer": f.AiPromptWriterName ??= value; break;
            case "creator_tool": f.CreatorTool ??= value; break;
            case "provenance": f.Provenance ??= value; break;
            case "data_mining": f.DataMining ??= value; break;
            case "user_comment": f.UserComment ??= value; break;
        }
    }
}

/// <summary>IPTC/C2PA digital source type codes.</summary>
public static class DigitalSourceTypes
{
    /// <summary>The code: the last path segment of the URI, trimmed (producers use http, https and c2pa.org forms).</summary>
    public static string Code(string uri)
    {
        var t = uri.Trim().TrimEnd('/');
        var slash = t.LastIndexOf('/');
        return slash >= 0 ? t[(slash + 1)..] : t;
    }

    /// <summary>Whether the code says a trained model (generative AI) made or contributed to the content.</summary>
    public static bool IsGenerativeAi(string uri) =>
        Code(uri) is "trainedAlgorithmicMedia" or "compositeWithTrainedAlgorithmicMedia" or "trainedAlgorithmicData";
}
