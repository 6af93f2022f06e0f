namespace Warden.Fuzz;

/// <summary>
/// One parser of untrusted bytes under fuzzing. <see cref="Run"/> feeds it one input and returns normally when the
/// parser either accepted the input or refused it with one of its documented "malformed input" exceptions; any
/// other exception escapes and is a crash.
/// </summary>
/// <param name="Name">The name <c>scripts/fuzz</c> takes (and the corpus folder, fuzz/corpus/NAME).</param>
/// <param name="Entry">The production entry point it calls, for the docs table.</param>
/// <param name="Refusals">The exception types it documents for malformed input, as text.</param>
/// <param name="Run">Runs the parser on one input.</param>
/// <param name="Timeout">How long one input may take before it is a hang.</param>
/// <param name="Instrument">The Warden assemblies whose code the target exercises (instrumented for afl++).</param>
public sealed record FuzzTarget(string Name, string Entry, string Refusals, Action<byte[]> Run, TimeSpan Timeout, string[] Instrument)
{
    /// <summary>Runs <paramref name="input"/> and returns the crash, or null when the parser behaved.</summary>
    public Exception? Check(byte[] input)
    {
        try
        {
            Run(input);
            return null;
        }
#pragma warning disable CA1031 // Any escaping exception is exactly what a fuzzer reports.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            return ex;
        }
    }
}
