using Microsoft.Extensions.Logging.Abstractions;
using Warden.Core.Banks;
using Warden.Core.ModelFiles;
using Warden.Core.Tests.Models;
using Warden.Server.Index;
using Warden.Storage;

namespace Warden.Server.Tests.Models;

/// <summary>
/// The model index starts from its snapshot instead of reading every record file, answers exactly as a build
/// from the files does, catches up with what changed while it was down (registrations and deletions through the
/// change feed, record files rewritten in place without one), and a damaged snapshot is never searched: any byte
/// flipped, any truncation, junk appended, or a snapshot of another database makes it rebuild from the files.
/// </summary>
[Collection("snapshot")] // changes a static threshold
public sealed class ModelIndexSnapshotTests
{
    private static readonly Dictionary<string, BankKind> Kinds = new() { ["bad-models"] = BankKind.BlockList };

    private static void Cli(string database, params string[][] commands)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        foreach (var args in commands)
        {
            Assert.True(Warden.Cli.WardenCli.Run([.. args, "--db", database], output, error) == 0, error.ToString());
        }
    }

    private static ModelIndex Started(BankStore store, string database)
    {
        var index = new ModelIndex(store, new ServerOptions { Database = database }, TimeProvider.System, NullLogger<ModelIndex>.Instance);
        index.Poll();
        return index;
    }

    private static string[] Similar(ModelIndex index, ModelFingerprint fp) =>
        [.. index.Near(fp, Kinds).Similar.Select(h => h.Record.Name).Order(StringComparer.Ordinal)];

    [Fact]
    public void A_start_loads_the_snapshot_catches_up_and_never_searches_a_damaged_one()
    {
        var saved = ModelIndex.MinRecordsToSnapshot;
        ModelIndex.MinRecordsToSnapshot = 1;
        using var dir = new TempDir();
        try
        {
            var database = Path.Combine(dir.Path, "warden.db");
            Cli(database, ["bank", "create", "bad-models"]);
            var models = new Dictionary<int, string>();
            foreach (var s in Enumerable.Range(1, 6))
            {
                models[s] = dir.File($"m{s}.safetensors", ModelWriters.Safetensors(ModelFixtures.Base(s)));
                Cli(database, ["model", "add", "--bank", "bad-models", "--name", "m" + s, models[s]]);
            }

            // Q8_0 copies: each is an R hit of its own model and of nothing else.
            ModelFingerprint Query(int s) => Fingerprinter.Compute(ModelReader.Read(dir.File($"q{s}.gguf", ModelWriters.Gguf(
                [.. ModelFixtures.Base(s).Where(t => t.Values.Length % 32 == 0 && !ModelFixtures.IsBuffer(t.Name)).Select(t => t.As(TensorDType.Q8_0))], []))));
            var queries = Enumerable.Range(1, 7).ToDictionary(s => s, Query);
            using var store = BankStore.Open(database);
            var built = Started(store, database);
            Assert.False(built.StartedFromSnapshot);
            Assert.Equal(6, built.Count);
            var expected = queries.ToDictionary(q => q.Key, q => Similar(built, q.Value));
            Assert.Equal(["m3"], expected[3]);
            Assert.Empty(expected[7]);

            var snapshot = Path.Combine(store.CacheDirectory("model-index"), "near-index.bin");
            var good = File.ReadAllBytes(snapshot);
            var loaded = Started(store, database);
            Assert.True(loaded.StartedFromSnapshot);
            Assert.Equal(6, loaded.Count);
            Assert.All(queries, q => Assert.Equal(expected[q.Key], Similar(loaded, q.Value)));

            // Damage of every kind: flipped bits across the whole file, truncations, junk appended, empty.
            var rng = new Random(18);
            var damaged = new List<byte[]>();
            for (var i = 0; i < 24; i++)
            {
                var b = (byte[])good.Clone();
                b[(int)((long)i * good.Length / 24) + rng.Next(0, good.Length / 24)] ^= (byte)(1 << rng.Next(8));
                damaged.Add(b);
                damaged.Add(good[..rng.Next(0, good.Length)]);
            }

            damaged.Add([.. good, .. new byte[] { 1, 2, 3 }]);
            damaged.Add([]);
            foreach (var bytes in damaged)
            {
                File.WriteAllBytes(snapshot, bytes);
                var rebuilt = Started(store, database);
                Assert.False(rebuilt.StartedFromSnapshot);
                Assert.Equal(6, rebuilt.Count);
                Assert.Equal(expected[3], Similar(rebuilt, queries[3]));
                Assert.Equal(good.Length, new FileInfo(snapshot).Length); // the rebuild wrote a good one again
            }

            // While no index runs: one model registered, one deleted, one record file rewritten in place (the same
            // id re-registered with other sketches: no change in the feed, only in the file).
            Cli(database, ["model", "add", "--bank", "bad-models", "--name", "m7", models[7] = dir.File("m7.safetensors", ModelWriters.Safetensors(ModelFixtures.Base(7)))]);
            foreach (var e in store.EntriesWithSignal("bad-models", "sha256", Sha(models[2])))
            {
                Assert.True(store.DeleteEntry(e.Id));
            }

            var records = new ModelRecordStore(database + ".models");
            var six = records.Load(["bad-models"]).Single(r => r.Name == "m6");
            var path5 = Path.Combine(records.Directory, "bad-models", Sha(models[5]) + ".json");
            records.Save(new ModelRecord { Id = Sha(models[5]), Name = "m5-now-6", Bank = "bad-models", Architecture = six.Architecture, ModelId = six.ModelId, Tensors = six.Tensors, Rows = six.Rows });
            File.SetLastWriteTimeUtc(path5, DateTime.UtcNow.AddMinutes(1));

            var caught = Started(store, database);
            Assert.True(caught.StartedFromSnapshot);
            Assert.Equal(["m7"], Similar(caught, queries[7]));
            Assert.Empty(Similar(caught, queries[2]));
            Assert.Empty(Similar(caught, queries[5]));
            Assert.Equal(["m5-now-6", "m6"], Similar(caught, queries[6]));

            // A build from the files agrees with the caught-up snapshot on every query.
            File.Delete(snapshot);
            var fresh = Started(store, database);
            Assert.False(fresh.StartedFromSnapshot);
            Assert.All(queries, q => Assert.Equal(Similar(fresh, q.Value), Similar(caught, q.Value)));

            // A snapshot of another database (copied beside this one) is not taken for this one's.
            using var other = new TempDir();
            var otherDb = Path.Combine(other.Path, "warden.db");
            Cli(otherDb, ["bank", "create", "bad-models"]);
            using var otherStore = BankStore.Open(otherDb);
            Directory.CreateDirectory(otherStore.CacheDirectory("model-index"));
            File.Copy(snapshot, Path.Combine(otherStore.CacheDirectory("model-index"), "near-index.bin"));
            var foreign = Started(otherStore, otherDb);
            Assert.False(foreign.StartedFromSnapshot);
            Assert.Equal(0, foreign.Count);
        }
        finally
        {
            ModelIndex.MinRecordsToSnapshot = saved;
        }
    }

    private static string Sha(string file) => Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(file)));
}
