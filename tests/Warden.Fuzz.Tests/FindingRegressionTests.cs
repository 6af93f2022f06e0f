using System.Text;
using Warden.Core.Banks.Formats;
using Warden.Core.Exchanges;
using Warden.Core.Hashing.Video;
using Warden.Core.Provenance;
using Warden.Review.Reporting;

namespace Warden.Fuzz.Tests;

/// <summary>
/// The crashes the instrumented campaign of issue s6 found, each as its class: invalid UTF-8 in exchange JSON and
/// ffprobe output, a list the bank reader refuses whole behind url_list, and ffprobe JSON that is not an object.
/// </summary>
public sealed class FindingRegressionTests
{
    // Every kind of ill-formed UTF-8: lone continuation bytes, bytes never valid, overlong forms, surrogates,
    // code points past U+10FFFF, and multibyte sequences cut short.
    private static readonly byte[][] BadUtf8 =
    [
        [0x80], [0xBF], [0xC0, 0xAF], [0xC1, 0xBF], [0xC3], [0xE0, 0x80, 0xAF], [0xE2, 0x82], [0xED, 0xA0, 0x80],
        [0xED, 0xBF, 0xBF], [0xF0, 0x82, 0x82, 0xAC], [0xF4, 0x90, 0x80, 0x80], [0xF5, 0x80, 0x80, 0x80], [0xF8, 0x88, 0x80, 0x80, 0x80],
        [0xFE], [0xFF], [0xF0, 0x9F, 0x98],
    ];

    public static TheoryData<string> JsonExchanges() => ["exchange-stopncii", "exchange-threatexchange", "exchange-peer", "exchange-peer-hma"];

    [Theory]
    [MemberData(nameof(JsonExchanges))]
    public async Task Exchange_JSON_that_is_not_UTF8_fails_the_pass_with_an_ExchangeException(string target)
    {
        var bodies = ExchangeTargets.Split(FuzzSmokeTests.Corpus(target)[0]);
        var first = bodies[0];
        var inside = StringPositions(first);
        Assert.NotEmpty(inside);
        var rng = new Random(target.Length * 7919);
        for (var i = 0; i < 150; i++)
        {
            // Ill-formed UTF-8 inside one string value of the first page (keys, values, anything the fetcher reads).
            var bad = BadUtf8[i % BadUtf8.Length];
            var at = inside[rng.Next(inside.Count)];
            byte[] page = [.. first.AsSpan(0, at), .. bad, .. first.AsSpan(at)];
            var input = ExchangeTargets.Join([page, .. bodies.Skip(1)]);
            var ex = await Assert.ThrowsAsync<ExchangeException>(() => ExchangeTargets.PassAsync(target, input));
            Assert.Contains("UTF-8", ex.Message, StringComparison.Ordinal);
            Assert.Null(Targets.Find(target)!.Check(input));
        }
    }

    [Theory]
    [MemberData(nameof(JsonExchanges))]
    public async Task Exchange_JSON_with_well_formed_non_ASCII_text_is_still_read(string target)
    {
        var bodies = ExchangeTargets.Split(FuzzSmokeTests.Corpus(target)[0]);
        var clean = await ExchangeTargets.PassAsync(target, ExchangeTargets.Join([.. bodies]));
        Assert.True(clean > 0, $"{target}: the seed yields records");

        // An extra member with well-formed 2-, 3- and 4-byte UTF-8 in its name and value (one the fetchers ignore)
        // changes nothing: the UTF-8 check refuses only ill-formed bodies.
        var extra = Encoding.UTF8.GetBytes("\"zé€😀\":\"ñ中𝄞\",");
        var first = bodies[0];
        var brace = Array.IndexOf(first, (byte)'{');
        byte[] page = [.. first.AsSpan(0, brace + 1), .. extra, .. first.AsSpan(brace + 1)];
        Assert.Equal(clean, await ExchangeTargets.PassAsync(target, ExchangeTargets.Join([page, .. bodies.Skip(1)])));
    }

    [Fact]
    public async Task A_list_the_reader_refuses_whole_fails_the_url_list_pass_as_permanent()
    {
        var columns = new[] { "signal_type", "signal", "note", "external_id", "category" };
        var rng = new Random(20261207);
        for (var i = 0; i < 120; i++)
        {
            // A CSV header naming one of its columns twice, anywhere, in any order.
            var header = columns.OrderBy(_ => rng.Next()).Take(2 + rng.Next(4)).ToList();
            if (!header.Contains("signal"))
            {
                header.Insert(0, "signal");
            }

            header.Insert(rng.Next(header.Count + 1), header[rng.Next(header.Count)]);
            var row = string.Join(",", header.Select(c => c == "signal" ? "0123456789abcdef0123456789abcdef" : c == "signal_type" ? "md5" : "x"));
            var input = Encoding.UTF8.GetBytes(string.Join(",", header) + "\n" + row + "\n");
            var ex = await Assert.ThrowsAsync<ExchangeException>(() => ExchangeTargets.PassAsync("exchange-url-list", input));
            Assert.True(ex.Permanent, ex.Message);
            Assert.Contains("twice", ex.Message, StringComparison.Ordinal);
        }
    }

    [Theory]
    [InlineData("8")]
    [InlineData("-1.5e300")]
    [InlineData("\"streams\"")]
    [InlineData("[]")]
    [InlineData("[{\"streams\":[]}]")]
    [InlineData("null")]
    [InlineData("true")]
    [InlineData("false")]
    public void Ffprobe_output_that_is_not_an_object_is_refused(string json)
    {
        var ex = Assert.Throws<VideoDecodeException>(() => VideoProbe.Parse(Encoding.UTF8.GetBytes(json), VideoLimits.Default));
        Assert.Equal(VideoDecodeError.Corrupt, ex.Error);
    }

    [Fact]
    public void Ffprobe_output_with_ill_formed_UTF8_in_any_string_still_parses_or_is_refused()
    {
        foreach (var seed in FuzzSmokeTests.Corpus("video-probe"))
        {
            var clean = VideoProbe.Parse(seed, VideoLimits.Default);
            var inside = StringPositions(seed);
            var rng = new Random(seed.Length);
            for (var i = 0; i < 300; i++)
            {
                var at = inside[rng.Next(inside.Count)];
                byte[] input = [.. seed.AsSpan(0, at), .. BadUtf8[i % BadUtf8.Length], .. seed.AsSpan(at)];
                try
                {
                    var info = VideoProbe.Parse(input, VideoLimits.Default);
                    Assert.Equal(clean.Width, info.Width);
                    Assert.Equal(clean.Height, info.Height);
                }
                catch (VideoDecodeException)
                {
                    // A damaged codec name or frame rate may be refused; any other exception fails the test.
                }
            }

            // A title tag ffprobe copied byte for byte from the container does not stop the video being hashed.
            var tagged = Encoding.UTF8.GetString(seed).Replace("\"disposition\"", "\"tags\":{\"title\":\"T\"},\"disposition\"", StringComparison.Ordinal);
            var bytes = Encoding.UTF8.GetBytes(tagged);
            var t = Array.IndexOf(bytes, (byte)'T', tagged.IndexOf("title", StringComparison.Ordinal));
            foreach (var bad in BadUtf8)
            {
                byte[] input = [.. bytes.AsSpan(0, t), .. bad, .. bytes.AsSpan(t)];
                Assert.Equal(clean, VideoProbe.Parse(input, VideoLimits.Default));
            }
        }
    }

    [Fact]
    public async Task An_XML_declaration_with_an_undecodable_byte_is_malformed_XML_to_every_XML_parser()
    {
        // System.Xml reading bytes threw ArgumentOutOfRangeException (from SwitchEncoding) for such a declaration,
        // out of the NCMEC page reader (bank import and exchange), XMP (provenance: a 500 on upload) and
        // CyberTipline answers. Every byte 0x80-0xFF, at a random place in the declaration, for each encoding.
        var rng = new Random(20261207);
        var checkedInputs = 0;
        foreach (var encoding in (string[])["UTF-8", "utf-16", "ISO-8859-1", "us-ascii", "windows-1252"])
        {
            var declaration = $"<?xml version=\"1.0\" encoding=\"{encoding}\"?>";
            for (var b = 0x80; b <= 0xFF; b++)
            {
                var at = 5 + rng.Next(declaration.Length - 7);
                byte[] head = [.. Encoding.ASCII.GetBytes(declaration[..at]), (byte)b, .. Encoding.ASCII.GetBytes(declaration[at..])];

                var page = (byte[])[.. head, .. "<queryResult xmlns=\"https://hashsharing.ncmec.org/hashsharing/v2\"><images count=\"0\"/></queryResult>"u8];
                using (var stream = new MemoryStream(page))
                {
                    Assert.Throws<BankFormatException>(() => BankFileReader.Read(stream, new ImportOptions(BankFileFormat.NcmecXml, SourceName: "page.xml"), new ImportReport()).ToList());
                }

                await Assert.ThrowsAsync<ExchangeException>(() => ExchangeTargets.PassAsync("exchange-ncmec", page));
                try
                {
                    // XMP may skip what precedes the packet; it must not throw anything but its refusal.
                    _ = Xmp.Read([.. head, .. "<x:xmpmeta xmlns:x=\"adobe:ns:meta/\"/>"u8], ProvenanceLimits.Default);
                }
                catch (ProvenanceException ex)
                {
                    Assert.Equal(ProvenanceError.Malformed, ex.Kind);
                }

                Assert.Null(CyberTipResponse.TryParse([.. head, .. "<reportResponse><responseCode>0</responseCode></reportResponse>"u8]));
                checkedInputs++;
            }
        }

        Assert.Equal(5 * 128, checkedInputs);
    }

    [Fact]
    public void Ffprobe_numbers_that_are_not_int32_do_not_throw()
    {
        // attached_pic (and every number VideoProbe reads) as a fraction, an exponent, or beyond int and long.
        int parsed = 0, refused = 0;
        foreach (var n in (string[])["1.0", "2.5", "1e0", "1e400", "-0", "2147483648", "-2147483649", "18446744073709551616", "0.1e1"])
        {
            foreach (var field in (string[])["attached_pic", "width", "height", "has_b_frames", "index"])
            {
                var json = $"{{\"streams\":[{{\"index\":0,\"codec_type\":\"video\",\"codec_name\":\"h264\",\"width\":64,\"height\":48,\"r_frame_rate\":\"25/1\",\"disposition\":{{\"attached_pic\":0}}}}],\"format\":{{\"format_name\":\"mp4\"}}}}";
                json = field == "attached_pic" ? json.Replace("\"attached_pic\":0", $"\"attached_pic\":{n}", StringComparison.Ordinal) : json.Replace($"\"{field}\":", $"\"{field}\":{n},\"x{field}\":", StringComparison.Ordinal);
                try
                {
                    var info = VideoProbe.Parse(Encoding.UTF8.GetBytes(json), VideoLimits.Default);
                    Assert.True(field != "attached_pic" || info.Width == 64, json);
                    parsed++;
                }
                catch (VideoDecodeException)
                {
                    Assert.NotEqual("attached_pic", field); // only exactly 1 marks cover art; the video stream stays
                    refused++;
                }
            }
        }

        Assert.Equal(9 * 5, parsed + refused);
        Assert.True(parsed >= 9, $"{parsed} parsed");
    }

    // Offsets just after an opening quote of a JSON string (inside keys and values).
    private static List<int> StringPositions(byte[] json)
    {
        var positions = new List<int>();
        var inString = false;
        for (var i = 0; i < json.Length; i++)
        {
            if (json[i] == '"' && (i == 0 || json[i - 1] != '\\'))
            {
                inString = !inString;
                if (inString)
                {
                    positions.Add(i + 1);
                }
            }
        }

        return positions;
    }
}
