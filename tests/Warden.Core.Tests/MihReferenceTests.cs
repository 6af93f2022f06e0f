using System.Globalization;
using Warden.Core.Hashing.Pdq;
using Warden.Core.Matching;

namespace Warden.Core.Tests;

/// <summary>
/// Reproduces the reference `mih-query -d 31 needles haystack` output (250 matches) with <see cref="PdqIndex"/>,
/// on both its multi-index and its scan path.
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

        var ids = Enumerable.Range(1, haystack.Length).Select(i => (long)i).ToArray();
        foreach (var path in new[] { PdqIndex.SearchPath.MultiIndex, PdqIndex.SearchPath.Scan, PdqIndex.SearchPath.Auto })
        {
            // Force the haystack into an indexed segment (it is smaller than the scan threshold).
            using var index = new PdqIndex(path == PdqIndex.SearchPath.Auto ? 0 : 16, path);
            index.AddRange(haystack, ids);
            var actual = new List<string>();
            var matches = new List<PdqMatch>();
            foreach (var needle in needles)
            {
                actual.Add($"needle={needle}");
                matches.Clear();
                index.Search(needle, 31, matches);
                foreach (var m in matches)
                {
                    actual.Add(string.Create(CultureInfo.InvariantCulture, $"d={m.Distance},match={haystack[m.Id - 1]},idx={m.Id}"));
                }
            }

            Assert.Equal(250, actual.Count(l => l.StartsWith("d=", StringComparison.Ordinal)));
            Assert.Equal(expected.Order(StringComparer.Ordinal), actual.Order(StringComparer.Ordinal));
        }
    }
}
