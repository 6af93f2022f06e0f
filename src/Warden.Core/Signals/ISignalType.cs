namespace Warden.Core.Signals;

/// <summary>What content a signal type is computed from (python-threatexchange's ContentType).</summary>
[Flags]
public enum ContentKinds
{
    /// <summary>None.</summary>
    None = 0,

    /// <summary>Still images.</summary>
    Photo = 1,

    /// <summary>Videos.</summary>
    Video = 2,

    /// <summary>AI model files (checkpoints, LoRAs, …).</summary>
    ModelFile = 4,

    /// <summary>Any bytes, whatever they are (digests).</summary>
    File = 8,
}

/// <summary>
/// A kind of fingerprint (`pdq`, `md5`, …): the plug-in unit. It names its content kinds, validates and
/// normalises its text form, gives examples, and makes the index that searches its signals. Built-in types and
/// plug-ins alike join a <see cref="SignalTypeRegistry"/>; nothing else in the engine knows a type by name.
/// </summary>
public interface ISignalType
{
    /// <summary>The stable name used in banks, files, the API and the UI (lowercase).</summary>
    string Name { get; }

    /// <summary>True for cryptographic digests: a match is equality. False for perceptual hashes.</summary>
    bool IsExact { get; }

    /// <summary>The default match threshold (maximum distance); 0 for exact types.</summary>
    int DefaultThreshold { get; }

    /// <summary>The largest threshold a bank may set (the rule the API, storage and CLI all check).</summary>
    int MaxThreshold => DefaultThreshold;

    /// <summary>Signals of lower quality are not matched (PDQ: too featureless).</summary>
    int MinQuality => 0;

    /// <summary>What content this type is computed from.</summary>
    ContentKinds ContentKinds { get; }

    /// <summary>Valid example values (documentation, tests, `GET /signal_type`).</summary>
    IReadOnlyList<string> Examples { get; }

    /// <summary>False for signals too bulky to list in every hash summary (TMK: ~350 KB); asked for explicitly.</summary>
    bool InSummaries => true;

    /// <summary>
    /// Validates <paramref name="text"/> and returns its canonical form (lowercase hex, trimmed); on failure
    /// <paramref name="reason"/> says why in words a user can act on.
    /// </summary>
    bool TryNormalize(ReadOnlySpan<char> text, out string normalized, out string? reason);

    /// <summary>A query for a normalised value given by value (no content); null when the value does not parse.</summary>
    Signal? CreateSignal(string normalized);

    /// <summary>A new, empty index for this type's signals.</summary>
    ISignalIndex CreateIndex();

    /// <summary>Loads an index written by <see cref="ISignalIndex.Save"/>.</summary>
    /// <exception cref="InvalidDataException">The snapshot is damaged.</exception>
    /// <exception cref="IOException">It cannot be read (missing: the caller rebuilds).</exception>
    ISignalIndex LoadIndex(string path);
}
