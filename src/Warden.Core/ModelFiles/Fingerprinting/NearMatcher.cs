namespace Warden.Core.ModelFiles;

/// <summary>A near (non-exact) match of a fingerprint with a registered model, for human review.</summary>
/// <param name="Tier">T3 (row containment) or T4 (sketch similarity).</param>
/// <param name="Record">The registered model.</param>
/// <param name="Score">T4: median per-tensor cosine; T3: share of the component's sampled rows found.</param>
/// <param name="Coverage">T4: fraction of the candidate's tensors paired; T3: sampled rows of the registered component.</param>
/// <param name="Component">T3: the registered component contained.</param>
/// <param name="Precision">R: the candidate's reduced precision (fp8-e4m3, Q4_K, …).</param>
/// <param name="Error">R: estimated relative error of the candidate's weights (median per-tensor ‖c − r‖ / ‖r‖ over the sketches).</param>
public sealed record NearHit(string Tier, ModelRecord Record, double Score, double Coverage, string? Component = null, string? Precision = null, double? Error = null);

/// <summary>One registered model's (or adapter's) share in a derivation.</summary>
/// <param name="Record">Registered model or adapter.</param>
/// <param name="Coefficient">Non-negative weight (for adapters: the strength it was baked in with).</param>
public sealed record DerivationTerm(ModelRecord Record, double Coefficient);

/// <summary>A T5 finding: the candidate's sketches explained as a non-negative mix of registered models and adapters.</summary>
/// <param name="Kind">merge, lora-bake-in, derived.</param>
/// <param name="Terms">Terms with coefficient ≥ 0.05, largest first.</param>
/// <param name="Explained">Share of the candidate's change from the allow-listed bases that the fit explains (1 = all).</param>
/// <param name="Tensors">Tensors used.</param>
public sealed record Derivation(string Kind, IReadOnlyList<DerivationTerm> Terms, double Explained, int Tensors);

/// <summary>
/// Near matching over sketches (MFv1 T4/T5). Sketches are linear in the weights, so a merge
/// a·R + b·U or a bake-in B + s·ΔL has sketch a·sketch(R) + b·sketch(U) (resp. sketch(B) + s·ΔL at the same
/// positions): non-negative least squares over the registered columns recovers the coefficients. Allow-listed
/// records (base models) soak up what every fine-tune of a base shares, so only the change from the base is
/// attributed to block-listed models. Results are scores for review, never automatic action.
/// </summary>
public static class NearMatcher
{
    /// <summary>Median cosine at or above which a model is reported as a near copy (quantised, noised, re-cast).</summary>
    public const double NearCopyCosine = 0.999;

    /// <summary>Minimum coefficient for a term to be reported.</summary>
    public const double MinCoefficient = 0.05;

    /// <summary>Minimum share of the change from the base a derivation must explain.</summary>
    public const double MinExplained = 0.5;

    /// <summary>
    /// Relative error (‖stored − original‖ / ‖original‖ per tensor) within which a copy stored as <paramref name="t"/>
    /// is "the same weights, reduced precision": about three times the rounding error of that type on
    /// Gaussian-like weights (fp16 2⁻¹¹, bf16 2⁻⁸, e4m3 2⁻⁴, e5m2 2⁻³ relative; a b-bit block quant ≈ range / 2ᵇ / √12).
    /// 0 for types that are not reduced (fp32/fp64).
    /// </summary>
    public static double PrecisionTolerance(TensorDType t) => t switch
    {
        TensorDType.F16 => 0.001,
        TensorDType.BF16 => 0.008,
        TensorDType.F8E4M3 => 0.08,
        TensorDType.F8E5M2 => 0.15,
        TensorDType.Q8_0 => 0.02,
        TensorDType.Q6_K => 0.05,
        TensorDType.Q5_0 or TensorDType.Q5_1 or TensorDType.Q5_K => 0.1,
        TensorDType.Q4_0 or TensorDType.Q4_1 or TensorDType.Q4_K or TensorDType.IQ4_NL or TensorDType.IQ4_XS => 0.2,
        TensorDType.Q3_K => 0.25,
        TensorDType.Q2_K => 0.4,
        _ => 0,
    };

    /// <summary>Share of a record's paired tensors that must lie within their type's tolerance for an R hit.</summary>
    public const double MinWithinTolerance = 0.9;

    /// <summary>
    /// R and T4: per-tensor sketch comparisons against every record of the same kind. R ("same weights, reduced
    /// precision") when the candidate is stored in reduced precision (fp16/bf16/fp8/GGUF quants) and at least
    /// <see cref="MinWithinTolerance"/> of the paired tensors differ from the record by no more than their type's
    /// <see cref="PrecisionTolerance"/>; else T4 when the median cosine is at least <see cref="NearCopyCosine"/>.
    /// </summary>
    public static List<NearHit> Similar(ModelFingerprint fp, IReadOnlyList<ModelRecord> records)
    {
        ArgumentNullException.ThrowIfNull(fp);
        ArgumentNullException.ThrowIfNull(records);
        var hits = new List<NearHit>();
        var mine = Vectors(fp);
        if (mine.Count == 0)
        {
            return hits;
        }

        var dtypes = new Dictionary<string, TensorDType>(StringComparer.Ordinal);
        if (fp.Lora.Count == 0)
        {
            foreach (var t in fp.Tensors)
            {
                dtypes.TryAdd(t.Canonical.Key, t.DType);
            }
        }

        foreach (var r in records)
        {
            var theirs = r.IsAdapter ? r.Modules : r.Tensors;
            if (r.IsAdapter != (fp.Lora.Count > 0))
            {
                continue;
            }

            var cosines = new List<double>();
            var errors = new List<double>();
            var within = 0;
            var reduced = new Dictionary<TensorDType, int>();
            foreach (var t in theirs)
            {
                if (mine.TryGetValue(t.Key, out var v) && v.Length == t.Sketch.Length && v.Length > 0)
                {
                    cosines.Add(Cosine(v, t.Sketch));
                    var e = RelativeError(v, t.Sketch);
                    errors.Add(e);
                    var dt = dtypes.GetValueOrDefault(t.Key, TensorDType.F32);
                    var tol = PrecisionTolerance(dt);
                    if (tol > 0)
                    {
                        reduced[dt] = reduced.GetValueOrDefault(dt) + 1;
                    }

                    if (e <= Math.Max(tol, 1e-7))
                    {
                        within++;
                    }
                }
            }

            if (cosines.Count == 0)
            {
                continue;
            }

            cosines.Sort();
            errors.Sort();
            var median = cosines[cosines.Count / 2];
            var coverage = cosines.Count / (double)mine.Count;
            if (coverage < 0.5)
            {
                continue;
            }

            if (reduced.Count > 0 && within >= MinWithinTolerance * cosines.Count)
            {
                var precision = reduced.OrderByDescending(p => p.Value).ThenBy(p => p.Key).First().Key;
                hits.Add(new NearHit("R", r, median, coverage, null, PrecisionName(precision), errors[errors.Count / 2]));
            }
            else if (median >= NearCopyCosine)
            {
                hits.Add(new NearHit("T4", r, median, coverage));
            }
        }

        return [.. hits.OrderByDescending(h => h.Score)];
    }

    /// <summary>Share of a registered component's sampled rows the candidate must hold for a T3 hit.</summary>
    public const double MinContainment = 0.5;

    /// <summary>
    /// T3: registered components whose sampled rows the candidate contains (≥ <see cref="MinContainment"/>):
    /// extracted or block-copied parts, fused/split layouts (qkv) that change tensor hashes but keep rows.
    /// Components in <paramref name="skip"/> (already matched exactly) are not reported.
    /// </summary>
    public static List<NearHit> Contained(ModelFingerprint fp, IReadOnlyList<ModelRecord> records, Func<ModelRecord, string, bool>? skip = null)
    {
        ArgumentNullException.ThrowIfNull(fp);
        ArgumentNullException.ThrowIfNull(records);
        var mine = new HashSet<ulong>(fp.Tensors.Where(t => t.Rows is not null).SelectMany(t => t.Rows!));
        var hits = new List<NearHit>();
        if (mine.Count == 0)
        {
            return hits;
        }

        foreach (var r in records.Where(r => !r.IsAdapter))
        {
            foreach (var (component, rows) in r.Rows)
            {
                if (rows.Length < 4 || skip?.Invoke(r, component) == true)
                {
                    continue;
                }

                var found = rows.Count(mine.Contains);
                var share = found / (double)rows.Length;
                if (share >= MinContainment)
                {
                    hits.Add(new NearHit("T3", r, share, rows.Length, component));
                }
            }
        }

        return [.. hits.OrderByDescending(h => h.Score)];
    }

    /// <summary>T5: the best non-negative explanation of a full model by registered models and adapters, or null.</summary>
    /// <param name="fp">Candidate.</param>
    /// <param name="records">Registered records.</param>
    /// <param name="isAllowed">True for records from allow-list banks (bases).</param>
    public static Derivation? Derive(ModelFingerprint fp, IReadOnlyList<ModelRecord> records, Func<ModelRecord, bool> isAllowed)
    {
        ArgumentNullException.ThrowIfNull(fp);
        ArgumentNullException.ThrowIfNull(records);
        ArgumentNullException.ThrowIfNull(isAllowed);
        if (fp.Lora.Count > 0)
        {
            return null;
        }

        var cand = fp.Tensors.Where(t => t.Hash is not null && t.Sketch.Length > 0 && t.Canonical.Component != "ema").ToList();
        if (cand.Count == 0)
        {
            return null;
        }

        // Full-model columns must cover at least half the candidate's tensors; rows are the tensors they all share.
        var full = new List<(ModelRecord R, Dictionary<string, float[]> Map)>();
        foreach (var r in records.Where(r => !r.IsAdapter))
        {
            var map = r.Tensors.GroupBy(t => t.Key, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.First().Sketch, StringComparer.Ordinal);
            var shared = cand.Count(t => map.TryGetValue(t.Canonical.Key, out var s) && s.Length == t.Sketch.Length);
            if (shared >= Math.Max(1, cand.Count / 2))
            {
                full.Add((r, map));
            }
        }

        if (full.Count == 0)
        {
            return null;
        }

        if (full.Count > 24)
        {
            full = [.. full.OrderByDescending(c => MeanCosine(cand, c.Map)).Take(24)];
        }

        var rows = cand.Where(t => full.All(c => c.Map.TryGetValue(t.Canonical.Key, out var s) && s.Length == t.Sketch.Length)).ToList();
        var adapters = new List<(ModelRecord R, Dictionary<string, float[]> Map)>();
        foreach (var r in records.Where(r => r.IsAdapter))
        {
            var map = r.Modules.GroupBy(t => t.Key, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.First().Sketch, StringComparer.Ordinal);
            if (rows.Any(t => t.Canonical.LoraKey is { } k && map.TryGetValue(k, out var s) && s.Length == t.Sketch.Length))
            {
                adapters.Add((r, map));
            }
        }

        if (rows.Count == 0)
        {
            return null;
        }

        // Each tensor weighs the same whatever its scale (norm weights ≈ 1 would otherwise dominate).
        var columns = full.Select(c => c.R).Concat(adapters.Select(a => a.R)).ToList();
        var n = columns.Count;
        var bList = new List<double>();
        var aCols = Enumerable.Range(0, n).Select(_ => new List<double>()).ToArray();
        foreach (var t in rows)
        {
            var norm = Math.Sqrt(t.Sketch.Sum(x => (double)x * x));
            var w = norm > 0 ? 1 / norm : 1;
            for (var i = 0; i < t.Sketch.Length; i++)
            {
                bList.Add(t.Sketch[i] * w);
                for (var c = 0; c < full.Count; c++)
                {
                    aCols[c].Add(full[c].Map[t.Canonical.Key][i] * w);
                }

                for (var a = 0; a < adapters.Count; a++)
                {
                    var v = t.Canonical.LoraKey is { } k && adapters[a].Map.TryGetValue(k, out var s) && s.Length == t.Sketch.Length ? s[i] : 0f;
                    aCols[full.Count + a].Add(v * w);
                }
            }
        }

        var b = bList.ToArray();
        var A = aCols.Select(c => c.ToArray()).ToArray();
        var x = Nnls(A, b, Enumerable.Range(0, n).ToArray());
        var residual = Residual(A, b, x);
        var baseIdx = Enumerable.Range(0, full.Count).Where(i => isAllowed(columns[i])).ToArray();
        double baseResidual;
        if (baseIdx.Length > 0)
        {
            var xb = Nnls(A, b, baseIdx);
            baseResidual = Residual(A, b, xb);
        }
        else
        {
            baseResidual = b.Sum(v => v * v);
        }

        var explained = baseResidual <= 0 ? 0 : Math.Clamp(1 - (residual / baseResidual), 0, 1);
        var terms = Enumerable.Range(0, n).Where(i => x[i] >= MinCoefficient).Select(i => new DerivationTerm(columns[i], x[i])).OrderByDescending(t => t.Coefficient).ToList();
        var blocked = terms.Where(t => !isAllowed(t.Record)).ToList();
        if (blocked.Count == 0 || explained < MinExplained || blocked.All(t => t.Coefficient < 0.1))
        {
            return null;
        }

        var kind = blocked.Any(t => t.Record.IsAdapter) ? "lora-bake-in"
            : terms.Count(t => !t.Record.IsAdapter) >= 2 ? "merge"
            : "derived";
        return new Derivation(kind, terms, explained, rows.Count);
    }

    /// <summary>Name of a reduced precision as reported (fp16, bf16, fp8-e4m3, fp8-e5m2, Q8_0, Q4_K, …).</summary>
    public static string PrecisionName(TensorDType t) => t switch
    {
        TensorDType.F16 => "fp16",
        TensorDType.BF16 => "bf16",
        TensorDType.F8E4M3 => "fp8-e4m3",
        TensorDType.F8E5M2 => "fp8-e5m2",
        _ => t.ToString(),
    };

    /// <summary>‖a − b‖ / ‖b‖ (0 when both are zero, 1 when only b is).</summary>
    public static double RelativeError(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        double diff = 0, nb = 0;
        for (var i = 0; i < a.Length; i++)
        {
            var d = (double)a[i] - b[i];
            diff += d * d;
            nb += (double)b[i] * b[i];
        }

        return nb == 0 ? (diff == 0 ? 0 : 1) : Math.Sqrt(diff / nb);
    }

    /// <summary>Cosine similarity (0 when either vector is zero).</summary>
    public static double Cosine(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        double dot = 0, na = 0, nb = 0;
        for (var i = 0; i < a.Length; i++)
        {
            dot += (double)a[i] * b[i];
            na += (double)a[i] * a[i];
            nb += (double)b[i] * b[i];
        }

        return na == 0 || nb == 0 ? (na == nb ? 1 : 0) : dot / Math.Sqrt(na * nb);
    }

    /// <summary>
    /// Non-negative least squares min ‖A x − b‖, x ≥ 0, over the columns in <paramref name="use"/> (others stay 0):
    /// cyclic coordinate descent on the normal equations (few columns, so it is exact to double precision).
    /// </summary>
    public static double[] Nnls(double[][] columns, double[] b, int[] use)
    {
        ArgumentNullException.ThrowIfNull(columns);
        ArgumentNullException.ThrowIfNull(b);
        ArgumentNullException.ThrowIfNull(use);
        var n = columns.Length;
        var g = new double[n, n];
        var h = new double[n];
        foreach (var i in use)
        {
            h[i] = Dot(columns[i], b);
            foreach (var j in use)
            {
                g[i, j] = Dot(columns[i], columns[j]);
            }
        }

        var x = new double[n];
        for (var sweep = 0; sweep < 20_000; sweep++)
        {
            var change = 0.0;
            foreach (var i in use)
            {
                if (g[i, i] <= 0)
                {
                    continue;
                }

                var grad = h[i];
                foreach (var j in use)
                {
                    grad -= g[i, j] * x[j];
                }

                var next = Math.Max(0, x[i] + (grad / g[i, i]));
                change = Math.Max(change, Math.Abs(next - x[i]));
                x[i] = next;
            }

            if (change < 1e-10)
            {
                break;
            }
        }

        return x;
    }

    private static double Residual(double[][] a, double[] b, double[] x)
    {
        double sum = 0;
        for (var r = 0; r < b.Length; r++)
        {
            var v = b[r];
            for (var c = 0; c < a.Length; c++)
            {
                v -= a[c][r] * x[c];
            }

            sum += v * v;
        }

        return sum;
    }

    private static double Dot(double[] a, double[] b)
    {
        double s = 0;
        for (var i = 0; i < a.Length; i++)
        {
            s += a[i] * b[i];
        }

        return s;
    }

    private static double MeanCosine(List<TensorPrint> cand, Dictionary<string, float[]> map)
    {
        var c = cand.Where(t => map.TryGetValue(t.Canonical.Key, out var s) && s.Length == t.Sketch.Length).Select(t => Cosine(t.Sketch, map[t.Canonical.Key])).ToList();
        return c.Count == 0 ? 0 : c.Average();
    }

    internal static Dictionary<string, float[]> Vectors(ModelFingerprint fp)
    {
        var d = new Dictionary<string, float[]>(StringComparer.Ordinal);
        if (fp.Lora.Count > 0)
        {
            foreach (var m in fp.Lora)
            {
                d.TryAdd(m.Key, m.Delta);
            }
        }
        else
        {
            foreach (var t in fp.Tensors.Where(t => t.Sketch.Length > 0 && t.Canonical.Component != "ema"))
            {
                d.TryAdd(t.Canonical.Key, t.Sketch);
            }
        }

        return d;
    }
}
