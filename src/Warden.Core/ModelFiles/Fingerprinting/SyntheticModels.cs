namespace Warden.Core.ModelFiles;

/// <summary>Shape of a synthetic bank (see <see cref="SyntheticModels"/>).</summary>
/// <param name="Families">Architectures (disjoint tensor key sets).</param>
/// <param name="BasesPerFamily">Base models per architecture; every record is a fine-tune of one.</param>
/// <param name="Tensors">Sketched tensors per record.</param>
/// <param name="RowsPerComponent">Sampled row hashes per component (three components).</param>
/// <param name="Drift">Fine-tune drift (relative std of the change from the base).</param>
public sealed record SyntheticBankOptions(int Families = 8, int BasesPerFamily = 250, int Tensors = 16, int RowsPerComponent = 128, double Drift = 0.1);

/// <summary>
/// Deterministic synthetic registered models for scale tests and <c>warden bench models</c>: no files, only what a
/// record holds (sketches and sampled row hashes), generated from the record number so a bank of 100,000 can be
/// indexed without being held in memory. Records are fine-tunes of shared bases (siblings at cosine ≈ 0.99, so
/// the index meets the hard case of many related models), each with rows of its own.
/// </summary>
public static class SyntheticModels
{
    /// <summary>Sketch values per tensor (the fingerprint default).</summary>
    public const int SketchLength = 256;

    private static readonly string[] Components = ["denoiser", "te1", "vae"];

    /// <summary>Tensor key <paramref name="t"/> of architecture <paramref name="family"/>.</summary>
    public static string Key(int family, int t) => $"{Components[t % 3]}:arch{family}.blocks.{t}.weight";

    /// <summary>Record number <paramref name="i"/>.</summary>
    /// <param name="i">Record number.</param>
    /// <param name="o">Bank shape.</param>
    /// <param name="probesOnly">Only the tensors <see cref="NearIndex"/> probes (what building the index reads).</param>
    public static ModelRecord Record(int i, SyntheticBankOptions o, bool probesOnly = false)
    {
        ArgumentNullException.ThrowIfNull(o);
        var family = i % o.Families;
        var b = i / o.Families % o.BasesPerFamily;
        var tensors = new List<RecordTensor>(o.Tensors);
        var probes = probesOnly ? Probes(family, o.Tensors) : null;
        for (var t = 0; t < o.Tensors; t++)
        {
            if (probes is not null && !probes.Contains(t))
            {
                continue;
            }

            var sketch = Normals(Seed(1, family, b, t), SketchLength, 1.0);
            Add(sketch, Seed(2, i, t, 0), o.Drift);
            tensors.Add(new RecordTensor(Key(family, t), null, [1024, 1024], sketch));
        }

        var rows = new Dictionary<string, ulong[]>(StringComparer.Ordinal);
        foreach (var c in Components)
        {
            var r = new ulong[o.RowsPerComponent];
            var s = Seed(3, i, c.Length, c[0]);
            for (var k = 0; k < r.Length; k++)
            {
                r[k] = Next(ref s);
            }

            Array.Sort(r);
            rows[c] = r;
        }

        return new ModelRecord { Id = $"synthetic-{i}", Name = $"synthetic model {i}", Bank = "synthetic", Architecture = $"arch{family}", Tensors = tensors, Rows = rows };
    }

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<(int, int), HashSet<int>> ProbeCache = new();

    private static HashSet<int> Probes(int family, int tensors) => ProbeCache.GetOrAdd((family, tensors), k =>
    {
        var keys = Enumerable.Range(0, k.Item2).ToDictionary(t => Key(k.Item1, t), t => t, StringComparer.Ordinal);
        return [.. NearIndex.ProbeKeys(keys.Keys).Select(key => keys[key])];
    });

    /// <summary>
    /// A candidate derived from <paramref name="of"/>: its tensors with relative noise <paramref name="noise"/>, stored as
    /// <paramref name="dtype"/>, padded with <paramref name="extraTensors"/> unrelated tensors and <paramref name="extraRows"/>
    /// unrelated rows (a full checkpoint around the part that matches), holding <paramref name="rowShare"/> of the record's rows.
    /// </summary>
    public static ModelFingerprint Candidate(ModelRecord of, double noise, TensorDType dtype, int extraTensors, int extraRows, double rowShare, int seed)
    {
        ArgumentNullException.ThrowIfNull(of);
        var prints = new List<TensorPrint>();
        var t = 0;
        foreach (var r in of.Tensors)
        {
            var sketch = (float[])r.Sketch.Clone();
            Add(sketch, Seed(4, seed, t++, 0), noise);
            var colon = r.Key.IndexOf(':', StringComparison.Ordinal);
            prints.Add(new TensorPrint(r.Key, new CanonicalName(r.Key[..colon], r.Key[(colon + 1)..]), r.Shape, dtype, 1 << 20, new byte[16], null, sketch));
        }

        var s = Seed(5, seed, 0, 0);
        var rows = new List<ulong>();
        foreach (var (_, rs) in of.Rows)
        {
            rows.AddRange(rs.Where(_ => (Next(ref s) % 1000) < rowShare * 1000));
        }

        for (var k = 0; k < extraRows; k++)
        {
            rows.Add(Next(ref s));
        }

        for (var k = 0; k < extraTensors; k++)
        {
            var name = $"extra.blocks.{k}.weight";
            var chunk = k == 0 ? [.. rows] : Array.Empty<ulong>();
            prints.Add(new TensorPrint(name, new CanonicalName("denoiser", name), [320, 320], dtype, 320 * 320, new byte[16], null, Normals(Seed(6, seed, k, 0), SketchLength, 1.0), chunk));
        }

        if (extraTensors == 0)
        {
            prints[0] = prints[0] with { Rows = [.. rows] };
        }

        return new ModelFingerprint
        {
            Document = new ModelDocument { Path = "synthetic", Format = ModelFormat.Safetensors },
            Tensors = prints,
            Components = [],
        };
    }

    private static ulong Seed(int kind, int a, int b, int c) => Mix(((ulong)kind << 60) ^ ((ulong)(uint)a << 28) ^ ((ulong)(uint)b << 12) ^ (uint)c);

    private static void Add(float[] v, ulong seed, double relative)
    {
        if (relative == 0)
        {
            return;
        }

        double norm = 0;
        foreach (var x in v)
        {
            norm += x * x;
        }

        var noise = Normals(seed, v.Length, relative * Math.Sqrt(norm / v.Length));
        for (var k = 0; k < v.Length; k++)
        {
            v[k] += noise[k];
        }
    }

    private static float[] Normals(ulong seed, int n, double std)
    {
        var v = new float[n];
        var s = seed;
        for (var k = 0; k < n; k += 2)
        {
            // Box-Muller on two uniform (0, 1] draws.
            var u1 = ((Next(ref s) >> 11) + 1) * (1.0 / (1UL << 53));
            var u2 = (Next(ref s) >> 11) * (1.0 / (1UL << 53));
            var r = Math.Sqrt(-2 * Math.Log(u1)) * std;
            v[k] = (float)(r * Math.Cos(2 * Math.PI * u2));
            if (k + 1 < n)
            {
                v[k + 1] = (float)(r * Math.Sin(2 * Math.PI * u2));
            }
        }

        return v;
    }

    private static ulong Next(ref ulong s)
    {
        s += 0x9E3779B97F4A7C15UL;
        return Mix(s);
    }

    private static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
