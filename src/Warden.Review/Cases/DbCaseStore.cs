using System.Data.Common;
using System.Text;
using Dapper;
using Warden.Core.Hashing.Pdq;
using Warden.Review.Reporting;
using Warden.Review.Storage;
using Warden.Storage;

namespace Warden.Review.Cases;

/// <summary>How the case log's event bodies read back (the host owns their JSON shape and any sealing).</summary>
/// <param name="Submission">A <c>submission</c> body as the submission it records.</param>
/// <param name="Decision">A <c>decision</c> body.</param>
/// <param name="Reported">A <c>close</c> body: true when the case was reported.</param>
public sealed record CaseEventCodec(Func<string, MatchedSubmission> Submission, Func<string, ClusterDecision> Decision, Func<string, bool> Reported);

/// <summary>Where an intake landed.</summary>
/// <param name="CaseId">The case.</param>
/// <param name="ClusterId">The cluster.</param>
/// <param name="Added">False when the submission id was already in a case (nothing written).</param>
public sealed record CaseIntake(string CaseId, string ClusterId, bool Added);

/// <summary>
/// Cases in the configured database instead of one node's memory. The case log (<c>case_events</c>) stays the
/// record of what happened; beside it, <c>review_cases</c> (one row per case with its running aggregates and
/// the uploader's open case, unique), <c>review_clusters</c> (each cluster's representative PDQ and digest)
/// and <c>review_submissions</c> (which case holds a submission) let any node cluster a new upload against
/// the open case's representatives and answer the queue without replaying everything. An intake, decision
/// or close is one transaction serialised per uploader (PostgreSQL: an advisory lock on the uploader;
/// SQLite: the write lock), so two nodes never open two cases for one uploader or put near-duplicates in
/// two clusters. Representatives are read through a <see cref="CaseRepresentativeCache"/> with a size cap;
/// a case is materialised (its events replayed) only when the console or a report asks for it.
/// </summary>
public sealed class DbCaseStore
{
    /// <summary>The tables, a migration set of their own so they never collide with the review set's versions.</summary>
    public static IMigrationSet Schema { get; } = new MigrationSet("review-cases",
    [
        new Migration(1, """
            CREATE TABLE review_cases (
                id            TEXT    PRIMARY KEY,
                uploader_key  TEXT    NOT NULL,
                uploader_id   TEXT    NOT NULL,
                status        BIGINT  NOT NULL,
                opened_at     BIGINT  NOT NULL,
                updated_at    BIGINT  NOT NULL,
                priority      BIGINT  NOT NULL,
                items         BIGINT  NOT NULL,
                clusters      BIGINT  NOT NULL,
                decided       BIGINT  NOT NULL,
                max_severity  BIGINT  NOT NULL,
                ai            BIGINT  NOT NULL
            );
            -- At most one open (or decided, not yet reported) case per uploader, on every node.
            CREATE UNIQUE INDEX ux_review_cases_open ON review_cases(uploader_key) WHERE status IN (0, 1);
            CREATE INDEX ix_review_cases_queue ON review_cases(status, priority, opened_at);
            CREATE TABLE review_clusters (
                case_id   TEXT    NOT NULL,
                idx       BIGINT  NOT NULL,
                id        TEXT    NOT NULL,
                pdq       TEXT    NULL,
                digest    TEXT    NULL,
                decided   BIGINT  NOT NULL DEFAULT 0,
                PRIMARY KEY (case_id, idx)
            );
            CREATE UNIQUE INDEX ux_review_clusters_id ON review_clusters(case_id, id);
            CREATE TABLE review_submissions (
                id          TEXT  PRIMARY KEY,
                case_id     TEXT  NOT NULL,
                cluster_id  TEXT  NOT NULL
            );
            """),
    ]);

    private const string IndexedSetting = "cases.indexed";
    private const string CaseColumns = "id AS Id, uploader_key AS UploaderKey, status AS Status, items AS Items, clusters AS Clusters, decided AS Decided, max_severity AS MaxSeverity, ai AS Ai, updated_at AS UpdatedAt";

    private readonly ReviewDatabase _database;
    private readonly CaseEventCodec _codec;
    private readonly CaseBuilderOptions _options;
    private readonly Func<string> _newId;

    /// <summary>Opens the case tables (migrated now) and indexes an existing case log once.</summary>
    /// <param name="database">The review database.</param>
    /// <param name="codec">Reads event bodies.</param>
    /// <param name="options">Cluster threshold.</param>
    /// <param name="cacheRepresentatives">The representative cache's cap.</param>
    /// <param name="newId">Id generator (default: time-ordered GUIDs).</param>
    public DbCaseStore(ReviewDatabase database, CaseEventCodec codec, CaseBuilderOptions? options = null, int cacheRepresentatives = 100_000, Func<string>? newId = null)
    {
        ArgumentNullException.ThrowIfNull(database);
        ArgumentNullException.ThrowIfNull(codec);
        _database = database;
        _codec = codec;
        _options = options ?? new CaseBuilderOptions();
        if (_options.ClusterThreshold is < 0 or > PdqHash.Bits)
        {
            throw new ArgumentOutOfRangeException(nameof(options), "The cluster threshold is 0..256 bits.");
        }

        _newId = newId ?? (() => Guid.CreateVersion7().ToString("N"));
        Representatives = new CaseRepresentativeCache(cacheRepresentatives);
        database.Database.Migrate(Schema);
        IndexExistingLog();
    }

    /// <summary>The representative cache (its size is reported by the metrics and tests).</summary>
    public CaseRepresentativeCache Representatives { get; }

    /// <summary>Every case, oldest first (materialised: for tools and tests, not for a hot path).</summary>
    public IReadOnlyCollection<ReviewCase> Cases
    {
        get
        {
            using var c = _database.Connect();
            var ids = c.Query<string>("SELECT id FROM review_cases ORDER BY opened_at, id").ToList();
            return [.. ids.Select(Find).OfType<ReviewCase>()];
        }
    }

    /// <summary>Open and decided cases, highest priority first, then oldest (at most <paramref name="limit"/>).</summary>
    public IReadOnlyList<ReviewCase> Queue(int limit = 500)
    {
        using var c = _database.Connect();
        var ids = c.Query<string>("SELECT id FROM review_cases WHERE status IN (0, 1) ORDER BY priority DESC, opened_at, id LIMIT @limit", new { limit = (long)limit }).ToList();
        return [.. ids.Select(Find).OfType<ReviewCase>()];
    }

    /// <summary>Open (undecided or decided, unreported) cases.</summary>
    public long OpenCount()
    {
        using var c = _database.Connect();
        return c.ExecuteScalar<long>("SELECT COUNT(*) FROM review_cases WHERE status IN (0, 1)");
    }

    /// <summary>Whether a submission id is already in a case.</summary>
    public bool Contains(string submissionId)
    {
        using var c = _database.Connect();
        return c.ExecuteScalar<long?>("SELECT 1 FROM review_submissions WHERE id = @submissionId", new { submissionId }) is not null;
    }

    /// <summary>A case by id, materialised from its events, or null.</summary>
    public ReviewCase? Find(string caseId)
    {
        using var c = _database.Connect();
        return Materialise(c.Query<EventRow>("SELECT kind AS Kind, case_id AS CaseId, cluster_id AS ClusterId, body AS Body FROM case_events WHERE case_id = @caseId ORDER BY seq", new { caseId }));
    }

    /// <summary>
    /// Adds a submission to its uploader's open case (opening one), in the nearest cluster or a new one, and
    /// appends <paramref name="body"/> to the case log, in one transaction. Idempotent by submission id.
    /// </summary>
    public CaseIntake Add(MatchedSubmission submission, string body)
    {
        ArgumentNullException.ThrowIfNull(submission);
        ArgumentException.ThrowIfNullOrWhiteSpace(submission.SubmissionId);
        ArgumentException.ThrowIfNullOrWhiteSpace(submission.UploaderId);
        ArgumentNullException.ThrowIfNull(body);
        var key = submission.Raw?.UploaderId ?? submission.UploaderId;
        var s = SubmissionText.Normalise(submission);
        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        var digest = DigestKey(s);
        Representative? added = null;
        int addedAt = 0;
        CaseIntake result;
        using (var c = _database.Connect())
        {
            // Round trips, not statements, are the cost on PostgreSQL: the lock (BEGIN rides along), one read of
            // both the submission and the uploader's open case, one statement of every write, COMMIT: four
            // instead of eight. Each is one statement: Npgsql sends a multi-statement command from a thread-pool
            // task when called synchronously, which a busy pool starves. The reads follow the lock in a statement
            // of their own so that their snapshot sees the previous holder's commit.
            using var tx = _database.BeginWrite(c, LockKey(key));
            var read = c.QuerySingle<IntakeRead>(
                $"""
                SELECT s.case_id AS SeenCaseId, s.cluster_id AS SeenClusterId, {CaseColumnsOf("k")}
                FROM (SELECT 1 AS one) o
                LEFT JOIN review_submissions s ON s.id = @id
                LEFT JOIN review_cases k ON k.uploader_key = @key AND k.status IN (0, 1)
                """,
                new { id = s.SubmissionId, key },
                tx);
            if (read.SeenCaseId is { } seenCase)
            {
                return new CaseIntake(seenCase, read.SeenClusterId!, false);
            }

            var row = read.Id is null ? null : new CaseRow
            {
                Id = read.Id,
                UploaderKey = read.UploaderKey!,
                Status = read.Status,
                Items = read.Items,
                Clusters = read.Clusters,
                Decided = read.Decided,
                MaxSeverity = read.MaxSeverity,
                Ai = read.Ai,
                UpdatedAt = read.UpdatedAt,
            };
            var writes = new List<string>(4);
            var openedAt = s.ReceivedAt.ToUnixTimeMilliseconds();
            var isNew = row is null;
            row ??= new CaseRow { Id = _newId(), UploaderKey = key, UpdatedAt = openedAt };
            var caseId = row.Id;

            var clusterId = Representatives.FindCluster(caseId, (int)row.Clusters, s.Pdq, digest, _options.ClusterThreshold, from => LoadRepresentatives(c, tx, caseId, from));
            var status = row.Status;
            if (clusterId is null)
            {
                clusterId = _newId();
                addedAt = (int)row.Clusters;
                added = new Representative(clusterId, s.Pdq, digest);
                writes.Add("INSERT INTO review_clusters(case_id, idx, id, pdq, digest, decided) VALUES (@caseId, @idx, @clusterId, @pdq, @digest, 0)");
                row.Clusters++;
                status = (long)CaseStatus.Open; // a new cluster awaits a decision
            }

            row.Items++;
            row.MaxSeverity = Math.Max(row.MaxSeverity, CasePriority.SeverityOf(s));
            row.Ai = row.Ai != 0 || CasePriority.HasAiProvenance(s) ? 1 : 0;
            row.UpdatedAt = Math.Max(row.UpdatedAt, openedAt);

            // The case row is written once: inserted with its first item's aggregates, or updated.
            writes.Insert(0, isNew
                ? """
                  INSERT INTO review_cases(id, uploader_key, uploader_id, status, opened_at, updated_at, priority, items, clusters, decided, max_severity, ai)
                  VALUES (@caseId, @key, @uploaderId, @status, @openedAt, @updatedAt, @priority, @items, @clusters, 0, @maxSeverity, @ai)
                  """
                : "UPDATE review_cases SET status = @status, items = @items, clusters = @clusters, max_severity = @maxSeverity, ai = @ai, updated_at = @updatedAt, priority = @priority WHERE id = @caseId");
            writes.Add("INSERT INTO review_submissions(id, case_id, cluster_id) VALUES (@submissionId, @caseId, @clusterId)");
            writes.Add(EventSql);
            c.Execute(
                OneStatement(writes),
                new
                {
                    caseId,
                    key,
                    uploaderId = s.UploaderId,
                    status,
                    openedAt,
                    updatedAt = row.UpdatedAt,
                    priority = (long)CasePriority.Score((int)row.Items, (int)row.MaxSeverity, row.Ai != 0, UploaderHistory.None),
                    items = row.Items,
                    clusters = row.Clusters,
                    maxSeverity = row.MaxSeverity,
                    ai = row.Ai,
                    idx = (long)addedAt,
                    clusterId,
                    pdq = s.Pdq?.ToString(),
                    digest,
                    submissionId = s.SubmissionId,
                    kind = "submission",
                    body,
                    at = now,
                },
                tx);
            tx.Commit();
            result = new CaseIntake(caseId, clusterId, true);
        }

        if (added is not null)
        {
            Representatives.Added(result.CaseId, addedAt, added);
        }

        return result;
    }

    /// <summary>
    /// Records a decision on a cluster (validated first; nothing is written when it throws): the cluster row,
    /// the case's status and the event, in one transaction. <see cref="KeyNotFoundException"/> for an unknown
    /// case or cluster, <see cref="InvalidOperationException"/> once the case is reported or closed.
    /// </summary>
    public ClusterDecision Decide(string caseId, string clusterId, ClusterDecision decision, Func<ClusterDecision, string> body)
    {
        ArgumentNullException.ThrowIfNull(decision);
        ArgumentNullException.ThrowIfNull(body);
        CaseBuilder.Validate(decision);
        if (decision.Note is { } note && XmlSafeText.Field(note, SubmissionText.MaxNote) != note)
        {
            // Reviewer text reaches reports and exports: it is made XML-safe where it enters.
            decision = decision with { Note = XmlSafeText.Field(note, SubmissionText.MaxNote) };
        }

        using var c = _database.Connect();
        var key = c.ExecuteScalar<string?>("SELECT uploader_key FROM review_cases WHERE id = @caseId", new { caseId }) ?? throw new KeyNotFoundException($"No case {caseId}.");
        using var tx = _database.BeginWrite(c, LockKey(key));
        var row = c.QuerySingle<CaseRow>($"SELECT {CaseColumns} FROM review_cases WHERE id = @caseId", new { caseId }, tx);
        if (row.Status is (long)CaseStatus.Reported or (long)CaseStatus.Closed)
        {
            throw new InvalidOperationException($"Case {caseId} is {(CaseStatus)row.Status}; decisions are final once reported or closed.");
        }

        var wasDecided = c.ExecuteScalar<long?>("SELECT decided FROM review_clusters WHERE case_id = @caseId AND id = @clusterId", new { caseId, clusterId }, tx)
            ?? throw new KeyNotFoundException($"No cluster {clusterId} in case {caseId}.");
        if (wasDecided == 0)
        {
            c.Execute("UPDATE review_clusters SET decided = 1 WHERE case_id = @caseId AND id = @clusterId", new { caseId, clusterId }, tx);
            row.Decided++;
        }

        var status = row.Decided == row.Clusters ? CaseStatus.Decided : CaseStatus.Open;
        c.Execute(
            "UPDATE review_cases SET decided = @Decided, status = @status, updated_at = @at WHERE id = @caseId",
            new { row.Decided, status = (long)status, at = Math.Max(row.UpdatedAt, decision.At.ToUnixTimeMilliseconds()), caseId },
            tx);
        AppendEvent(c, tx, "decision", caseId, clusterId, body(decision), DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
        tx.Commit();
        return decision;
    }

    /// <summary>
    /// Takes back a cluster's decision (the console's undo, before the report is filed): the cluster row, the
    /// case's status and an <c>undo</c> event, in one transaction. Returns the decision taken back.
    /// <see cref="KeyNotFoundException"/> for an unknown case or cluster, <see cref="InvalidOperationException"/>
    /// once the case is reported or closed or when the cluster has no decision.
    /// </summary>
    public ClusterDecision Undo(string caseId, string clusterId, string body)
    {
        ArgumentNullException.ThrowIfNull(body);
        using var c = _database.Connect();
        var key = c.ExecuteScalar<string?>("SELECT uploader_key FROM review_cases WHERE id = @caseId", new { caseId }) ?? throw new KeyNotFoundException($"No case {caseId}.");
        using var tx = _database.BeginWrite(c, LockKey(key));
        var row = c.QuerySingle<CaseRow>($"SELECT {CaseColumns} FROM review_cases WHERE id = @caseId", new { caseId }, tx);
        if (row.Status is (long)CaseStatus.Reported or (long)CaseStatus.Closed)
        {
            throw new InvalidOperationException($"Case {caseId} is {(CaseStatus)row.Status}; decisions are final once reported or closed.");
        }

        _ = c.ExecuteScalar<long?>("SELECT decided FROM review_clusters WHERE case_id = @caseId AND id = @clusterId", new { caseId, clusterId }, tx)
            ?? throw new KeyNotFoundException($"No cluster {clusterId} in case {caseId}.");

        // The decision in force is the last one the log holds for the cluster (read inside the lock).
        var events = c.Query<EventRow>("SELECT kind AS Kind, case_id AS CaseId, cluster_id AS ClusterId, body AS Body FROM case_events WHERE case_id = @caseId ORDER BY seq", new { caseId }, tx);
        var was = Materialise(events)?.Clusters.FirstOrDefault(k => k.Id == clusterId)?.Decision
            ?? throw new InvalidOperationException("The cluster has no decision to undo.");
        c.Execute("UPDATE review_clusters SET decided = 0 WHERE case_id = @caseId AND id = @clusterId", new { caseId, clusterId }, tx);
        c.Execute(
            "UPDATE review_cases SET decided = @decided, status = @status WHERE id = @caseId",
            new { decided = Math.Max(0, row.Decided - 1), status = (long)CaseStatus.Open, caseId },
            tx);
        AppendEvent(c, tx, "undo", caseId, clusterId, body, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
        tx.Commit();
        return was;
    }

    /// <summary>Marks a case reported (or closed) with its event; later matches from the uploader open a new case.</summary>
    public void Close(string caseId, bool reported, string body)
    {
        using var c = _database.Connect();
        var key = c.ExecuteScalar<string?>("SELECT uploader_key FROM review_cases WHERE id = @caseId", new { caseId }) ?? throw new KeyNotFoundException($"No case {caseId}.");
        using (var tx = _database.BeginWrite(c, LockKey(key)))
        {
            c.Execute("UPDATE review_cases SET status = @status WHERE id = @caseId", new { status = (long)(reported ? CaseStatus.Reported : CaseStatus.Closed), caseId }, tx);
            AppendEvent(c, tx, "close", caseId, null, body, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
            tx.Commit();
        }

        Representatives.Forget(caseId);
    }

    /// <summary>
    /// Rewrites the bodies of <c>submission</c> events once (an upgrade, e.g. sealing context written in plaintext
    /// by an older version): <paramref name="rewrite"/> returns the new body or null to keep it. Resumable and
    /// idempotent: progress is kept under <paramref name="marker"/> in the settings, batch by batch. Returns the
    /// number of rows rewritten.
    /// </summary>
    public int RewriteSubmissionBodies(string marker, Func<string, string?> rewrite)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(marker);
        ArgumentNullException.ThrowIfNull(rewrite);
        var name = "upgrade." + marker;
        var changed = 0;
        while (true)
        {
            using var c = _database.Connect();
            using var tx = _database.BeginWrite(c, LockKey("\0upgrade:" + marker));
            var after = long.Parse(c.ExecuteScalar<string?>("SELECT value FROM review_settings WHERE name = @name", new { name }, tx) ?? "0", System.Globalization.CultureInfo.InvariantCulture);
            var rows = c.Query<(long Seq, string Body)>("SELECT seq AS Seq, body AS Body FROM case_events WHERE kind = 'submission' AND seq > @after ORDER BY seq LIMIT 500", new { after }, tx).ToList();
            if (rows.Count == 0)
            {
                tx.Commit();
                break;
            }

            foreach (var (seq, body) in rows)
            {
                if (rewrite(body) is { } replaced && replaced != body)
                {
                    c.Execute("UPDATE case_events SET body = @replaced WHERE seq = @seq", new { replaced, seq }, tx);
                    changed++;
                }
            }

            var last = rows[^1].Seq.ToString(System.Globalization.CultureInfo.InvariantCulture);
            c.Execute("INSERT INTO review_settings(name, value) VALUES (@name, @last) ON CONFLICT (name) DO UPDATE SET value = excluded.value", new { name, last }, tx);
            tx.Commit();
        }

        if (changed > 0 && _database.Dialect == SqlDialect.Sqlite)
        {
            // The old bodies would linger in freed pages and the WAL: rebuild the file and empty the WAL.
            using var c = _database.Connect();
            c.Execute("PRAGMA wal_checkpoint(TRUNCATE);");
            c.Execute("VACUUM;");
            c.Execute("PRAGMA wal_checkpoint(TRUNCATE);");
        }

        return changed;
    }

    /// <summary>Replays one case's events (in log order) into a case; each submission goes to the cluster the log recorded.</summary>
    internal ReviewCase? Materialise(IEnumerable<EventRow> events)
    {
        ReviewCase? @case = null;
        foreach (var e in events)
        {
            switch (e.Kind)
            {
                case "submission":
                    var raw = _codec.Submission(e.Body);
                    var key = raw.Raw?.UploaderId ?? raw.UploaderId;
                    var s = SubmissionText.Normalise(raw);
                    @case ??= new ReviewCase(e.CaseId, s.UploaderId, s.ReceivedAt, key);
                    if (@case.Contains(s.SubmissionId))
                    {
                        break;
                    }

                    if (@case.Clusters.FirstOrDefault(k => k.Id == e.ClusterId) is { } cluster)
                    {
                        @case.AddMember(cluster, s);
                    }
                    else
                    {
                        @case.AddCluster(new Cluster(e.ClusterId ?? s.SubmissionId, s));
                        @case.Status = CaseStatus.Open;
                    }

                    if (s.ReceivedAt > @case.UpdatedAt)
                    {
                        @case.UpdatedAt = s.ReceivedAt;
                    }

                    @case.Priority = CasePriority.Score(@case, UploaderHistory.None);
                    break;
                case "decision" when @case is not null:
                    var decision = _codec.Decision(e.Body);
                    if (@case.Clusters.FirstOrDefault(k => k.Id == e.ClusterId) is { } decided)
                    {
                        decided.Decision = decision;
                        decided.MembersAtDecision = decided.Members.Count;
                        if (decision.At > @case.UpdatedAt)
                        {
                            @case.UpdatedAt = decision.At;
                        }

                        @case.Status = @case.IsFullyDecided ? CaseStatus.Decided : CaseStatus.Open;
                    }

                    break;
                case "undo" when @case is not null:
                    if (@case.Clusters.FirstOrDefault(k => k.Id == e.ClusterId) is { Decision: not null } undone)
                    {
                        undone.Decision = null;
                        undone.MembersAtDecision = 0;
                        @case.Status = CaseStatus.Open;
                    }

                    break;
                case "close" when @case is not null:
                    @case.Status = _codec.Reported(e.Body) ? CaseStatus.Reported : CaseStatus.Closed;
                    break;
                default:
                    break; // unknown kinds (a newer version's) change nothing here
            }
        }

        return @case;
    }

    /// <summary>The advisory-lock key of an uploader's case writes (64 bits of SHA-256 of a prefixed key).</summary>
    internal static long LockKey(string uploaderKey)
    {
        Span<byte> hash = stackalloc byte[32];
        System.Security.Cryptography.SHA256.HashData(Encoding.UTF8.GetBytes("warden.case:" + uploaderKey), hash);
        return System.Buffers.Binary.BinaryPrimitives.ReadInt64LittleEndian(hash);
    }

    /// <summary>"sha256:…" (else sha1, md5) of a submission: identical files cluster whatever their PDQ.</summary>
    internal static string? DigestKey(MatchedSubmission s)
    {
        foreach (var name in (string[])["sha256", "sha1", "md5"])
        {
            if (s.Hashes.TryGetValue(name, out var v) && !string.IsNullOrEmpty(v))
            {
                return name + ":" + v.ToLowerInvariant();
            }
        }

        return null;
    }

    private static List<Representative> LoadRepresentatives(DbConnection c, DbTransaction tx, string caseId, int from) =>
        [.. c.Query<(string Id, string? Pdq, string? Digest)>("SELECT id AS Id, pdq AS Pdq, digest AS Digest FROM review_clusters WHERE case_id = @caseId AND idx >= @from ORDER BY idx", new { caseId, from = (long)from }, tx)
            .Select(r => new Representative(r.Id, r.Pdq is null ? null : PdqHash.Parse(r.Pdq), r.Digest))];

    private const string EventSql = "INSERT INTO case_events(kind, case_id, cluster_id, body, at_ms) VALUES (@kind, @caseId, @clusterId, @body, @at)";

    private static string CaseColumnsOf(string alias) =>
        $"{alias}.id AS Id, {alias}.uploader_key AS UploaderKey, {alias}.status AS Status, {alias}.items AS Items, {alias}.clusters AS Clusters, {alias}.decided AS Decided, {alias}.max_severity AS MaxSeverity, {alias}.ai AS Ai, {alias}.updated_at AS UpdatedAt";

    /// <summary>
    /// Independent writes as one statement: on PostgreSQL data-modifying CTEs (one round trip, one snapshot);
    /// SQLite, in process, runs them as a script.
    /// </summary>
    private string OneStatement(List<string> writes)
    {
        if (_database.Dialect != SqlDialect.Postgres)
        {
            return string.Join(";\n", writes) + ";";
        }

        var sql = new StringBuilder(1024).Append("WITH ");
        for (var i = 0; i < writes.Count - 1; i++)
        {
            sql.Append(i == 0 ? "" : ",\n").Append('w').Append(i).Append(" AS (").Append(writes[i]).Append(')');
        }

        return sql.Append('\n').Append(writes[^1]).ToString();
    }

    private static void AppendEvent(DbConnection c, DbTransaction tx, string kind, string caseId, string? clusterId, string body, long at) =>
        c.Execute(EventSql, new { kind, caseId, clusterId, body, at }, tx);

    /// <summary>
    /// A case log written before these tables existed (or moved in by <c>warden review migrate</c>) is indexed
    /// once, case by case, under one lock so two nodes starting together do it once.
    /// </summary>
    private void IndexExistingLog()
    {
        using var c = _database.Connect();
        if (c.ExecuteScalar<string?>("SELECT value FROM review_settings WHERE name = @IndexedSetting", new { IndexedSetting }) is not null)
        {
            return;
        }

        using var tx = _database.BeginWrite(c, LockKey("\0index"));
        if (c.ExecuteScalar<string?>("SELECT value FROM review_settings WHERE name = @IndexedSetting", new { IndexedSetting }, tx) is null)
        {
            var ids = c.Query<string>("SELECT case_id FROM case_events GROUP BY case_id ORDER BY MIN(seq)", transaction: tx).ToList();
            foreach (var id in ids)
            {
                var events = c.Query<EventRow>("SELECT kind AS Kind, case_id AS CaseId, cluster_id AS ClusterId, body AS Body FROM case_events WHERE case_id = @id ORDER BY seq", new { id }, tx).ToList();
                if (Materialise(events) is { } k)
                {
                    Index(c, tx, k);
                }
            }

            c.Execute("INSERT INTO review_settings(name, value) VALUES (@IndexedSetting, @value)", new { IndexedSetting, value = DateTimeOffset.UtcNow.ToString("O", System.Globalization.CultureInfo.InvariantCulture) }, tx);
        }

        tx.Commit();
    }

    private static void Index(DbConnection c, DbTransaction tx, ReviewCase k)
    {
        c.Execute(
            """
            INSERT INTO review_cases(id, uploader_key, uploader_id, status, opened_at, updated_at, priority, items, clusters, decided, max_severity, ai)
            VALUES (@Id, @RawUploaderId, @UploaderId, @status, @opened, @updated, @Priority, @items, @clusters, @decided, @MaxSeverity, @ai)
            """,
            new
            {
                k.Id,
                k.RawUploaderId,
                k.UploaderId,
                status = (long)k.Status,
                opened = k.OpenedAt.ToUnixTimeMilliseconds(),
                updated = k.UpdatedAt.ToUnixTimeMilliseconds(),
                k.Priority,
                items = (long)k.ItemCount,
                clusters = (long)k.Clusters.Count,
                decided = (long)k.Clusters.Count(x => x.Decision is not null),
                k.MaxSeverity,
                ai = k.HasAiProvenance ? 1L : 0L,
            },
            tx);
        for (var i = 0; i < k.Clusters.Count; i++)
        {
            var cl = k.Clusters[i];
            c.Execute(
                "INSERT INTO review_clusters(case_id, idx, id, pdq, digest, decided) VALUES (@caseId, @idx, @id, @pdq, @digest, @decided)",
                new { caseId = k.Id, idx = (long)i, id = cl.Id, pdq = cl.Representative.Pdq?.ToString(), digest = DigestKey(cl.Representative), decided = cl.Decision is null ? 0L : 1L },
                tx);
            foreach (var m in cl.Members)
            {
                c.Execute("INSERT INTO review_submissions(id, case_id, cluster_id) VALUES (@id, @caseId, @clusterId) ON CONFLICT (id) DO NOTHING", new { id = m.SubmissionId, caseId = k.Id, clusterId = cl.Id }, tx);
            }
        }
    }

    private sealed record SubmissionRow(string CaseId, string ClusterId);

    /// <summary>The intake's read: the submission's case if it was seen, else the uploader's open case (null columns: none).</summary>
    private sealed class IntakeRead
    {
        public string? SeenCaseId { get; set; }

        public string? SeenClusterId { get; set; }

        public string? Id { get; set; }

        public string? UploaderKey { get; set; }

        public long Status { get; set; }

        public long Items { get; set; }

        public long Clusters { get; set; }

        public long Decided { get; set; }

        public long MaxSeverity { get; set; }

        public long Ai { get; set; }

        public long UpdatedAt { get; set; }
    }

    internal sealed record EventRow(string Kind, string CaseId, string? ClusterId, string Body);

    private sealed class CaseRow
    {
        public string Id { get; set; } = "";

        public string UploaderKey { get; set; } = "";

        public long Status { get; set; }

        public long Items { get; set; }

        public long Clusters { get; set; }

        public long Decided { get; set; }

        public long MaxSeverity { get; set; }

        public long Ai { get; set; }

        public long UpdatedAt { get; set; }
    }
}
