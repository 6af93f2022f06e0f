using Warden.Review.Reporting;

namespace Warden.Review.Cases;

/// <summary>
/// Where uploader-supplied text enters the review system: every text field of a submission is made
/// XML-1.0-safe (<see cref="XmlSafeText"/>) and cut to NCMEC's documented length, and the raw values of the
/// fields that changed are kept on the submission (<see cref="MatchedSubmission.Raw"/>). Reports, exports and
/// the console then only ever see safe text.
/// </summary>
public static class SubmissionText
{
    /// <summary>Longest reviewer note kept (it may be quoted in a report's additional information).</summary>
    public const int MaxNote = 3000;

    // Bank names, signal types and labels come from our own banks, but banks are imported from files.
    private const int MaxLabel = 1000;

    /// <summary>The submission with safe text; the same instance when nothing needed changing.</summary>
    public static MatchedSubmission Normalise(MatchedSubmission s)
    {
        ArgumentNullException.ThrowIfNull(s);
        var c = s.Context;
        var uploader = Safe(s.UploaderId, CyberTipLimits.EspIdentifier, keepBlank: true)!;
        var ip = Safe(c.IpAddress, 100);
        var url = Safe(c.Url, CyberTipLimits.Url);
        var name = Safe(c.OriginalFileName, CyberTipLimits.OriginalFileName);
        var device = Safe(c.DeviceId, CyberTipLimits.DeviceIdValue);
        var matches = NormaliseMatches(s.Matches);
        var links = s.ProvenanceLinks is { } pl && pl.Any(l => !XmlSafeText.IsClean(l)) ? pl.Select(XmlSafeText.Clean).ToList() : s.ProvenanceLinks;
        if (ReferenceEquals(uploader, s.UploaderId) && ReferenceEquals(ip, c.IpAddress) && ReferenceEquals(url, c.Url)
            && ReferenceEquals(name, c.OriginalFileName) && ReferenceEquals(device, c.DeviceId) && ReferenceEquals(matches, s.Matches)
            && ReferenceEquals(links, s.ProvenanceLinks))
        {
            return s;
        }

        // A value already normalised once (a replayed or re-added submission) keeps its first raw value.
        var old = s.Raw;
        var raw = new RawUploadText(
            old?.UploaderId ?? Changed(s.UploaderId, uploader),
            old?.IpAddress ?? Changed(c.IpAddress, ip),
            old?.Url ?? Changed(c.Url, url),
            old?.OriginalFileName ?? Changed(c.OriginalFileName, name),
            old?.DeviceId ?? Changed(c.DeviceId, device));
        return s with
        {
            UploaderId = uploader,
            Context = c with { IpAddress = ip, Url = url, OriginalFileName = name, DeviceId = device },
            Matches = matches,
            ProvenanceLinks = links,
            Raw = raw.ChangedFields().Any() ? raw : null,
        };
    }

    private static string? Changed(string? raw, string? safe) => ReferenceEquals(raw, safe) ? null : raw;

    // Returns the same instance when it is already safe, so callers can tell "unchanged" cheaply.
    private static string? Safe(string? value, int max, bool keepBlank = false)
    {
        if (value is null)
        {
            return null;
        }

        if (XmlSafeText.IsClean(value) && value.Length <= max && (keepBlank || value.Length == 0 || (!char.IsWhiteSpace(value[0]) && !char.IsWhiteSpace(value[^1]))))
        {
            return value;
        }

        if (keepBlank)
        {
            // An id is an identity: clean and cut, but never trimmed to nothing.
            var clean = XmlSafeText.Clean(value);
            return clean.Length <= max ? clean : XmlSafeText.Field(clean, max) ?? XmlSafeText.Clean(clean[..max]);
        }

        return XmlSafeText.Field(value, max);
    }

    private static IReadOnlyList<MatchEvidence> NormaliseMatches(IReadOnlyList<MatchEvidence> matches)
    {
        if (matches.All(m => Ok(m.BankName) && Ok(m.SignalType) && m.Labels.All(kv => Ok(kv.Key) && Ok(kv.Value))))
        {
            return matches;
        }

        return [.. matches.Select(m => new MatchEvidence(
            XmlSafeText.Field(m.BankName, MaxLabel) ?? "?",
            XmlSafeText.Field(m.SignalType, MaxLabel) ?? "?",
            m.Distance,
            m.Labels.GroupBy(kv => XmlSafeText.Field(kv.Key, MaxLabel) ?? "?", StringComparer.Ordinal)
                .ToDictionary(g => g.Key, g => XmlSafeText.Field(g.First().Value, MaxLabel) ?? "", StringComparer.Ordinal)))];

        static bool Ok(string v) => v.Length <= MaxLabel && XmlSafeText.IsClean(v);
    }
}
