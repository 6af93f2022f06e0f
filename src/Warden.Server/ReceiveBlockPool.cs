using System.Buffers;
using System.Collections.Concurrent;
using Microsoft.AspNetCore.Connections;

namespace Warden.Server;

/// <summary>
/// Kestrel's memory pool with larger blocks (<see cref="ServerOptions.ReceiveBlockBytes"/>). The socket transport
/// receives into one pool block at a time, and Kestrel's own pool has 4 KiB blocks: a ~91 KiB upload took ~23
/// receive calls, each a pipe flush that wakes the request's reader. With 32 KiB blocks it takes ~3.
/// </summary>
/// <remarks>
/// Blocks are pinned arrays (the socket pins nothing per receive; the pinned heap does not fragment gen0) and go
/// back to a bounded free list; what the list cannot hold is left to the GC, so an idle server keeps at most
/// <see cref="MaxFreeBlocks"/> blocks. Each idle keep-alive connection holds one block while it waits for data
/// (<see cref="ServerOptions.SocketWaitForData"/> false), so the block size is also the per-connection memory.
/// </remarks>
internal sealed class ReceiveBlockPool : MemoryPool<byte>
{
    /// <summary>Free blocks kept for reuse; more are dropped to the GC.</summary>
    public const int MaxFreeBlocks = 256;

    private readonly ConcurrentQueue<byte[]> _free = new();
    private readonly int _blockSize;
    private int _freeCount;
    private volatile bool _disposed;

    /// <summary>A pool of <paramref name="blockSize"/>-byte blocks (at least 4 KiB, Kestrel's own size).</summary>
    public ReceiveBlockPool(int blockSize)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(blockSize, 4096);
        _blockSize = blockSize;
    }

    /// <inheritdoc />
    public override int MaxBufferSize => _blockSize;

    /// <summary>Blocks on the free list now (for tests).</summary>
    internal int FreeCount => Volatile.Read(ref _freeCount);

    /// <inheritdoc />
    public override IMemoryOwner<byte> Rent(int minBufferSize = -1)
    {
        // Pipes never ask for more than MaxBufferSize (they allocate larger segments themselves); as Kestrel's pool does.
        ArgumentOutOfRangeException.ThrowIfGreaterThan(minBufferSize, _blockSize);
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_free.TryDequeue(out var array))
        {
            Interlocked.Decrement(ref _freeCount);
        }

        // A new owner per rent (the array is what is pooled): a stale second dispose by an earlier owner then
        // cannot hand back a block that someone else holds now.
        return new Block(this, array ?? GC.AllocateUninitializedArray<byte>(_blockSize, pinned: true));
    }

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        _disposed = true;
        while (_free.TryDequeue(out _))
        {
            Interlocked.Decrement(ref _freeCount);
        }
    }

    private void Return(byte[] array)
    {
        if (_disposed || Interlocked.Increment(ref _freeCount) > MaxFreeBlocks)
        {
            if (!_disposed)
            {
                Interlocked.Decrement(ref _freeCount);
            }

            return;
        }

        _free.Enqueue(array);
    }

    /// <summary>One lease of a pooled array; disposing it returns the array once (a second dispose is ignored).</summary>
    private sealed class Block(ReceiveBlockPool pool, byte[] array) : IMemoryOwner<byte>
    {
        private byte[]? _array = array;

        public Memory<byte> Memory => Volatile.Read(ref _array) ?? throw new ObjectDisposedException(nameof(Block));

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _array, null) is { } a)
            {
                pool.Return(a);
            }
        }
    }
}

/// <summary>Hands Kestrel a <see cref="ReceiveBlockPool"/> wherever it asks for a memory pool (socket transport, HTTP/2 and /3 framing).</summary>
internal sealed class ReceiveBlockPoolFactory(int blockSize) : IMemoryPoolFactory<byte>
{
    /// <inheritdoc />
    public MemoryPool<byte> Create(MemoryPoolOptions? options = null) => new ReceiveBlockPool(blockSize);
}
