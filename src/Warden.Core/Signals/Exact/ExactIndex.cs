using System.Buffers.Binary;
using System.Numerics;
using System.Runtime.InteropServices;

namespace Warden.Core.Matching;

/// <summary>
/// Exact-match index for fixed-length byte keys (MD5 = 16, SHA-1 = 20, SHA-256 = 32 bytes) to bank-entry ids.
/// Many concurrent lookups, serialised writers (<see cref="ReaderWriterLockSlim"/>).
/// </summary>
/// <remarks>
/// An open-addressing table with linear probing over two flat arrays (keys inline as 64-bit words, ids beside
/// them): about 34 bytes per MD5 entry at the 0.7 load limit, no per-entry objects, and a snapshot is those
/// arrays as they are, so loading is one sequential read. A key may carry several ids (several slots).
/// Removal by id scans the table (rare: a curator's delete), marking slots deleted.
/// </remarks>
public sealed class ExactIndex : IDisposable
{
    private const ulong FileMagic = 0x5854_4558_4E44_5257; // "WRDNEXTX"
    private const int FileVersion = 2;
    private const int HeaderBytes = 48;
    private const long Empty = long.MinValue;
    private const long Deleted = long.MinValue + 1;
    private const double MaxLoad = 0.7;

    private readonly ReaderWriterLockSlim _lock = new(LockRecursionPolicy.NoRecursion);
    private readonly int _words;
    private ulong[] _keys;
    private long[] _ids;
    private int _count;
    private long _used; // live + deleted slots: what probing walks over

    /// <summary>Creates an empty index for keys of <paramref name="keyBytes"/> bytes (1..32).</summary>
    public ExactIndex(int keyBytes)
        : this(keyBytes, 16)
    {
    }

    private ExactIndex(int keyBytes, long capacity)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(keyBytes, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(keyBytes, 32);
        KeyBytes = keyBytes;
        _words = (keyBytes + 7) / 8;
        _keys = new ulong[capacity * _words];
        _ids = new long[capacity];
        _ids.AsSpan().Fill(Empty);
    }

    /// <summary>Length of every key.</summary>
    public int KeyBytes { get; }

    /// <summary>Number of (key, id) pairs.</summary>
    public int Count => Volatile.Read(ref _count);

    private long Capacity => _ids.LongLength;

    /// <summary>Adds a (key, id) pair. Adding the same pair twice stores it once.</summary>
    public void Add(ReadOnlySpan<byte> key, long id)
    {
        if (id is Empty or Deleted)
        {
            throw new ArgumentOutOfRangeException(nameof(id), "The two smallest long values are reserved.");
        }

        Span<ulong> k = stackalloc ulong[4];
        MakeKey(key, k);
        _lock.EnterWriteLock();
        try
        {
            if (_used + 1 > Capacity * MaxLoad)
            {
                Resize(Math.Max(16, (long)BitOperations.RoundUpToPowerOf2((ulong)Math.Max(_count + 1, 8) * 2)));
            }

            AddCore(k[.._words], id);
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
            var removed = 0;
            var ids = _ids.AsSpan();
            for (var i = 0; i < ids.Length; i++)
            {
                if (ids[i] == id)
                {
                    ids[i] = Deleted;
                    removed++;
                }
            }

            Volatile.Write(ref _count, _count - removed);
            return removed > 0;
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
        Span<ulong> k = stackalloc ulong[4];
        MakeKey(key, k);
        var words = k[.._words];
        _lock.EnterReadLock();
        try
        {
            var mask = Capacity - 1;
            for (var slot = Hash(words) & mask; ; slot = (slot + 1) & mask)
            {
                var id = _ids[slot];
                if (id == Empty)
                {
                    return;
                }

                if (id != Deleted && _keys.AsSpan((int)(slot * _words), _words).SequenceEqual(words))
                {
                    ids.Add(id);
                }
            }
        }
        finally
        {
            _lock.ExitReadLock();
        }
    }

    /// <summary>
    /// Writes a snapshot: a 48-byte header (magic, version, key length, capacity, count, checksum) then the key
    /// words and the ids exactly as the table holds them.
    /// </summary>
    public void Save(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        _lock.EnterReadLock();
        try
        {
            var keyBytes = MemoryMarshal.AsBytes(_keys.AsSpan());
            var idBytes = MemoryMarshal.AsBytes(_ids.AsSpan());
            var sum = default(Checksum);
            sum.Add(keyBytes);
            sum.Add(idBytes);
            Span<byte> header = stackalloc byte[HeaderBytes];
            header.Clear();
            BinaryPrimitives.WriteUInt64LittleEndian(header, FileMagic);
            BinaryPrimitives.WriteInt32LittleEndian(header[8..], FileVersion);
            BinaryPrimitives.WriteInt32LittleEndian(header[12..], KeyBytes);
            BinaryPrimitives.WriteInt64LittleEndian(header[16..], Capacity);
            BinaryPrimitives.WriteInt64LittleEndian(header[24..], _count);
            BinaryPrimitives.WriteUInt64LittleEndian(header[32..], sum.Value);
            var tmp = path + ".tmp";
            using (var fs = new FileStream(tmp, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20))
            {
                fs.Write(header);
                fs.Write(keyBytes);
                fs.Write(idBytes);
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
        using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20);
        Span<byte> header = stackalloc byte[HeaderBytes];
        if (fs.Length < HeaderBytes || fs.ReadAtLeast(header, HeaderBytes, throwOnEndOfStream: false) < HeaderBytes || BinaryPrimitives.ReadUInt64LittleEndian(header) != FileMagic)
        {
            throw new InvalidDataException($"'{path}' is not a Warden exact index snapshot (short file or bad magic).");
        }

        var version = BinaryPrimitives.ReadInt32LittleEndian(header[8..]);
        var keyBytes = BinaryPrimitives.ReadInt32LittleEndian(header[12..]);
        var capacity = BinaryPrimitives.ReadInt64LittleEndian(header[16..]);
        var count = BinaryPrimitives.ReadInt64LittleEndian(header[24..]);
        if (version != FileVersion)
        {
            throw new InvalidDataException($"Exact index snapshot '{path}' has format version {version}; this build reads version {FileVersion}.");
        }

        var words = (keyBytes + 7) / 8;
        if (keyBytes is < 1 or > 32 || capacity < 16 || capacity * words > Array.MaxLength || !BitOperations.IsPow2(capacity) || count < 0 || count > capacity ||
            fs.Length != HeaderBytes + (capacity * words * 8) + (capacity * 8))
        {
            throw new InvalidDataException($"Exact index snapshot '{path}' is truncated or corrupt: {fs.Length} bytes for capacity {capacity} of {keyBytes}-byte keys.");
        }

        var index = new ExactIndex(keyBytes, capacity);
        fs.ReadExactly(MemoryMarshal.AsBytes(index._keys.AsSpan()));
        fs.ReadExactly(MemoryMarshal.AsBytes(index._ids.AsSpan()));
        var sum = default(Checksum);
        sum.Add(MemoryMarshal.AsBytes(index._keys.AsSpan()));
        sum.Add(MemoryMarshal.AsBytes(index._ids.AsSpan()));
        if (sum.Value != BinaryPrimitives.ReadUInt64LittleEndian(header[32..]))
        {
            throw new InvalidDataException($"Exact index snapshot '{path}' is corrupt: checksum mismatch.");
        }

        long live = 0, used = 0;
        foreach (var id in index._ids)
        {
            used += id == Empty ? 0 : 1;
            live += id is Empty or Deleted ? 0 : 1;
        }

        // At least one empty slot is what ends every probe.
        if (live != count || used >= capacity)
        {
            throw new InvalidDataException($"Exact index snapshot '{path}' is corrupt: it says {count} entries, holds {live}.");
        }

        index._count = (int)live;
        index._used = used;
        return index;
    }

    /// <summary>Releases the lock.</summary>
    public void Dispose() => _lock.Dispose();

    private void MakeKey(ReadOnlySpan<byte> key, Span<ulong> words)
    {
        if (key.Length != KeyBytes)
        {
            throw new ArgumentException($"Key must be {KeyBytes} bytes, got {key.Length}.", nameof(key));
        }

        words.Clear();
        key.CopyTo(MemoryMarshal.AsBytes(words));
    }

    // Digests are uniform already; the multiply spreads structured keys (tests, other types) too.
    private static long Hash(ReadOnlySpan<ulong> words) => (long)((words[0] ^ (words.Length > 1 ? words[1] : 0)) * 0x9E3779B97F4A7C15UL >> 1);

    private void AddCore(ReadOnlySpan<ulong> words, long id)
    {
        var mask = Capacity - 1;
        var free = -1L;
        for (var slot = Hash(words) & mask; ; slot = (slot + 1) & mask)
        {
            var existing = _ids[slot];
            if (existing == Empty)
            {
                if (free < 0)
                {
                    free = slot;
                    _used++;
                }

                break;
            }

            if (existing == Deleted)
            {
                if (free < 0)
                {
                    free = slot;
                }
            }
            else if (existing == id && _keys.AsSpan((int)(slot * _words), _words).SequenceEqual(words))
            {
                return;
            }
        }

        words.CopyTo(_keys.AsSpan((int)(free * _words), _words));
        _ids[free] = id;
        Volatile.Write(ref _count, _count + 1);
    }

    private void Resize(long capacity)
    {
        if (capacity * _words > Array.MaxLength)
        {
            throw new InvalidOperationException($"An exact index holds at most {Array.MaxLength / _words / 2} keys of {KeyBytes} bytes.");
        }

        var oldKeys = _keys;
        var oldIds = _ids;
        _keys = new ulong[capacity * _words];
        _ids = new long[capacity];
        _ids.AsSpan().Fill(Empty);
        _count = 0;
        _used = 0;
        for (long i = 0; i < oldIds.LongLength; i++)
        {
            if (oldIds[i] is not (Empty or Deleted))
            {
                AddCore(oldKeys.AsSpan((int)(i * _words), _words), oldIds[i]);
            }
        }
    }
}
