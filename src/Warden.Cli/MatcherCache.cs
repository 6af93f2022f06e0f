using System.Globalization;
using Warden.Core.Banks;
using Warden.Storage;

namespace Warden.Cli;

/// <summary>
/// Keeps the matcher's indexes as snapshots beside the database (<c>DB.index/</c>) so a scan against millions
/// of entries starts in a fraction of a second instead of re-reading every row. The snapshot is used only while
/// its key — the entry change sequence and the enabled banks in slot order — still matches the database.
/// A PostgreSQL database has no file to sit beside: its snapshot goes to
/// <c>$XDG_CACHE_HOME/warden/index-DATABASEID/</c> (else <c>~/.cache/...</c>), named by the random id the
/// database got when it was created, so two databases never share one.
/// </summary>
internal static class MatcherCache
{
    private const string KeyFile = "key";

    /// <summary>Smallest index worth a snapshot (small ones load from the database about as fast). Tests lower it.</summary>
    internal static long MinEntriesToSave { get; set; } = 100_000;

    public static BankMatcher Open(BankStore store, IReadOnlyList<Bank> banks, bool useCache, TextWriter error, out bool fromCache)
    {
        fromCache = false;
        var dir = SnapshotDir(store);
        var key = Key(store, banks);
        if (useCache && File.Exists(Path.Combine(dir, KeyFile)) && File.ReadAllText(Path.Combine(dir, KeyFile)) == key)
        {
            try
            {
                fromCache = true;
                return BankMatcher.Load(dir, banks);
            }
            catch (Exception ex) when (ex is InvalidDataException or IOException)
            {
                fromCache = false;
                error.WriteLine($"warden: index snapshot in {dir} is unusable ({ex.Message}); rebuilding it from the database");
            }
        }

        var matcher = new BankMatcher(banks);
        foreach (var e in store.EnabledEntries())
        {
            matcher.Add(e.Id, e.BankId, e.SignalType, e.Signal);
        }

        if (useCache && matcher.Count >= MinEntriesToSave)
        {
            try
            {
                // The key goes last: a snapshot interrupted half-way is never taken for a valid one.
                Directory.CreateDirectory(dir);
                File.Delete(Path.Combine(dir, KeyFile));
                matcher.Save(dir);
                File.WriteAllText(Path.Combine(dir, KeyFile), key);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                error.WriteLine($"warden: could not save the index snapshot to {dir}: {ex.Message}");
            }
        }

        return matcher;
    }

    private static string SnapshotDir(BankStore store) => store.CacheDirectory("index");

    private static string Key(BankStore store, IReadOnlyList<Bank> banks) =>
        string.Create(CultureInfo.InvariantCulture, $"v2;db={store.DatabaseId()};seq={store.ChangeSequence()};banks={string.Join(',', banks.Where(b => b.Enabled).Select(b => b.Id))}");
}
