using System.Text.Json;
using Warden.Core.Provenance.C2pa;

namespace Warden.Core.Provenance;

/// <summary>Writes a <see cref="ProvenanceReport"/> in the JSON layout of docs/formats.md (one object per file).</summary>
public static class ProvenanceJson
{
    /// <summary>Writes the report's properties into the current object of <paramref name="json"/>.</summary>
    public static void WriteProperties(Utf8JsonWriter json, ProvenanceReport report, string? path)
    {
        ArgumentNullException.ThrowIfNull(json);
        ArgumentNullException.ThrowIfNull(report);
        json.WriteStartObject("file");
        if (path is not null)
        {
            json.WriteString("path", path);
        }

        json.WriteString("sha256", report.Sha256);
        json.WriteNumber("size", report.Size);
        json.WriteString("format", report.Format);
        json.WriteNumber("width", report.Width);
        json.WriteNumber("height", report.Height);
        json.WriteEndObject();

        json.WriteStartArray("signals");
        foreach (var s in report.Signals)
        {
            json.WriteStartObject();
            json.WriteString("id", s.Id);
            json.WriteString("type", s.Type);
            if (s.Location is { } l)
            {
                json.WriteStartObject("location");
                json.WriteString("container", l.Container);
                json.WriteString("chunk", l.Chunk);
                if (l.Key is not null)
                {
                    json.WriteString("key", l.Key);
                }

                if (l.Offset >= 0)
                {
                    json.WriteNumber("offset", l.Offset);
                    json.WriteNumber("length", l.Length);
                }

                json.WriteEndObject();
            }

            json.WriteStartObject("parsed");
            foreach (var group in s.Parsed.GroupBy(p => p.Key))
            {
                // Repeated keys (several source types) become arrays.
                if (group.Count() == 1)
                {
                    json.WriteString(group.Key, group.First().Value);
                }
                else
                {
                    json.WriteStartArray(group.Key);
                    foreach (var p in group)
                    {
                        json.WriteStringValue(p.Value);
                    }

                    json.WriteEndArray();
                }
            }

            json.WriteEndObject();
            json.WriteString("aiIndication", s.AiIndication.ToString().ToLowerInvariant());
            json.WriteNumber("confidence", s.Confidence);
            json.WriteBoolean("verified", s.Verified);
            WriteStrings(json, "notes", s.Notes);
            json.WriteEndObject();
        }

        json.WriteEndArray();

        json.WriteStartArray("modelRefs");
        for (var i = 0; i < report.ModelRefs.Count; i++)
        {
            var m = report.ModelRefs[i];
            json.WriteStartObject();
            json.WriteString("role", m.Role);
            if (m.Name is not null)
            {
                json.WriteString("name", m.Name);
            }

            if (m.Weight is { } w)
            {
                json.WriteNumber("weight", w);
            }

            json.WriteStartArray("hashes");
            foreach (var h in m.Hashes)
            {
                json.WriteStartObject();
                json.WriteString("scheme", h.Scheme);
                json.WriteString("value", h.Value);
                json.WriteEndObject();
            }

            json.WriteEndArray();
            json.WriteString("signalId", m.SignalId);
            json.WriteStartArray("bankMatches");
            foreach (var hit in report.ModelMatches.Where(x => x.ModelIndex == i))
            {
                json.WriteStartObject();
                json.WriteString("signalType", hit.SignalType);
                json.WriteString("value", hit.Hash.Value);
                json.WriteString("bank", hit.Hit.Bank.Name);
                json.WriteString("bankKind", hit.Hit.Bank.Kind.ToString());
                json.WriteNumber("entryId", hit.Hit.EntryId);
                json.WriteBoolean("suppressed", hit.Hit.Suppressed);
                json.WriteEndObject();
            }

            json.WriteEndArray();
            json.WriteEndObject();
        }

        json.WriteEndArray();

        if (report.Generator is { } g)
        {
            json.WriteStartObject("generator");
            json.WriteString("tool", g.Tool);
            if (g.Version is not null)
            {
                json.WriteString("version", g.Version);
            }

            WriteStrings(json, "signalIds", g.SignalIds);
            json.WriteEndObject();
        }
        else
        {
            json.WriteNull("generator");
        }

        if (report.C2pa is { } c)
        {
            WriteC2pa(json, c);
        }
        else
        {
            json.WriteNull("c2pa");
        }

        json.WriteStartArray("watermarks");
        foreach (var wm in report.Watermarks)
        {
            json.WriteStartObject();
            json.WriteString("scheme", wm.Scheme);
            json.WriteString("payload", wm.Payload);
            json.WriteNumber("ber", Math.Round(wm.BitErrorRate, 4));
            json.WriteString("variant", wm.Variant);
            json.WriteNumber("confidence", wm.Confidence);
            json.WriteEndObject();
        }

        json.WriteEndArray();
        json.WriteBoolean("pixelsChecked", report.PixelsChecked);
        json.WriteStartObject("verdict");
        json.WriteString("aiGenerated", report.Verdict.AiGenerated);
        json.WriteNumber("score", report.Verdict.Score);
        WriteStrings(json, "topSignals", report.Verdict.TopSignals);
        json.WriteEndObject();
        WriteStrings(json, "warnings", report.Warnings);
        json.WriteString("extractorVersion", ProvenanceReport.ExtractorVersion);
    }

    private static void WriteC2pa(Utf8JsonWriter json, C2paSummary c)
    {
        json.WriteStartObject("c2pa");
        json.WriteBoolean("present", c.Present);
        if (c.RemoteManifestUrl is not null)
        {
            json.WriteString("remoteManifestUrl", c.RemoteManifestUrl);
        }

        if (c.ActiveManifest is not null)
        {
            json.WriteString("activeManifest", c.ActiveManifest);
        }

        var active = c.Active;
        if ((active?.ClaimGenerator ?? active?.ClaimGeneratorInfo.FirstOrDefault()) is { } generator)
        {
            json.WriteString("claimGenerator", generator);
        }

        WriteStrings(json, "digitalSourceTypes", c.Manifests.SelectMany(m => m.Actions).Select(a => a.DigitalSourceType ?? a.VendorDigitalSourceType).OfType<string>().Select(s => s.Trim()).Distinct());
        WriteStrings(json, "softwareAgents", c.Manifests.SelectMany(m => m.Actions).Select(a => a.SoftwareAgent).OfType<string>().Distinct());
        if (active?.Signer is { } signer)
        {
            json.WriteStartObject("signer");
            WriteOptional(json, "subject", signer.Subject);
            WriteOptional(json, "organization", signer.Organization);
            WriteOptional(json, "commonName", signer.CommonName);
            WriteOptional(json, "issuer", signer.Issuer);
            WriteOptional(json, "serialNumber", signer.SerialNumber);
            WriteOptional(json, "algorithm", signer.Algorithm);
            json.WriteBoolean("timestamp", signer.HasTimestamp);
            json.WriteEndObject();
        }

        json.WriteString("validation", c.Validation);
        WriteStrings(json, "statusCodes", c.StatusCodes);
        json.WriteStartArray("manifests");
        foreach (var m in c.Manifests)
        {
            json.WriteStartObject();
            json.WriteString("label", m.Label);
            json.WriteNumber("claimVersion", m.ClaimVersion);
            json.WriteBoolean("update", m.IsUpdate);
            WriteOptional(json, "claimGenerator", m.ClaimGenerator);
            WriteStrings(json, "claimGeneratorInfo", m.ClaimGeneratorInfo);
            WriteOptional(json, "title", m.Title);
            WriteOptional(json, "format", m.Format);
            WriteStrings(json, "assertions", m.Assertions);
            json.WriteStartArray("actions");
            foreach (var a in m.Actions)
            {
                json.WriteStartObject();
                json.WriteString("action", a.Action);
                WriteOptional(json, "digitalSourceType", a.DigitalSourceType);
                WriteOptional(json, "softwareAgent", a.SoftwareAgent);
                WriteOptional(json, "vendorDigitalSourceType", a.VendorDigitalSourceType);
                WriteOptional(json, "modelId", a.ModelId);
                json.WriteEndObject();
            }

            json.WriteEndArray();
            json.WriteStartArray("ingredients");
            foreach (var i in m.Ingredients)
            {
                json.WriteStartObject();
                WriteOptional(json, "title", i.Title);
                WriteOptional(json, "relationship", i.Relationship);
                WriteOptional(json, "manifest", i.ManifestLabel);
                json.WriteEndObject();
            }

            json.WriteEndArray();
            WriteStrings(json, "failures", m.Failures);
            json.WriteEndObject();
        }

        json.WriteEndArray();
        json.WriteEndObject();
    }

    private static void WriteOptional(Utf8JsonWriter json, string name, string? value)
    {
        if (value is not null)
        {
            json.WriteString(name, value);
        }
    }

    private static void WriteStrings(Utf8JsonWriter json, string name, IEnumerable<string> values)
    {
        json.WriteStartArray(name);
        foreach (var v in values)
        {
            json.WriteStringValue(v);
        }

        json.WriteEndArray();
    }
}
