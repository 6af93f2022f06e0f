using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Warden.Core.ModelFiles;

namespace Warden.Core.Tests.Models;

/// <summary>
/// A stored near index (the server's start-up snapshot) reads back to the same index, and a damaged copy never
/// reads as one: every truncation, another layout, out-of-range record numbers and unsorted keys are refused
/// with <see cref="InvalidDataException"/> (the server then rebuilds from the record files).
/// </summary>
public class NearIndexStorageTests
{
    private static readonly SyntheticBankOptions Options = new(Tensors: 40);

    private static readonly Lazy<(NearIndex Index, byte[] Bytes)> Stored = new(() =>
    {
        var index = NearIndex.Build(300, i => SyntheticModels.Record(i, Options));
        using var ms = new MemoryStream();
        index.WriteTo(ms);
        return (index, ms.ToArray());
    });

    private static NearIndex Read(byte[] bytes)
    {
        ReadOnlySpan<byte> data = bytes;
        var index = NearIndex.ReadFrom(ref data, i => SyntheticModels.Record(i, Options));
        Assert.True(data.IsEmpty);
        return index;
    }

    [Property(MaxTest = 20)]
    public bool A_stored_index_answers_as_the_built_one(PositiveInt seed)
    {
        var (built, bytes) = Stored.Value;
        var read = Read(bytes);
        var of = SyntheticModels.Record(seed.Get % 300, Options);
        var fp = SyntheticModels.Candidate(of, 0.02, TensorDType.F32, 0, 2000, 0.8, seed.Get);
        return read.Count == built.Count && read.Postings == built.Postings
            && read.SketchCandidates(fp).SequenceEqual(built.SketchCandidates(fp))
            && read.RowCandidates(fp).SequenceEqual(built.RowCandidates(fp));
    }

    [Property(MaxTest = 60)]
    public bool Every_truncation_is_refused(PositiveInt cut)
    {
        var bytes = Stored.Value.Bytes;
        var length = cut.Get % bytes.Length;
        return Refused(bytes[..length]);
    }

    [Property(MaxTest = 40)]
    public Property Damage_that_breaks_the_structure_is_refused() =>
        Prop.ForAll(Gen.Choose(0, 3).Zip(Gen.Choose(0, int.MaxValue)).ToArbitrary(), p =>
        {
            var (kind, seed) = p;
            var bytes = (byte[])Stored.Value.Bytes.Clone();
            var rng = new Random(seed);
            var sketchKeys = BitConverter.ToInt64(bytes, 28);
            var at = 36 + (int)(8 * sketchKeys); // the sketch postings' record-number array
            switch (kind)
            {
                case 0: // another layout (a parameter of the index changed)
                    bytes[rng.Next(0, 24)] ^= (byte)(1 << rng.Next(8));
                    break;
                case 1: // a record number past the count
                    BitConverter.TryWriteBytes(bytes.AsSpan(at + 8 + (4 * rng.Next(0, (int)sketchKeys))), 300 + rng.Next(0, 1000));
                    break;
                case 2: // keys out of order
                    var k = rng.Next(1, (int)sketchKeys);
                    BitConverter.TryWriteBytes(bytes.AsSpan(36 + (8 * k)), 0UL);
                    BitConverter.TryWriteBytes(bytes.AsSpan(36 + (8 * (k - 1))), ulong.MaxValue);
                    break;
                default: // an array length past the data
                    BitConverter.TryWriteBytes(bytes.AsSpan(28), long.MaxValue - rng.Next(0, 1000));
                    break;
            }

            return Refused(bytes);
        });

    private static bool Refused(byte[] bytes)
    {
        try
        {
            Read(bytes);
            return false;
        }
        catch (InvalidDataException)
        {
            return true;
        }
    }
}
