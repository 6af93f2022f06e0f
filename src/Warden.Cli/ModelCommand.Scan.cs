using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Warden.Core.Banks;
using Warden.Core.ModelFiles;
using Warden.Core.Signals;
using Warden.Storage;

namespace Warden.Cli;

internal static partial class ModelCommand
{
    private sealed record ExactHit(ModelSignal Signal, MatchHit Hit, string Model, string MatchedPart, string? RecordId);

    private static Command ScanCommand(TextWriter output, TextWriter error)
    {
        var paths = Paths();
        var format = CommonOptions.Format("Output: 'table' or 'jsonl' (one object per model).", "table", "jsonl");
        var failOnMatch = new Option<bool>("--fail-on-match") { Description = $"Also exit with {Dangerous} when a model matched a block list exactly (T0-T2) or by derivation (T5)." };
        var noNear = new Option<bool>("--no-near") { Description = "Exact tiers only (no sketch comparison)." };
        var noProgress = NoProgress();
        var noCache = new Option<bool>("--no-index-cache") { Description = "Build the indexes from the database and do not keep a snapshot beside it." };
        var db = CommonOptions.Db();
        var command = new Command("scan", "Match models against the enabled banks. Tiers: T0 file hash (SHA-256, AutoV1/V2, BLAKE3); T1 AutoV3 (metadata-only edits);\n" +
            "T2 MFv1 model/component ID (renamed keys, ckpt↔safetensors, EMA pruned, fp16/bf16 casts, diffusers/shards, extracted components);\n" +
            "L lineage pointers in metadata (ss_new_sd_model_hash, sd_merge_models, modelspec.hash_sha256); T4 sketch similarity (quantised/noised copies)\n" +
            "and T5 derivation (merges and LoRA bake-ins with estimated coefficients) — T4/T5 are scores for review, not automatic action.\n" +
            "Every pickle is interpreted without executing anything; dangerous ones exit " + Dangerous + ".\n\n" +
            "Example:\n  warden model scan --format jsonl uploads/")
        {
            paths, format, failOnMatch, noNear, noProgress, noCache, db,
        };
        command.SetAction(p => CommonOptions.WithStore(p.GetRequiredValue(db), error, store =>
        {
            var banks = store.ListBanks();
            if (Warden.Cli.ScanCommand.RefuseNothingToMatch(store, banks, p.GetValue(failOnMatch), error) is { } refused)
            {
                return refused;
            }

            using var matcher = MatcherCache.Open(store, banks, !p.GetValue(noCache), error, out _);
            var enabled = banks.Where(b => b.Enabled).ToList();
            var kinds = enabled.ToDictionary(b => b.Name, b => b.Kind, StringComparer.Ordinal);
            var records = p.GetValue(noNear) ? [] : new ModelRecordStore(store.Path + ".models").Load(enabled.Select(b => b.Name), w => error.WriteLine($"warden: model record {w}"));
            error.WriteLine($"warden: matching against {matcher.Count} entries in {enabled.Count} enabled banks; {records.Count} models registered for near matching");
            var jsonl = p.GetRequiredValue(format) == "jsonl";
            var groups = new Dictionary<string, List<string>>(StringComparer.Ordinal);
            var matched = 0;
            var code = Run(p.GetRequiredValue(paths), error, !p.GetValue(noProgress), new FingerprintOptions { AutoV3AllFormats = false }, (item, doc, fp) =>
            {
                var arch = ModelArchitecture.Classify(doc);
                var exact = Exact(store, matcher, fp!, doc);
                var exactIds = exact.Select(e => e.RecordId).Where(id => id is not null).ToHashSet(StringComparer.Ordinal);
                var near = records.Count == 0 ? [] : NearMatcher.Similar(fp!, records).Where(h => !exactIds.Contains(h.Record.Id)).ToList();
                var exactParts = exact.Where(e => e.RecordId is not null && e.MatchedPart.StartsWith("component:", StringComparison.Ordinal))
                    .Select(e => (e.RecordId!, e.MatchedPart["component:".Length..].Split('@')[0])).ToHashSet();
                var contained = records.Count == 0 ? [] : NearMatcher.Contained(fp!, records, (r, c) => exactIds.Contains(r.Id) && exact.Any(e => e.RecordId == r.Id && e.Signal.Type == "mfv1_model") || exactParts.Contains((r.Id, c)))
                    .Where(h => !near.Any(n => n.Record.Id == h.Record.Id)).ToList();
                // A whole-model exact hit or a near copy says it all; a shared component (an untouched VAE) does not.
                var wholeModel = exact.Any(e => e.Signal.Tier is "T0" or "T1" || e.Signal.Type == Warden.Core.Signals.SignalTypes.Mfv1Model.Name);
                var derivation = records.Count == 0 || wholeModel || near.Count > 0 ? null
                    : NearMatcher.Derive(fp!, records, r => kinds.TryGetValue(r.Bank, out var k) && k == BankKind.AllowList);
                if (exact.Any(e => e.Hit.Bank.Kind == BankKind.BlockList && e.Signal.Tier != "L") || (derivation is not null))
                {
                    matched++;
                }

                if (fp!.ModelIdHex is { } mid)
                {
                    if (!groups.TryGetValue(mid, out var g))
                    {
                        groups[mid] = g = [];
                    }

                    g.Add(item);
                }

                near.AddRange(contained);
                if (jsonl)
                {
                    CommonOptions.WriteJsonLine(output, j => WriteScanJson(j, item, doc, arch, fp, exact, near, derivation));
                }
                else
                {
                    WriteScanTable(output, item, doc, arch, fp, exact, near, derivation);
                }
            });
            output.Flush();
            var copies = groups.Where(g => g.Value.Count > 1).ToList();
            foreach (var g in copies)
            {
                error.WriteLine($"warden: same model (mfv1_model {g.Key}): {string.Join(", ", g.Value)}");
            }

            error.WriteLine($"warden: {matched} models matched a block list (exact or derivation); {copies.Count} groups of re-packaged copies among the scanned models");
            return code == WardenCli.Ok && p.GetValue(failOnMatch) && matched > 0 ? Dangerous : code;
        }));
        return command;
    }

    private static List<ExactHit> Exact(BankStore store, BankMatcher matcher, ModelFingerprint fp, ModelDocument doc)
    {
        var hits = new List<(ModelSignal Signal, MatchHit Hit)>();
        foreach (var (s, signal) in ModelFileSignals.Adapt(ModelSignals.Identity(fp).Concat(ModelSignals.Lineage(doc))))
        {
            foreach (var h in matcher.MatchSignal(signal.Type.Name, signal.Value))
            {
                hits.Add((s, h));
            }
        }

        if (fp.File?.AutoV3Short is { } v3 && doc.Metadata.TryGetValue("sshs_model_hash", out var claimed) && claimed.Length >= 12
            && !claimed.StartsWith(v3, StringComparison.OrdinalIgnoreCase))
        {
            doc.Flag(AnomalySeverity.Warning, "metadata.sshs-mismatch", $"sshs_model_hash {claimed[..12]} differs from the file's AutoV3 {v3}: tensors changed after training metadata was written");
        }

        var entries = store.GetEntries(hits.Select(h => h.Hit.EntryId));
        return [.. hits.Select(h =>
        {
            entries.TryGetValue(h.Hit.EntryId, out var e);
            var model = e?.Labels.GetValueOrDefault("model") ?? "?";
            var id = e?.ExternalId is { } x && x.StartsWith("model:", StringComparison.Ordinal) ? x["model:".Length..] : null;
            return new ExactHit(h.Signal, h.Hit, model, e?.Note ?? string.Empty, id);
        })];
    }

    private static void WriteScanJson(Utf8JsonWriter j, string item, ModelDocument doc, ArchitectureGuess arch, ModelFingerprint? fp, List<ExactHit> exact, List<NearHit> near, Derivation? derivation)
    {
        WriteDocument(j, item, doc, arch);
        WriteHashes(j, fp!);
        j.WriteStartArray("hits");
        foreach (var e in exact)
        {
            j.WriteStartObject();
            j.WriteString("tier", e.Signal.Tier);
            j.WriteString("signal_type", e.Signal.Type);
            j.WriteString("signal", e.Signal.Value);
            j.WriteString("part", e.Signal.Part);
            j.WriteString("bank", e.Hit.Bank.Name);
            j.WriteString("bank_kind", BankCommand.Kind(e.Hit.Bank.Kind));
            j.WriteString("model", e.Model);
            j.WriteString("matched_part", e.MatchedPart);
            j.WriteNumber("entry_id", e.Hit.EntryId);
            j.WriteEndObject();
        }

        foreach (var n in near)
        {
            j.WriteStartObject();
            j.WriteString("tier", n.Tier);
            j.WriteString("bank", n.Record.Bank);
            j.WriteString("model", n.Record.Name);
            j.WriteNumber("score", Math.Round(n.Score, 6));
            j.WriteNumber("coverage", Math.Round(n.Coverage, 4));
            if (n.Component is not null)
            {
                j.WriteString("component", n.Component);
            }

            if (n.Precision is not null)
            {
                j.WriteString("precision", n.Precision);
                j.WriteNumber("estimated_error", Math.Round(n.Error ?? 0, 6));
            }

            j.WriteBoolean("review", true);
            j.WriteEndObject();
        }

        j.WriteEndArray();
        if (derivation is not null)
        {
            j.WriteStartObject("derivation");
            j.WriteString("tier", "T5");
            j.WriteString("kind", derivation.Kind);
            j.WriteNumber("explained", Math.Round(derivation.Explained, 4));
            j.WriteNumber("tensors", derivation.Tensors);
            j.WriteBoolean("review", true);
            j.WriteStartArray("terms");
            foreach (var t in derivation.Terms)
            {
                j.WriteStartObject();
                j.WriteString("model", t.Record.Name);
                j.WriteString("bank", t.Record.Bank);
                j.WriteBoolean("adapter", t.Record.IsAdapter);
                j.WriteNumber("coefficient", Math.Round(t.Coefficient, 4));
                j.WriteEndObject();
            }

            j.WriteEndArray();
            j.WriteEndObject();
        }
    }

    private static void WriteScanTable(TextWriter output, string item, ModelDocument doc, ArchitectureGuess arch, ModelFingerprint? fp, List<ExactHit> exact, List<NearHit> near, Derivation? derivation)
    {
        output.WriteLine($"{item}");
        output.WriteLine($"  {Format(doc.Format)}, {arch.Summary}, pickle {Verdict(doc)}, mfv1_model {fp?.ModelIdHex ?? "-"}");
        foreach (var e in exact)
        {
            output.WriteLine($"  {e.Signal.Tier} {e.Signal.Type} ({e.Signal.Part}) = {e.Model} [{e.MatchedPart}] in {e.Hit.Bank.Name} ({BankCommand.Kind(e.Hit.Bank.Kind)})");
        }

        foreach (var n in near)
        {
            output.WriteLine(n.Tier == "R"
                ? string.Create(CultureInfo.InvariantCulture, $"  R same weights, reduced precision ({n.Precision}) as {n.Record.Name} in {n.Record.Bank}: estimated error {n.Error:P2}, coverage {n.Coverage:P0} (review)")
                : n.Tier == "T3"
                ? string.Create(CultureInfo.InvariantCulture, $"  T3 contains {n.Score:P0} of the {n.Coverage:F0} sampled rows of {n.Record.Name}'s {n.Component} ({n.Record.Bank}, review)")
                : string.Create(CultureInfo.InvariantCulture, $"  {n.Tier} near copy of {n.Record.Name} in {n.Record.Bank}: median cosine {n.Score:F6}, coverage {n.Coverage:P0} (review)"));
        }

        if (derivation is not null)
        {
            var terms = string.Join(" + ", derivation.Terms.Select(t => string.Create(CultureInfo.InvariantCulture, $"{t.Coefficient:F2}×{t.Record.Name}{(t.Record.IsAdapter ? " (LoRA)" : string.Empty)}")));
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  T5 {derivation.Kind}: {terms}; explains {derivation.Explained:P0} of the change from the bases (review)"));
        }

        WriteFindings(output, doc);
    }
}
