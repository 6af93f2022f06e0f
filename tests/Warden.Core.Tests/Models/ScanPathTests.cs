using System.Buffers.Binary;
using System.IO.Hashing;
using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using System.Text;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Warden.Core.ModelFiles;

namespace Warden.Core.Tests.Models;

/// <summary>
/// The scan's fast paths change how fingerprints are computed, never what they are: fp16/bf16 widening is
/// checked against the runtime's own conversion for every 16-bit pattern (vector and scalar paths, any length
/// and alignment), and a file holding every fp16/bf16 pattern (NaNs, ±0, ±Inf, subnormals) with rows that
/// straddle batches and 4 MiB chunks fingerprints to the values the earlier implementation gave (pinned).
/// </summary>
public class ScanPathTests
{
    private static readonly uint NaNBits = BitConverter.SingleToUInt32Bits(float.NaN);

    // The reference: the runtime's conversion, then the canonical form (−0 → +0, one NaN).
    private static uint F16Reference(ushort h)
    {
        var f = (float)BitConverter.UInt16BitsToHalf(h) + 0f;
        return float.IsNaN(f) ? NaNBits : BitConverter.SingleToUInt32Bits(f);
    }

    private static uint BF16Reference(ushort h)
    {
        var f = BitConverter.UInt32BitsToSingle((uint)h << 16) + 0f;
        return float.IsNaN(f) ? NaNBits : BitConverter.SingleToUInt32Bits(f);
    }

    [Theory]
    [InlineData(TensorDType.F16)]
    [InlineData(TensorDType.BF16)]
    public void Every_16_bit_pattern_widens_as_the_runtime_converts_it(TensorDType type)
    {
        var src = new byte[65536 * 2];
        for (var i = 0; i < 65536; i++)
        {
            BinaryPrimitives.WriteUInt16LittleEndian(src.AsSpan(i * 2), (ushort)i);
        }

        // The whole table at once (vector path), then one value at a time (scalar path).
        var all = new float[65536];
        TensorValues.Widen(src, type, all);
        var one = new float[1];
        for (var i = 0; i < 65536; i++)
        {
            var want = type == TensorDType.F16 ? F16Reference((ushort)i) : BF16Reference((ushort)i);
            Assert.Equal(want, BitConverter.SingleToUInt32Bits(all[i]));
            TensorValues.Widen(src.AsSpan(i * 2, 2), type, one);
            Assert.Equal(want, BitConverter.SingleToUInt32Bits(one[0]));
        }

        if (type == TensorDType.F16)
        {
            // And as TensorPrimitives converts a whole span (what MFv1 used before), canonicalised.
            var before = new float[65536];
            TensorPrimitives.ConvertToSingle(MemoryMarshal.Cast<byte, Half>(src), before);
            TensorValues.Canonicalize(before);
            Assert.Equal(MemoryMarshal.Cast<float, uint>(before).ToArray(), MemoryMarshal.Cast<float, uint>(all).ToArray());
        }
    }

    [Property(MaxTest = 200)]
    public Property Widening_any_span_matches_value_by_value() =>
        Prop.ForAll(Gen.Choose(0, 300).Zip(Gen.Choose(0, 15)).Zip(Gen.Choose(0, int.MaxValue)).Zip(Gen.Elements(TensorDType.F16, TensorDType.BF16)).ToArbitrary(), p =>
        {
            var (((length, skip), seed), type) = p;
            var rng = new Random(seed);
            var src = new byte[(length + skip) * 2];
            rng.NextBytes(src);
            var dst = new float[length + 1];
            dst[length] = 42f; // must stay untouched
            TensorValues.Widen(src.AsSpan(skip * 2), type, dst.AsSpan(0, length));
            for (var i = 0; i < length; i++)
            {
                var h = BinaryPrimitives.ReadUInt16LittleEndian(src.AsSpan((skip + i) * 2));
                var want = type == TensorDType.F16 ? F16Reference(h) : BF16Reference(h);
                if (BitConverter.SingleToUInt32Bits(dst[i]) != want)
                {
                    return false;
                }
            }

            return dst[length] == 42f;
        });

    [Fact]
    public void A_file_with_every_pattern_fingerprints_as_before()
    {
        var path = Path.Combine(Path.GetTempPath(), $"warden-golden-{Guid.NewGuid():N}.safetensors");
        try
        {
            WriteGolden(path);
            var fp = Fingerprinter.Compute(ModelReader.Read(path), new FingerprintOptions { CastPaths = true, Blake3 = true });
            var f = fp.File!;
            Assert.Equal("b34f7f81fc3a606471a447137f2ffdb8", fp.ModelIdHex);
            Assert.Equal("1fe5a680ad0d31feb2c219f368aafe33c9e140a6ecdef89ddf100d0db0ac5d03", f.Sha256Hex);
            Assert.Equal("ff65ca5799ea8c9198addf6a709c30e4a4e30720b6a14afa82912f07db5b5d6c", f.Blake3Hex);
            Assert.Equal("c7c42cd00b0897fa14e12d77100b98e09c4d5016920b7cc9b1472a016a4ee05f", f.AutoV3Hex);
            Assert.Equal("4194aa55", f.Crc32Hex);
            Assert.Equal("9d8a966d", f.AutoV1Hex);
            Assert.Equal("a555aa97891b77a3784190d37933b7dd", Convert.ToHexStringLower(fp.CastModelIds["bf16"]));
            Assert.Equal("5f7e647be359f5122730b8da5e8c46ef", Convert.ToHexStringLower(fp.CastModelIds["bf16(fp16)"]));
            Assert.Equal("79284bddf857d3edaa3d62a4e1d05dd9", Convert.ToHexStringLower(fp.CastModelIds["fp16"]));
            string[] want =
            [
                "denoiser:conv_in.weight fe0252b422d817fb018d4d0aaa7295d0 rows 1100 c35bdaefaeab9c09 sketch 55cc7d4b7e8a0ebd",
                "denoiser:input_blocks.1.0.weight 70cde80bc8923ca8120ac7867ab5e66d rows 777 ab4ad1400d756484 sketch 400eb6381e79c703",
                "denoiser:conv_out.weight 28158b8771a8a741f3b82538238606df rows 300 05eee7401e9963e9 sketch c370333495965536",
                "denoiser:mid_block.attentions.0.proj_in.weight 1def0e1c59502464b158e0755f0c8a0b rows 2049 9d210b4314d0dd61 sketch 47c2557039749c08",
                "vae:decoder.conv_in.weight 7c8f98a3517f278483f000793415e74f rows 0 ef46db3751d8e999 sketch 88bdd3eec91c2d3b",
            ];
            Assert.Equal(want, fp.Tensors.Select(t => $"{t.Canonical.Key} {Convert.ToHexStringLower(t.Hash!)} rows {t.Rows?.Length} {XxHash64.HashToUInt64(MemoryMarshal.AsBytes((t.Rows ?? []).AsSpan())):x16} sketch {XxHash64.HashToUInt64(MemoryMarshal.AsBytes(t.Sketch.AsSpan())):x16}"));

            // The tensor work alone (no file hashes, gaps skipped) gives the same prints.
            var alone = Fingerprinter.Compute(ModelReader.Read(path), new FingerprintOptions { FileHashes = false });
            Assert.Equal(fp.ModelIdHex, alone.ModelIdHex);
            Assert.Equal(fp.Tensors.Select(t => t.Rows!), alone.Tensors.Select(t => t.Rows!));
        }
        finally
        {
            File.Delete(path);
        }
    }

    // Benign deterministic bit patterns: every fp16/bf16 pattern appears (every 4th value counts through them),
    // the rest are small weight-like values; rows of 1,037-3,001 values straddle 32K-value batches and 4 MiB chunks.
    private static void WriteGolden(string path)
    {
        (string Name, string DType, long Rows, long Cols)[] ts =
        [
            ("model.diffusion_model.input_blocks.0.0.weight", "F16", 1100, 1037),
            ("model.diffusion_model.input_blocks.1.0.weight", "BF16", 777, 3001),
            ("model.diffusion_model.out.2.weight", "F32", 300, 5000),
            ("model.diffusion_model.middle_block.1.proj_in.weight", "F16", 2049, 1031),
            ("first_stage_model.decoder.conv_in.weight", "BF16", 64, 7),
        ];
        var header = new StringBuilder("{");
        long at = 0;
        foreach (var t in ts)
        {
            var bytes = t.Rows * t.Cols * (t.DType == "F32" ? 4 : 2);
            header.Append(System.Globalization.CultureInfo.InvariantCulture, $"\"{t.Name}\":{{\"dtype\":\"{t.DType}\",\"shape\":[{t.Rows},{t.Cols}],\"data_offsets\":[{at},{at + bytes}]}},");
            at += bytes;
        }

        header.Length--;
        header.Append('}');
        while ((8 + header.Length) % 8 != 0)
        {
            header.Append(' ');
        }

        using var f = File.Create(path);
        var n8 = new byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(n8, (ulong)header.Length);
        f.Write(n8);
        f.Write(Encoding.ASCII.GetBytes(header.ToString()));
        var s = 0x243F6A8885A308D3UL;
        long k = 0;
        foreach (var t in ts)
        {
            var size = t.DType == "F32" ? 4 : 2;
            var buf = new byte[t.Rows * t.Cols * size];
            for (var i = 0; i < buf.Length; i += size)
            {
                s = (s * 6364136223846793005UL) + 1442695040888963407UL;
                var r = (uint)(s >> 32);
                if (size == 2)
                {
                    var v = (k++ % 4 == 0) ? (ushort)(k / 4) : (ushort)((r & 0x8000) | (0x1C00 + (r % 0x1800)));
                    BinaryPrimitives.WriteUInt16LittleEndian(buf.AsSpan(i), v);
                }
                else
                {
                    var v = (k++ % 7 == 0) ? r : BitConverter.SingleToUInt32Bits(((int)(r % 20001) - 10000) * 1e-6f);
                    BinaryPrimitives.WriteUInt32LittleEndian(buf.AsSpan(i), v);
                }
            }

            f.Write(buf);
        }
    }
}
