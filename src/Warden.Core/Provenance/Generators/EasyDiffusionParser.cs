using static Warden.Core.Provenance.Generators;

namespace Warden.Core.Provenance;

/// <summary>Easy Diffusion: plain-text keys (<c>use_stable_diffusion_model</c>, <c>prompt</c>, <c>seed</c>, …).</summary>
internal sealed class EasyDiffusionParser : IGeneratorParser
{
    public string Name => "Easy Diffusion";

    public void Parse(GeneratorTexts texts, ProvenanceReport report, ProvenanceOptions options)
    {
        if (texts.Get("use_stable_diffusion_model") is not { } easyModel)
        {
            return;
        }

        var s = report.AddSignal(Strong("gen.easydiffusion", easyModel.Location));
        AddPrompt(s, "prompt", texts.Get("prompt")?.Text, options);
        AddPrompt(s, "negative_prompt", texts.Get("negative_prompt")?.Text, options);
        s.Add("seed", texts.Get("seed")?.Text);
        s.Add("num_inference_steps", texts.Get("num_inference_steps")?.Text);
        SetGenerator(report, "Easy Diffusion", null, s);
        report.AddModel(new ModelReference { Role = "checkpoint", Name = easyModel.Text }, s);
        if (texts.Get("use_vae_model") is { Text.Length: > 0 } vae)
        {
            report.AddModel(new ModelReference { Role = "vae", Name = vae.Text }, s);
        }

        if (texts.Get("use_lora_model") is { Text.Length: > 0 } lora)
        {
            report.AddModel(new ModelReference { Role = "lora", Name = lora.Text }, s);
        }
    }
}
