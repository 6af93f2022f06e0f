using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Warden.Core.Banks;
using Warden.Core.Provenance;
using static Warden.Core.Tests.Provenance.Fixtures;

namespace Warden.Core.Tests.Provenance;

/// <summary>Generator metadata of the local AI tools, in every container they write it to (fixtures of reference §8).</summary>
public sealed class GeneratorMetadataTests
{
    private const string Prompt = "a watercolor lighthouse on a cliff, <lora:softlight:0.7>";

    private static string Sha(string s) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(s)));

    private static string? Parsed(ProvenanceSignal s, string key) => s.Parsed.FirstOrDefault(p => p.Key == key).Value;

    private static ModelReference Ref(ProvenanceReport r, string role, string name) =>
        r.ModelRefs.Single(m => m.Role == role && m.Name == name);

    private static void AssertA1111(ProvenanceReport r, string prompt = Prompt)
    {
        var s = r.Signals.Single(x => x.Type == "gen.a1111");
        Assert.Equal("AUTOMATIC1111", r.Generator!.Tool);
        Assert.Equal("v1.10.1", r.Generator.Version);
        Assert.Equal(Sha(prompt), Parsed(s, "prompt_sha256"));
        Assert.Null(Parsed(s, "prompt"));
        Assert.Equal(Sha("blurry, lowres"), Parsed(s, "negative_prompt_sha256"));
        Assert.Equal("1234567", Parsed(s, "seed"));
        Assert.Equal("512x768", Parsed(s, "size"));
        Assert.Equal([new ModelHash("autov2", "6ce0161689")], Ref(r, "checkpoint", "v1-5-pruned-emaonly").Hashes);
        Assert.Equal([new ModelHash("autov2", "735e4c3a44")], Ref(r, "vae", "vae-ft-mse-840000-ema-pruned.safetensors").Hashes);
        var lora = Ref(r, "lora", "softlight");
        Assert.Equal([new ModelHash("autov3", "0a1b2c3d4e5f")], lora.Hashes);
        Assert.Equal(0.7, lora.Weight);
        Assert.Equal([new ModelHash("autov3", "abcdef012345")], Ref(r, "lora", "paperTexture").Hashes);
        Assert.Equal([new ModelHash("autov2", "1234567890")], Ref(r, "embedding", "badhands").Hashes);
        Assert.Equal("yes", r.Verdict.AiGenerated);
        Assert.Contains(ProvenanceReport.Caveat, r.Warnings);
    }

    [Fact]
    public void A1111InfotextInPngTextChunk()
    {
        var r = ProvenanceReader.Read(SmallPng(Text("parameters", A1111Infotext)));
        AssertA1111(r);
        var s = r.Signals.Single(x => x.Type == "gen.a1111");
        Assert.Equal("tEXt", s.Location!.Chunk);
        Assert.Equal("parameters", s.Location.Key);
        Assert.Equal(33, s.Location.Offset);
    }

    [Fact]
    public void PromptsAreRevealedOnlyWhenAsked()
    {
        var r = ProvenanceReader.Read(SmallPng(Text("parameters", A1111Infotext)), ProvenanceOptions.Default with { IncludePrompts = true });
        Assert.Equal(Prompt, Parsed(r.Signals.Single(x => x.Type == "gen.a1111"), "prompt"));
    }

    [Theory]
    [InlineData("iTXt")]
    [InlineData("iTXt-compressed")]
    [InlineData("zTXt")]
    public void A1111InOtherTextChunks(string kind)
    {
        // A CJK prompt (why PIL writes iTXt); zTXt is Latin-1, so it keeps the ASCII prompt.
        var text = kind == "zTXt" ? A1111Infotext : A1111Infotext.Replace("a watercolor lighthouse", "水彩の灯台", StringComparison.Ordinal);
        var chunk = kind switch { "zTXt" => ZText("parameters", text), "iTXt" => IText("parameters", text, false), _ => IText("parameters", text, true) };
        AssertA1111(ProvenanceReader.Read(SmallPng(chunk)), kind == "zTXt" ? Prompt : Prompt.Replace("a watercolor lighthouse", "水彩の灯台", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData(true, true)]
    [InlineData(false, false)]
    public void A1111InJpegExifUserComment(bool bigEndianTiff, bool bigEndianText)
    {
        var tiff = Tiff(bigEndianTiff, [Ascii(0x0131, "")], [UnicodeComment(A1111Infotext, bigEndianText)]);
        var r = ProvenanceReader.Read(SmallJpeg(ExifSegment(tiff)));
        AssertA1111(r);
        Assert.Contains("EXIF:0x9286", r.Signals.Single(x => x.Type == "gen.a1111").Location!.Chunk, StringComparison.Ordinal);
    }

    [Fact]
    public void A1111InWebPExifWithAsciiPrefix()
    {
        var tiff = Tiff(false, [], [AsciiComment(A1111Infotext)]);
        AssertA1111(ProvenanceReader.Read(SmallWebP(("EXIF", tiff))));
    }

    [Fact]
    public void ForgeAndSdNextAreNamed()
    {
        var forge = A1111Infotext.Replace("Version: v1.10.1", "Module 1: ae, Distilled CFG Scale: 3.5, Version: f2.0.1v1.10.1-previous-313-g8a042934", StringComparison.Ordinal);
        var r = ProvenanceReader.Read(SmallPng(Text("parameters", forge)));
        Assert.Equal("Forge", r.Generator!.Tool);
        Assert.Contains(r.ModelRefs, m => m.Role == "module" && m.Name == "ae");
        var sdnext = A1111Infotext.Replace("Version: v1.10.1", "App: SD.Next, Version: 2f0e8f1", StringComparison.Ordinal);
        Assert.Equal("SD.Next", ProvenanceReader.Read(SmallPng(Text("parameters", sdnext))).Generator!.Tool);
    }

    [Fact]
    public void InfotextParserHandlesQuotingAndMultiLinePrompts()
    {
        var (prompt, negative, parameters) = A1111Parser.ParseInfotext(
            "line one\nline two\nNegative prompt: bad\nworse\nSteps: 5, Sampler: Euler a, Hires prompt: \"a, b: \\\"c\\\"\", Size: 64x64");
        Assert.Equal("line one\nline two", prompt);
        Assert.Equal("bad\nworse", negative);
        Assert.Equal("a, b: \"c\"", parameters.Single(p => p.Key == "Hires prompt").Value);
        Assert.Equal("Euler a", parameters.Single(p => p.Key == "Sampler").Value);

        // Fewer than three parameters: the last line is prompt, not parameters.
        var (p2, _, none) = A1111Parser.ParseInfotext("just a prompt\nSteps: 5");
        Assert.Equal("just a prompt\nSteps: 5", p2);
        Assert.Empty(none);
    }

    private const string ComfyPrompt = """
        {"4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sdxl/juggernautXL_v9.safetensors"}},
         "10": {"class_type": "LoraLoader", "inputs": {"lora_name": "detail_tweaker.safetensors", "strength_model": 0.6, "strength_clip": 1.0, "model": ["4", 0], "clip": ["4", 1]}},
         "11": {"class_type": "LoraLoader", "inputs": {"lora_name": "film_grain.safetensors", "strength_model": 0.3, "strength_clip": 0.3, "model": ["10", 0], "clip": ["10", 1]}},
         "12": {"class_type": "VAELoader", "inputs": {"vae_name": "sdxl_vae.safetensors"}},
         "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a red barn, embedding:goodhands", "clip": ["11", 1]}},
         "3": {"class_type": "KSampler", "inputs": {"seed": 42, "steps": 20, "model": ["11", 0], "positive": ["6", 0]}},
         "20": {"class_type": "SomeCustomLoader", "inputs": {"weights": "custom/thing.gguf"}}}
        """;

    private const string ComfyWorkflow = """
        {"nodes": [{"id": 4, "type": "CheckpointLoaderSimple", "widgets_values": ["sdxl/juggernautXL_v9.safetensors"]},
                   {"id": 10, "type": "LoraLoader", "widgets_values": ["detail_tweaker.safetensors", 0.6, 1.0]}], "links": [], "version": 0.4}
        """;

    private static void AssertComfy(ProvenanceReport r, bool fromPrompt)
    {
        Assert.Equal("ComfyUI", r.Generator!.Tool);
        Assert.Equal("checkpoint", r.ModelRefs.Single(m => m.Name == "sdxl/juggernautXL_v9.safetensors").Role);
        Assert.Equal(0.6, Ref(r, "lora", "detail_tweaker.safetensors").Weight);
        if (fromPrompt)
        {
            Assert.Equal(0.3, Ref(r, "lora", "film_grain.safetensors").Weight);
            Assert.Equal("vae", r.ModelRefs.Single(m => m.Name == "sdxl_vae.safetensors").Role);
            Assert.Equal("embedding", r.ModelRefs.Single(m => m.Name == "goodhands").Role);
            Assert.Equal("other", r.ModelRefs.Single(m => m.Name == "custom/thing.gguf").Role);
            Assert.Equal(Sha("a red barn, embedding:goodhands"), Parsed(r.Signals.Single(s => s.Type == "gen.comfyui"), "text1_sha256"));
        }

        Assert.All(r.ModelRefs, m => Assert.Empty(m.Hashes));
    }

    [Fact]
    public void ComfyUiPngPromptAndWorkflow()
    {
        AssertComfy(ProvenanceReader.Read(SmallPng(Text("prompt", ComfyPrompt), Text("workflow", ComfyWorkflow))), fromPrompt: true);
        AssertComfy(ProvenanceReader.Read(SmallPng(Text("workflow", ComfyWorkflow))), fromPrompt: false);
    }

    [Fact]
    public void ComfyUiAnimatedWebPExif()
    {
        var tiff = Tiff(false, [Ascii(0x0110, "prompt:" + ComfyPrompt), Ascii(0x010F, "workflow:" + ComfyWorkflow)]);
        var r = ProvenanceReader.Read(SmallWebP(("EXIF", tiff)));
        AssertComfy(r, fromPrompt: true);
        Assert.DoesNotContain(r.Signals, s => s.Type == "hint.no_camera_exif");
    }

    [Fact]
    public void InvokeAiV5WithBlake3Hashes()
    {
        const string Meta = """
            {"app_version": "5.4.2", "generation_mode": "sdxl_txt2img", "positive_prompt": "a cat", "seed": 7, "steps": 30, "width": 1024, "height": 1024,
             "model": {"key": "k1", "hash": "blake3:2c1b3a0f5e6d7c8b9a0f1e2d3c4b5a69788796a5b4c3d2e1f0a1b2c3d4e5f607", "name": "Juggernaut XL v9", "base": "sdxl", "type": "main"},
             "vae": {"key": "k2", "hash": "random:abc", "name": "sdxl-vae"},
             "loras": [{"model": {"key": "k3", "hash": "sha256:aa11bb22cc33dd44ee55ff66aa11bb22cc33dd44ee55ff66aa11bb22cc33dd44", "name": "ink"}, "weight": 0.75}]}
            """;
        var r = ProvenanceReader.Read(SmallPng(Text("invokeai_metadata", Meta)));
        Assert.Equal("InvokeAI", r.Generator!.Tool);
        Assert.Equal("5.4.2", r.Generator.Version);
        Assert.Equal([new ModelHash("blake3", "2c1b3a0f5e6d7c8b9a0f1e2d3c4b5a69788796a5b4c3d2e1f0a1b2c3d4e5f607")], Ref(r, "checkpoint", "Juggernaut XL v9").Hashes);
        Assert.Empty(Ref(r, "vae", "sdxl-vae").Hashes);
        var lora = Ref(r, "lora", "ink");
        Assert.Equal(0.75, lora.Weight);
        Assert.Equal("sha256", lora.Hashes.Single().Scheme);

        var legacy = ProvenanceReader.Read(SmallPng(Text("sd-metadata", """{"model_weights": "stable-diffusion-1.5", "model_hash": "cc6cb27103417325ff94f52b7a5d2dde45a7515b25c255d8e396c90014281516", "app_id": "invoke-ai/InvokeAI", "app_version": "2.3.5", "image": {"prompt": [{"prompt": "a dog", "weight": 1}], "seed": 3}}""")));
        Assert.Equal("InvokeAI", legacy.Generator!.Tool);
        Assert.Equal("sha256", Ref(legacy, "checkpoint", "stable-diffusion-1.5").Hashes.Single().Scheme);
    }

    private const string NaiComment = """{"prompt": "a fox in snow", "steps": 28, "height": 1216, "width": 832, "scale": 5.0, "uncond_scale": 1.0, "seed": 99, "sampler": "k_euler_ancestral", "uc": "lowres", "signed_hash": "c2lnbmF0dXJl"}""";

    [Fact]
    public void NovelAiTextChunks()
    {
        var r = ProvenanceReader.Read(SmallPng(Text("Title", "AI generated image"), Text("Description", "a fox in snow"), Text("Software", "NovelAI"),
            Text("Source", "Stable Diffusion XL C1E1DE52"), Text("Comment", NaiComment)));
        Assert.Equal("NovelAI", r.Generator!.Tool);
        var s = r.Signals.Single(x => x.Type == "gen.novelai");
        Assert.Equal("99", Parsed(s, "seed"));
        Assert.Equal("present", Parsed(s, "signed_hash"));
        Assert.Contains(s.Notes, n => n.Contains("not verified", StringComparison.Ordinal));
        Assert.Equal([new ModelHash("nai-source-id", "c1e1de52")], Ref(r, "checkpoint", "Stable Diffusion XL C1E1DE52").Hashes);
        Assert.Contains(r.Signals, x => x.Type == "hint.software" && x.AiIndication == AiIndication.Weak);
    }

    [Fact]
    public void NovelAiWebPExif()
    {
        var tiff = Tiff(false, [Ascii(0x0131, "NovelAI"), Ascii(0x010E, "a fox in snow"), Ascii(0x010D, "AI generated image")],
            [AsciiComment(NaiComment)]);
        var r = ProvenanceReader.Read(SmallWebP(("EXIF", tiff)));
        Assert.Equal("NovelAI", r.Generator!.Tool);
        Assert.Equal("28", Parsed(r.Signals.Single(x => x.Type == "gen.novelai"), "steps"));
    }

    /// <summary>Writes <paramref name="payload"/> into alpha (or RGB) LSBs, column-major, MSB first, as NovelAI's writer does.</summary>
    internal static byte[] EmbedLsb(byte[] rgba, int width, int height, string magic, byte[] payload, bool alpha)
    {
        var data = new List<byte>(Encoding.ASCII.GetBytes(magic));
        var len = new byte[4];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(len, (uint)(payload.Length * 8));
        data.AddRange(len);
        data.AddRange(payload);
        var px = (byte[])rgba.Clone();
        var bit = 0;
        foreach (var b in data)
        {
            for (var i = 7; i >= 0; i--, bit++)
            {
                var (pixel, channel) = alpha ? (bit, 3) : (bit / 3, bit % 3);
                var x = pixel / height;
                var y = pixel % height;
                var o = (((y * width) + x) * 4) + channel;
                px[o] = (byte)((px[o] & 0xFE) | ((b >> i) & 1));
            }
        }

        return px;
    }

    internal static byte[] Rgba(int width, int height, int seed)
    {
        var rgb = SyntheticImages.Smooth(width, height, seed);
        var px = new byte[width * height * 4];
        for (var i = 0; i < width * height; i++)
        {
            rgb.AsSpan(i * 3, 3).CopyTo(px.AsSpan(i * 4));
            px[(i * 4) + 3] = 0xFF;
        }

        return px;
    }

    [Fact]
    public void NovelAiStealthAlphaLsb()
    {
        var json = JsonSerializer.Serialize(new Dictionary<string, string>
        {
            ["Description"] = "a fox in snow",
            ["Software"] = "NovelAI",
            ["Source"] = "NovelAI Diffusion V4 4F49EC75",
            ["Comment"] = NaiComment,
        });
        var px = EmbedLsb(Rgba(96, 96, 5), 96, 96, "stealth_pngcomp", Gzip(Encoding.UTF8.GetBytes(json)), alpha: true);
        var png = Png(96, 96, px, 4);

        // Metadata only: nothing (the data is in the pixels).
        Assert.Null(ProvenanceReader.Read(png).Generator);
        var r = ProvenanceReader.Read(png, ProvenanceOptions.Default with { Pixels = PixelChecks.WhenNoMetadata });
        Assert.True(r.PixelsChecked);
        var s = r.Signals.Single(x => x.Type == "gen.novelai.stealth");
        Assert.Equal("stealth_pngcomp", s.Location!.Key);
        Assert.Equal([new ModelHash("nai-source-id", "4f49ec75")], r.ModelRefs.Single().Hashes);
    }

    [Fact]
    public void StealthPngInfoAndRgbVariantsCarryInfotext()
    {
        var px = EmbedLsb(Rgba(128, 128, 6), 128, 128, "stealth_pnginfo", Encoding.UTF8.GetBytes(A1111Infotext), alpha: true);
        AssertA1111(ProvenanceReader.Read(Png(128, 128, px, 4), ProvenanceOptions.Default with { Pixels = PixelChecks.Always }));
        var rgb = EmbedLsb(Rgba(128, 128, 7), 128, 128, "stealth_rgbcomp", Gzip(Encoding.UTF8.GetBytes(A1111Infotext)), alpha: false);
        AssertA1111(ProvenanceReader.Read(Png(128, 128, rgb, 4), ProvenanceOptions.Default with { Pixels = PixelChecks.Always }));
    }

    [Fact]
    public void RandomAlphaLsbsAreNotStealthData()
    {
        var px = Rgba(96, 96, 8);
        var rng = new Random(8);
        for (var i = 3; i < px.Length; i += 4)
        {
            px[i] = (byte)(0xFE | rng.Next(2));
        }

        var r = ProvenanceReader.Read(Png(96, 96, px, 4), ProvenanceOptions.Default with { Pixels = PixelChecks.Always });
        Assert.Null(r.Generator);
        Assert.Empty(r.Watermarks);
    }

    private const string FooocusJson = """
        {"adm_guidance": "(1.5, 0.8, 0.3)", "base_model": "juggernautXL_v8Rundiffusion.safetensors", "base_model_hash": "aeb7e9e689", "full_prompt": ["a cabin"], "guidance_scale": 4,
         "loras": [["sd_xl_offset_example-lora_1.0.safetensors", 0.1, "4852686128"]], "negative_prompt": "", "performance": "Speed", "prompt": "a cabin",
         "refiner_model": "None", "resolution": "(1152, 896)", "sampler": "dpmpp_2m_sde_gpu", "scheduler": "karras", "seed": "123", "steps": 30, "vae": "Default (model)", "version": "Fooocus v2.5.5"}
        """;

    [Fact]
    public void FooocusPngAndJpeg()
    {
        void Check(ProvenanceReport r)
        {
            Assert.Equal("Fooocus", r.Generator!.Tool);
            Assert.Equal([new ModelHash("autov2", "aeb7e9e689")], Ref(r, "checkpoint", "juggernautXL_v8Rundiffusion.safetensors").Hashes);
            var lora = Ref(r, "lora", "sd_xl_offset_example-lora_1.0.safetensors");
            Assert.Equal(0.1, lora.Weight);
            Assert.Equal([new ModelHash("autov2", "4852686128")], lora.Hashes);
        }

        Check(ProvenanceReader.Read(SmallPng(Text("parameters", FooocusJson), Text("fooocus_scheme", "fooocus"))));
        var tiff = Tiff(false, [Ascii(0x9286, FooocusJson), Ascii(0x0131, "Fooocus v2.5.5"), Ascii(0x927C, "fooocus")]);
        Check(ProvenanceReader.Read(SmallJpeg(ExifSegment(tiff))));
    }

    [Fact]
    public void SwarmUiFullSha256()
    {
        const string Swarm = """
            {"sui_image_params": {"prompt": "a lake", "model": "OfficialStableDiffusion/sd_xl_base_1.0", "seed": 1, "steps": 20, "swarm_version": "0.9.4.0"},
             "sui_models": [{"name": "OfficialStableDiffusion/sd_xl_base_1.0.safetensors", "param": "model", "hash": "0x31e35c80fc4829d14f90153f4c74cd59c90b779f6afe05a74cd6120b893f7e5b"}]}
            """;
        var r = ProvenanceReader.Read(SmallPng(Text("parameters", Swarm)));
        Assert.Equal("SwarmUI", r.Generator!.Tool);
        Assert.Equal([new ModelHash("sha256", "31e35c80fc4829d14f90153f4c74cd59c90b779f6afe05a74cd6120b893f7e5b")], r.ModelRefs.Single().Hashes);
    }

    [Fact]
    public void MidjourneyDescription()
    {
        var r = ProvenanceReader.Read(SmallPng(Text("Description", "a castle at dusk --ar 16:9 --v 6.1 Job ID: 0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"), Text("Author", "someone")));
        Assert.Equal("Midjourney", r.Generator!.Tool);
        Assert.Equal("6.1", r.Generator.Version);
    }

    [Fact]
    public void ModelReferencesLinkToBankedModelFiles()
    {
        var bank = new Bank(1, "models", BankKind.BlockList, true, null, "model files", DateTimeOffset.UnixEpoch);
        using var matcher = new BankMatcher([bank]);
        Assert.True(matcher.Add(100, 1, "civitai_autov2", "6ce0161689"));
        Assert.True(matcher.Add(101, 1, "civitai_autov3", "0a1b2c3d4e5f"));
        Assert.True(matcher.Add(102, 1, "blake3", "2c1b3a0f5e6d7c8b9a0f1e2d3c4b5a69788796a5b4c3d2e1f0a1b2c3d4e5f607"));
        var r = ProvenanceReader.Read(SmallPng(Text("parameters", A1111Infotext)));
        ModelLinker.Link(r, matcher);
        Assert.Equal(2, r.ModelMatches.Count);
        var checkpoint = r.ModelMatches.Single(m => m.SignalType == "civitai_autov2");
        Assert.Equal(100, checkpoint.Hit.EntryId);
        Assert.Equal("checkpoint", r.ModelRefs[checkpoint.ModelIndex].Role);

        // The evidence chain: bank entry → model reference → signal → where in the file.
        var signal = r.Signals.Single(s => s.Id == r.ModelRefs[checkpoint.ModelIndex].SignalId);
        Assert.Equal("parameters", signal.Location!.Key);
        Assert.Equal(101, r.ModelMatches.Single(m => m.SignalType == "civitai_autov3").Hit.EntryId);
    }

    [Fact]
    public void EasyDiffusionPlainPromptIsNotAComfyGraph()
    {
        var r = ProvenanceReader.Read(SmallPng(Text("prompt", "a meadow"), Text("use_stable_diffusion_model", "sd-v1-4"), Text("seed", "5"), Text("use_vae_model", "vae-ft-mse")));
        Assert.Equal("Easy Diffusion", r.Generator!.Tool);
        Assert.Equal("checkpoint", Ref(r, "checkpoint", "sd-v1-4").Role);
        Assert.DoesNotContain(r.Signals, s => s.Type == "gen.comfyui");
        Assert.DoesNotContain(r.Warnings, w => w.Contains("ComfyUI", StringComparison.Ordinal));
    }

    [Fact]
    public void DrawThingsXmpUserComment()
    {
        const string Xmp = """
            <x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
            <rdf:Description rdf:about="" xmlns:exif="http://ns.adobe.com/exif/1.0/" xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmp:CreatorTool="Draw Things">
            <exif:UserComment><rdf:Alt><rdf:li xml:lang="x-default">{"c":"a tram","uc":"","model":"sd_xl_base_1.0_f16.ckpt","lora":[{"file":"ink_lora_f16.ckpt","weight":0.6}],"seed":8,"steps":30,"size":"1024x1024"}</rdf:li></rdf:Alt></exif:UserComment>
            </rdf:Description></rdf:RDF></x:xmpmeta>
            """;
        var r = ProvenanceReader.Read(SmallPng(IText("XML:com.adobe.xmp", Xmp, compressed: false)));
        Assert.Equal("Draw Things", r.Generator!.Tool);
        Assert.Equal(0.6, Ref(r, "lora", "ink_lora_f16.ckpt").Weight);
        Assert.Equal("checkpoint", Ref(r, "checkpoint", "sd_xl_base_1.0_f16.ckpt").Role);
    }
}
