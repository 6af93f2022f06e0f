using System.Buffers;
using FsCheck;
using FsCheck.Fluent;

namespace Warden.Server.Tests;

/// <summary>
/// Kestrel's large-block memory pool (issue 16 §6, fifth pass): a block is never handed to two owners at once,
/// returns exactly once however often it is disposed, keeps its size, and the free list stays bounded.
/// </summary>
public sealed class ReceiveBlockPoolTests
{
    /// <summary>Random rent / dispose / double-dispose sequences against a model of who holds which block.</summary>
    [FsCheck.Xunit.Property(MaxTest = 300)]
    public Property Blocks_are_never_shared_and_return_once()
    {
        var ops = Gen.Choose(1, 600).SelectMany(n => Gen.Choose(0, 9).ArrayOf(n));
        var sizes = Gen.Elements(4096, 6001, 32 * 1024, 65_536);
        return Prop.ForAll(ops.ToArbitrary(), sizes.ToArbitrary(), (steps, size) =>
        {
            using var pool = new ReceiveBlockPool(size);
            var held = new List<(IMemoryOwner<byte> Owner, byte Mark)>();
            var released = new List<IMemoryOwner<byte>>();
            byte mark = 0;
            foreach (var step in steps)
            {
                if (step < 5 || held.Count == 0)
                {
                    // Rent: the block is the pool's size, and writing it must not touch any other held block.
                    var owner = pool.Rent(step % 2 == 0 ? -1 : Math.Min(size, step * 1000));
                    var memory = owner.Memory.Span;
                    Assert.Equal(size, memory.Length);
                    mark++;
                    memory.Fill(mark);
                    held.Add((owner, mark));
                }
                else if (step < 9)
                {
                    var i = (step * 7919) % held.Count;
                    var (owner, m) = held[i];
                    Assert.True(owner.Memory.Span.IndexOfAnyExcept(m) < 0, "a held block was overwritten through another owner");
                    held.RemoveAt(i);
                    owner.Dispose();
                    released.Add(owner);
                }
                else if (released.Count > 0)
                {
                    // A second dispose of a returned block is ignored (it must not enter the free list twice).
                    released[(step * 31) % released.Count].Dispose();
                }

                Assert.InRange(pool.FreeCount, 0, ReceiveBlockPool.MaxFreeBlocks);
            }

            foreach (var (owner, m) in held)
            {
                Assert.True(owner.Memory.Span.IndexOfAnyExcept(m) < 0, "a held block was overwritten through another owner");
            }

            // Every block the pool holds free is distinct: renting them all gives distinct arrays.
            var free = pool.FreeCount;
            var again = Enumerable.Range(0, free).Select(_ => pool.Rent()).ToList();
            var distinct = again.Concat(held.Select(h => h.Owner)).Select(o => o.Memory).Distinct(new SameArray()).Count();
            Assert.Equal(again.Count + held.Count, distinct);
        });
    }

    [Fact]
    public void The_free_list_is_bounded_and_a_disposed_pool_refuses_rents()
    {
        var pool = new ReceiveBlockPool(4096);
        var owners = Enumerable.Range(0, ReceiveBlockPool.MaxFreeBlocks + 50).Select(_ => pool.Rent()).ToList();
        owners.ForEach(o => o.Dispose());
        Assert.Equal(ReceiveBlockPool.MaxFreeBlocks, pool.FreeCount);
        Assert.Throws<ArgumentOutOfRangeException>(() => pool.Rent(4097));
        Assert.Throws<ObjectDisposedException>(() => owners[0].Memory);
        pool.Dispose();
        Assert.Equal(0, pool.FreeCount);
        Assert.Throws<ObjectDisposedException>(() => pool.Rent());
        Assert.Throws<ArgumentOutOfRangeException>(() => new ReceiveBlockPool(4095));
    }

    [Fact]
    public async Task Concurrent_rents_and_returns_never_share_a_block()
    {
        using var pool = new ReceiveBlockPool(8192);
        var failures = 0;
        await Task.WhenAll(Enumerable.Range(0, 4).Select(t => Task.Run(() =>
        {
            for (var i = 0; i < 20_000; i++)
            {
                using var owner = pool.Rent();
                var span = owner.Memory.Span;
                span[0] = (byte)t;
                span[^1] = (byte)t;
                Thread.SpinWait(i % 16);
                if (span[0] != t || span[^1] != t)
                {
                    Interlocked.Increment(ref failures);
                }
            }
        })));
        Assert.Equal(0, failures);
        Assert.InRange(pool.FreeCount, 1, 4);
    }

    private sealed class SameArray : IEqualityComparer<Memory<byte>>
    {
        public bool Equals(Memory<byte> x, Memory<byte> y) => x.Span == y.Span;

        public int GetHashCode(Memory<byte> obj) => obj.Length;
    }
}
