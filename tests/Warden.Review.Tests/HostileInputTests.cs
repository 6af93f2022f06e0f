using FsCheck;
using FsCheck.Fluent;
using Warden.Review.Evidence;
using Warden.Review.Reporting;

namespace Warden.Review.Tests;

/// <summary>Untrusted bytes (a vault object on a shared disk, a server's answer) give typed errors, never crashes.</summary>
public sealed class HostileInputTests
{
    private static readonly VaultKeyRing Keys = new(new Dictionary<string, byte[]> { ["k1"] = Enumerable.Range(0, 32).Select(i => (byte)i).ToArray() }, "k1");
    private static readonly byte[] Valid = EvidenceCrypto.Seal("00112233445566778899aabbccddeeff", "benign synthetic payload"u8, "k1", Enumerable.Range(0, 32).Select(i => (byte)i).ToArray());

    [FsCheck.Xunit.Property(MaxTest = 300)]
    public bool Random_bytes_never_open_and_fail_with_a_typed_error(byte[] bytes)
    {
        try
        {
            EvidenceCrypto.Open("00112233445566778899aabbccddeeff", bytes, Keys);
            return false;
        }
        catch (EvidenceException)
        {
            return true;
        }
    }

    [FsCheck.Xunit.Property(MaxTest = 300)]
    public Property Any_single_byte_change_of_a_valid_object_is_detected()
    {
        var gen = from at in Gen.Choose(0, Valid.Length - 1)
                  from xor in Gen.Choose(1, 255)
                  select (at, xor);
        return Prop.ForAll(gen.ToArbitrary(), t =>
        {
            var copy = (byte[])Valid.Clone();
            copy[t.at] ^= (byte)t.xor;
            try
            {
                EvidenceCrypto.Open("00112233445566778899aabbccddeeff", copy, Keys);
                return false;
            }
            catch (EvidenceException)
            {
                return true;
            }
        });
    }

    [Fact]
    public void The_valid_object_opens()
    {
        Assert.Equal("benign synthetic payload"u8.ToArray(), EvidenceCrypto.Open("00112233445566778899aabbccddeeff", Valid, Keys));
        Assert.Equal("k1", EvidenceCrypto.ReadKeyId(Valid));
    }

    [FsCheck.Xunit.Property(MaxTest = 300)]
    public bool Random_response_bodies_parse_or_return_null(byte[] bytes)
    {
        var r = CyberTipResponse.TryParse(bytes);
        return r is null || r.FileIds is not null;
    }

    [Fact]
    public void A_billion_laughs_response_is_refused()
    {
        const string bomb = """
            <?xml version="1.0"?>
            <!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
            <reportResponse><responseCode>0</responseCode><responseDescription>&lol2;</responseDescription></reportResponse>
            """;
        Assert.Null(CyberTipResponse.TryParse(System.Text.Encoding.UTF8.GetBytes(bomb)));
    }
}
