using BenchmarkDotNet.Attributes;
using Warden.Core.Hashing.Pdq;

namespace Warden.Bench;

/// <summary>The PDQ stages on a 512x512 luma image (the CLI's working size) and the whole core.</summary>
[MemoryDiagnoser]
public class PdqStageBenchmarks
{
    private const int N = 512;
    private readonly float[] _luma = new float[N * N];
    private readonly float[] _work1 = new float[N * N];
    private readonly float[] _work2 = new float[N * N];
    private readonly float[] _b64 = new float[64 * 64];
    private readonly float[] _t16x64 = new float[16 * 64];
    private readonly float[] _b16 = new float[16 * 16];
    private readonly byte[] _rgb = new byte[N * N * 3];
    private readonly PdqHasher _hasher = new();

    [GlobalSetup]
    public void Setup()
    {
        var rng = new Random(1);
        rng.NextBytes(_rgb);
        PdqStages.FillLuma(_rgb, N, N, N * 3, 3, _luma);
        _luma.CopyTo(_work1, 0);
        PdqStages.JaroszFilter(_work1, _work2, N, N, 4, 4);
        PdqStages.Decimate(_work1, N, N, _b64);
        PdqStages.Dct64To16(_b64, _t16x64, _b16);
    }

    [Benchmark]
    public void Luma() => PdqStages.FillLuma(_rgb, N, N, N * 3, 3, _work1);

    [Benchmark]
    public void Jarosz()
    {
        _luma.CopyTo(_work1, 0);
        PdqStages.JaroszFilter(_work1, _work2, N, N, PdqStages.JaroszWindowSize(N, 64), PdqStages.JaroszWindowSize(N, 64));
    }

    [Benchmark]
    public void Decimate() => PdqStages.Decimate(_work1, N, N, _b64);

    [Benchmark]
    public int Quality() => PdqStages.Quality(_b64);

    [Benchmark]
    public void Dct() => PdqStages.Dct64To16(_b64, _t16x64, _b16);

    [Benchmark]
    public float TorbenMedian() => PdqStages.Torben(_b16);

    [Benchmark]
    public PdqHash Bits() => PdqStages.ToHash(_b16);

    [Benchmark]
    public PdqResult WholeCore512() => _hasher.Hash(_rgb, N, N, N * 3, 3, PdqResize.FullResolution);

    [Benchmark]
    public PdqResult WholeCore512Dihedral() => _hasher.Hash(_rgb, N, N, N * 3, 3, PdqResize.FullResolution, dihedral: true);
}

/// <summary>Hamming distance: one pair, and a linear scan over 1M hashes (the brute-force floor for matching).</summary>
public class HammingBenchmarks
{
    private PdqHash[] _hashes = [];
    private PdqHash _query;

    [Params(1_000_000)]
    public int Count { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var rng = new Random(7);
        _hashes = new PdqHash[Count];
        for (var i = 0; i < Count; i++)
        {
            _hashes[i] = new PdqHash((ulong)rng.NextInt64(), (ulong)rng.NextInt64(), (ulong)rng.NextInt64(), (ulong)rng.NextInt64());
        }

        _query = _hashes[Count / 2];
    }

    [Benchmark(OperationsPerInvoke = 1)]
    public int Pair() => _hashes[0].DistanceTo(_query);

    [Benchmark]
    public int LinearScanWithin31()
    {
        var matches = 0;
        var q = _query;
        foreach (ref readonly var h in _hashes.AsSpan())
        {
            if (h.DistanceTo(q) <= 31)
            {
                matches++;
            }
        }

        return matches;
    }
}
