using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Warden.Core.Exchanges;
using Warden.Storage;

namespace Warden.Cli;

/// <summary>`warden exchange add|fetch|status|list|remove|enable|disable|feedback|schema`: feeds that fill banks by themselves.</summary>
internal static class ExchangeCommand
{
    private static readonly JsonSerializerOptions SchemaJson = new() { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    public static Command Create(TextWriter output, TextWriter error) => new("exchange", "Exchanges: clearinghouse feeds (NCMEC Hash Sharing, ...) that fill a bank and stay in sync, and take feedback back.")
    {
        AddCommand(output, error),
        FetchCommand(output, error),
        StatusCommand("status", output, error),
        StatusCommand("list", output, error),
        RemoveCommand(output, error),
        SwitchCommand("enable", true, output, error),
        SwitchCommand("disable", false, output, error),
        FeedbackCommand(output, error),
        SchemaCommand(output, error),
    };

    private static Argument<string> NameArgument() => new("NAME") { Description = "The exchange's name (letters, digits, '_', '-', '.')." };

    /// <summary>Opens the database with banks and exchanges; the action gets both stores.</summary>
    private static int WithStores(string db, TextWriter error, Func<BankStore, ExchangeStore, int> action, bool create = false) => CommonOptions.Guarded(error, () =>
    {
        // Fail closed: only 'exchange add' (which creates its bank too) may create a missing database.
        if (!create && DatabaseGuard.Refuse(db, error) is { } refused)
        {
            return refused;
        }

        using var banks = BankStore.Open(db);
        var exchanges = ExchangeStore.Open(banks.Database);
        try
        {
            return action(banks, exchanges);
        }
        catch (ExchangeConfigException ex)
        {
            error.WriteLine($"warden: {ex.Message}");
            return WardenCli.UsageError;
        }
    });

    /// <summary>
    /// Runs a command that talks to an exchange's remote: refuses a missing database (exit 2), opens both stores,
    /// finds the exchange and gives the action an HTTP runtime; exchange and storage errors are one line, exit 1.
    /// </summary>
    private static async Task<int> WithExchangeAsync(string db, string name, TextWriter error, Func<BankStore, ExchangeStore, Exchange, ExchangeRuntime, Task<int>> action)
    {
        if (DatabaseGuard.Refuse(db, error) is { } refused)
        {
            return refused;
        }

        try
        {
            using var banks = BankStore.Open(db);
            var exchanges = ExchangeStore.Open(banks.Database);
            var x = exchanges.Require(name);
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(60) };
            var runtime = ExchangeRuntime.Default(http) with { Log = line => error.WriteLine("warden: " + line) };
            return await action(banks, exchanges, x, runtime);
        }
        catch (Exception ex) when (ex is ExchangeException or ExchangeLeaseException or ExchangeConfigException or StorageException or System.Data.Common.DbException)
        {
            error.WriteLine($"warden: {ex.Message}");
            return WardenCli.SomeFailed;
        }
    }

    private static Command AddCommand(TextWriter output, TextWriter error)
    {
        var name = NameArgument();
        var type = new Option<string>("--type") { Description = "Exchange type: " + string.Join(", ", ExchangeTypes.All.Select(t => t.Name)) + ".", Required = true };
        var bank = new Option<string>("--bank") { Description = "The bank the exchange fills (created when missing).", Required = true };
        var url = new Option<string?>("--url") { Description = "NCMEC: the environment's base URL (e.g. https://exttest.cybertip.org/hashsharing; default: the environment's). url_list: the list file's URL. stopncii, fb_threatexchange: the API root (default: the real one). peer: the peer's root URL." };
        var privacyGroup = new Option<long?>("--privacy-group") { Description = "fb_threatexchange: the ThreatPrivacyGroup ID." };
        var remoteBank = new Option<string?>("--remote-bank") { Description = "peer: the peer's bank to mirror." };
        var flavor = new Option<string?>("--flavor") { Description = "peer: warden (another Warden's change feed) or hma (an HMA bank, walked item by item)." };
        var feedbackKeyEnv = new Option<string?>("--feedback-key-env") { Description = "stopncii: name of the environment variable holding the SubmitFeedback function key." };
        var environment = new Option<string?>("--environment") { Description = "NCMEC environment: " + string.Join(", ", Warden.Core.Exchanges.Ncmec.NcmecEnvironments.Names) + "." };
        var credentialsEnv = new Option<string?>("--credentials-env") { Description = "Name of the environment variable that holds the credentials at fetch time (the value is never stored): ncmec user:password; stopncii fetch_function_key,subscription_key; fb_threatexchange the access token; peer the peer's API key." };
        var credentialsFile = new Option<string?>("--credentials-file") { Description = "A file whose first line is user:password (instead of --credentials-env)." };
        var members = new Option<long[]>("--member") { Description = "Only entries of this member (ESP) id; repeat for several.", AllowMultipleArgumentsPerToken = true };
        var start = new Option<string?>("--start-time") { Description = "Where the first sync starts (ISO 8601 UTC); default: the beginning of the list." };
        var interval = new Option<long>("--interval") { Description = "Seconds between the server's scheduled fetches.", DefaultValueFactory = _ => 300 };
        var feedback = new Option<bool>("--feedback") { Description = "Send reviewers' decisions on this exchange's entries back as opinions (opt-in)." };
        var config = new Option<string?>("--config") { Description = "The type's config as a JSON object (other types, or fields without an option)." };
        var format = CommonOptions.Format("Output: 'table' (a sentence) or 'jsonl'.", "table", "jsonl");
        var db = CommonOptions.Db();
        var command = new Command("add", "Add an exchange that fills a bank.") { name, type, bank, url, environment, credentialsEnv, credentialsFile, members, start, privacyGroup, remoteBank, flavor, feedbackKeyEnv, interval, feedback, config, format, db };
        command.SetAction(p => WithStores(p.GetRequiredValue(db), error, (banks, exchanges) =>
        {
            var t = ExchangeTypes.Get(p.GetRequiredValue(type));
            JsonElement json;
            try
            {
                json = BuildConfig(t.Name, p.GetValue(config), p.GetValue(url), p.GetValue(environment), p.GetValue(credentialsEnv), p.GetValue(credentialsFile), p.GetValue(members), p.GetValue(start));
                json = AddTypeOptions(json, p.GetValue(privacyGroup), p.GetValue(remoteBank), p.GetValue(flavor), p.GetValue(feedbackKeyEnv));
            }
            catch (JsonException ex)
            {
                throw new ExchangeConfigException("--config is not a JSON object: " + ex.Message, ex);
            }

            var canonical = t.Validate(json);
            var bankName = p.GetRequiredValue(bank);
            var b = banks.GetBank(bankName);
            var created = false;
            if (b is null)
            {
                b = banks.CreateBank(bankName, description: $"filled by exchange {p.GetRequiredValue(name)} ({t.Name})");
                created = true;
            }

            var x = exchanges.Create(p.GetRequiredValue(name), t.Name, b.Id, canonical.GetRawText(), p.GetValue(interval), p.GetValue(feedback));
            if (p.GetRequiredValue(format) == "jsonl")
            {
                WriteExchange(output, x, exchanges.State(x.Id));
            }
            else
            {
                output.WriteLine($"added exchange {x.Name} ({x.Type}) filling bank {x.BankName}{(created ? " (created)" : string.Empty)}; fetch it with 'warden exchange fetch {x.Name}'");
            }

            return WardenCli.Ok;
        }, create: true));
        return command;
    }

    private static JsonElement BuildConfig(string type, string? raw, string? url, string? environment, string? credentialsEnv, string? credentialsFile, long[]? members, string? start)
    {
        var fields = new Dictionary<string, object?>(StringComparer.Ordinal);
        if (raw is not null)
        {
            using var doc = JsonDocument.Parse(raw);
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
            {
                throw new ExchangeConfigException("--config must be a JSON object.");
            }

            foreach (var prop in doc.RootElement.EnumerateObject())
            {
                fields[prop.Name] = prop.Value.Clone();
            }
        }

        void Set(string key, object? value)
        {
            if (value is not null)
            {
                fields[key] = value;
            }
        }

        Set(type == ExchangeTypes.UrlList.Name ? "url" : "base_url", url); // a list's file, or an environment's root
        Set("environment", environment);
        var peer = type == ExchangeTypes.Peer.Name;
        Set(peer ? "api_key_env" : "credentials_env", credentialsEnv);
        Set(peer ? "api_key_file" : "credentials_file", credentialsFile);
        if (type == ExchangeTypes.StopNcii.Name || type == ExchangeTypes.ThreatExchange.Name)
        {
            // These feeds count time in Unix seconds: an ISO time (or a number) becomes one.
            Set(type == ExchangeTypes.StopNcii.Name ? "start_timestamp" : "start_time", start is null ? null : UnixSeconds(start));
        }
        else
        {
            Set("start_time", start);
        }

        if (members is { Length: > 0 })
        {
            fields["only_esp_ids"] = members;
        }

        return JsonSerializer.SerializeToElement(fields);
    }

    private static long UnixSeconds(string text) =>
        long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n
        : DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var t) ? t.ToUnixTimeSeconds()
        : throw new ExchangeConfigException($"--start-time '{text}' is not an ISO 8601 time or Unix seconds.");

    /// <summary>The options only some types take; a type that does not take one refuses it as an unknown field.</summary>
    private static JsonElement AddTypeOptions(JsonElement json, long? privacyGroup, string? remoteBank, string? flavor, string? feedbackKeyEnv)
    {
        if (privacyGroup is null && remoteBank is null && flavor is null && feedbackKeyEnv is null)
        {
            return json;
        }

        var fields = json.EnumerateObject().ToDictionary(p => p.Name, p => (object?)p.Value.Clone(), StringComparer.Ordinal);
        if (privacyGroup is not null)
        {
            fields["privacy_group"] = privacyGroup;
        }

        if (remoteBank is not null)
        {
            fields["remote_bank"] = remoteBank;
        }

        if (flavor is not null)
        {
            fields["flavor"] = flavor;
        }

        if (feedbackKeyEnv is not null)
        {
            fields["feedback_key_env"] = feedbackKeyEnv;
        }

        return JsonSerializer.SerializeToElement(fields);
    }

    private static Command FetchCommand(TextWriter output, TextWriter error)
    {
        var name = NameArgument();
        var noProgress = new Option<bool>("--no-progress") { Description = "No progress lines on stderr." };
        var format = CommonOptions.Format("Output: 'table' (a sentence) or 'jsonl'.", "table", "jsonl");
        var db = CommonOptions.Db();
        var command = new Command("fetch", "One sync pass to the newest data (resumable: an interrupted pass goes on from the last commit).") { name, noProgress, format, db };
        command.SetAction((p, ct) => WithExchangeAsync(p.GetRequiredValue(db), p.GetRequiredValue(name), error, async (banks, exchanges, x, runtime) =>
        {
            try
            {
                var quiet = p.GetValue(noProgress);
                var sync = new ExchangeSync(banks, exchanges)
                {
                    Progress = quiet ? null : s => error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"warden: {x.Name}: {s.Entries} entries, {s.Tombstones} deletions, checkpoint {Time(s.CheckpointTime)}, {Rate(s.Entries + s.Tombstones, s.Elapsed)} entries/s")),
                };
                var r = await sync.RunAsync(x, runtime, LeaseOwner.Create(), ct);
                var unsupported = r.Unsupported.Values.Sum();
                if (p.GetRequiredValue(format) == "jsonl")
                {
                    CommonOptions.WriteJsonLine(output, j =>
                    {
                        j.WriteString("name", x.Name);
                        j.WriteNumber("entries", r.Entries);
                        j.WriteNumber("tombstones", r.Tombstones);
                        j.WriteNumber("filtered", r.Filtered);
                        j.WriteNumber("unsupported", unsupported);
                        j.WriteStartObject("unsupported_types");
                        foreach (var (k, v) in r.Unsupported)
                        {
                            j.WriteNumber(k, v);
                        }

                        j.WriteEndObject();
                        j.WriteNumber("errors", r.Errors);
                        j.WriteNumber("commits", r.Commits);
                        j.WriteString("checkpoint_time", Time(r.CheckpointTime));
                        j.WriteNumber("seconds", Math.Round(r.Elapsed.TotalSeconds, 3));
                    });
                }
                else
                {
                    var types = r.Unsupported.Count == 0 ? string.Empty : " (" + string.Join(", ", r.Unsupported.Select(u => $"{u.Key} {u.Value}")) + ")";
                    output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"{x.Name}: up to date at {Time(r.CheckpointTime)}: {r.Entries} entries, {r.Tombstones} deletions, {r.Filtered} filtered, {unsupported} unsupported fingerprints{types}, {r.Errors} errors in {r.Elapsed.TotalSeconds:0.0}s"));
                }

                return WardenCli.Ok;
            }
            catch (OperationCanceledException)
            {
                error.WriteLine("warden: fetch interrupted; the next fetch resumes from the last commit");
                return WardenCli.SomeFailed;
            }
        }));
        return command;
    }

    private static Command StatusCommand(string verb, TextWriter output, TextWriter error)
    {
        var name = new Argument<string?>("NAME") { Description = "One exchange (default: all).", Arity = ArgumentArity.ZeroOrOne };
        var format = CommonOptions.Format("Output: 'table' or 'jsonl' (one object per exchange).", "table", "jsonl");
        var db = CommonOptions.Db();
        var command = new Command(verb, verb == "list" ? "List the exchanges." : "Where each exchange's sync stands: checkpoint, last success, lag, counts, errors.") { name, format, db };
        command.SetAction(p => WithStores(p.GetRequiredValue(db), error, (_, exchanges) =>
        {
            var all = p.GetValue(name) is { } one ? [exchanges.Require(one)] : exchanges.List();
            if (p.GetRequiredValue(format) == "jsonl")
            {
                foreach (var x in all)
                {
                    WriteExchange(output, x, exchanges.State(x.Id));
                }
            }
            else
            {
                output.WriteLine($"{"name",-20}  {"type",-6}  {"bank",-16}  {"on",-3}  {"checkpoint",-20}  {"last success",-20}  {"entries",9}  {"errors",6}  last error");
                foreach (var x in all)
                {
                    var s = exchanges.State(x.Id);
                    output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"{x.Name,-20}  {x.Type,-6}  {x.BankName,-16}  {(x.Enabled ? "yes" : "no"),-3}  {Time(s.CheckpointTime),-20}  {Time(s.LastSuccessAt),-20}  {s.EntriesFetched,9}  {s.Errors,6}  {s.LastError}"));
                }
            }

            return WardenCli.Ok;
        }));
        return command;
    }

    internal static void WriteExchange(TextWriter output, Exchange x, ExchangeState s) => CommonOptions.WriteJsonLine(output, j =>
    {
        j.WriteString("name", x.Name);
        j.WriteString("type", x.Type);
        j.WriteString("bank", x.BankName);
        j.WriteBoolean("enabled", x.Enabled);
        j.WriteBoolean("feedback", x.FeedbackEnabled);
        j.WriteNumber("interval_seconds", x.IntervalSeconds);
        j.WritePropertyName("config");
        using (var doc = JsonDocument.Parse(x.Config))
        {
            doc.RootElement.WriteTo(j);
        }

        j.WriteString("checkpoint_time", Time(s.CheckpointTime));
        j.WriteString("last_fetch", Time(s.LastFetchAt));
        j.WriteString("last_success", Time(s.LastSuccessAt));
        if (s.LastSucceeded is { } ok)
        {
            j.WriteBoolean("last_succeeded", ok);
        }
        else
        {
            j.WriteNull("last_succeeded");
        }

        j.WriteBoolean("up_to_date", s.UpToDate);
        j.WriteBoolean("fetch_in_progress", s.FetchStartedAt is not null);
        if (s.CheckpointTime is { } t)
        {
            j.WriteNumber("lag_seconds", Math.Max(0, (long)(DateTimeOffset.UtcNow - t).TotalSeconds));
        }
        else
        {
            j.WriteNull("lag_seconds");
        }

        j.WriteNumber("entries_fetched", s.EntriesFetched);
        j.WriteNumber("tombstones_fetched", s.TombstonesFetched);
        j.WriteNumber("unsupported_fetched", s.UnsupportedFetched);
        j.WriteNumber("errors", s.Errors);
        j.WriteString("last_error", s.LastError);
    });

    private static Command RemoveCommand(TextWriter output, TextWriter error)
    {
        var name = NameArgument();
        var db = CommonOptions.Db();
        var command = new Command("remove", "Remove an exchange (its bank and entries stay; remove or disable the bank separately).") { name, db };
        command.SetAction(p => WithStores(p.GetRequiredValue(db), error, (_, exchanges) =>
        {
            var n = p.GetRequiredValue(name);
            if (!exchanges.Remove(n))
            {
                exchanges.Require(n); // says which exist
            }

            output.WriteLine($"removed exchange {n}");
            return WardenCli.Ok;
        }));
        return command;
    }

    private static Command SwitchCommand(string verb, bool enabled, TextWriter output, TextWriter error)
    {
        var name = NameArgument();
        var db = CommonOptions.Db();
        var command = new Command(verb, enabled ? "Fetch this exchange on schedule again." : "Stop scheduled fetches (entries stay in the bank).") { name, db };
        command.SetAction(p => WithStores(p.GetRequiredValue(db), error, (_, exchanges) =>
        {
            var x = exchanges.Update(p.GetRequiredValue(name), enabled: enabled);
            output.WriteLine($"exchange {x.Name} {(x.Enabled ? "enabled" : "disabled")}");
            return WardenCli.Ok;
        }));
        return command;
    }

    private static Command FeedbackCommand(TextWriter output, TextWriter error)
    {
        var name = NameArgument();
        var entry = new Option<string>("--entry") { Description = "The entry's exchange id (NCMEC: MEMBER-ENTRY).", Required = true };
        var signalType = new Option<string>("--signal-type") { Description = "The fingerprint the opinion is about: md5, sha1, pdq.", Required = true };
        var opinion = new Option<string>("--opinion") { Description = "'true-positive' (NCMEC affirmative) or 'false-positive' (negative with --reason).", Required = true };
        opinion.AcceptOnlyFromAmong("true-positive", "false-positive");
        var reason = new Option<string?>("--reason") { Description = "Reason id for a false positive (NCMEC: a GUID of GET /v2/feedback/TYPE/reasons); default: the only one." };
        var key = new Option<string?>("--key") { Description = "Idempotency key (default: exchange, entry, signal type and opinion): the same key is sent once." };
        var db = CommonOptions.Db();
        var command = new Command("feedback", "Queue an opinion on an entry and send it (a curator's feedback; once per key, retried until acknowledged).") { name, entry, signalType, opinion, reason, key, db };
        command.SetAction((p, ct) => WithExchangeAsync(p.GetRequiredValue(db), p.GetRequiredValue(name), error, async (_, exchanges, x, runtime) =>
        {
            var kind = p.GetRequiredValue(opinion) == "true-positive" ? "true_positive" : "false_positive";
            var k = p.GetValue(key) ?? $"curator:{x.Name}:{p.GetRequiredValue(entry)}:{p.GetRequiredValue(signalType)}:{kind}";
            var queued = exchanges.EnqueueFeedback(x.Id, k, p.GetRequiredValue(entry), p.GetRequiredValue(signalType).ToLowerInvariant(), kind, p.GetValue(reason));
            await ExchangeFeedbackSender.SendDueAsync(exchanges, runtime, LeaseOwner.Create(), ct);
            var row = exchanges.ListFeedback(x.Id, 1000).First(f => f.IdempotencyKey == k);
            output.WriteLine($"feedback {k}: {(queued ? "queued" : "already queued")}; {row.Status}{(row.LastError is null ? string.Empty : " (" + row.LastError + ")")}");
            return row.Status == "sent" ? WardenCli.Ok : WardenCli.SomeFailed;
        }));
        return command;
    }

    private static Command SchemaCommand(TextWriter output, TextWriter error)
    {
        var type = new Argument<string>("TYPE") { Description = "Exchange type." };
        var command = new Command("schema", "Print an exchange type's config fields (JSON).") { type };
        command.SetAction(p =>
        {
            var t = ExchangeTypes.Find(p.GetRequiredValue(type));
            if (t is null)
            {
                error.WriteLine($"warden: unknown exchange type '{p.GetRequiredValue(type)}'; known: {string.Join(", ", ExchangeTypes.All.Select(x => x.Name))}");
                return WardenCli.UsageError;
            }

            output.WriteLine(JsonSerializer.Serialize(t.Schema, SchemaJson));
            return WardenCli.Ok;
        });
        return command;
    }

    private static string Time(DateTimeOffset? t) => t?.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture) ?? "-";

    private static string Rate(long n, TimeSpan elapsed) => elapsed.TotalSeconds <= 0 ? "-" : (n / elapsed.TotalSeconds).ToString("0", CultureInfo.InvariantCulture);
}
