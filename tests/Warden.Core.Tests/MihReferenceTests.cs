using System.Globalization;
using Warden.Core.Hashing.Pdq;

namespace Warden.Core.Tests;

/// <summary>
/// Reproduces the reference `mih-query -d 31 needles haystack` output (250 matches) by exact search. The
/// multi-index hash of the matching issue must give the same; here the brute-force scan is the oracle.
/// </summary>
public sealed class MihReferenceTests
{
    [SkippableFact]
    public void Needles_against_haystack_at_31_match_the_reference_output()
    {
        var root = TestData.SharedPath("pdq");
        var needles = File.ReadAllLines(Path.Combine(root, "reg-test-input", "needles.txt")).Where(l => l.Length > 0).Select(l => PdqHash.Parse(l)).ToArray();
        var haystack = File.ReadAllLines(Path.Combine(root, "reg-test-input", "haystack.txt")).Where(l => l.Length > 0).Select(l => PdqHash.Parse(l)).ToArray();

        var expected = new List<string>();
        foreach (var line in File.ReadAllLines(Path.Combine(root, "expected", "mih-query-needles-haystack-d31.txt")))
        {
            if (line.StartsWith("needle=", StringComparison.Ordinal))
            {
                expected.Add(line);
            }
            else if (line.StartsWith("d=", StringComparison.Ordinal))
            {
                expected.Add(line);
            }
        }

        var actual = new List<string>();
        foreach (var needle in needles)
        {
            actual.Add($"needle={needle}");
            for (var i = 0; i < haystack.Length; i++)
            {
                var d = needle.DistanceTo(haystack[i]);
                if (d <= 31)
                {
                    actual.Add(string.Create(CultureInfo.InvariantCulture, $"d={d},match={haystack[i]},idx={i + 1}"));
                }
            }
        }

        Assert.Equal(250, actual.Count(l => l.StartsWith("d=", StringComparison.Ordinal)));
        Assert.Equal(expected.Order(StringComparer.Ordinal), actual.Order(StringComparer.Ordinal));
    }
}
