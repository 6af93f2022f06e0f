using System.Diagnostics;
using System.Globalization;
using Warden.Core.ModelFiles;

namespace Warden.Bench;

/// <summary>
/// `bench model-index [--models N]`: the server's model index start-up over a bank of N registered models, built from
/// the record files, then loaded from its snapshot. Here rather than in `warden bench`, which must not load the
/// server assembly (only serve and key commands do).
/// </summary>
internal static class ModelIndexStartupCommand
{
    public static int Run(string[] args)
    {
        var n = 100_000;
        for (var i = 0; i < args.Length; i++)
        {
            if (args[i] == "--models" && i + 1 < args.Length && int.TryParse(args[++i], CultureInfo.InvariantCulture, out var m) && m > 0)
            {
                n = m;
            }
            else
            {
                Console.Error.WriteLine("usage: bench model-index [--models N]  (N ≥ 1)");
                return 2;
            }
        }

        Startup(Console.Out, n);
        return 0;
    }

    // The server's ModelIndex over a bank of n registered models: record files as `warden model add` writes them
    // (16 sketched tensors and 384 row hashes each: the synthetic bank's records), one sha256 entry each.
    private static void Startup(TextWriter output, int n)
    {
        var dir = Path.Combine(Path.GetTempPath(), "warden-bench-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            var database = Path.Combine(dir, "warden.db");
            var options = new SyntheticBankOptions();
            var watch = Stopwatch.StartNew();
            long recordBytes = 0;
            using (var store = Warden.Storage.BankStore.Open(database))
            {
                var bank = store.CreateBank("bench");
                var records = new ModelRecordStore(database + ".models");
                var entries = new List<Warden.Core.Banks.BankEntryRecord>(n);
                var labels = new Dictionary<string, string>();
                for (var i = 0; i < n; i++)
                {
                    var r = SyntheticModels.Record(i, options);
                    var id = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(BitConverter.GetBytes(i)));
                    records.Save(new ModelRecord { Id = id, Name = "m" + i.ToString(CultureInfo.InvariantCulture), Bank = bank.Name, Architecture = r.Architecture, Tensors = r.Tensors, Rows = r.Rows });
                    entries.Add(new Warden.Core.Banks.BankEntryRecord("sha256", id, labels));
                }

                store.Import(bank.Id, entries, "bench");
                recordBytes = Directory.EnumerateFiles(Path.Combine(records.Directory, bank.Name)).Sum(f => new FileInfo(f).Length);
            }

            output.WriteLine(FormattableString.Invariant($"start-up bank: {n} registered models, {recordBytes / 1e6:F0} MB of record files, written in {watch.Elapsed.TotalSeconds:F1} s"));
            var query = SyntheticModels.Candidate(SyntheticModels.Record(n / 2, options), 0.02, TensorDType.F32, 0, 200, 0.8, 1);
            var kinds = new Dictionary<string, Warden.Core.Banks.BankKind> { ["bench"] = Warden.Core.Banks.BankKind.BlockList };
            foreach (var (label, dropSnapshot) in new[] { ("built from the record files (before; writes the snapshot)", true), ("loaded from the snapshot (after)", false) })
            {
                using var store = Warden.Storage.BankStore.Open(database);
                var cache = store.CacheDirectory("model-index");
                if (dropSnapshot && Directory.Exists(cache))
                {
                    Directory.Delete(cache, recursive: true);
                }

                using var index = new Warden.Server.Index.ModelIndex(store, new Warden.Server.ServerOptions { Database = database }, TimeProvider.System, Microsoft.Extensions.Logging.Abstractions.NullLogger<Warden.Server.Index.ModelIndex>.Instance);
                var process = Process.GetCurrentProcess();
                process.Refresh();
                var cpu0 = process.TotalProcessorTime;
                watch.Restart();
                var answer = index.Near(query, kinds); // the first query starts the index
                var s = watch.Elapsed.TotalSeconds;
                process.Refresh();
                var snapshot = Path.Combine(cache, "near-index.bin");
                output.WriteLine(FormattableString.Invariant($"index start-up, {label}: {s:F2} s wall, {(process.TotalProcessorTime - cpu0).TotalSeconds:F1} s CPU to the first answer ({index.Count} models, from snapshot: {index.StartedFromSnapshot}, snapshot {(File.Exists(snapshot) ? new FileInfo(snapshot).Length / 1e6 : 0):F1} MB; query model found: {answer.Similar.Any(h => h.Record.Name == "m" + (n / 2).ToString(CultureInfo.InvariantCulture))})"));
            }
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

}
