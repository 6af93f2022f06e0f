using System.Globalization;
using System.Numerics;
using Warden.Core.Signals;

namespace Warden.Server.Tests.Signals;

/// <summary>
/// A signal type that exists only in this test project: FNV-1a (32 bits) of the content's bytes as 8 hex digits,
/// compared by Hamming distance, default threshold 2. It proves a plug-in flows through hashing, bank import,
/// matching, the API and the CLI with no edit to Warden itself.
/// </summary>
internal sealed class ToySignalType : ISignalType
{
    public const string TypeName = "toy_fnv32";

    public string Name => TypeName;

    public bool IsExact => false;

    public int DefaultThreshold => 2;

    public int MaxThreshold => 32;

    public ContentKinds ContentKinds => ContentKinds.File;

    public IReadOnlyList<string> Examples => ["0badcafe"];

    public bool TryNormalize(ReadOnlySpan<char> text, out string normalized, out string? reason)
    {
        text = text.Trim();
        normalized = string.Empty;
        if (text.Length != 8 || !uint.TryParse(text, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out _))
        {
            reason = "A toy_fnv32 is 8 hex digits.";
            return false;
        }

        normalized = text.ToString().ToLowerInvariant();
        reason = null;
        return true;
    }

    public Signal? CreateSignal(string normalized) => TryNormalize(normalized, out var n, out _) ? new Signal(this, n) : null;

    public ISignalIndex CreateIndex() => new ToyIndex();

    public ISignalIndex LoadIndex(string path) => ToyIndex.Load(path);

    /// <summary>The value of <paramref name="data"/>.</summary>
    public static uint Fnv(ReadOnlySpan<byte> data)
    {
        var h = 2166136261u;
        foreach (var b in data)
        {
            h = (h ^ b) * 16777619u;
        }

        return h;
    }

    public static string Format(uint value) => value.ToString("x8", CultureInfo.InvariantCulture);

    public static uint Parse(string text) => uint.Parse(text, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture);
}

/// <summary>Computes <see cref="ToySignalType"/> from any content.</summary>
internal sealed class ToyHasher(ToySignalType type) : ISignalHasher
{
    public ContentKinds Kinds => ContentKinds.File;

    public Signal? Hash(ContentView content) => new(type, ToySignalType.Format(ToySignalType.Fnv(content.Bytes.Span)));
}

/// <summary>A linear-scan index with a text snapshot: enough for a toy, and written only against the interface.</summary>
internal sealed class ToyIndex : ISignalIndex
{
    private readonly Dictionary<long, uint> _entries = [];
    private readonly Lock _lock = new();

    public long Count
    {
        get
        {
            lock (_lock)
            {
                return _entries.Count;
            }
        }
    }

    public bool Add(long id, string normalized)
    {
        if (normalized.Length != 8 || !uint.TryParse(normalized, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var value))
        {
            return false;
        }

        lock (_lock)
        {
            _entries[id] = value;
        }

        return true;
    }

    public bool Remove(long id)
    {
        lock (_lock)
        {
            return _entries.Remove(id);
        }
    }

    public void Search(Signal query, int maxDistance, List<IndexHit> hits)
    {
        if (!uint.TryParse(query.Value, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var q))
        {
            return;
        }

        lock (_lock)
        {
            foreach (var (id, value) in _entries)
            {
                var d = BitOperations.PopCount(q ^ value);
                if (d <= maxDistance)
                {
                    hits.Add(new IndexHit(id, d, 0));
                }
            }
        }
    }

    public void Save(string path)
    {
        lock (_lock)
        {
            File.WriteAllLines(path, _entries.Select(e => string.Create(CultureInfo.InvariantCulture, $"{e.Key} {ToySignalType.Format(e.Value)}")));
        }
    }

    public static ToyIndex Load(string path)
    {
        var index = new ToyIndex();
        foreach (var line in File.ReadLines(path))
        {
            var parts = line.Split(' ');
            if (parts.Length != 2 || !long.TryParse(parts[0], CultureInfo.InvariantCulture, out var id) || !index.Add(id, parts[1]))
            {
                throw new InvalidDataException($"{path}: damaged toy entry.");
            }
        }

        return index;
    }

    public void Dispose()
    {
    }
}
