using Warden.Core.Matching;

namespace Warden.Core.Signals;

/// <summary>A cryptographic digest type: fixed length, lowercase hex, match by equality.</summary>
/// <param name="name">Its name.</param>
/// <param name="bytes">Digest length in bytes.</param>
/// <param name="kinds">What it is computed from.</param>
public sealed class ExactSignalType(string name, int bytes, ContentKinds kinds = ContentKinds.File) : ISignalType
{
    /// <inheritdoc />
    public string Name { get; } = name;

    /// <summary>Digest length in bytes.</summary>
    public int Bytes { get; } = bytes;

    /// <inheritdoc />
    public bool IsExact => true;

    /// <inheritdoc />
    public int DefaultThreshold => 0;

    /// <inheritdoc />
    public ContentKinds ContentKinds { get; } = kinds;

    /// <inheritdoc />
    public IReadOnlyList<string> Examples => [new string('0', Bytes * 2), string.Concat(Enumerable.Repeat("a1", Bytes))];

    /// <inheritdoc />
    public bool TryNormalize(ReadOnlySpan<char> text, out string normalized, out string? reason)
    {
        text = text.Trim();
        normalized = string.Empty;
        if (text.Length != Bytes * 2)
        {
            reason = $"An {Name} is {Bytes * 2} hex digits; got {text.Length} characters.";
            return false;
        }

        foreach (var c in text)
        {
            if (!char.IsAsciiHexDigit(c))
            {
                reason = $"An {Name} may contain only hex digits 0-9 and a-f.";
                return false;
            }
        }

        normalized = text.ToString().ToLowerInvariant();
        reason = null;
        return true;
    }

    /// <inheritdoc />
    public Signal? CreateSignal(string normalized)
    {
        ArgumentNullException.ThrowIfNull(normalized);
        if (normalized.Length != Bytes * 2)
        {
            return null;
        }

        var key = new byte[Bytes];
        return Convert.FromHexString(normalized, key, out _, out var written) == System.Buffers.OperationStatus.Done && written == Bytes
            ? new ExactSignal(this, key, normalized)
            : null;
    }

    /// <inheritdoc />
    public ISignalIndex CreateIndex() => new ExactSignalIndex(new ExactIndex(Bytes));

    /// <inheritdoc />
    public ISignalIndex LoadIndex(string path) => new ExactSignalIndex(ExactIndex.Load(path));
}

/// <summary>A digest with its bytes, so the index looks it up without parsing.</summary>
/// <param name="type">Its type.</param>
/// <param name="key">The digest.</param>
/// <param name="hex">Its lowercase hex.</param>
public sealed class ExactSignal(ISignalType type, byte[] key, string hex) : Signal(type, hex)
{
    /// <summary>The digest.</summary>
    public ReadOnlyMemory<byte> Key { get; } = key;
}

/// <summary>An <see cref="ExactIndex"/> as a signal index.</summary>
internal sealed class ExactSignalIndex(ExactIndex index) : ISignalIndex
{
    [ThreadStatic]
    private static List<long>? _threadIds;

    public long Count => index.Count;

    public bool Add(long id, string normalized)
    {
        Span<byte> key = stackalloc byte[64];
        if (normalized.Length != index.KeyBytes * 2 || Convert.FromHexString(normalized, key, out _, out var written) != System.Buffers.OperationStatus.Done)
        {
            return false;
        }

        index.Add(key[..written], id);
        return true;
    }

    public bool Remove(long id) => index.Remove(id);

    public void Search(Signal query, int maxDistance, List<IndexHit> hits)
    {
        var ids = _threadIds ??= [];
        ids.Clear();
        if (query is ExactSignal exact)
        {
            index.Lookup(exact.Key.Span, ids);
        }
        else
        {
            Span<byte> key = stackalloc byte[64];
            var text = query.Value;
            if (text.Length != index.KeyBytes * 2 || Convert.FromHexString(text, key, out _, out var written) != System.Buffers.OperationStatus.Done)
            {
                return;
            }

            index.Lookup(key[..written], ids);
        }

        foreach (var id in ids)
        {
            hits.Add(new IndexHit(id, 0, 0));
        }
    }

    public void Save(string path) => index.Save(path);

    public void Dispose() => index.Dispose();
}
