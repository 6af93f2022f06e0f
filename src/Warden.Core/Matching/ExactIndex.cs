using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace Warden.Core.Matching;

/// <summary>
/// Exact-match index for fixed-length byte keys (MD5 = 16, SHA-1 = 20, SHA-256 = 32 bytes) to bank-entry ids.
/// Many concurrent lookups, serialised writers (<see cref="ReaderWriterLockSlim"/>).
/// </summary>
/// <remarks>
/// Keys live inline in a 32-byte struct (no per-entry objects); a key with several ids keeps the first in the
/// main dictionary and the rest in a small overflow map, since duplicates are rare.
/// </remarks>
public sealed class ExactIndex : IDisposable
{
    private const ulong FileMagic = 0x5854_4558_4E44_5257; // "WRDNEXTX"
    private const int FileVersion = 1;
    private const int HeaderBytes = 32;

    private readonly ReaderWriterLockSlim _lock = new(LockRecursionPolicy.NoRecursion);
    private readonly Dictionary<Key, long> _first = [];
    private readonly Dictionary<Key, List<long>> _more = [];
    private readonly Dictionary<long, Key> _byId = [];
    private readonly Dictionary<long, List<Key>> _byIdMore = [];
    private int _count;

    /// <summary>Creates an empty index for keys of <paramref name="keyBytes"/> bytes (1..32).</summary>
    public ExactIndex(int keyBytes)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(keyBytes, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(keyBytes, Key.MaxBytes);
        KeyBytes = keyBytes;
    }

    /// <summary>Length of every key.</summary>
    public int KeyBytes { get; }

    /// <summary>Number of (key, id) pairs.</summary>
    public int Count => Volatile.Read(ref _count);

    /// <summary>Adds a (key, id) pair. Adding the same pair twice stores it once.</summary>
    public void Add(ReadOnlySpan<byte> key, long id)
    {
        var k = MakeKey(key);
        _lock.EnterWriteLock();
        try
        {
            AddCore(k, id);
        }
        finally
        {
            _lock.ExitWriteLock();
        }
    }

    /// <summary>Removes every key stored under <paramref name="id"/>; false if there was none.</summary>
    public bool Remove(long id)
    {
        _lock.EnterWriteLock();
        try
        {
            if (!_byId.Remove(id, out var key))
            {
                return false;
            }

            RemovePair(key, id);
            if (_byIdMore.Remove(id, out var extra))
            {
                foreach (var k in extra)
                {
                    RemovePair(k, id);
                }
            }

            return true;
        }
        finally
        {
            _lock.ExitWriteLock();
        }
    }

    /// <summary>Appends the ids stored under <paramref name="key"/> to <paramref name="ids"/>.</summary>
    public void Lookup(ReadOnlySpan<byte> key, List<long> ids)
    {
        ArgumentNullException.ThrowIfNull(ids);
        var k = MakeKey(key);
        _lock.EnterReadLock();
        try
        {
            if (_first.TryGetValue(k, out var id))
            {
                ids.Add(id);
                if (_more.TryGetValue(k, out var rest))
                {
                    ids.AddRange(rest);
                }
            }
        }
        finally
        {
            _lock.ExitReadLock();
        }
    }

    /// <summary>Writes a snapshot: a 32-byte header (magic, version, key length, count, checksum) then (key, id) records.</summary>
    public void Save(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        _lock.EnterReadLock();
        try
        {
            var record = KeyBytes + 8;
            var body = new byte[(long)record * _count > int.MaxValue ? throw new InvalidOperationException("Exact index too large for one snapshot.") : record * _count];
            var pos = 0;
            foreach (var (key, id) in Pairs())
            {
                key.CopyTo(body.AsSpan(pos, KeyBytes));
                BinaryPrimitives.WriteInt64LittleEndian(body.AsSpan(pos + KeyBytes), id);
                pos += record;
            }

            var header = new byte[HeaderBytes];
            BinaryPrimitives.WriteUInt64LittleEndian(header, FileMagic);
            BinaryPrimitives.WriteInt32LittleEndian(header.AsSpan(8), FileVersion);
            BinaryPrimitives.WriteInt32LittleEndian(header.AsSpan(12), KeyBytes);
            BinaryPrimitives.WriteInt64LittleEndian(header.AsSpan(16), _count);
            BinaryPrimitives.WriteUInt64LittleEndian(header.AsSpan(24), BodyChecksum(body));
            var tmp = path + ".tmp";
            using (var fs = new FileStream(tmp, FileMode.Create, FileAccess.Write))
            {
                fs.Write(header);
                fs.Write(body);
                fs.Flush(flushToDisk: true);
            }

            File.Move(tmp, path, overwrite: true);
        }
        finally
        {
            _lock.ExitReadLock();
        }
    }

    /// <summary>Reads a snapshot written by <see cref="Save"/>; <see cref="InvalidDataException"/> if it is truncated or corrupt.</summary>
    public static ExactIndex Load(string path)
    {
        var bytes = File.ReadAllBytes(path);
        if (bytes.Length < HeaderBytes || BinaryPrimitives.ReadUInt64LittleEndian(bytes) != FileMagic)
        {
            throw new InvalidDataException($"'{path}' is not a Warden exact index snapshot (short file or bad magic).");
        }

        var version = BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(8));
        var keyBytes = BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(12));
        var count = BinaryPrimitives.ReadInt64LittleEndian(bytes.AsSpan(16));
        if (version != FileVersion)
        {
            throw new InvalidDataException($"Exact index snapshot '{path}' has format version {version}; this build reads version {FileVersion}.");
        }

        if (keyBytes is < 1 or > Key.MaxBytes || count < 0 || (keyBytes + 8L) * count != bytes.Length - HeaderBytes)
        {
            throw new InvalidDataException($"Exact index snapshot '{path}' is truncated or corrupt: {bytes.Length} bytes for {count} records of {keyBytes}-byte keys.");
        }

        var body = bytes.AsSpan(HeaderBytes);
        if (BodyChecksum(body) != BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(24)))
        {
            throw new InvalidDataException($"Exact index snapshot '{path}' is corrupt: checksum mismatch.");
        }

        var index = new ExactIndex(keyBytes);
        for (var pos = 0; pos < body.Length; pos += keyBytes + 8)
        {
            index.AddCore(index.MakeKey(body.Slice(pos, keyBytes)), BinaryPrimitives.ReadInt64LittleEndian(body[(pos + keyBytes)..]));
        }

        return index;
    }

    /// <summary>Releases the lock.</summary>
    public void Dispose() => _lock.Dispose();

    private IEnumerable<(byte[] Key, long Id)> Pairs()
    {
        foreach (var (k, id) in _first)
        {
            yield return (k.ToArray(KeyBytes), id);
            if (_more.TryGetValue(k, out var rest))
            {
                foreach (var r in rest)
                {
                    yield return (k.ToArray(KeyBytes), r);
                }
            }
        }
    }

    private static ulong BodyChecksum(ReadOnlySpan<byte> body)
    {
        var sum = default(Checksum);
        var whole = body.Length & ~7;
        sum.Add(body[..whole]);
        Span<byte> last = stackalloc byte[8];
        last.Clear();
        body[whole..].CopyTo(last);
        sum.Add(last);
        return sum.Value;
    }

    private void AddCore(Key k, long id)
    {
        if (_first.TryGetValue(k, out var existing))
        {
            if (existing == id)
            {
                return;
            }

            ref var list = ref CollectionsMarshal.GetValueRefOrAddDefault(_more, k, out _);
            list ??= [];
            if (list.Contains(id))
            {
                return;
            }

            list.Add(id);
        }
        else
        {
            _first.Add(k, id);
        }

        if (!_byId.TryAdd(id, k))
        {
            ref var keys = ref CollectionsMarshal.GetValueRefOrAddDefault(_byIdMore, id, out _);
            (keys ??= []).Add(k);
        }

        _count++;
    }

    private void RemovePair(Key k, long id)
    {
        if (!_first.TryGetValue(k, out var first))
        {
            return;
        }

        _more.TryGetValue(k, out var rest);
        if (first == id)
        {
            if (rest is { Count: > 0 })
            {
                _first[k] = rest[^1];
                rest.RemoveAt(rest.Count - 1);
            }
            else
            {
                _first.Remove(k);
            }
        }
        else if (rest is null || !rest.Remove(id))
        {
            return;
        }

        if (rest is { Count: 0 })
        {
            _more.Remove(k);
        }

        _count--;
    }

    private Key MakeKey(ReadOnlySpan<byte> key)
    {
        if (key.Length != KeyBytes)
        {
            throw new ArgumentException($"This index holds {KeyBytes}-byte keys, got {key.Length} bytes.", nameof(key));
        }

        var k = default(Key);
        key.CopyTo(MemoryMarshal.AsBytes(new Span<Key>(ref k)));
        return k;
    }

    /// <summary>Up to 32 key bytes, zero padded; hashing is per-process randomised (<see cref="HashCode"/>).</summary>
    private readonly record struct Key(ulong A, ulong B, ulong C, ulong D)
    {
        public const int MaxBytes = 32;

        public bool Equals(Key other) => A == other.A && B == other.B && C == other.C && D == other.D;

        public override int GetHashCode() => HashCode.Combine(A, B, C, D);

        public byte[] ToArray(int length)
        {
            var copy = this;
            return MemoryMarshal.AsBytes(new ReadOnlySpan<Key>(in copy))[..length].ToArray();
        }
    }
}
