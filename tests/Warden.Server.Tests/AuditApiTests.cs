using System.Net;
using System.Text.Json;
using Warden.Server.Auth;
using Warden.Storage;
using Warden.Storage.Tests;

namespace Warden.Server.Tests;

/// <summary>Key, webhook, bank and entry changes made through the API land in the hash-chained audit log.</summary>
public sealed class AuditApiTests
{
    [SkippableTheory]
    [MemberData(nameof(TestDatabases.Dialects), MemberType = typeof(TestDatabases))]
    public async Task Configuration_and_key_changes_are_audited_with_the_acting_key_never_the_secret(SqlDialect dialect)
    {
        await using var server = await TestServer.StartAsync(dialect);
        using var admin = server.Client(Role.Admin);
        var created = await admin.PostAsJsonAsync("v1/keys", new { name = "pipeline", role = "submitter" });
        var key = JsonDocument.Parse(await created.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal(HttpStatusCode.NoContent, (await admin.DeleteAsync($"v1/keys/{key.GetProperty("id").GetInt64()}")).StatusCode);
        Assert.Equal(HttpStatusCode.Created, (await admin.PostAsJsonAsync("v1/banks", new { name = "audited" })).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await admin.PatchAsJsonAsync("v1/banks/audited", new { enabled = false })).StatusCode);
        var entry = JsonDocument.Parse(await (await admin.PostAsJsonAsync("v1/banks/audited/entries", new { signal_type = "md5", signal = new string('a', 32) })).Content.ReadAsStringAsync()).RootElement;
        Assert.Equal(HttpStatusCode.NoContent, (await admin.DeleteAsync($"v1/entries/{entry.GetProperty("id").GetInt64()}")).StatusCode);
        var hook = await admin.PostAsJsonAsync("v1/webhooks", new { url = "http://127.0.0.1:9/hook" });
        Assert.Equal(HttpStatusCode.Created, hook.StatusCode);

        var audit = await admin.GetStringAsync("v1/audit");
        var actions = JsonDocument.Parse(audit).RootElement.EnumerateArray().Select(a => a.GetProperty("action").GetString()).ToList();
        foreach (var action in new[] { "key.create", "key.revoke", "bank.create", "bank.update", "entry.delete", "webhook.create" })
        {
            Assert.Contains(action, actions);
        }

        Assert.DoesNotContain(key.GetProperty("key").GetString()!, audit, StringComparison.Ordinal);
        Assert.Contains("key:", audit, StringComparison.Ordinal);
        Assert.True((await admin.GetFromJsonAsync<JsonElement>("v1/audit/verify")).GetProperty("ok").GetBoolean());
    }
}
