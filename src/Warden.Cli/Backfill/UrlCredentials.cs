namespace Warden.Cli.Backfill;

/// <summary>
/// User names and passwords written into URLs (nats://user:secret@host, https://user:secret@host/x). A NATS URL may
/// carry them (that is how nats-server users log in), but they never reach stderr; a backfill source may not carry
/// them at all, since the source is kept in the queue, the signal log and every message about the item.
/// </summary>
internal static class UrlCredentials
{
    /// <summary>The "user:password" part of <paramref name="url"/>, as written; null when there is none.</summary>
    public static string? Of(string url)
    {
        ArgumentNullException.ThrowIfNull(url);
        var scheme = url.IndexOf("://", StringComparison.Ordinal);
        if (scheme <= 0)
        {
            return null;
        }

        var start = scheme + 3;
        var end = url.IndexOfAny(['/', '?', '#'], start);
        end = end < 0 ? url.Length : end;
        var at = end > start ? url.LastIndexOf('@', end - 1, end - start) : -1;
        return at < start ? null : url[start..at];
    }

    /// <summary><paramref name="text"/> with the credentials of <paramref name="url"/> replaced by "***" wherever they occur.</summary>
    public static string Redact(string text, string url)
    {
        ArgumentNullException.ThrowIfNull(text);
        return Of(url) is { Length: > 0 } secret ? text.Replace(secret, "***", StringComparison.Ordinal) : text;
    }
}
