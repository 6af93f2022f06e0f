using Warden.Core.ModelFiles;

namespace Warden.Core.Tests.Models;

/// <summary>Architecture from names and shapes only (reference/models.md §5): documents hold no bytes.</summary>
public class ArchitectureTests
{
    private static ModelDocument Doc(params (string Name, long[] Shape)[] tensors)
    {
        var d = new ModelDocument { Path = "x", Format = ModelFormat.Safetensors };
        d.Tensors.AddRange(tensors.Select(t => new TensorInfo(t.Name, TensorDType.F16, t.Shape, "x", -1, 0)));
        return d;
    }

    private const string U = "model.diffusion_model.";
    private static readonly (string, long[]) ClipL = ("cond_stage_model.transformer.text_model.embeddings.token_embedding.weight", [49408, 768]);
    private static readonly (string, long[]) Vae = ("first_stage_model.decoder.conv_in.weight", [512, 4, 3, 3]);

    public static TheoryData<string, string, string?, string> Cases() => new()
    {
        { "sd1", "sd1", null, "checkpoint" },
        { "sd1-inpaint", "sd1", "inpaint", "checkpoint" },
        { "sd2", "sd2", null, "checkpoint" },
        { "sdxl", "sdxl", null, "checkpoint" },
        { "sdxl-refiner", "sdxl-refiner", null, "checkpoint" },
        { "sdxl-no-te", "sdxl", null, "checkpoint" },
        { "sd3-medium", "sd3", "medium", "unet" },
        { "flux-dev", "flux", "dev", "unet" },
        { "flux-schnell", "flux", "schnell", "unet" },
        { "diffusers-sd1-unet", "sd1", null, "unet" },
        { "diffusers-sdxl-unet", "sdxl", null, "unet" },
        { "diffusers-flux", "flux", "dev", "unet" },
        { "lora-sd1", "sd1", null, "lora" },
        { "lora-sdxl", "sdxl", null, "lora" },
        { "lora-flux", "flux", null, "lora" },
        { "locon-sd1", "sd1", null, "locon" },
        { "lokr", "sdxl", null, "lokr" },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Families_from_decisive_keys(string fixture, string family, string? variant, string kind)
    {
        var doc = fixture switch
        {
            "sd1" => Doc((U + "input_blocks.0.0.weight", [320, 4, 3, 3]), (U + "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight", [320, 768]), ClipL, Vae),
            "sd1-inpaint" => Doc((U + "input_blocks.0.0.weight", [320, 9, 3, 3]), (U + "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight", [320, 768]), ClipL, Vae),
            "sd2" => Doc((U + "input_blocks.0.0.weight", [320, 4, 3, 3]), (U + "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight", [320, 1024]), ("cond_stage_model.model.positional_embedding", [77, 1024]), Vae),
            "sdxl" => Doc((U + "label_emb.0.0.weight", [1280, 2816]), (U + "input_blocks.0.0.weight", [320, 4, 3, 3]), ("conditioner.embedders.0.transformer.text_model.encoder.layers.0.mlp.fc1.weight", [3072, 768]), ("conditioner.embedders.1.model.text_projection", [1280, 1280]), Vae),
            "sdxl-refiner" => Doc((U + "label_emb.0.0.weight", [1536, 2560]), ("conditioner.embedders.0.model.text_projection", [1280, 1280]), Vae),
            "sdxl-no-te" => Doc((U + "label_emb.0.0.weight", [1280, 2816]), Vae),
            "sd3-medium" => Doc(("model.diffusion_model.joint_blocks.0.context_block.attn.qkv.weight", [4608, 1536]), ("model.diffusion_model.x_embedder.proj.weight", [1536, 16, 2, 2])),
            "flux-dev" => Doc(("double_blocks.0.img_attn.qkv.weight", [9216, 3072]), ("double_blocks.0.img_attn.norm.key_norm.scale", [128]), ("guidance_in.in_layer.weight", [3072, 256])),
            "flux-schnell" => Doc((U + "double_blocks.0.img_attn.qkv.weight", [9216, 3072]), (U + "img_in.weight", [3072, 64])),
            "diffusers-sd1-unet" => Doc(("down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight", [320, 768]), ("conv_in.weight", [320, 4, 3, 3])),
            "diffusers-sdxl-unet" => Doc(("add_embedding.linear_1.weight", [1280, 2816]), ("conv_in.weight", [320, 4, 3, 3])),
            "diffusers-flux" => Doc(("x_embedder.weight", [3072, 64]), ("single_transformer_blocks.0.attn.to_q.weight", [3072, 3072]), ("time_text_embed.guidance_embedder.linear_1.weight", [3072, 256])),
            "lora-sd1" => Doc(("lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_down.weight", [8, 768]), ("lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_up.weight", [320, 8]), ("lora_te_text_model_encoder_layers_0_mlp_fc1.lora_down.weight", [8, 768])),
            "lora-sdxl" => Doc(("lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_k.lora_down.weight", [8, 640]), ("lora_te1_text_model_encoder_layers_0_mlp_fc1.lora_down.weight", [8, 768]), ("lora_te2_text_model_encoder_layers_0_mlp_fc1.lora_down.weight", [8, 1280])),
            "lora-flux" => Doc(("lora_unet_double_blocks_0_img_attn_qkv.lora_down.weight", [16, 3072]), ("lora_unet_double_blocks_0_img_attn_qkv.lora_up.weight", [9216, 16])),
            "locon-sd1" => Doc(("lora_unet_down_blocks_0_resnets_0_conv1.lora_down.weight", [8, 320, 3, 3]), ("lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_down.weight", [8, 768])),
            "lokr" => Doc(("lora_unet_input_blocks_4_1_proj_in.lokr_w1", [4, 4]), ("lora_unet_input_blocks_4_1_proj_in.lokr_w2", [160, 160])),
            _ => throw new ArgumentException(fixture),
        };
        var g = ModelArchitecture.Classify(doc);
        Assert.Equal(family, g.Family);
        Assert.Equal(variant, g.Variant);
        Assert.Equal(kind, g.Kind);
        Assert.NotEmpty(g.Evidence);
        if (fixture == "sdxl-no-te")
        {
            Assert.Contains(g.Evidence, e => e.Contains("ambiguous", StringComparison.Ordinal) || e.Contains("missing", StringComparison.Ordinal));
        }
    }

    [Fact]
    public void Fixture_checkpoint_is_sd1_with_its_components()
    {
        var doc = Doc([.. ModelFixtures.Base().Select(t => (t.Name, t.Shape))]);
        var g = ModelArchitecture.Classify(doc);
        Assert.Equal("sd1 checkpoint", g.Summary);
        Assert.Equal(["denoiser", "te1", "vae"], g.Components);
        Assert.Contains(g.Evidence, e => e.Contains("attn2.to_k.weight [32,768]", StringComparison.Ordinal));
    }

    [Fact]
    public void Canonical_names_strip_wrappers_and_drop_buffers()
    {
        Assert.Equal(new CanonicalName("denoiser", "input_blocks.0.0.weight"), TensorNames.Canonicalize("state_dict.module.model.diffusion_model.input_blocks.0.0.weight", layouts: false));
        Assert.Equal(new CanonicalName("denoiser", "conv_in.weight"), TensorNames.Canonicalize("state_dict.module.model.diffusion_model.input_blocks.0.0.weight"));
        Assert.Equal(new CanonicalName("te2", "text_projection.weight"), TensorNames.Canonicalize("conditioner.embedders.1.model.text_projection"));
        Assert.Equal(new CanonicalName("te3", "encoder.block.0.layer.0.SelfAttention.q.weight"), TensorNames.Canonicalize("text_encoders.t5xxl.transformer.encoder.block.0.layer.0.SelfAttention.q.weight"));
        Assert.Equal(new CanonicalName("vae", "conv_in.weight"), TensorNames.Canonicalize("conv_in.weight", "vae"));
        Assert.Null(TensorNames.Canonicalize("alphas_cumprod"));
        Assert.Null(TensorNames.Canonicalize("cond_stage_model.transformer.text_model.embeddings.position_ids"));
        Assert.Equal("denoiser:down_blocks_1_attentions_0_proj_in", TensorNames.Canonicalize("model.diffusion_model.input_blocks.4.1.proj_in.weight")!.Value.LoraKey);
        Assert.Equal([512L, 512], TensorNames.CanonicalShape([512, 512, 1, 1]));
    }
}
