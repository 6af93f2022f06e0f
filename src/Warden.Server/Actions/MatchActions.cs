using System.Text.Json;
using Warden.Core.Banks;
using Warden.Server.Data;
using Warden.Server.Index;
using Warden.Storage;

namespace Warden.Server.Actions;

/// <summary>What one hit set off, decided once here so no caller re-derives it from strings.</summary>
public enum HitOutcome
{
    /// <summary>An allow-list hit: it suppresses block-list hits on the same content and sets off nothing itself.</summary>
    Allowed,

    /// <summary>A block-list hit that an allow-list hit on the same content suppressed.</summary>
    Suppressed,

    /// <summary>Its entry is flood-quarantined: reported, not acted on.</summary>
    FloodQuarantined,

    /// <summary>Actionable: recorded, and the bank's action (quarantine, notify) applies.</summary>
    Acted,
}

/// <summary>What a whole match asks of the caller.</summary>
public enum MatchAction
{
    /// <summary>No actionable hit.</summary>
    None,

    /// <summary>An actionable hit, recorded.</summary>
    Record,

    /// <summary>An actionable hit on a bank whose action says hold the content.</summary>
    Quarantine,
}

/// <summary>One hit with what it set off.</summary>
/// <param name="Hit">The index's hit.</param>
/// <param name="Entry">The bank entry (labels, source), or null when it went away since the index was built.</param>
/// <param name="Outcome">What it set off.</param>
/// <param name="Flooded">Its entry is flood-quarantined (also reported on allow-list and suppressed hits).</param>
/// <param name="Quarantine">For an acted hit: its bank's action holds the content.</param>
public sealed record ActedHit(MatchHit Hit, BankEntry? Entry, HitOutcome Outcome, bool Flooded, bool Quarantine);

/// <summary>The typed result of acting on a match's hits.</summary>
/// <param name="Hits">Every hit, in the index's order.</param>
/// <param name="Action">What the caller should do with the content.</param>
/// <param name="Notified">A signed webhook was queued.</param>
public sealed record MatchDecision(IReadOnlyList<ActedHit> Hits, MatchAction Action, bool Notified)
{
    /// <summary>No hits: nothing to do.</summary>
    public static MatchDecision Nothing { get; } = new([], MatchAction.None, false);

    /// <summary>At least one hit is actionable.</summary>
    public bool Matched => Action != MatchAction.None;

    /// <summary>The actionable hits.</summary>
    public IEnumerable<ActedHit> Acted => Hits.Where(h => h.Outcome == HitOutcome.Acted);
}

/// <summary>The content a match webhook names (the query's digests and PDQ).</summary>
/// <param name="Sha256">Hex.</param>
/// <param name="Md5">Hex.</param>
/// <param name="Pdq">Hex, for images.</param>
public sealed record WebhookContent(string Sha256, string Md5, string? Pdq);

/// <summary>Wire names of the typed outcomes (API responses, match records, webhooks, metrics).</summary>
public static class MatchActionNames
{
    /// <summary><c>none</c>, <c>record</c> or <c>quarantine</c>.</summary>
    public static string Name(this MatchAction action) => action switch
    {
        MatchAction.Record => "record",
        MatchAction.Quarantine => "quarantine",
        _ => "none",
    };

    /// <summary>The match record's action: <c>quarantine</c>, <c>record</c>, <c>flood_quarantined</c>, <c>suppressed</c> or <c>allow</c>.</summary>
    public static string RecordName(this ActedHit hit)
    {
        ArgumentNullException.ThrowIfNull(hit);
        return hit.Outcome switch
        {
            HitOutcome.Acted => hit.Quarantine ? "quarantine" : "record",
            HitOutcome.FloodQuarantined => "flood_quarantined",
            HitOutcome.Suppressed => "suppressed",
            _ => "allow",
        };
    }
}

/// <summary>
/// Match actions: flood control, quarantine, webhooks and metrics. Decides what each hit sets off and records the
/// matches plus webhook deliveries in one transaction before the response is sent.
/// </summary>
public sealed class MatchActions(LiveIndex index, BankStore banks, ServerStore server, FloodControl flood)
{
    private static readonly JsonSerializerOptions PayloadJson = new(JsonSerializerDefaults.Web) { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    /// <summary>Acts on the hits of one request (<paramref name="content"/>: null when matching a signal given by value).</summary>
    public MatchDecision Act(IReadOnlyList<MatchHit> hits, string? sha256, long? keyId, string? uploaderId, WebhookContent? content)
    {
        ArgumentNullException.ThrowIfNull(hits);
        if (hits.Count == 0)
        {
            return MatchDecision.Nothing;
        }

        var entries = banks.GetEntries(hits.Select(h => h.EntryId).Distinct());
        var actions = index.Actions;
        var quarantined = index.Quarantined;
        var acted = new List<ActedHit>(hits.Count);
        var events = new List<MatchEvent>();
        var quarantine = false;
        var notify = false;
        foreach (var hit in hits)
        {
            var actionable = !hit.Suppressed && hit.Bank.Kind == BankKind.BlockList;
            var flooded = quarantined.Contains(hit.EntryId);
            var reason = string.Empty;
            if (actionable && !flooded && flood.Count(hit.EntryId, out reason))
            {
                if (server.FlagEntry(hit.EntryId, reason))
                {
                    Metrics.FloodQuarantines.Inc();
                }

                index.QuarantineLocally(hit.EntryId);
                flooded = true;
            }

            var action = actions.GetValueOrDefault(hit.Bank.Id) ?? BankAction.RecordOnly;
            var acts = actionable && !flooded;
            quarantine |= acts && action.Quarantine;
            notify |= acts && action.Notify;
            var outcome = acts ? HitOutcome.Acted : flooded ? HitOutcome.FloodQuarantined : hit.Suppressed ? HitOutcome.Suppressed : HitOutcome.Allowed;
            var result = new ActedHit(hit, entries.GetValueOrDefault(hit.EntryId), outcome, flooded, acts && action.Quarantine);
            Metrics.Matches.WithLabels(hit.Bank.Name, hit.Suppressed ? "suppressed" : flooded ? "flood_quarantined" : "hit").Inc();
            events.Add(new MatchEvent(hit.Bank.Id, hit.EntryId, hit.SignalType, hit.Distance, result.RecordName()));
            acted.Add(result);
        }

        var matched = acted.Exists(h => h.Outcome == HitOutcome.Acted);
        var decided = matched ? (quarantine ? MatchAction.Quarantine : MatchAction.Record) : MatchAction.None;
        var deliveries = new List<(long, string, string, string)>();
        if (notify)
        {
            var created = DateTimeOffset.UtcNow;
            foreach (var (webhookId, _, _) in server.EnabledWebhooks())
            {
                var key = Guid.NewGuid().ToString("N");
                var payload = JsonSerializer.Serialize(
                    new
                    {
                        Event = "match",
                        Id = key,
                        CreatedAt = created,
                        UploaderId = uploaderId,
                        Content = content,
                        Action = quarantine ? MatchAction.Quarantine.Name() : MatchAction.Record.Name(),
                        Hits = acted.Where(h => h.Outcome == HitOutcome.Acted)
                            .Select(h => new
                            {
                                Bank = h.Hit.Bank.Name,
                                h.Hit.EntryId,
                                h.Hit.SignalType,
                                h.Hit.Distance,
                                Labels = h.Entry?.Labels ?? new Dictionary<string, string>(),
                                ExternalId = string.IsNullOrEmpty(h.Entry?.ExternalId) ? null : h.Entry.ExternalId,
                            }),
                    },
                    PayloadJson);
                deliveries.Add((webhookId, key, "match", payload));
            }
        }

        server.RecordMatches(keyId, uploaderId, sha256, events, deliveries);
        return new MatchDecision(acted, decided, deliveries.Count > 0);
    }
}
