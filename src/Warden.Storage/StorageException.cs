namespace Warden.Storage;

/// <summary>Why a storage operation was refused. Stable names: CLI and API errors map from them.</summary>
public enum StorageError
{
    /// <summary>The named thing does not exist.</summary>
    NotFound,

    /// <summary>A thing with that name already exists.</summary>
    Conflict,

    /// <summary>The request is invalid (bad name, bad threshold).</summary>
    Invalid,

    /// <summary>The database file is not a Warden database, or is newer than this program.</summary>
    Incompatible,

    /// <summary>The database cannot be reached or opened (server down, login refused, no such database, unreadable file).</summary>
    Unavailable,
}

/// <summary>A refused storage operation, with a message for the user.</summary>
public sealed class StorageException : Exception
{
    /// <summary>Creates the exception.</summary>
    public StorageException(StorageError error, string message, Exception? inner = null)
        : base(message, inner) => Error = error;

    /// <summary>Creates an <see cref="StorageError.Invalid"/> exception.</summary>
    public StorageException()
        : this(StorageError.Invalid, "Invalid storage operation.")
    {
    }

    /// <summary>Creates an <see cref="StorageError.Invalid"/> exception.</summary>
    public StorageException(string message)
        : this(StorageError.Invalid, message)
    {
    }

    /// <summary>Creates an <see cref="StorageError.Invalid"/> exception.</summary>
    public StorageException(string message, Exception innerException)
        : this(StorageError.Invalid, message, innerException)
    {
    }

    /// <summary>The kind of refusal.</summary>
    public StorageError Error { get; }
}
