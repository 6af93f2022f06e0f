using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.OpenApi;
using Microsoft.OpenApi;

namespace Warden.Server.Api;

/// <summary>Endpoint metadata: the request body is uploaded content (raw, or a file part of multipart/form-data).</summary>
/// <param name="Multipart">Whether multipart/form-data is accepted besides the raw body.</param>
/// <param name="Field">The multipart field name the docs show (HMA names the field after the content type).</param>
internal sealed record UploadBodyMetadata(bool Multipart, string Field);

/// <summary>Endpoint metadata: the request body is a hash list file (csv, jsonl, plain or ncmec), streamed.</summary>
internal sealed record ListBodyMetadata;

/// <summary>Endpoint metadata: query parameters the handler refuses to run without (400 when absent).</summary>
/// <param name="Names">The parameter names.</param>
internal sealed record RequiredQueryMetadata(string[] Names);

/// <summary>
/// Makes the served OpenAPI document complete enough to generate clients from: request bodies for uploads,
/// every error status with the problem schema, parameter descriptions and examples, operation ids, tag
/// descriptions, and request schemas whose optional members are not marked required.
/// </summary>
internal static class OpenApiDocs
{
    private const string ProblemSchema = "Problem";
    private const string ProblemJson = "application/problem+json";

    /// <summary>Marks an endpoint's body as uploaded content.</summary>
    public static TBuilder AcceptsUpload<TBuilder>(this TBuilder builder, bool multipart = true, string field = "file")
        where TBuilder : IEndpointConventionBuilder => builder.WithMetadata(new UploadBodyMetadata(multipart, field));

    /// <summary>Marks an endpoint's body as a hash list file.</summary>
    public static TBuilder AcceptsList<TBuilder>(this TBuilder builder)
        where TBuilder : IEndpointConventionBuilder => builder.WithMetadata(new ListBodyMetadata());

    /// <summary>Marks query parameters as required in the document.</summary>
    public static TBuilder RequiresQuery<TBuilder>(this TBuilder builder, params string[] names)
        where TBuilder : IEndpointConventionBuilder => builder.WithMetadata(new RequiredQueryMetadata(names));

    // One description per parameter name: the API uses each name with one meaning.
    private static readonly Dictionary<string, (string Description, JsonNode? Example)> Parameters = new(StringComparer.Ordinal)
    {
        ["name"] = ("The name (bank, exchange): letters, digits, '_', '-', '.'.", "csam-hashes"),
        ["id"] = ("The item's id.", null),
        ["entryId"] = ("The id of the flagged bank entry.", 42),
        ["type"] = ("An exchange type, as /v1/exchanges/types lists.", "ncmec"),
        ["api"] = ("An exchange API type, as /c/exchanges/apis lists.", "ncmec"),
        ["signal_type"] = ("A signal type: pdq, md5, sha1, sha256, vpdq, tmk, or a model signal type (see docs/api.md).", "pdq"),
        ["signal"] = ("The signal value (hex for digests and PDQ).", "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"),
        ["uploader_id"] = ("Your id for who uploaded the content (at most 256 characters); kept with matches and review cases.", "user-1234"),
        ["uploader_ip"] = ("The uploader's IP address, for reports.", "203.0.113.7"),
        ["content_url"] = ("Where the content was seen, for reports.", "https://example.org/p/1"),
        ["uploaded_at"] = ("When it was uploaded (ISO 8601), for reports.", "2026-01-31T12:00:00Z"),
        ["file_name"] = ("The uploaded file's name, for reports.", "photo.jpg"),
        ["dihedral"] = ("Also compute (hash) or match (match) the 8 rotations and mirror images of the PDQ hash.", true),
        ["tmk"] = ("For videos: also compute the TMK+PDQF hash (slower).", false),
        ["provenance"] = ("Read the upload's AI provenance and look up the models it names (default true).", true),
        ["format"] = ("A list format: csv, jsonl, plain or ncmec on import (detected when absent); csv or jsonl on export; json or csv for the audit log.", "csv"),
        ["on_error"] = ("abort (default) stops at the first bad record; skip skips and reports bad records.", "skip"),
        ["after_id"] = ("Paging: return items after this id.", 0),
        ["after"] = ("Paging: return records after this sequence number.", 0),
        ["limit"] = ("Most items to return.", 100),
        ["all"] = ("Include cleared flags too.", false),
        ["state"] = ("Filter by delivery state: pending, delivered or failed.", "pending"),
        ["status"] = ("Filter by status.", null),
        ["url"] = ("Content to fetch and hash (only hosts in AllowedFetchHosts).", "https://media.example.org/a.jpg"),
        ["banks"] = ("Comma-separated bank names to match against (default all enabled banks).", "csam-hashes"),
        ["include_distance"] = ("Also return each hit's distance.", true),
        ["actor"] = ("Filter: who acted.", null),
        ["action"] = ("Filter: the audited action.", null),
        ["subject"] = ("Filter: what was acted on.", null),
        ["from"] = ("Filter: from this time (ISO 8601).", null),
        ["to"] = ("Filter: up to this time (ISO 8601).", null),
    };

    private static readonly Dictionary<string, string> TagDescriptions = new(StringComparer.Ordinal)
    {
        ["Health"] = "Liveness and readiness; no key needed.",
        ["Hash and match"] = "Hash uploads and match them against the banks (role submit).",
        ["Models"] = "Model files: safe parsing, fingerprints, model banks.",
        ["Banks"] = "Hash banks and their entries (role curate).",
        ["Administration"] = "API keys and webhooks (role admin).",
        ["HMA compatibility"] = "Endpoints compatible with Meta's Hasher-Matcher-Actioner (/h, /m, /c).",
        ["Exchanges"] = "Hash exchanges that fill banks (NCMEC, StopNCII, …).",
        ["Audit"] = "The tamper-evident audit log.",
        ["Reports"] = "Reports to the CyberTipline and their delivery.",
    };

    private static readonly Dictionary<int, string> ErrorDescriptions = new()
    {
        [400] = "Invalid request (bad parameter, body, signal or empty upload): problem+json with a stable code.",
        [401] = "No API key, or an unknown or revoked one.",
        [403] = "The key's role may not call this endpoint.",
        [404] = "No such item.",
        [409] = "Conflicts with an existing item.",
        [413] = "The upload is larger than this server accepts.",
        [415] = "The content's format is not supported.",
        [422] = "The content is truncated or corrupt.",
        [429] = "Rate limited: retry after the Retry-After header.",
        [500] = "Internal error (no internals are shown).",
        [503] = "Not ready (the index is loading) or a needed tool is missing.",
        [504] = "The request took too long.",
    };

    /// <summary>Adds the transformers to the document's options.</summary>
    public static void Configure(OpenApiOptions options)
    {
        options.AddOperationTransformer((operation, context, _) =>
        {
            Describe(operation, context);
            return Task.CompletedTask;
        });
        options.AddSchemaTransformer((schema, context, _) =>
        {
            FixSchema(schema, context);
            return Task.CompletedTask;
        });
        options.AddDocumentTransformer((document, _, _) =>
        {
            Finish(document);
            return Task.CompletedTask;
        });
    }

    private static void Describe(OpenApiOperation operation, OpenApiOperationTransformerContext context)
    {
        var description = context.Description;
        var metadata = description.ActionDescriptor.EndpointMetadata;
        var route = "/" + (description.RelativePath ?? string.Empty).TrimStart('/');
        var method = description.HttpMethod ?? "GET";
        operation.OperationId ??= OperationId(method, route);

        var required = metadata.OfType<RequiredQueryMetadata>().SelectMany(m => m.Names).ToHashSet(StringComparer.Ordinal);
        foreach (var parameter in operation.Parameters?.OfType<OpenApiParameter>() ?? [])
        {
            if (parameter.Name is { } name && Parameters.TryGetValue(name, out var doc))
            {
                parameter.Description ??= doc.Description;
                if (doc.Example is not null && parameter.In != ParameterLocation.Path)
                {
                    parameter.Example ??= doc.Example.DeepClone();
                }
            }

            parameter.Description ??= "See docs/api.md.";
            if (parameter.Name is { } n && required.Contains(n))
            {
                parameter.Required = true;
            }
        }

        var upload = metadata.OfType<UploadBodyMetadata>().LastOrDefault();
        var list = metadata.OfType<ListBodyMetadata>().Any();
        if (upload is not null)
        {
            operation.RequestBody = UploadBody(upload);
        }
        else if (list)
        {
            operation.RequestBody = ListBody();
        }

        var anonymous = metadata.OfType<IAllowAnonymous>().Any();
        var authorized = !anonymous && metadata.OfType<IAuthorizeData>().Any();
        var statuses = new SortedSet<int> { 429, 500, 504 };
        if (operation.Parameters is { Count: > 0 } || operation.RequestBody is not null)
        {
            statuses.Add(400);
        }

        if (authorized)
        {
            statuses.Add(401);
            statuses.Add(403);
        }

        if (route.Contains('{', StringComparison.Ordinal))
        {
            statuses.Add(404);
        }

        if (upload is not null || list)
        {
            statuses.UnionWith([413, 415]);
        }

        if (upload is not null)
        {
            statuses.UnionWith([422, 503]);
        }

        // Writes can meet an existing name or a concurrent change (the stores' conflict, a delivery's state).
        if (authorized && method is "POST" or "PUT" or "PATCH" or "DELETE")
        {
            statuses.Add(409);
        }

        var tags = operation.Tags?.Select(t => t.Name).ToList() ?? [];
        if (tags.Contains("Hash and match") || tags.Contains("HMA compatibility") || tags.Contains("Models"))
        {
            statuses.Add(503); // the match index is still loading
        }

        if (anonymous)
        {
            statuses.Remove(504); // health checks answer at once
        }

        operation.Responses ??= [];
        foreach (var status in statuses)
        {
            var key = status.ToString(CultureInfo.InvariantCulture);
            if (operation.Responses.ContainsKey(key))
            {
                continue;
            }

            operation.Responses[key] = new OpenApiResponse
            {
                Description = ErrorDescriptions[status],
                Content = new Dictionary<string, OpenApiMediaType>
                {
                    [ProblemJson] = new() { Schema = new OpenApiSchemaReference(ProblemSchema, context.Document) },
                },
            };
        }
    }

    private static OpenApiRequestBody UploadBody(UploadBodyMetadata upload)
    {
        var content = new Dictionary<string, OpenApiMediaType>
        {
            ["application/octet-stream"] = new() { Schema = new OpenApiSchema { Type = JsonSchemaType.String, Format = "binary", Description = "The content itself (any content type but forms: image/jpeg, video/mp4, …)." } },
        };
        if (upload.Multipart)
        {
            content["multipart/form-data"] = new()
            {
                Schema = new OpenApiSchema
                {
                    Type = JsonSchemaType.Object,
                    Required = new HashSet<string>(StringComparer.Ordinal) { upload.Field },
                    Properties = new Dictionary<string, IOpenApiSchema>(StringComparer.Ordinal)
                    {
                        [upload.Field] = new OpenApiSchema { Type = JsonSchemaType.String, Format = "binary", Description = "The file (the first file part is the content; its field name is free)." },
                    },
                },
            };
        }

        return new OpenApiRequestBody
        {
            Required = true,
            Description = upload.Multipart
                ? "The content as the raw body, or as a file in multipart/form-data. Held in memory only."
                : "The file as the raw body. Held in memory only.",
            Content = content,
        };
    }

    private static OpenApiRequestBody ListBody()
    {
        OpenApiMediaType Text(string example) => new() { Schema = new OpenApiSchema { Type = JsonSchemaType.String }, Example = example };
        return new OpenApiRequestBody
        {
            Required = true,
            Description = "A hash list file in one of the formats of 'warden bank import' (see docs/formats.md); streamed, any size.",
            Content = new Dictionary<string, OpenApiMediaType>
            {
                ["text/csv"] = Text("signal_type,signal\nmd5,0123456789abcdef0123456789abcdef\n"),
                ["application/x-ndjson"] = Text("{\"signal_type\":\"md5\",\"signal\":\"0123456789abcdef0123456789abcdef\"}\n"),
                ["text/plain"] = Text("0123456789abcdef0123456789abcdef\n"),
                ["application/octet-stream"] = new() { Schema = new OpenApiSchema { Type = JsonSchemaType.String, Format = "binary" } },
            },
        };
    }

    /// <summary>getV1BanksByNameEntries from GET /v1/banks/{name}/entries: stable and unique per route.</summary>
    internal static string OperationId(string method, string route)
    {
        var id = new StringBuilder(method.ToLowerInvariant());
        foreach (var segment in route.Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            var isParameter = segment.StartsWith('{');
            var name = isParameter ? segment.Trim('{', '}').Split(':')[0] : segment;
            if (isParameter)
            {
                id.Append("By");
            }

            var upper = true;
            foreach (var c in name)
            {
                if (!char.IsAsciiLetterOrDigit(c))
                {
                    upper = true;
                    continue;
                }

                id.Append(upper ? char.ToUpperInvariant(c) : c);
                upper = false;
            }
        }

        return id.ToString();
    }

    private static void FixSchema(OpenApiSchema schema, OpenApiSchemaTransformerContext context)
    {
        // The server writes numbers as numbers; "integer or string with a pattern" (the reader's leniency)
        // would make generated clients type every count as number | string.
        if (schema.Type is { } type && schema.Pattern is not null &&
            (type.HasFlag(JsonSchemaType.Integer) || type.HasFlag(JsonSchemaType.Number)))
        {
            schema.Type = type & ~JsonSchemaType.String;
            schema.Pattern = null;
        }

        // Request bodies: members that may be null or have a default are optional (the handler treats a missing
        // member as null); responses always carry every member, so they stay required there.
        if (context.JsonPropertyInfo is null && context.JsonTypeInfo.Type.Name.EndsWith("Request", StringComparison.Ordinal) && schema.Required is { Count: > 0 } required)
        {
            foreach (var property in context.JsonTypeInfo.Properties)
            {
                var nullable = property.AssociatedParameter is { IsNullable: true } or { HasDefaultValue: true } ||
                    (property.AssociatedParameter is null && !property.IsRequired);
                if (nullable)
                {
                    required.Remove(property.Name);
                }
            }
        }

        if (context.JsonPropertyInfo is null && Examples.TryGetValue(context.JsonTypeInfo.Type.Name, out var example))
        {
            schema.Examples = [JsonNode.Parse(example)!];
        }
    }

    private static readonly Dictionary<string, string> Examples = new(StringComparer.Ordinal)
    {
        ["CreateBankRequest"] = """{"name":"csam-hashes","kind":"block","pdq_threshold":31,"description":"Hashes from our review team","action":{"quarantine":true,"notify":true}}""",
        ["AddEntryRequest"] = """{"signal_type":"md5","signal":"0123456789abcdef0123456789abcdef","labels":{"source":"review"},"external_id":"case-17","note":null}""",
        ["UpdateBankRequest"] = """{"enabled":false}""",
        ["CreateKeyRequest"] = """{"name":"upload-service","role":"submit"}""",
        ["CreateWebhookRequest"] = """{"url":"https://hooks.example.org/warden","secret":null}""",
    };

    private static void Finish(OpenApiDocument document)
    {
        // A server URL with a trailing slash doubles the slash of every path in generated clients.
        foreach (var server in document.Servers ?? [])
        {
            if (server.Url is { Length: > 1 } url && url.EndsWith('/'))
            {
                server.Url = url.TrimEnd('/');
            }
        }

        document.Components ??= new OpenApiComponents();
        document.Components.Schemas ??= new Dictionary<string, IOpenApiSchema>(StringComparer.Ordinal);
        document.Components.Schemas[ProblemSchema] = new OpenApiSchema
        {
            Type = JsonSchemaType.Object,
            Description = "An error (RFC 9457 problem details). Branch on 'code', never on 'detail'.",
            Required = new HashSet<string>(StringComparer.Ordinal) { "type", "title", "status", "code" },
            Properties = new Dictionary<string, IOpenApiSchema>(StringComparer.Ordinal)
            {
                ["type"] = new OpenApiSchema { Type = JsonSchemaType.String, Description = "A link to the code's documentation." },
                ["title"] = new OpenApiSchema { Type = JsonSchemaType.String, Description = "The status's name." },
                ["status"] = new OpenApiSchema { Type = JsonSchemaType.Integer, Format = "int32", Description = "The HTTP status." },
                ["detail"] = new OpenApiSchema { Type = JsonSchemaType.String, Description = "What went wrong, safe to show." },
                ["code"] = new OpenApiSchema { Type = JsonSchemaType.String, Description = "Stable machine-readable code (docs/api.md lists them)." },
                ["traceId"] = new OpenApiSchema { Type = JsonSchemaType.String, Description = "The request's id in the server's logs." },
            },
            Examples = [JsonNode.Parse("""{"type":"https://github.com/warden-safety/warden/blob/main/docs/api.md#error-invalid-signal","title":"Bad request","status":400,"detail":"A PDQ hash is 64 hex digits.","code":"invalid_signal","traceId":"0HN8:00000001"}""")!],
        };

        var used = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var operation in document.Paths.Values.SelectMany(p => p.Operations?.Values ?? Enumerable.Empty<OpenApiOperation>()))
        {
            foreach (var tag in operation.Tags ?? Enumerable.Empty<OpenApiTagReference>())
            {
                if (tag.Name is { } name)
                {
                    used.Add(name);
                }
            }
        }

        document.Tags ??= new HashSet<OpenApiTag>();
        foreach (var name in used)
        {
            if (document.Tags.FirstOrDefault(t => t.Name == name) is { } tag)
            {
                tag.Description ??= TagDescriptions.GetValueOrDefault(name, name);
            }
            else
            {
                document.Tags.Add(new OpenApiTag { Name = name, Description = TagDescriptions.GetValueOrDefault(name, name) });
            }
        }
    }
}
