using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Routing;
using Warden.Core.Banks;
using Warden.Core.Banks.Formats;
using Warden.Review.Audit;
using Warden.Server.Auth;
using Warden.Server.Data;
using Warden.Server.Index;
using Warden.Storage;

namespace Warden.Server.Api;

/// <summary>
/// Curation (role curator): banks, entries, bulk import and export, flood flags, under <c>/v1/…</c> (JSON in
/// snake_case). The other role groups: <see cref="HashingEndpoints"/> (submitter), <see cref="AdminEndpoints"/>
/// (admin), the review console (reviewer) and the exchanges.
/// </summary>
internal static partial class CurationEndpoints
{
    public static void Map(IEndpointRouteBuilder app)
    {
        var v1 = app.MapGroup("/v1");

        var curate = v1.MapGroup(string.Empty).RequireAuthorization(Roles.Curate).WithTags("Banks");
        curate.MapGet("/banks", ListBanks).WithSummary("List banks").Produces<IReadOnlyList<BankDto>>();
        curate.MapPost("/banks", CreateBank).WithSummary("Create a bank").Produces<BankDto>(StatusCodes.Status201Created);
        curate.MapGet("/banks/{name}", GetBank).WithSummary("Get a bank").Produces<BankDto>();
        curate.MapPatch("/banks/{name}", UpdateBank).WithSummary("Change a bank (enable/disable, kind, threshold, action)").Produces<BankDto>();
        curate.MapGet("/banks/{name}/entries", ListEntries).WithSummary("List a bank's entries (paged by id)").Produces<IReadOnlyList<EntryDto>>();
        curate.MapPost("/banks/{name}/entries", AddEntry).WithSummary("Add one entry").Produces<EntryDto>(StatusCodes.Status201Created);
        curate.MapPost("/banks/{name}/import", ImportAsync)
            .WithSummary("Bulk import a hash list (streamed)")
            .WithDescription("The body is a list file in one of the formats of 'warden bank import': csv, jsonl, plain or ncmec (format=…, detected when absent). Streamed: any size, bounded memory. on_error=skip skips bad records and reports them; abort (default) stops at the first, keeping what was imported before it.")
            .AcceptsList()
            .Produces<ImportResponse>();
        curate.MapGet("/banks/{name}/export", Export).WithSummary("Export a bank as a list file (csv or jsonl)");
        curate.MapGet("/entries/{id:long}", GetEntry).WithSummary("Get an entry").Produces<EntryDto>();
        curate.MapPatch("/entries/{id:long}", UpdateEntry).WithSummary("Enable or disable an entry").Produces<EntryDto>();
        curate.MapDelete("/entries/{id:long}", DeleteEntry).WithSummary("Delete an entry (a tombstone that syncs to every node)").Produces(StatusCodes.Status204NoContent);
        curate.MapGet("/flags", ListFlags).WithSummary("Entries flagged by flood control").Produces<IReadOnlyList<EntryFlag>>();
        curate.MapPost("/flags/{entryId:long}/clear", ClearFlag).WithSummary("Clear a flood flag: the entry sets off actions again").Produces(StatusCodes.Status204NoContent);
    }

    private static IEnumerable<BankDto> ListBanks(BankStore store, LiveIndex index)
    {
        var counts = store.CountEntries();
        var actions = index.Actions;
        return store.ListBanks().Select(b => ToDto(b, counts, actions));
    }

    internal static BankDto ToDto(Bank b, IReadOnlyDictionary<long, long> counts, IReadOnlyDictionary<long, BankAction> actions)
    {
        var action = actions.GetValueOrDefault(b.Id) ?? BankAction.RecordOnly;
        return new BankDto(b.Id, b.Name, BankDto.KindName(b.Kind), b.Enabled, b.PdqThreshold, b.Description, counts.GetValueOrDefault(b.Id), new ActionDto(action.Quarantine, action.Notify), b.CreatedAt, b.Thresholds);
    }

    private static BankDto Fresh(BankStore store, ServerStore server, Bank bank) =>
        ToDto(bank, store.CountEntries(), server.BankActions());

    private static BankKind ParseKind(string? kind) => BankKinds.TryParse(kind, out var parsed)
        ? parsed
        : throw ApiException.BadRequest(ErrorCodes.InvalidRequest, $"Unknown bank kind '{kind}'; use {string.Join(" or ", BankKinds.Names)}.");

    // The one rule (BankThresholds), as storage applies it; checked here too so the answer names the field.
    private static void CheckThreshold(int? threshold)
    {
        if (threshold is { } t && BankThresholds.Check(Warden.Core.Signals.SignalTypes.Pdq, t) is { } reason)
        {
            throw ApiException.BadRequest(ErrorCodes.InvalidRequest, $"pdq_threshold: {reason}.");
        }
    }

    private static IResult CreateBank(HttpContext context, CreateBankRequest request, BankStore store, ServerStore server, AuditLog audit)
    {
        if (request is null || !BankNames.IsValid(request.Name))
        {
            throw ApiException.BadRequest(ErrorCodes.InvalidRequest, char.ToUpperInvariant(BankNames.Rule[0]) + BankNames.Rule[1..] + ".");
        }

        CheckThreshold(request.PdqThreshold);
        var bank = store.CreateBank(request.Name, ParseKind(request.Kind), request.PdqThreshold, request.Description, request.Thresholds);
        if (request.Action is { } a)
        {
            server.SetBankAction(bank.Id, new BankAction(a.Quarantine, a.Notify));
        }

        ConfigAudit.Append(audit, context, "bank.create", $"bank:{bank.Name}", new Dictionary<string, string> { ["kind"] = BankDto.KindName(bank.Kind) });
        return Results.Created($"/v1/banks/{bank.Name}", Fresh(store, server, bank));
    }

    private static Bank Require(BankStore store, string name) => store.GetBank(name) ?? throw ApiException.NotFound($"No bank named '{name}'.");

    private static BankDto GetBank(string name, BankStore store, ServerStore server) => Fresh(store, server, Require(store, name));

    private static BankDto UpdateBank(HttpContext context, string name, UpdateBankRequest request, BankStore store, ServerStore server, AuditLog audit)
    {
        ArgumentNullException.ThrowIfNull(request);
        Require(store, name);
        CheckThreshold(request.PdqThreshold);
        var bank = store.UpdateBank(name, request.Enabled, request.Kind is null ? null : ParseKind(request.Kind), request.PdqThreshold, request.ClearPdqThreshold ?? false, request.Description, request.Thresholds);
        if (request.Action is { } a)
        {
            server.SetBankAction(bank.Id, new BankAction(a.Quarantine, a.Notify));
        }

        ConfigAudit.Append(audit, context, "bank.update", $"bank:{bank.Name}", new Dictionary<string, string>
        {
            ["enabled"] = bank.Enabled ? "true" : "false",
            ["kind"] = BankDto.KindName(bank.Kind),
            ["pdq_threshold"] = bank.PdqThreshold?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "default",
        });
        return Fresh(store, server, bank);
    }

    private static EntryDto ToDto(BankEntry e, string bank) =>
        new(e.Id, bank, e.SignalType, e.Signal, e.Labels, e.Source, string.IsNullOrEmpty(e.ExternalId) ? null : e.ExternalId, e.Enabled, e.Note, e.Deleted, e.UpdatedAt);

    private static IEnumerable<EntryDto> ListEntries(string name, [FromQuery(Name = "after_id")] long? afterId, int? limit, BankStore store)
    {
        var bank = Require(store, name);
        return store.ListEntries(bank.Id, afterId ?? 0, Math.Clamp(limit ?? 100, 1, 10_000)).Select(e => ToDto(e, bank.Name));
    }

    private static IResult AddEntry(string name, AddEntryRequest request, BankStore store)
    {
        ArgumentNullException.ThrowIfNull(request);
        var bank = Require(store, name);
        var (type, normalized) = MatchService.Normalize(request.SignalType, request.Signal);
        var entry = store.AddEntry(bank.Id, new BankEntryRecord(type.Name, normalized, request.Labels ?? new Dictionary<string, string>(), request.Note, request.ExternalId), "api");
        return Results.Created($"/v1/entries/{entry.Id}", ToDto(entry, bank.Name));
    }

    private static async Task<ImportResponse> ImportAsync(HttpContext context, string name, string? format, [FromQuery(Name = "signal_type")] string? signalType, [FromQuery(Name = "on_error")] string? onError, BankStore store)
    {
        var bank = Require(store, name);
        var skip = onError?.Trim().ToLowerInvariant() switch
        {
            null or "" or "abort" => false,
            "skip" => true,
            _ => throw ApiException.BadRequest(ErrorCodes.InvalidRequest, "on_error is abort or skip."),
        };

        // Lists are streamed through the reader, so their size is not limited by memory.
        if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } size)
        {
            size.MaxRequestBodySize = null;
        }

        Stream body = context.Request.Body;
        BankFileFormat? listFormat;
        if (format is not null)
        {
            if (!BankFileFormats.TryParse(format, out listFormat))
            {
                throw ApiException.BadRequest(ErrorCodes.InvalidRequest, $"Unknown list format '{format}'; use {string.Join(", ", BankFileFormats.Names)}.");
            }
        }
        else
        {
            // Sniff from the first bytes without consuming them: read into a buffer, then replay it.
            var head = new byte[4096];
            var n = 0;
            int read;
            while (n < head.Length && (read = await body.ReadAsync(head.AsMemory(n), context.RequestAborted).ConfigureAwait(false)) > 0)
            {
                n += read;
            }

            listFormat = BankFileReader.Detect(null, head.AsSpan(0, n))
                ?? throw ApiException.BadRequest(ErrorCodes.InvalidList, $"Cannot tell the list format; pass format={string.Join("|", BankFileFormats.Names)}.");
            body = new ConcatStream(head.AsMemory(0, n), context.Request.Body);
        }

        var report = new ImportReport();
        var errors = new List<string>();
        var options = new ImportOptions(listFormat, signalType, SkipBadLines: skip, SourceName: "api")
        {
            OnError = e =>
            {
                if (errors.Count < 100)
                {
                    errors.Add(e.ToString());
                }
            },
        };

        // The list readers are synchronous; let them read the request body synchronously on a pool thread.
        if (context.Features.Get<IHttpBodyControlFeature>() is { } control)
        {
            control.AllowSynchronousIO = true;
        }

        var buffered = new BufferedStream(body, 1 << 16);
        IEnumerable<BankEntryRecord> records;
        try
        {
            records = BankFileReader.Read(buffered, options, report);
        }
        catch (ArgumentException ex)
        {
            // Options that cannot work for this list, checked before anything is read or stored.
            var detail = ex.Message.Split(" (Parameter", 2)[0];
            throw ApiException.BadRequest(ErrorCodes.InvalidRequest, listFormat.NeedsSignalType && string.IsNullOrWhiteSpace(signalType)
                ? $"A {listFormat.Name} list does not say what its hashes are; pass signal_type={string.Join("|", Warden.Core.Signals.SignalTypes.All.Select(t => t.Name))} (or auto: md5/sha1 by length)."
                : detail);
        }

        var result = await Task.Run(() => store.Import(bank.Id, records, "api"), context.RequestAborted).ConfigureAwait(false);
        return new ImportResponse(result.Processed, result.Added, result.Updated, result.Unchanged, result.Deleted, report.Skipped, errors);
    }

    private static IResult Export(HttpContext context, string name, string? format, BankStore store)
    {
        // The list writers are synchronous; they stream on a pool thread.
        if (context.Features.Get<IHttpBodyControlFeature>() is { } control)
        {
            control.AllowSynchronousIO = true;
        }

        var bank = Require(store, name);
        if (!BankFileFormats.TryParse(format ?? "jsonl", out var f) || !f.CanWrite)
        {
            throw ApiException.BadRequest(ErrorCodes.InvalidRequest, $"Export format is {string.Join(", ", ListFormatRegistry.Current.Writable.Select(w => w.Name))}.");
        }

        return Results.Stream(
            async stream =>
            {
                var entries = store.ExportEntries(bank.Id).Select(e => new BankEntryRecord(e.SignalType, e.Signal, e.Labels, e.Note, e.ExternalId, e.Deleted));
                await using var writer = new StreamWriter(stream, leaveOpen: true);
                await Task.Run(() => BankFileWriter.Write(writer, f, entries)).ConfigureAwait(false);
            },
            f.MimeType,
            bank.Name + f.ExportExtension);
    }

    private static EntryDto GetEntry(long id, BankStore store)
    {
        var entry = store.GetEntries([id]).GetValueOrDefault(id) ?? throw ApiException.NotFound($"No entry {id}.");
        var bank = store.ListBanks().FirstOrDefault(b => b.Id == entry.BankId)?.Name ?? "?";
        return ToDto(entry, bank);
    }

    private static EntryDto UpdateEntry(long id, UpdateEntryRequest request, BankStore store)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (request.Enabled is { } enabled && !store.SetEntryEnabled(id, enabled) && !store.GetEntries([id]).ContainsKey(id))
        {
            throw ApiException.NotFound($"No entry {id}.");
        }

        return GetEntry(id, store);
    }

    private static IResult DeleteEntry(HttpContext context, long id, BankStore store, AuditLog audit)
    {
        if (!store.DeleteEntry(id))
        {
            throw ApiException.NotFound($"No live entry {id}.");
        }

        ConfigAudit.Append(audit, context, "entry.delete", $"entry:{id}");
        return Results.NoContent();
    }

    private static IReadOnlyList<EntryFlag> ListFlags(bool? all, ServerStore server) => server.ListFlags(activeOnly: !(all ?? false));

    private static IResult ClearFlag(long entryId, HttpContext context, ServerStore server, AuditLog audit)
    {
        if (!server.ClearFlag(entryId, context.User.Actor()))
        {
            throw ApiException.NotFound($"Entry {entryId} has no active flood flag.");
        }

        ConfigAudit.Append(audit, context, "flag.clear", $"entry:{entryId}");
        return Results.NoContent();
    }

}

/// <summary>A read-only stream of a prefix buffer followed by another stream (to replay sniffed bytes).</summary>
internal sealed class ConcatStream(ReadOnlyMemory<byte> head, Stream tail) : Stream
{
    private ReadOnlyMemory<byte> _head = head;

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        if (!_head.IsEmpty)
        {
            var n = Math.Min(buffer.Length, _head.Length);
            _head.Span[..n].CopyTo(buffer);
            _head = _head[n..];
            return n;
        }

        return tail.Read(buffer);
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (!_head.IsEmpty)
        {
            var n = Math.Min(buffer.Length, _head.Length);
            _head.Span[..n].CopyTo(buffer.Span);
            _head = _head[n..];
            return n;
        }

        return await tail.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
    }

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
