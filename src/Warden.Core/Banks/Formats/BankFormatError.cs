using System.Globalization;

namespace Warden.Core.Banks.Formats;

/// <summary>One problem in a list file: where (<paramref name="Source"/>:<paramref name="Line"/>) and why.</summary>
/// <param name="Source">The file name as the caller named it (<see cref="ImportOptions.SourceName"/>), or "-".</param>
/// <param name="Line">1-based line number; for NCMEC XML the line of the element; 0 when no line applies.</param>
/// <param name="Reason">What is wrong, in words a user can act on.</param>
public sealed record BankFormatError(string Source, long Line, string Reason)
{
    /// <summary>The <c>file:line: reason</c> form CLIs print.</summary>
    public override string ToString() =>
        Line > 0 ? string.Create(CultureInfo.InvariantCulture, $"{Source}:{Line}: {Reason}") : $"{Source}: {Reason}";
}

/// <summary>
/// A list file could not be read: a bad line when the caller asked to abort on errors, or a problem no line-skip can
/// get past (no header row, malformed XML, a DTD). The message is <c>file:line: reason</c>.
/// </summary>
public sealed class BankFormatException : Exception
{
    /// <summary>Creates the exception for <paramref name="error"/>.</summary>
    public BankFormatException(BankFormatError error)
        : base((error ?? throw new ArgumentNullException(nameof(error))).ToString()) => Error = error;

    /// <summary>Creates the exception for <paramref name="error"/> with the exception that caused it.</summary>
    public BankFormatException(BankFormatError error, Exception? inner)
        : base((error ?? throw new ArgumentNullException(nameof(error))).ToString(), inner) => Error = error;

    /// <summary>Creates an exception with a message only (no source or line).</summary>
    public BankFormatException()
        : this(new BankFormatError("-", 0, "bad list file"))
    {
    }

    /// <summary>Creates an exception with a message only (no source or line).</summary>
    public BankFormatException(string message)
        : this(new BankFormatError("-", 0, message))
    {
    }

    /// <summary>Creates an exception with a message only (no source or line) and its cause.</summary>
    public BankFormatException(string message, Exception? innerException)
        : this(new BankFormatError("-", 0, message), innerException)
    {
    }

    /// <summary>The error: source, line and reason.</summary>
    public BankFormatError Error { get; }

    /// <summary>The file name as the caller named it (<see cref="BankFormatError.Source"/>; <see cref="Exception.Source"/> is .NET's own).</summary>
    public string SourceName => Error.Source;

    /// <summary>1-based line number, or 0.</summary>
    public long Line => Error.Line;

    /// <summary>What is wrong.</summary>
    public string Reason => Error.Reason;
}
