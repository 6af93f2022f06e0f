using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Warden.Core.Imaging.Jpeg;

namespace Warden.Core.Tests;

/// <summary>
/// The vectorised 2x2 and 4x4 reduced IDCTs must give the scalar reference's bytes (which the libvips tests pin to
/// libjpeg-turbo's SIMD code) for any block and table: coefficients anywhere in the 16-bit range, quantisers up to
/// 65535 (negative as 16-bit, wrapping on dequantisation), sparse and dense blocks, and writes only inside the block's
/// rectangle of a strided plane.
/// </summary>
public sealed class JpegIdctVectorTests
{
    private static readonly Gen<short> Coefficient = Gen.Frequency(
        (6, Gen.Constant((short)0)),
        (4, Gen.Choose(-64, 64).Select(v => (short)v)),
        (2, Gen.Choose(-2048, 2047).Select(v => (short)v)),
        (1, Gen.Elements(short.MinValue, (short)-32767, short.MaxValue, (short)-1, (short)1)),
        (1, Gen.Choose(short.MinValue, short.MaxValue).Select(v => (short)v)));

    private static readonly Gen<short> Quantiser = Gen.Frequency(
        (4, Gen.Choose(1, 255).Select(v => (short)v)),
        (2, Gen.Choose(1, 65535).Select(v => (short)(ushort)v)),
        (1, Gen.Elements((short)1, unchecked((short)65535), unchecked((short)32768), (short)32767)));

    public static Arbitrary<IdctCase> Cases() => Arb.From(
        from density in Gen.Choose(0, 3)
        from block in (density == 0 ? Gen.Frequency((9, Gen.Constant((short)0)), (1, Coefficient)) : Coefficient).ArrayOf(64)
        from quant in Quantiser.ArrayOf(64)
        from row0 in Gen.Elements(true, false)
        from stride in Gen.Choose(4, 40)
        from offset in Gen.Choose(0, 7)
        select new IdctCase(block, quant, row0, stride, offset));

    [Property(MaxTest = 3000, Arbitrary = [typeof(JpegIdctVectorTests)])]
    public void Vector_4x4_equals_scalar(IdctCase c)
    {
        // The general case (AcRows set) is the vectorised one; the flag is what the decoder passes for it.
        var flags = JpegIdct.AcRows | (c.Row0 ? JpegIdct.AcRow0 : 0);
        var (vector, scalar) = Both(c, 4, (block, quant, output, offset, stride) => JpegIdct.Idct4x4(block, quant, flags, output, offset, stride), (block, quant, output, offset, stride) => JpegIdct.Idct4x4Scalar(block, quant, flags, output, offset, stride));
        Assert.Equal(scalar, vector);
    }

    [Property(MaxTest = 3000, Arbitrary = [typeof(JpegIdctVectorTests)])]
    public void Vector_2x2_equals_scalar(IdctCase c)
    {
        var (vector, scalar) = Both(c, 2, (block, quant, output, offset, stride) => JpegIdct.Idct2x2(block, quant, true, output, offset, stride), (block, quant, output, offset, stride) => JpegIdct.Idct2x2Scalar(block, quant, true, output, offset, stride));
        Assert.Equal(scalar, vector);
    }

    private static (byte[] Vector, byte[] Scalar) Both(IdctCase c, int size, Idct vector, Idct scalar)
    {
        // A plane of sentinels: both paths must write the same size x size rectangle and nothing else.
        var stride = Math.Max(c.Stride, size);
        var plane = new byte[(stride * (size + 2)) + c.Offset + size];
        plane.AsSpan().Fill(0xA5);
        var a = plane.ToArray();
        var b = plane.ToArray();
        var offset = c.Offset + stride;
        vector(c.Block, c.Quant, a, offset, stride);
        scalar(c.Block, c.Quant, b, offset, stride);
        return (a, b);
    }

    private delegate void Idct(ReadOnlySpan<short> block, ReadOnlySpan<short> quant, Span<byte> output, int offset, int stride);

    public sealed record IdctCase(short[] Block, short[] Quant, bool Row0, int Stride, int Offset)
    {
        public override string ToString() => $"block [{string.Join(',', Block)}] quant [{string.Join(',', Quant)}] row0 {Row0} stride {Stride} offset {Offset}";
    }
}
