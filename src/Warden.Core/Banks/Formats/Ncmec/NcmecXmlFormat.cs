namespace Warden.Core.Banks.Formats;

/// <summary>
/// An NCMEC Hash Sharing API v2 entries page (see <see cref="NcmecXmlReader"/>); read only. Detected by <c>.xml</c>,
/// or a first line opening with <c>&lt;</c>.
/// </summary>
internal sealed class NcmecXmlFormat : BankFileFormat
{
    public static readonly NcmecXmlFormat Instance = new();

    private NcmecXmlFormat()
    {
    }

    public override string Name => "ncmec";

    public override IReadOnlyList<string> Aliases { get; } = ["xml", "ncmec-xml"];

    public override IReadOnlyList<string> Extensions { get; } = [".xml"];

    public override string MimeType => "application/xml";

    public override bool Sniff(ReadOnlySpan<byte> firstLine) => firstLine[0] == (byte)'<';

    // XML follows its own declaration, so the reader takes the bytes when it has them.
    public override IEnumerable<BankEntryRecord> Read(ListInput input, ImportSession session) =>
        input.Stream is { } stream ? NcmecXmlReader.Read(stream, null, session) : NcmecXmlReader.Read(null, input.Text, session);
}
