using System.Diagnostics;
using System.Globalization;
using Npgsql;
using Warden.Core.Hashing.Pdq;
using Warden.Review.Cases;
using Warden.Review.Storage;
using Warden.Storage;

namespace Warden.Bench;

/// <summary>
/// `intake [--db TARGET] [--n 5000] [--uploaders 50]`: the case intake of a matched upload alone
/// (<see cref="DbCaseStore.Add"/>), one after another, on a fresh database: wall time and CPU per intake, the
/// bench process's and (on PostgreSQL) the server's (the postmaster and its backends, from /proc). Without
/// --db: a temp SQLite file, then PostgreSQL when WARDEN_TEST_POSTGRES is set (scripts/with-postgres).
/// </summary>
internal static class IntakeCommand
{
    public static int Run(string[] args)
    {
        string? target = null;
        var n = 5000;
        var uploaders = 50;
        for (var i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--db": target = args[++i]; break;
                case "--n": n = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--uploaders": uploaders = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                default: Console.Error.WriteLine($"intake: unknown option {args[i]}"); return 2;
            }
        }

        if (target is not null)
        {
            Measure(target, n, uploaders);
            return 0;
        }

        var dir = Directory.CreateTempSubdirectory("warden-intake-").FullName;
        try
        {
            Measure(Path.Combine(dir, "intake.db"), n, uploaders);
        }
        finally
        {
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            Directory.Delete(dir, recursive: true);
        }

        if (Environment.GetEnvironmentVariable("WARDEN_TEST_POSTGRES") is { Length: > 0 } server)
        {
            var name = "warden_intake_" + Guid.NewGuid().ToString("N")[..12];
            using (var c = new NpgsqlConnection(server))
            {
                c.Open();
                using var create = new NpgsqlCommand($"CREATE DATABASE {name}", c);
                create.ExecuteNonQuery();
            }

            try
            {
                Measure(new NpgsqlConnectionStringBuilder(server) { Database = name }.ConnectionString, n, uploaders);
            }
            finally
            {
                NpgsqlConnection.ClearAllPools();
                using var c = new NpgsqlConnection(server);
                c.Open();
                using var drop = new NpgsqlCommand($"DROP DATABASE IF EXISTS {name} WITH (FORCE)", c);
                drop.ExecuteNonQuery();
            }
        }
        else
        {
            Console.WriteLine("PostgreSQL: skipped (WARDEN_TEST_POSTGRES unset; run under scripts/with-postgres)");
        }

        return 0;
    }

    private static void Measure(string target, int n, int uploaders)
    {
        using var db = ReviewDatabase.Open(target);
        var store = new DbCaseStore(db, new CaseEventCodec(_ => throw new NotSupportedException(), _ => throw new NotSupportedException(), _ => false));
        var rng = new Random(7);
        var families = Enumerable.Range(0, uploaders * 4).Select(_ => new PdqHash((ulong)rng.NextInt64(), (ulong)rng.NextInt64(), (ulong)rng.NextInt64(), (ulong)rng.NextInt64())).ToArray();

        // About the size of a real submission event (hashes, one match with labels, sealed context).
        var body = "{\"id\":\"x\",\"uploader\":\"u\",\"hashes\":{\"md5\":\"" + new string('a', 32) + "\",\"sha1\":\"" + new string('b', 40) + "\",\"sha256\":\"" + new string('c', 64) + "\"},\"matches\":[{\"bank\":\"load\",\"signalType\":\"pdq\",\"distance\":0,\"labels\":{}}],\"sealed\":\"" + new string('d', 240) + "\"}";
        var next = 0;
        MatchedSubmission Next()
        {
            var i = next++;
            var u = rng.Next(uploaders);
            var centre = families[(u * 4) + rng.Next(4)];
            var pdq = new PdqHash(centre.W0 ^ (1UL << rng.Next(64)), centre.W1, centre.W2, centre.W3);
            var sha = Convert.ToHexStringLower(BitConverter.GetBytes((long)i)).PadLeft(64, '0');
            return new MatchedSubmission($"s{i}", "uploader-" + u.ToString(CultureInfo.InvariantCulture), DateTimeOffset.UtcNow, pdq, new Dictionary<string, string> { ["sha256"] = sha }, [], new UploadContext());
        }

        for (var i = 0; i < Math.Min(500, n); i++)
        {
            store.Add(Next(), body); // JIT, pool, prepared statements
        }

        var server = db.Dialect == SqlDialect.Postgres ? PostmasterPid(target) : 0;
        var serverCpu0 = ServerCpu(server);
        var cpu0 = Process.GetCurrentProcess().TotalProcessorTime;
        var watch = Stopwatch.StartNew();
        for (var i = 0; i < n; i++)
        {
            store.Add(Next(), body);
        }

        var wall = watch.Elapsed;
        var cpu = Process.GetCurrentProcess().TotalProcessorTime - cpu0;
        var serverCpu = ServerCpu(server) - serverCpu0;
        var load = File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Split(' ')[0] : "?";
        Console.WriteLine(
            $"intake {db.Dialect,-8} {n} matched uploads, {uploaders} uploaders, one after another: {wall.TotalMicroseconds / n,7:F0} µs wall each; " +
            $"CPU per intake {cpu.TotalMicroseconds / n,6:F0} µs (bench process){(server > 0 ? $" + {serverCpu.TotalMicroseconds / n:F0} µs (PostgreSQL)" : "")}; " +
            $"{store.OpenCount()} open cases, cache hits {store.Representatives.Hits} misses {store.Representatives.Misses}; load average {load}");
    }

    // The postmaster of the server behind the connection: the parent of our backend.
    private static int PostmasterPid(string target)
    {
        using var c = new NpgsqlConnection(target);
        c.Open();
        using var cmd = new NpgsqlCommand("SELECT pg_backend_pid()", c);
        var backend = (int)cmd.ExecuteScalar()!;
        return ParentOf(backend);
    }

    private static int ParentOf(int pid)
    {
        try
        {
            foreach (var line in File.ReadLines($"/proc/{pid}/status"))
            {
                if (line.StartsWith("PPid:", StringComparison.Ordinal))
                {
                    return int.Parse(line.AsSpan(5).Trim(), CultureInfo.InvariantCulture);
                }
            }
        }
        catch (IOException)
        {
        }

        return 0;
    }

    /// <summary>CPU time (user + system) of a PostgreSQL postmaster and its children (backends, WAL writer...).</summary>
    internal static TimeSpan ServerCpu(int postmaster)
    {
        if (postmaster <= 0)
        {
            return TimeSpan.Zero;
        }

        long ticks = 0;
        foreach (var d in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(d), NumberStyles.None, CultureInfo.InvariantCulture, out var pid))
            {
                continue;
            }

            try
            {
                var stat = File.ReadAllText(Path.Combine(d, "stat"));
                var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');

                // After the command: state(0) ppid(1) ... utime(11) stime(12).
                if (pid == postmaster || int.Parse(fields[1], CultureInfo.InvariantCulture) == postmaster)
                {
                    ticks += long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
                }
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException)
            {
                // A process that exited between the listing and the read.
            }
        }

        return TimeSpan.FromMilliseconds(ticks * 10.0); // USER_HZ is 100 on Linux
    }
}
