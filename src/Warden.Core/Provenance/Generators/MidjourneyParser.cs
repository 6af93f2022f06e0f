using System.Text.RegularExpressions;
using static Warden.Core.Provenance.Generators;

namespace Warden.Core.Provenance;

/// <summary>Midjourney: a <c>Description</c> with the prompt, <c>--v</c> and the <c>Job ID</c>.</summary>
internal sealed class MidjourneyParser : IGeneratorParser
{
    public string Name => "Midjourney";

    public void Parse(GeneratorTexts texts, ProvenanceReport report, ProvenanceOptions options)
    {
        if (texts.Get("Description") is { } description && description.Text.Contains("Job ID:", StringComparison.Ordinal))
        {
            var s = report.AddSignal(Strong("gen.midjourney", description.Location));
            var version = Regex.Match(description.Text, @"--v(?:ersion)?\s+([0-9.]+)", RegexOptions.CultureInvariant, TimeSpan.FromSeconds(1));
            s.Add("version", version.Success ? version.Groups[1].Value : null);
            var job = Regex.Match(description.Text, @"Job ID:\s*([0-9a-fA-F-]{36})", RegexOptions.CultureInvariant, TimeSpan.FromSeconds(1));
            s.Add("job_id", job.Success ? job.Groups[1].Value : null);
            AddPrompt(s, "prompt", description.Text[..description.Text.IndexOf("Job ID:", StringComparison.Ordinal)], options);
            SetGenerator(report, "Midjourney", version.Success ? version.Groups[1].Value : null, s);
        }
    }
}
