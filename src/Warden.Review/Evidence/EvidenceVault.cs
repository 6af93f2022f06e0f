using System.Buffers.Binary;
using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;
using Warden.Review.Audit;

namespace Warden.Review.Evidence;

/// <summary>Vault settings.</summary>
public sealed record EvidenceVaultOptions
{
    /// <summary>Retention after a report (US 18 U.S.C. §2258A(h): 1 year). May be set longer, never shorter.</summary>
    public TimeSpan RetentionAfterReport { get; init; } = TimeSpan.FromDays(365);

    /// <summary>Retention of an item that has not (yet) been reported, counted from capture.</summary>
    public TimeSpan RetentionBeforeReport { get; init; } = TimeSpan.FromDays(365);

    /// <summary>Largest media item accepted.</summary>
    public long MaxItemBytes { get; init; } = 512L << 20;

    /// <summary>Checks the settings.</summary>
    public void Validate()
    {
        if (RetentionAfterReport < TimeSpan.FromDays(365))
        {
            throw new ArgumentException("Evidence retention after a report must be at least 365 days (18 U.S.C. §2258A(h)); longer is allowed.");
        }

        if (RetentionBeforeReport <= TimeSpan.Zero || MaxItemBytes <= 0)
        {
            throw new ArgumentException("Evidence retention before report and the item size limit must be positive.");
        }
    }
}

/// <summary>A read's justification: who, why, and whether the media is shown revealed (unblurred).</summary>
/// <param name="Actor">Who reads.</param>
/// <param name="Purpose">Why (free text, required): "review case 12", "CyberTipline upload".</param>
/// <param name="Revealed">True when a person sees the media unobscured; only such views set <c>fileViewedByEsp</c>.</param>
public sealed record EvidenceAccess(EvidenceActor Actor, string Purpose, bool Revealed = true);

/// <summary>Decrypted evidence, in memory only.</summary>
/// <param name="ItemId">Vault id.</param>
/// <param name="Media">The media bytes.</param>
/// <param name="Context">The context stored with it (uploader, IPs, original name…).</param>
public sealed record EvidenceContent(string ItemId, byte[] Media, IReadOnlyDictionary<string, string> Context);

/// <summary>
/// The evidence vault: quarantined media and its context, sealed with a fresh AES-256-GCM key per item
/// (wrapped by a configured master key), kept for the retention period, destroyed on schedule or on
/// request unless under legal hold. Every read names an actor and a purpose and leaves a view record
/// (and an audit record); media never touches disk unencrypted.
/// </summary>
public sealed class EvidenceVault
{
    private const int MaxContextBytes = 1 << 20;
    private readonly IBlobStore _blobs;
    private readonly IEvidenceCatalog _catalog;
    private readonly VaultKeyRing _keys;
    private readonly EvidenceVaultOptions _options;
    private readonly AuditLog? _audit;
    private readonly TimeProvider _time;

    /// <summary>Creates the vault.</summary>
    public EvidenceVault(IBlobStore blobs, IEvidenceCatalog catalog, VaultKeyRing keys, EvidenceVaultOptions? options = null, AuditLog? audit = null, TimeProvider? time = null)
    {
        _blobs = blobs;
        _catalog = catalog;
        _keys = keys;
        _options = options ?? new EvidenceVaultOptions();
        _options.Validate();
        _audit = audit;
        _time = time ?? TimeProvider.System;
    }

    /// <summary>Seals and stores media with its context; returns the new item id.</summary>
    public async Task<string> StoreAsync(ReadOnlyMemory<byte> media, IReadOnlyDictionary<string, string> context, string? caseId, EvidenceActor actor, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(context);
        RequireActor(actor);
        if (media.Length > _options.MaxItemBytes)
        {
            throw new EvidenceException(EvidenceError.NotAllowed, $"Media of {media.Length} bytes is over the vault's {_options.MaxItemBytes}-byte limit.");
        }

        var id = IBlobStore.NewId();
        var now = _time.GetUtcNow();

        // Catalogue first: a crash after it leaves a row whose object is missing (harmless, swept by
        // retention); the other order could leave ciphertext that no retention clock tracks.
        _catalog.Insert(new EvidenceItem(id, caseId, _keys.CurrentKeyId, media.Length, now, null, now + _options.RetentionBeforeReport, false, null, null));
        var contextJson = JsonSerializer.SerializeToUtf8Bytes(context);
        var plaintext = new byte[4 + contextJson.Length + media.Length];
        try
        {
            BinaryPrimitives.WriteInt32LittleEndian(plaintext, contextJson.Length);
            contextJson.CopyTo(plaintext, 4);
            media.Span.CopyTo(plaintext.AsSpan(4 + contextJson.Length));
            _keys.TryGet(_keys.CurrentKeyId, out var master);
            var sealedObject = EvidenceCrypto.Seal(id, plaintext, _keys.CurrentKeyId, master);
            await _blobs.WriteAsync(id, sealedObject, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            _catalog.MarkDestroyed(new EvidenceDestruction(id, _time.GetUtcNow(), actor.Id, "store failed before the object was written"));
            throw;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(plaintext);
        }

        Audit(actor.Id, "evidence.store", id, new() { ["case"] = caseId ?? "", ["bytes"] = media.Length.ToString(CultureInfo.InvariantCulture) });
        return id;
    }

    /// <summary>Decrypts an item for <paramref name="access"/>; the view is recorded before the bytes are returned.</summary>
    public async Task<EvidenceContent> ReadAsync(string itemId, EvidenceAccess access, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(access);
        RequireActor(access.Actor);
        if (string.IsNullOrWhiteSpace(access.Purpose))
        {
            throw new EvidenceException(EvidenceError.NotAllowed, "Every evidence read needs a purpose.");
        }

        var item = GetLive(itemId);
        var blob = await _blobs.ReadAsync(item.Id, cancellationToken).ConfigureAwait(false)
            ?? throw new EvidenceException(EvidenceError.NotFound, $"Evidence {itemId} is catalogued but its object is missing.");
        var plaintext = EvidenceCrypto.Open(item.Id, blob, _keys);
        try
        {
            var contextLength = plaintext.Length >= 4 ? BinaryPrimitives.ReadInt32LittleEndian(plaintext) : -1;
            if (contextLength < 0 || contextLength > MaxContextBytes || 4 + contextLength > plaintext.Length)
            {
                throw new EvidenceException(EvidenceError.BadFormat, $"Evidence {itemId}: invalid context length.");
            }

            Dictionary<string, string> context;
            try
            {
                context = JsonSerializer.Deserialize<Dictionary<string, string>>(plaintext.AsSpan(4, contextLength)) ?? [];
            }
            catch (JsonException ex)
            {
                throw new EvidenceException(EvidenceError.BadFormat, $"Evidence {itemId}: the sealed context is not valid JSON.", ex);
            }

            var media = plaintext.AsSpan(4 + contextLength).ToArray();
            var what = access.Revealed ? "revealed" : "obscured";
            _catalog.AddView(new EvidenceView(item.Id, access.Actor.Id, access.Actor.Kind, _time.GetUtcNow(), what, access.Purpose));
            Audit(access.Actor.Id, "evidence.view", item.Id, new() { ["what"] = what, ["purpose"] = access.Purpose, ["kind"] = access.Actor.Kind.ToString() });
            return new EvidenceContent(item.Id, media, context);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(plaintext);
        }
    }

    /// <summary>
    /// Records an obscured view without decrypting: a person was shown a derivative made earlier from this item
    /// (a cached blurred preview). A revealed view is refused here: only <see cref="ReadAsync"/> records those,
    /// so <see cref="ViewedByEsp"/> is true only where the original bytes were really read for a person.
    /// </summary>
    public void RecordObscuredView(string itemId, EvidenceAccess access)
    {
        ArgumentNullException.ThrowIfNull(access);
        RequireActor(access.Actor);
        if (string.IsNullOrWhiteSpace(access.Purpose))
        {
            throw new EvidenceException(EvidenceError.NotAllowed, "Every evidence view needs a purpose.");
        }

        if (access.Revealed)
        {
            throw new EvidenceException(EvidenceError.NotAllowed, "A revealed view is recorded by reading the item, not by this call.");
        }

        var item = GetLive(itemId);
        _catalog.AddView(new EvidenceView(item.Id, access.Actor.Id, access.Actor.Kind, _time.GetUtcNow(), "obscured", access.Purpose));
        Audit(access.Actor.Id, "evidence.view", item.Id, new() { ["what"] = "obscured", ["purpose"] = access.Purpose, ["kind"] = access.Actor.Kind.ToString() });
    }

    /// <summary>The catalogue row, or null.</summary>
    public EvidenceItem? Get(string itemId) => _catalog.Find(itemId);

    /// <summary>Every view of an item.</summary>
    public IReadOnlyList<EvidenceView> Views(string itemId) => _catalog.Views(itemId);

    /// <summary>Whether a person at the ESP has seen the item revealed: the truthful <c>fileViewedByEsp</c>.</summary>
    public bool ViewedByEsp(string itemId) => _catalog.ViewedByHuman(itemId);

    /// <summary>Starts the post-report retention clock (never shortens an existing retention).</summary>
    public void MarkReported(string itemId, DateTimeOffset reportedAt, string actor)
    {
        var item = GetLive(itemId);
        var until = Max(item.RetainUntil, reportedAt + _options.RetentionAfterReport);
        _catalog.SetReported(item.Id, reportedAt, until);
        Audit(actor, "evidence.reported", item.Id, new() { ["retainUntil"] = until.ToString("O", CultureInfo.InvariantCulture) });
    }

    /// <summary>Extends retention (providers may keep material longer); shortening is refused.</summary>
    public void ExtendRetention(string itemId, DateTimeOffset until, string actor, string reason)
    {
        var item = GetLive(itemId);
        if (until < item.RetainUntil)
        {
            throw new EvidenceException(EvidenceError.NotAllowed, $"Evidence {itemId}: retention can only be extended (currently until {item.RetainUntil:O}).");
        }

        _catalog.SetRetention(item.Id, until);
        Audit(actor, "evidence.retention", item.Id, new() { ["retainUntil"] = until.ToString("O", CultureInfo.InvariantCulture), ["reason"] = reason });
    }

    /// <summary>Places or lifts a legal hold; a held item cannot be destroyed.</summary>
    public void SetLegalHold(string itemId, bool hold, string actor, string reason)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(reason);
        var item = GetLive(itemId);
        _catalog.SetHold(item.Id, hold, hold ? reason : null);
        Audit(actor, hold ? "evidence.hold" : "evidence.release", item.Id, new() { ["reason"] = reason });
    }

    /// <summary>
    /// Destroys an item now (law-enforcement request, §2258B(c)(2), or an operator decision): deletes the
    /// ciphertext, which holds the only copy of the wrapped data key, and records who and why. Refused
    /// under legal hold. Returns false when it was already destroyed.
    /// </summary>
    public async Task<bool> DestroyAsync(string itemId, string actor, string reason, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(actor);
        ArgumentException.ThrowIfNullOrWhiteSpace(reason);
        var item = _catalog.Find(itemId) ?? throw new EvidenceException(EvidenceError.NotFound, $"No evidence item {itemId}.");
        if (item.DestroyedAt is not null)
        {
            return false;
        }

        if (item.LegalHold)
        {
            throw new EvidenceException(EvidenceError.LegalHold, $"Evidence {itemId} is under legal hold ({item.HoldReason}); lift the hold first.");
        }

        // Blob first: a crash in between leaves a catalogued item whose object is gone, and the next run
        // finishes the job; the other order could leave ciphertext nobody tracks.
        await _blobs.DeleteAsync(item.Id, cancellationToken).ConfigureAwait(false);
        var at = _time.GetUtcNow();
        _catalog.MarkDestroyed(new EvidenceDestruction(item.Id, at, actor, reason));
        Audit(actor, "evidence.destroy", item.Id, new() { ["reason"] = reason });
        return true;
    }

    /// <summary>The scheduled job: destroys every item past retention and not on hold.</summary>
    public async Task<int> DestroyDueAsync(string actor, CancellationToken cancellationToken = default)
    {
        var count = 0;
        while (true)
        {
            var due = _catalog.Due(_time.GetUtcNow(), 500);
            if (due.Count == 0)
            {
                return count;
            }

            foreach (var item in due)
            {
                if (await DestroyAsync(item.Id, actor, $"retention ended {item.RetainUntil:O}", cancellationToken).ConfigureAwait(false))
                {
                    count++;
                }
            }
        }
    }

    /// <summary>The destruction record of an item, or null.</summary>
    public EvidenceDestruction? Destruction(string itemId) => _catalog.GetDestruction(itemId);

    /// <summary>Re-wraps every live item not on the current master key; returns how many changed.</summary>
    public async Task<int> RewrapAllAsync(string actor, CancellationToken cancellationToken = default)
    {
        var count = 0;
        foreach (var item in _catalog.Live())
        {
            if (item.KeyId == _keys.CurrentKeyId)
            {
                continue;
            }

            var blob = await _blobs.ReadAsync(item.Id, cancellationToken).ConfigureAwait(false);
            if (blob is null)
            {
                continue;
            }

            var rewrapped = EvidenceCrypto.Rewrap(item.Id, blob, _keys, _keys.CurrentKeyId);
            await _blobs.WriteAsync(item.Id, rewrapped, cancellationToken).ConfigureAwait(false);
            _catalog.SetKey(item.Id, _keys.CurrentKeyId);
            count++;
        }

        Audit(actor, "key.rotate", "vault", new() { ["currentKey"] = _keys.CurrentKeyId, ["rewrapped"] = count.ToString(CultureInfo.InvariantCulture) });
        return count;
    }

    private EvidenceItem GetLive(string itemId)
    {
        var item = _catalog.Find(itemId) ?? throw new EvidenceException(EvidenceError.NotFound, $"No evidence item {itemId}.");
        return item.DestroyedAt is null ? item : throw new EvidenceException(EvidenceError.Destroyed, $"Evidence {itemId} was destroyed at {item.DestroyedAt:O}.");
    }

    private static void RequireActor(EvidenceActor? actor)
    {
        if (actor is null || string.IsNullOrWhiteSpace(actor.Id))
        {
            throw new EvidenceException(EvidenceError.NotAllowed, "Every evidence operation needs an identified actor.");
        }
    }

    private static DateTimeOffset Max(DateTimeOffset a, DateTimeOffset b) => a > b ? a : b;

    private void Audit(string actor, string action, string itemId, Dictionary<string, string> details) =>
        _audit?.Append(new AuditEntry(actor, action, "evidence:" + itemId, details));
}
