namespace Warden.Core.Banks.Formats;

/// <summary>
/// What an NCMEC Hash Sharing v2 entries page says about paging, for an exchange that pages later. Entries within a
/// window are not in time order: move a checkpoint to the window's <c>to</c> only after the last page (no
/// <see cref="Next"/>), never to <see cref="MaxTimestamp"/>.
/// </summary>
/// <param name="Next">
/// The <c>paging/next</c> link, XML-unescaped (<c>&amp;amp;</c> → <c>&amp;</c>), to append unchanged to the
/// environment's base URL; null on the last page. Valid only for the same from/to window.
/// </param>
/// <param name="ImagesMaxTimestamp">The <c>images/@maxTimestamp</c> (absent on an empty block).</param>
/// <param name="VideosMaxTimestamp">The <c>videos/@maxTimestamp</c>.</param>
/// <param name="ImagesCount">The <c>images/@count</c> the page declares (entries plus tombstones).</param>
/// <param name="VideosCount">The <c>videos/@count</c> the page declares.</param>
/// <param name="Entries">Live entries read (<c>image</c>, <c>video</c>).</param>
/// <param name="Tombstones">Tombstones read (<c>deletedImage</c>, <c>deletedVideo</c>).</param>
public sealed record NcmecPageInfo(
    string? Next,
    DateTimeOffset? ImagesMaxTimestamp,
    DateTimeOffset? VideosMaxTimestamp,
    int? ImagesCount,
    int? VideosCount,
    long Entries,
    long Tombstones)
{
    /// <summary>The later of the two max timestamps, or null when the page is empty.</summary>
    public DateTimeOffset? MaxTimestamp =>
        ImagesMaxTimestamp is { } i && VideosMaxTimestamp is { } v ? (i > v ? i : v) : ImagesMaxTimestamp ?? VideosMaxTimestamp;

    /// <summary>True when another page follows (<see cref="Next"/> is set).</summary>
    public bool HasMore => Next is not null;
}
