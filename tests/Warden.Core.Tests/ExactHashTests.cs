using Warden.Core.Hashing;

namespace Warden.Core.Tests;

public sealed class ExactHashTests
{
    [Fact]
    public void Known_vectors_for_abc()
    {
        var h = ExactHashes.Compute("abc"u8);
        Assert.Equal("900150983cd24fb0d6963f7d28e17f72", h.Md5Hex);
        Assert.Equal("a9993e364706816aba3e25717850c26c9cd0d89d", h.Sha1Hex);
        Assert.Equal("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", h.Sha256Hex);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(65535)]
    [InlineData(65536)]
    [InlineData(1_000_003)]
    public void One_streamed_pass_equals_one_shot_and_keeps_the_bytes(int size)
    {
        var data = new byte[size];
        new Random(size).NextBytes(data);
        using var hasher = new ExactHasher();
        using var stream = new ChunkyStream(data, 7919);
        var streamed = hasher.HashStream(stream, keep: true, maxKeep: long.MaxValue, out var kept, out var length);
        var once = ExactHashes.Compute(data);
        Assert.Equal(once.Sha256Hex, streamed.Sha256Hex);
        Assert.Equal(once.Sha1Hex, streamed.Sha1Hex);
        Assert.Equal(once.Md5Hex, streamed.Md5Hex);
        Assert.Equal(size, length);
        Assert.Equal(data, kept);
        Assert.Equal(1, stream.Passes);
    }

    [Fact]
    public void Over_the_keep_limit_hashes_but_does_not_keep()
    {
        var data = new byte[100_000];
        using var hasher = new ExactHasher();
        var h = hasher.HashStream(new MemoryStream(data), keep: true, maxKeep: 1000, out var kept, out var length);
        Assert.Null(kept);
        Assert.Equal(100_000, length);
        Assert.Equal(ExactHashes.Compute(data).Sha256Hex, h.Sha256Hex);
    }

    /// <summary>Returns data in small uneven reads, counting passes over the data.</summary>
    private sealed class ChunkyStream(byte[] data, int chunk) : Stream
    {
        private int _position;

        public int Passes { get; private set; }

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => _position; set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count)
        {
            if (_position == 0)
            {
                Passes++;
            }

            var n = Math.Min(Math.Min(count, chunk), data.Length - _position);
            Array.Copy(data, _position, buffer, offset, n);
            _position += n;
            return n;
        }

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
