using FsCheck;
using FsCheck.Fluent;
using Warden.Core.Imaging;
using Warden.Core.Provenance;

namespace Warden.Core.Tests.Provenance;

/// <summary>
/// Image formats are sniffed in one place: provenance's container walk names the format the sniffer sees, refuses
/// exactly what it cannot name, and the MIME type follows the name, for generated heads of every signature.
/// </summary>
public sealed class SniffOnceTests
{
    private static readonly byte[][] Signatures =
    [
        [0xFF, 0xD8, 0xFF], [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A], "RIFF\0\0\0\0WEBP"u8.ToArray(), "GIF87a"u8.ToArray(),
        "GIF89a"u8.ToArray(), "II*\0"u8.ToArray(), "MM\0*"u8.ToArray(), "II+\0"u8.ToArray(), "MM\0+"u8.ToArray(), "BM"u8.ToArray(),
        "GIF8"u8.ToArray(), [0x89, 0x50, 0x4E, 0x47], "RIFF\0\0\0\0AVI "u8.ToArray(), [],
    ];

    [FsCheck.Xunit.Property(MaxTest = 400)]
    public Property Container_walk_and_mime_type_follow_the_sniffer()
    {
        var gen = from signature in Gen.Elements(Signatures)
                  from tail in ArbMap.Default.GeneratorFor<byte>().ArrayOf()
                  select (byte[])[.. signature, .. tail];
        return Prop.ForAll(gen.ToArbitrary(), bytes =>
        {
            var format = ImageFormatSniffer.Sniff(bytes);
            Assert.Equal(format == ImageFormat.Unknown ? "application/octet-stream" : "image/" + ImageFormatSniffer.Name(format), ImageFormatSniffer.MimeType(format));
            try
            {
                var scan = ContainerWalker.Walk(bytes);
                Assert.NotEqual(ImageFormat.Unknown, format);
                Assert.Equal(ImageFormatSniffer.Name(format), scan.Format);
            }
            catch (ProvenanceException)
            {
                Assert.Equal(ImageFormat.Unknown, format);
            }
        });
    }
}
