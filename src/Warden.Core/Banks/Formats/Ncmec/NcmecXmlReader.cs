using System.Globalization;
using System.Text;
using System.Xml;
using Warden.Core.Signals;

namespace Warden.Core.Banks.Formats;

/// <summary>
/// NCMEC Hash Sharing API v2 entries pages (<c>queryResult</c> in the v2 namespace), read with a streaming
/// <see cref="XmlReader"/>: no DTD (entity-expansion and XXE attacks fail at the DOCTYPE), no resolver, a bound on
/// the document's characters, on nesting depth and on every text value, so a hostile page cannot exhaust memory.
/// </summary>
/// <remarks>
/// Mapping, one <see cref="BankEntryRecord"/> per supported fingerprint (md5, sha1, pdq, and any other element named
/// after a Warden signal type) of each <c>image</c>/<c>video</c>:
/// <list type="bullet">
/// <item><see cref="BankEntryRecord.ExternalId"/> = <c>{memberId}-{entryId}-{type}</c> (entry ids are unique only per
/// member).</item>
/// <item>Labels: <c>classification</c> (when present), <c>content_type</c> (image|video), <c>ncmec_member</c>,
/// <c>ncmec_member_name</c>, <c>ncmec_entry_id</c>, <c>ncmec_timestamp</c> (UTC, <c>yyyy-MM-ddTHH:mm:ssZ</c>) and, when
/// the entry has large fingerprints (href links without a value), <c>ncmec_large_fingerprints</c> (their element
/// names, comma-separated; the hrefs are never kept, as NCMEC asks).</item>
/// <item>A <c>deletedImage</c>/<c>deletedVideo</c> tombstone becomes one record with <see cref="BankEntryRecord.Deleted"/>,
/// an empty signal type and signal, and <c>ExternalId</c> = <c>{memberId}-{entryId}</c>: it deletes every record
/// whose ExternalId starts with <c>{memberId}-{entryId}-</c>. (An entry id that itself continues with "-x" would be
/// caught too; NCMEC ids seen so far have no such overlap.)</item>
/// <item>Fingerprints of other types (pdna, netclean, …) and large fingerprints (tmk-pdqf, videntifier, …) are counted
/// in <see cref="ImportReport.Unsupported"/> by name, not imported, except large fingerprints named in
/// <see cref="ImportOptions.LargeFingerprints"/>: those are handed to its callback (with their link) after the
/// entry's records, and the caller fetches and counts them.</item>
/// </list>
/// Problems of one entry (no member id, a bad pdq, an unknown classification) are bad lines (skip or abort); a
/// malformed document is always fatal.
/// </remarks>
internal static class NcmecXmlReader
{
    /// <summary>The Hash Sharing v2 namespace.</summary>
    public const string Namespace = "https://hashsharing.ncmec.org/hashsharing/v2";

    internal const string MemberLabel = "ncmec_member";
    internal const string MemberNameLabel = "ncmec_member_name";
    internal const string EntryIdLabel = "ncmec_entry_id";
    internal const string TimestampLabel = "ncmec_timestamp";
    internal const string ContentTypeLabel = "content_type";
    internal const string LargeFingerprintsLabel = "ncmec_large_fingerprints";

    public static IEnumerable<BankEntryRecord> Read(Stream? stream, TextReader? text, ImportSession session)
    {
        var settings = new XmlReaderSettings
        {
            DtdProcessing = DtdProcessing.Prohibit,
            XmlResolver = null,
            MaxCharactersInDocument = session.Options.MaxXmlCharacters,
            MaxCharactersFromEntities = 1024,
            IgnoreComments = true,
            IgnoreProcessingInstructions = true,
            IgnoreWhitespace = true,
            CloseInput = false,
        };
        using var xml = stream is not null ? XmlReader.Create(stream, settings) : XmlReader.Create(text!, settings);
        var page = new PageParser(xml, session);
        while (true)
        {
            bool more;
            try
            {
                more = page.MoveNext();
            }
            catch (XmlException ex)
            {
                throw session.Fatal(ex.LineNumber > 0 ? ex.LineNumber : page.Line, Describe(ex, session.Options.MaxXmlCharacters), ex);
            }
            catch (ArgumentOutOfRangeException ex)
            {
                // System.Xml reading bytes throws ArgumentOutOfRangeException (Buffer.BlockCopy in SwitchEncoding) for an XML
                // declaration with a byte its encoding cannot decode, e.g. <?xml version="1.0\xDE" encoding="UTF-8"?>: malformed XML too.
                throw session.Fatal(page.Line, "not well-formed XML: the XML declaration cannot be decoded", ex);
            }

            if (!more)
            {
                break;
            }

            session.Tick(page.Line);
            foreach (var record in Records(page.Entry, session))
            {
                yield return record;
            }
        }

        session.Report.NcmecPage = page.Info();
        session.Finish(page.Line);
    }

    private static string Describe(XmlException ex, long maxCharacters) =>
        ex.Message.Contains("DTD", StringComparison.Ordinal)
            ? "a DTD (<!DOCTYPE …>) is not allowed in an NCMEC page (it is how entity-expansion and external-entity attacks work)"
            : ex.Message.Contains("MaxCharactersInDocument", StringComparison.Ordinal)
                ? string.Create(CultureInfo.InvariantCulture, $"the page is larger than {maxCharacters} characters (a real page of 1000 entries is a few MB)")
                : "malformed XML: " + ex.Message;

    private static IEnumerable<BankEntryRecord> Records(Entry entry, ImportSession session)
    {
        var report = session.Report;
        if (entry.Deleted)
        {
            report.Read++;
            if (entry.MissingReason() is { } missing)
            {
                session.Error(entry.Line, $"{entry.Describe()}: {missing}");
                yield break;
            }

            var labels = new Dictionary<string, string>(StringComparer.Ordinal)
            {
                [ContentTypeLabel] = entry.ContentType,
                [MemberLabel] = entry.MemberId!,
                [EntryIdLabel] = entry.EntryId!,
            };
            if (entry.Timestamp is not null && TryTimestamp(entry.Timestamp, out var deletedAt))
            {
                labels[TimestampLabel] = deletedAt;
            }

            yield return session.Accept(new BankEntryRecord(string.Empty, string.Empty, labels, ExternalId: $"{entry.MemberId}-{entry.EntryId}", Deleted: true));
            yield break;
        }

        // Split the fingerprints first, so that counts stay exact even when the entry as a whole is bad.
        var supported = new List<(ISignalType Type, Fingerprint Fingerprint)>(entry.Fingerprints.Count);
        List<string>? large = null;
        List<Fingerprint>? taken = null;
        var handler = session.Options.LargeFingerprints;
        foreach (var fp in entry.Fingerprints)
        {
            report.Read++;
            if (fp.IsLarge)
            {
                large ??= [];
                if (!large.Contains(fp.Name))
                {
                    large.Add(fp.Name);
                }

                if (handler is not null && fp.Href is not null && handler.Names.Contains(fp.Name))
                {
                    // The caller fetches it and counts it (stored, or unsupported with the reason).
                    (taken ??= []).Add(fp);
                }
                else
                {
                    report.AddUnsupported(fp.Name);
                }
            }
            else if (SignalTypes.TryGet(fp.Name, out var type))
            {
                supported.Add((type, fp));
            }
            else
            {
                report.AddUnsupported(fp.Name);
            }
        }

        var reason = entry.MissingReason() ?? entry.ValueError;
        string? timestamp = null;
        if (reason is null && entry.Timestamp is not null && !TryTimestamp(entry.Timestamp, out timestamp))
        {
            reason = $"<timestamp> '{ImportSession.Shorten(entry.Timestamp)}' is not an ISO 8601 time";
        }

        var entryLabels = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            [ContentTypeLabel] = entry.ContentType,
        };
        foreach (var (key, value) in session.DefaultLabels)
        {
            entryLabels[key] = value;
        }

        if (reason is null)
        {
            entryLabels[MemberLabel] = entry.MemberId!;
            entryLabels[EntryIdLabel] = entry.EntryId!;
            if (!string.IsNullOrEmpty(entry.MemberName))
            {
                entryLabels[MemberNameLabel] = entry.MemberName;
            }

            if (timestamp is not null)
            {
                entryLabels[TimestampLabel] = timestamp;
            }

            if (!string.IsNullOrEmpty(entry.Classification))
            {
                entryLabels[WellKnownLabels.Classification] = entry.Classification;
            }

            if (large is not null)
            {
                entryLabels[LargeFingerprintsLabel] = string.Join(",", large);
            }

            reason = WellKnownLabels.Validate(entryLabels);
        }

        if (reason is not null)
        {
            // Large fingerprints of a broken entry are not fetched; they stay counted, as unsupported.
            foreach (var fp in taken ?? [])
            {
                report.AddUnsupported(fp.Name);
            }

            // Reported even when nothing importable was lost (skipped 0): a broken entry is worth knowing about.
            session.Error(entry.Line, $"{entry.Describe()}: {reason}", supported.Count);
            yield break;
        }

        // NCMEC re-sends an updated entry whole, so a fingerprint left out of the update is gone: a tombstone for
        // the entry before its records makes storage replace it rather than merge into it (stale fingerprints
        // would otherwise keep matching).
        report.ReplacementTombstones++;
        yield return new BankEntryRecord(string.Empty, string.Empty, entryLabels, ExternalId: $"{entry.MemberId}-{entry.EntryId}", Deleted: true);

        foreach (var (type, fp) in supported)
        {
            if (string.IsNullOrWhiteSpace(fp.Value))
            {
                session.Error(fp.Line, $"{entry.Describe()}: <{fp.Name}> has no value");
                continue;
            }

            if (!type.TryNormalize(fp.Value, out var normalized, out var why))
            {
                session.Error(fp.Line, $"{entry.Describe()}: <{fp.Name}> {why}");
                continue;
            }

            // Labels were validated above and are shared by the entry's records (read-only).
            yield return session.Accept(new BankEntryRecord(type.Name, normalized, entryLabels, ExternalId: $"{entry.MemberId}-{entry.EntryId}-{type.Name}"));
        }

        // Handed over after the entry's records, so the caller places what it fetches right after them (after the
        // entry's replacement tombstone, before any later record of the page).
        foreach (var fp in taken ?? [])
        {
            handler!.Take(new NcmecLargeFingerprint(fp.Name, fp.Href!, entry.MemberId!, entry.EntryId!, entryLabels));
        }
    }

    private static bool TryTimestamp(string text, out string normalized)
    {
        if (DateTimeOffset.TryParse(text.Trim(), CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var t))
        {
            normalized = t.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.FFFFFFF'Z'", CultureInfo.InvariantCulture);
            return true;
        }

        normalized = string.Empty;
        return false;
    }

    internal static DateTimeOffset? ParseTimestamp(string? text) =>
        text is not null && DateTimeOffset.TryParse(text.Trim(), CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var t) ? t : null;

    /// <summary>One fingerprint element.</summary>
    internal sealed record Fingerprint(string Name, string? Value, bool IsLarge, long Line, string? Href = null);

    /// <summary>One entry or tombstone as read (reused between entries).</summary>
    internal sealed class Entry
    {
        public string ContentType { get; set; } = "image";

        public bool Deleted { get; set; }

        public long Line { get; set; }

        public string? MemberId { get; set; }

        public string? MemberName { get; set; }

        public string? EntryId { get; set; }

        public string? Timestamp { get; set; }

        public string? Classification { get; set; }

        public string? ValueError { get; set; }

        public List<Fingerprint> Fingerprints { get; } = [];

        public void Reset(string contentType, bool deleted, long line)
        {
            (ContentType, Deleted, Line) = (contentType, deleted, line);
            MemberId = MemberName = EntryId = Timestamp = Classification = ValueError = null;
            Fingerprints.Clear();
        }

        public string? MissingReason() =>
            ValueError ?? (string.IsNullOrWhiteSpace(MemberId) ? "no <member id=\"…\">"
                : string.IsNullOrWhiteSpace(EntryId) ? "no <id>" : null);

        /// <summary>The entry as errors name it: <c>&lt;image&gt; 9002-img-1</c>, or what is known of it.</summary>
        public string Describe()
        {
            var kind = Deleted ? (ContentType == "image" ? "deletedImage" : "deletedVideo") : ContentType;
            var member = string.IsNullOrWhiteSpace(MemberId) ? null : ImportSession.Shorten(MemberId, 40);
            var id = string.IsNullOrWhiteSpace(EntryId) ? null : ImportSession.Shorten(EntryId, 80);
            return (member, id) switch
            {
                (not null, not null) => $"<{kind}> {member}-{id}",
                (null, not null) => $"<{kind}> id {id}",
                (not null, null) => $"<{kind}> of member {member}",
                _ => $"<{kind}>",
            };
        }
    }

    /// <summary>
    /// Walks the page node by node (never XmlReader.Skip or ReadSubtree, which would walk a hostile subtree without
    /// the depth check) and stops at each entry.
    /// </summary>
    private sealed class PageParser(XmlReader reader, ImportSession session)
    {
        private const int MaxDepth = 32;
        private const int MaxValueChars = 4096;
        private const int MaxHrefChars = 2048;

        private readonly XmlReader _reader = reader;
        private readonly IXmlLineInfo? _lineInfo = reader as IXmlLineInfo;
        private readonly ImportSession _session = session;
        private readonly char[] _chunk = new char[1024];
        private bool _started;
        private bool _done;
        private string? _container;
        private string? _next;
        private string? _imagesMax;
        private string? _videosMax;
        private int? _imagesCount;
        private int? _videosCount;
        private long _entries;
        private long _tombstones;

        public Entry Entry { get; } = new();

        public long Line => _lineInfo?.LineNumber ?? 0;

        public NcmecPageInfo Info() => new(
            _next,
            ParseTimestamp(_imagesMax),
            ParseTimestamp(_videosMax),
            _imagesCount,
            _videosCount,
            _entries,
            _tombstones);

        public bool MoveNext()
        {
            if (_done)
            {
                return false;
            }

            if (!_started)
            {
                _started = true;
                if (!StartRoot())
                {
                    return Finish();
                }
            }

            while (Next())
            {
                switch (_reader.NodeType)
                {
                    case XmlNodeType.Element when _reader.Depth == 1:
                        StartContainer();
                        break;
                    case XmlNodeType.EndElement when _reader.Depth == 1:
                        _container = null;
                        break;
                    case XmlNodeType.Element when _reader.Depth == 2 && _reader.NamespaceURI == Namespace && _container is "images" or "videos":
                        if (ReadEntry())
                        {
                            return true;
                        }

                        break;
                    case XmlNodeType.Element when _reader.Depth == 2 && _reader.NamespaceURI == Namespace && _container == "paging" && _reader.LocalName == "next":
                        _next = ReadText(out var error)?.Trim();
                        if (error is not null)
                        {
                            throw _session.Fatal(Line, "<paging><next>: " + error);
                        }

                        break;
                    case XmlNodeType.Element:
                        SkipElement();
                        break;
                    default:
                        break;
                }
            }

            return Finish();
        }

        private bool Finish()
        {
            // Read to the end so that trailing garbage or a second root is reported.
            while (Next())
            {
            }

            _done = true;
            return false;
        }

        /// <summary>Moves to the root element and checks it; false when it is empty.</summary>
        private bool StartRoot()
        {
            while (Next())
            {
                if (_reader.NodeType != XmlNodeType.Element)
                {
                    continue;
                }

                if (_reader.LocalName != "queryResult" || _reader.NamespaceURI != Namespace)
                {
                    var found = _reader.NamespaceURI.Length == 0 ? $"<{_reader.LocalName}> in no namespace" : $"<{_reader.LocalName}> in namespace '{ImportSession.Shorten(_reader.NamespaceURI)}'";
                    throw _session.Fatal(Line, $"not an NCMEC Hash Sharing v2 entries page: the root element is {found}; expected <queryResult xmlns=\"{Namespace}\">");
                }

                return !_reader.IsEmptyElement;
            }

            throw _session.Fatal(Line, "the document has no root element");
        }

        private void StartContainer()
        {
            if (_reader.NamespaceURI != Namespace || _reader.LocalName is not ("images" or "videos" or "paging"))
            {
                SkipElement();
                return;
            }

            var name = _reader.LocalName;
            if (name != "paging")
            {
                var count = int.TryParse(_reader.GetAttribute("count"), NumberStyles.None, CultureInfo.InvariantCulture, out var c) ? c : (int?)null;
                var max = _reader.GetAttribute("maxTimestamp");
                if (max is not null && ParseTimestamp(max) is null)
                {
                    throw _session.Fatal(Line, $"<{name} maxTimestamp=\"{ImportSession.Shorten(max)}\"> is not an ISO 8601 time");
                }

                if (name == "images")
                {
                    (_imagesCount, _imagesMax) = (count, max);
                }
                else
                {
                    (_videosCount, _videosMax) = (count, max);
                }
            }

            if (!_reader.IsEmptyElement)
            {
                _container = name;
            }
        }

        /// <summary>Reads an entry element; false when it is not one (it is then skipped).</summary>
        private bool ReadEntry()
        {
            var name = _reader.LocalName;
            (string Type, bool Deleted)? kind = name switch
            {
                "image" => ("image", false),
                "video" => ("video", false),
                "deletedImage" => ("image", true),
                "deletedVideo" => ("video", true),
                _ => null,
            };
            if (kind is null)
            {
                SkipElement();
                return false;
            }

            Entry.Reset(kind.Value.Type, kind.Value.Deleted, Line);
            if (kind.Value.Deleted)
            {
                _tombstones++;
            }
            else
            {
                _entries++;
            }

            if (_reader.IsEmptyElement)
            {
                return true;
            }

            var depth = _reader.Depth;
            while (Next())
            {
                if (_reader.NodeType == XmlNodeType.EndElement && _reader.Depth == depth)
                {
                    return true;
                }

                if (_reader.NodeType != XmlNodeType.Element)
                {
                    continue;
                }

                if (_reader.NamespaceURI != Namespace)
                {
                    SkipElement();
                    continue;
                }

                string? error = null;
                switch (_reader.LocalName)
                {
                    case "member":
                        Entry.MemberId = _reader.GetAttribute("id")?.Trim();
                        Entry.MemberName = ReadText(out error)?.Trim();
                        break;
                    case "id":
                        Entry.EntryId = ReadText(out error)?.Trim();
                        break;
                    case "timestamp":
                        Entry.Timestamp = ReadText(out error)?.Trim();
                        break;
                    case "classification":
                        Entry.Classification = ReadText(out error)?.Trim();
                        break;
                    case "fingerprints" when !Entry.Deleted:
                        ReadFingerprints();
                        break;
                    default:
                        SkipElement();
                        break;
                }

                if (error is not null)
                {
                    Entry.ValueError ??= error;
                }
            }

            return true; // Next() returned false: XmlReader throws on a truncated document before this.
        }

        private void ReadFingerprints()
        {
            if (_reader.IsEmptyElement)
            {
                return;
            }

            var depth = _reader.Depth;
            while (Next())
            {
                if (_reader.NodeType == XmlNodeType.EndElement && _reader.Depth == depth)
                {
                    return;
                }

                if (_reader.NodeType != XmlNodeType.Element)
                {
                    continue;
                }

                var name = _reader.NamespaceURI == Namespace ? _reader.LocalName : "{" + _reader.NamespaceURI + "}" + _reader.LocalName;
                var line = Line;
                var href = _reader.GetAttribute("href");
                var value = ReadText(out var error)?.Trim();
                if (error is not null)
                {
                    Entry.ValueError ??= $"<{name}>: {error}";
                    continue;
                }

                if (Entry.Fingerprints.Count >= 1000)
                {
                    Entry.ValueError ??= "more than 1000 fingerprints";
                    continue;
                }

                var large = string.IsNullOrEmpty(value) && href is not null;

                // Only a bounded link is kept for a caller that fetches it (an overlong one stays counted as unsupported).
                Entry.Fingerprints.Add(new Fingerprint(name, value, large, line, large && href!.Length is > 0 and <= MaxHrefChars ? href : null));
            }
        }

        /// <summary>
        /// Reads the text of the current element (at most <see cref="MaxValueChars"/>, in chunks, so a huge text node
        /// is never held whole). Null with <paramref name="error"/> set when it is too long or has child elements.
        /// </summary>
        private string? ReadText(out string? error)
        {
            error = null;
            if (_reader.IsEmptyElement)
            {
                return string.Empty;
            }

            var depth = _reader.Depth;
            var name = _reader.LocalName;
            StringBuilder? text = null;
            while (Next())
            {
                switch (_reader.NodeType)
                {
                    case XmlNodeType.EndElement when _reader.Depth == depth:
                        return error is null ? text?.ToString() ?? string.Empty : null;
                    case XmlNodeType.Text or XmlNodeType.CDATA or XmlNodeType.SignificantWhitespace or XmlNodeType.Whitespace:
                        text ??= new StringBuilder();
                        if (_reader.CanReadValueChunk)
                        {
                            int n;
                            while ((n = _reader.ReadValueChunk(_chunk, 0, _chunk.Length)) > 0)
                            {
                                if (text.Length + n > MaxValueChars)
                                {
                                    error ??= string.Create(CultureInfo.InvariantCulture, $"the value of <{name}> is longer than {MaxValueChars} characters");
                                    break;
                                }

                                text.Append(_chunk, 0, n);
                            }
                        }
                        else if (text.Length + _reader.Value.Length > MaxValueChars)
                        {
                            error ??= string.Create(CultureInfo.InvariantCulture, $"the value of <{name}> is longer than {MaxValueChars} characters");
                        }
                        else
                        {
                            text.Append(_reader.Value);
                        }

                        break;
                    case XmlNodeType.Element:
                        error ??= $"<{name}> contains an element <{_reader.LocalName}>; expected text";
                        SkipElement();
                        break;
                    default:
                        break;
                }
            }

            return null;
        }

        /// <summary>Skips the current element node by node, keeping the depth check.</summary>
        private void SkipElement()
        {
            if (_reader.NodeType != XmlNodeType.Element || _reader.IsEmptyElement)
            {
                return;
            }

            var depth = _reader.Depth;
            while (Next())
            {
                if (_reader.NodeType == XmlNodeType.EndElement && _reader.Depth == depth)
                {
                    return;
                }
            }
        }

        private bool Next()
        {
            if (!_reader.Read())
            {
                return false;
            }

            if (_reader.Depth > MaxDepth)
            {
                throw _session.Fatal(Line, string.Create(CultureInfo.InvariantCulture, $"elements nested deeper than {MaxDepth} levels; an NCMEC page needs fewer than 10"));
            }

            return true;
        }
    }
}
