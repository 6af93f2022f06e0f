using System.Net;
using System.Text.Json;

namespace Warden.Server.Tests;

/// <summary>Response checks shared by the API tests.</summary>
internal static class HttpAssert
{
    /// <summary>Asserts the status (showing the body when it differs) and parses the JSON body.</summary>
    public static async Task<JsonElement> Json(HttpResponseMessage response, HttpStatusCode expected = HttpStatusCode.OK)
    {
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == expected, $"expected {(int)expected}, got {(int)response.StatusCode}: {text}");
        return JsonDocument.Parse(text).RootElement.Clone();
    }
}
