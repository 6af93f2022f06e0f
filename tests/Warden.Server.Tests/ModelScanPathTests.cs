using System.Net;
using System.Text.Json;
using Warden.Core.Tests.Models;
using Warden.Storage;

namespace Warden.Server.Tests;

/// <summary>
/// <c>/v1/models/scan-path</c> resolves the whole real path (every symlink, "..", percent-escapes) before the root
/// check, answers one identical error for "outside the roots" and "missing" (no existence oracle), and never 500s.
/// </summary>
public sealed class ModelScanPathTests
{
    [Fact]
    public async Task Escapes_and_missing_paths_get_one_answer_and_nothing_500s()
    {
        using var dir = new TempDir();
        var root = Path.Combine(dir.Path, "root");
        var outside = Path.Combine(dir.Path, "outside");
        var model = ModelWriters.Safetensors([new FixtureTensor("w", [4], [1, 2, 3, 4])]);
        dir.File("root/model.safetensors", model);
        dir.File("root/sub/inner.safetensors", model);
        dir.File("root/bad.gguf", ContainerWriters.GgufDims([1L << 31, 1L << 31]));
        dir.File("root/readme.txt", "not a model"u8.ToArray());
        dir.File("outside/secret.safetensors", model);
        File.CreateSymbolicLink(Path.Combine(root, "out-dir"), outside);
        File.CreateSymbolicLink(Path.Combine(root, "out-file.safetensors"), Path.Combine(outside, "secret.safetensors"));
        File.CreateSymbolicLink(Path.Combine(root, "sub", "up"), "../../outside");
        File.CreateSymbolicLink(Path.Combine(root, "in-dir"), Path.Combine(root, "sub"));
        File.CreateSymbolicLink(Path.Combine(root, "loop"), Path.Combine(root, "loop"));
        var rootLink = Path.Combine(dir.Path, "root-link");
        File.CreateSymbolicLink(rootLink, root);

        await using var server = await TestServer.StartAsync(SqlDialect.Sqlite, o => o.ModelScanRoots.Add(rootLink));
        using var admin = server.Client();

        async Task<(HttpStatusCode Status, JsonElement Body)> Post(string path)
        {
            var response = await admin.PostAsJsonAsync("v1/models/scan-path", new { path });
            var text = await response.Content.ReadAsStringAsync();
            Assert.True(response.StatusCode != HttpStatusCode.InternalServerError, $"{path}: 500 {text}");
            return (response.StatusCode, JsonDocument.Parse(text).RootElement.Clone());
        }

        // Inside, directly, through a root that is itself a link, through an inside link, through ".." that stays in.
        foreach (var ok in new[] { $"{root}/model.safetensors", $"{rootLink}/model.safetensors", $"{root}/in-dir/inner.safetensors", $"{root}/sub/../model.safetensors", $"{root}/sub/%2e%2e/model.safetensors", $"{root}/./sub//inner.safetensors" })
        {
            var (status, body) = await Post(ok);
            Assert.True(status == HttpStatusCode.OK, $"{ok}: {status} {body}");
            Assert.Equal("safetensors", body.GetProperty("format").GetString());
        }

        // Outside (by link, by "..", by percent-escapes, by a link loop) and missing: one status, one body.
        var denied = new[]
        {
            $"{outside}/secret.safetensors", $"{root}/out-dir/secret.safetensors", $"{root}/out-file.safetensors", $"{root}/sub/up/secret.safetensors",
            $"{root}/../outside/secret.safetensors", $"{root}/%2e%2e/outside/secret.safetensors", $"{root}/%2E%2E/outside/secret.safetensors",
            $"{root}/sub/%2e%2e%2f%2e%2e/outside/secret.safetensors", $"{root}/in-dir/../../outside/secret.safetensors", $"{root}/loop", $"{root}/loop/x",
            $"{root}/missing.safetensors", $"{outside}/missing.safetensors", "/etc/passwd", "/no/such/dir/x", $"{root}/model.safetensors/child",
            $"{root}/out-dir/missing", $"{root}/%2e%2e", "/%2e%2e/%2e%2e/etc/passwd",
        };
        string? first = null;
        foreach (var path in denied)
        {
            var (status, body) = await Post(path);
            Assert.True(status == HttpStatusCode.Forbidden, $"{path}: {status} {body}");
            var shape = $"{body.GetProperty("status")}|{body.GetProperty("title")}|{body.GetProperty("detail")}|{(body.TryGetProperty("code", out var c) ? c.ToString() : "-")}";
            first ??= shape;
            Assert.Equal(first, shape);
        }

        // Bad requests and unreadable models inside the root: 4xx, never 500.
        foreach (var bad in new[] { "relative/path", "%2e%2e/x", string.Empty, "/root\0/x" })
        {
            var (status, _) = await Post(bad);
            Assert.True((int)status is >= 400 and < 500, $"{bad}: {status}");
        }

        foreach (var unreadable in new[] { $"{root}/bad.gguf", $"{root}/readme.txt" })
        {
            var (status, body) = await Post(unreadable);
            Assert.True(status == HttpStatusCode.UnprocessableEntity, $"{unreadable}: {status} {body}");
        }
    }
}
