namespace Warden.Review.Evidence;

/// <summary>Why a vault operation failed.</summary>
public enum EvidenceError
{
    /// <summary>No such item.</summary>
    NotFound,

    /// <summary>The item was destroyed.</summary>
    Destroyed,

    /// <summary>The stored bytes are not a vault object (bad magic, version or header).</summary>
    BadFormat,

    /// <summary>The stored object is shorter than its header says.</summary>
    Truncated,

    /// <summary>The item's key id is not in the key ring.</summary>
    UnknownKey,

    /// <summary>The data key could not be unwrapped: wrong master key, or the key header was altered.</summary>
    KeyUnwrapFailed,

    /// <summary>The ciphertext failed authentication: the object was altered.</summary>
    Tampered,

    /// <summary>The item is under legal hold, which blocks destruction.</summary>
    LegalHold,

    /// <summary>The request is not allowed (missing actor or purpose, retention shortened, size limit).</summary>
    NotAllowed,
}

/// <summary>A typed vault failure.</summary>
public sealed class EvidenceException : Exception
{
    /// <summary>Creates the exception.</summary>
    public EvidenceException(EvidenceError error, string message, Exception? inner = null)
        : base(message, inner) => Error = error;

    /// <summary>Parameterless constructor (serialisation convention).</summary>
    public EvidenceException()
        : this(EvidenceError.BadFormat, "evidence error")
    {
    }

    /// <summary>Message-only constructor (serialisation convention).</summary>
    public EvidenceException(string message)
        : this(EvidenceError.BadFormat, message)
    {
    }

    /// <summary>Message and inner exception (serialisation convention).</summary>
    public EvidenceException(string message, Exception innerException)
        : this(EvidenceError.BadFormat, message, innerException)
    {
    }

    /// <summary>What failed.</summary>
    public EvidenceError Error { get; }
}
