namespace Warden.Core.Signals;

/// <summary>A view of one piece of content for hashers: its bytes and what it was recognised as.</summary>
/// <param name="Bytes">The whole content (in memory; never written to disk).</param>
/// <param name="Kind">What it is: <see cref="ContentKinds.Photo"/> when it decoded as an image, else <see cref="ContentKinds.File"/>.</param>
public readonly record struct ContentView(ReadOnlyMemory<byte> Bytes, ContentKinds Kind);

/// <summary>
/// Turns content into a signal of one type (python-threatexchange's FileHasher). Plug-in types bring one; the
/// built-in image, video and model types are computed by their own pipelines (one read, one decode for all).
/// </summary>
public interface ISignalHasher
{
    /// <summary>The kinds of content this hasher reads (it is called when the content is one of them).</summary>
    ContentKinds Kinds { get; }

    /// <summary>The content's signal, or null when it has none. Must not keep the bytes.</summary>
    Signal? Hash(ContentView content);
}
