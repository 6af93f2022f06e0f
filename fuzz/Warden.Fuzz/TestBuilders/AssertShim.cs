namespace Warden.Core.Tests.Provenance;

/// <summary>The one xunit assertion the linked C2PA builder uses, for the seed generator (no xunit here).</summary>
internal static class Assert
{
    public static void Equal<T>(T expected, T actual)
    {
        if (!EqualityComparer<T>.Default.Equals(expected, actual))
        {
            throw new InvalidOperationException($"expected {expected}, got {actual}");
        }
    }
}
