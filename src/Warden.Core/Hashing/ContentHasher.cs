using Warden.Core.Hashing.Pdq;
using Warden.Core.Hashing.Video;
using Warden.Core.Imaging;
using Warden.Core.Signals;

namespace Warden.Core.Hashing;

/// <summary>All signals of one piece of content, or why the perceptual part failed.</summary>
/// <param name="Exact">MD5, SHA-1, SHA-256 of the bytes (always computed, whatever the content is).</param>
/// <param name="Length">Size in bytes.</param>
/// <param name="Image">PDQ and image facts, or null when the content could not be decoded as an image.</param>
/// <param name="Error">Why <paramref name="Image"/> is null.</param>
/// <param name="Extra">Signals of plug-in signal types (<see cref="SignalTypeRegistry.Hashers"/>), or null.</param>
public sealed record ContentHashes(ExactHashes Exact, long Length, PdqImageResult? Image, ImageDecodeException? Error, IReadOnlyList<Signal>? Extra = null)
{
    /// <summary>
    /// The content's signals, in match order: PDQ (dihedral variants if computed), PDQ of the border-trimmed
    /// image, the digests, a video's signals, then plug-ins'.
    /// </summary>
    /// <param name="video">The video signals when the content is a video.</param>
    public SignalSet ToSignals(VideoHashes? video = null)
    {
        var set = new SignalSet();
        if (Image is { } image)
        {
            set.Add(new PdqSignal(SignalTypes.Pdq, Variants(image.Pdq), image.Pdq.Quality));
            if (image.Trimmed is { } trimmed)
            {
                set.Add(new PdqSignal(SignalTypes.Pdq, Variants(trimmed), trimmed.Quality, "trimmed:"));
            }
        }

        var md5 = Exact.Md5Hex;
        set.Add(new ExactSignal(SignalTypes.Md5, Exact.Md5, md5));
        set.Add(new ExactSignal(SignalTypes.Sha1, Exact.Sha1, Exact.Sha1Hex));
        set.Add(new ExactSignal(SignalTypes.Sha256, Exact.Sha256, Exact.Sha256Hex));
        if (video is not null)
        {
            set.Add(new ExactSignal(SignalTypes.VideoMd5, Exact.Md5, md5));
            set.Add(video.Vpdq is { } vpdq ? new VpdqSignal(SignalTypes.Vpdq, vpdq) : null);
            set.Add(video.Tmk is { } tmk ? new TmkSignal(SignalTypes.TmkPdqf, tmk) : null);
        }

        return set.AddRange(Extra);
    }

    private static PdqHash[] Variants(PdqResult pdq) => pdq.Dihedral is { } d ? d as PdqHash[] ?? [.. d] : [pdq.Hash];
}

/// <summary>
/// Reads content once: every chunk feeds MD5/SHA-1/SHA-256 and is kept for the image decoder, so a file is
/// never read twice. Not thread-safe: one per thread (it reuses PDQ buffers).
/// </summary>
/// <param name="resize">How images are brought to PDQ's working size.</param>
/// <param name="limits">Image limits.</param>
/// <param name="registry">Whose plug-in hashers run too (default: the current registry).</param>
public sealed class ContentHasher(PdqResize resize = PdqResize.Fast, ImageLimits? limits = null, SignalTypeRegistry? registry = null) : IDisposable
{
    private readonly IReadOnlyList<(ISignalType Type, ISignalHasher Hasher)> _plugins = (registry ?? SignalTypeRegistry.Current).Hashers;
    private readonly ImageLimits _limits = limits ?? ImageLimits.Default;
    private readonly ExactHasher _exact = new();
    private readonly PdqImageHasher _pdq = new(resize, limits);

    // A regular file is read whole, with positional reads, into this buffer, reused from file to file: a batch
    // of photos then costs no fresh memory (page faults, zeroing) per file, and the digests run over it in one pass.
    private byte[] _file = [];

    /// <summary>Hashes a file.</summary>
    public ContentHashes HashFile(string path, bool dihedral = false)
    {
        using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read, FileOptions.SequentialScan);
        var size = RandomAccess.GetLength(handle);
        if (size > 0 && size <= _limits.MaxBytes && ReadWhole(handle, size) is { } bytes)
        {
            return HashBytes(ExactHashes.Compute(bytes), bytes, bytes.Count, dihedral);
        }

        // Pipes, devices, /proc files (length 0), files over the limit or growing past it: read as a stream,
        // from the start (positional reads above did not move the handle's offset).
        using var stream = new FileStream(handle, FileAccess.Read, bufferSize: 1);
        return HashStream(stream, dihedral);
    }

    /// <summary>Reads to the end into the reused buffer; null when the file turns out longer than the limit.</summary>
    private ArraySegment<byte>? ReadWhole(Microsoft.Win32.SafeHandles.SafeFileHandle handle, long size)
    {
        var total = 0;
        while (true)
        {
            if (total == _file.Length)
            {
                // One byte over the expected size, so that reaching the end needs no second buffer; grown by
                // doubling when a file grows while read, up to one byte over the limit.
                var capacity = total == 0 ? size + 1 : Math.Max(size + 1, (long)total * 2);
                capacity = Math.Min(capacity, _limits.MaxBytes + 1);
                if (capacity <= total || capacity > Array.MaxLength)
                {
                    return null;
                }

                var grown = GC.AllocateUninitializedArray<byte>((int)capacity);
                _file.AsSpan(0, total).CopyTo(grown);
                _file = grown;
            }

            var read = RandomAccess.Read(handle, _file.AsSpan(total), total);
            if (read == 0)
            {
                if (total > _limits.MaxBytes)
                {
                    return null;
                }

                return new ArraySegment<byte>(_file, 0, total);
            }

            total += read;
        }
    }

    /// <summary>Hashes a stream to its end.</summary>
    public ContentHashes HashStream(Stream stream, bool dihedral = false)
    {
        var exact = _exact.HashStream(stream, keep: true, _limits.MaxBytes, out var bytes, out var length);
        if (bytes is null)
        {
            return new ContentHashes(exact, length, null, new ImageDecodeException(
                ImageDecodeError.TooManyBytes, $"The file has {length} bytes; the image limit is {_limits.MaxBytes}."));
        }

        return HashBytes(exact, new ArraySegment<byte>(bytes), length, dihedral);
    }

    /// <summary>
    /// Hashes content already in memory (an upload): the digests in one pass each and the decoder on the same
    /// array, so the bytes are not copied again.
    /// </summary>
    public ContentHashes HashBytes(byte[] data, bool dihedral = false)
    {
        ArgumentNullException.ThrowIfNull(data);
        var exact = ExactHashes.Compute(data);
        if (data.Length > _limits.MaxBytes)
        {
            return new ContentHashes(exact, data.Length, null, new ImageDecodeException(
                ImageDecodeError.TooManyBytes, $"The file has {data.Length} bytes; the image limit is {_limits.MaxBytes}."));
        }

        return HashBytes(exact, new ArraySegment<byte>(data), data.Length, dihedral);
    }

    /// <summary>
    /// Hashes content in part of a caller's buffer (a backfill worker reuses one per thread, as <see cref="HashFile"/>
    /// does): no copy of the bytes and no fresh array per item.
    /// </summary>
    public ContentHashes HashBytes(ArraySegment<byte> data, bool dihedral = false)
    {
        var exact = ExactHashes.Compute(data);
        if (data.Count > _limits.MaxBytes)
        {
            return new ContentHashes(exact, data.Count, null, new ImageDecodeException(
                ImageDecodeError.TooManyBytes, $"The file has {data.Count} bytes; the image limit is {_limits.MaxBytes}."));
        }

        return HashBytes(exact, data, data.Count, dihedral);
    }

    private ContentHashes HashBytes(ExactHashes exact, ArraySegment<byte> bytes, long length, bool dihedral)
    {
        ContentHashes hashes;
        try
        {
            hashes = new ContentHashes(exact, length, _pdq.Hash(bytes, dihedral), null);
        }
        catch (ImageDecodeException ex)
        {
            hashes = new ContentHashes(exact, length, null, ex);
        }

        return _plugins.Count == 0 ? hashes : hashes with { Extra = HashPlugins(new ContentView(bytes, hashes.Image is null ? ContentKinds.File : ContentKinds.Photo)) };
    }

    // Plug-in types computed from the same in-memory bytes (the file is still read once).
    private List<Signal> HashPlugins(ContentView view)
    {
        var signals = new List<Signal>();
        foreach (var (_, hasher) in _plugins)
        {
            if ((hasher.Kinds & (view.Kind | ContentKinds.File)) != 0 && hasher.Hash(view) is { } signal)
            {
                signals.Add(signal);
            }
        }

        return signals;
    }

    /// <inheritdoc />
    public void Dispose() => _exact.Dispose();
}
