using System.Security.Cryptography;
using Warden.Core.Matching;

namespace Warden.Core.Tests.Matching;

public sealed class ExactIndexTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("warden-exact-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static List<long> Lookup(ExactIndex index, byte[] key)
    {
        var ids = new List<long>();
        index.Lookup(key, ids);
        ids.Sort();
        return ids;
    }

    [Theory]
    [InlineData(16)]
    [InlineData(20)]
    [InlineData(32)]
    public void Add_lookup_remove_with_shared_keys_and_multi_key_ids(int keyBytes)
    {
        using var index = new ExactIndex(keyBytes);
        var a = RandomNumberGenerator.GetBytes(keyBytes);
        var b = RandomNumberGenerator.GetBytes(keyBytes);
        index.Add(a, 1);
        index.Add(a, 2);
        index.Add(a, 2);
        index.Add(b, 2);
        index.Add(b, 3);
        Assert.Equal(4, index.Count);
        Assert.Equal([1, 2], Lookup(index, a));
        Assert.Equal([2, 3], Lookup(index, b));
        Assert.Empty(Lookup(index, RandomNumberGenerator.GetBytes(keyBytes)));

        Assert.True(index.Remove(2));
        Assert.False(index.Remove(2));
        Assert.Equal([1], Lookup(index, a));
        Assert.Equal([3], Lookup(index, b));
        Assert.True(index.Remove(1));
        Assert.Empty(Lookup(index, a));
        Assert.Equal(1, index.Count);
        Assert.Throws<ArgumentException>(() => index.Add(new byte[keyBytes + 1], 5));
    }

    [Fact]
    public void Matches_a_dictionary_model_under_random_operations()
    {
        var rng = new Random(4);
        using var index = new ExactIndex(16);
        var keys = Enumerable.Range(0, 300).Select(_ => RandomNumberGenerator.GetBytes(16)).ToArray();
        var model = new HashSet<(int Key, long Id)>();
        for (var step = 0; step < 5000; step++)
        {
            if (rng.Next(4) > 0)
            {
                var (k, id) = (rng.Next(keys.Length), (long)rng.Next(200));
                index.Add(keys[k], id);
                model.Add((k, id));
            }
            else
            {
                var id = (long)rng.Next(200);
                Assert.Equal(model.RemoveWhere(p => p.Id == id) > 0, index.Remove(id));
            }
        }

        Assert.Equal(model.Count, index.Count);
        for (var k = 0; k < keys.Length; k++)
        {
            Assert.Equal(model.Where(p => p.Key == k).Select(p => p.Id).Order(), Lookup(index, keys[k]));
        }
    }

    [Fact]
    public void Snapshot_round_trips_and_rejects_corruption()
    {
        using var index = new ExactIndex(20);
        var keys = Enumerable.Range(0, 1000).Select(_ => RandomNumberGenerator.GetBytes(20)).ToArray();
        for (var i = 0; i < keys.Length; i++)
        {
            index.Add(keys[i], i);
            index.Add(keys[i], i + 10_000);
        }

        var path = Path.Combine(_dir, "x.exact");
        index.Save(path);
        using var loaded = ExactIndex.Load(path);
        Assert.Equal(index.Count, loaded.Count);
        Assert.Equal([5, 10_005], Lookup(loaded, keys[5]));

        var good = File.ReadAllBytes(path);
        File.WriteAllBytes(path, good[..^3]);
        Assert.Throws<InvalidDataException>(() => ExactIndex.Load(path));
        var bad = (byte[])good.Clone();
        bad[100] ^= 4;
        File.WriteAllBytes(path, bad);
        Assert.Throws<InvalidDataException>(() => ExactIndex.Load(path));
        File.WriteAllBytes(path, []);
        Assert.Throws<InvalidDataException>(() => ExactIndex.Load(path));
    }
}
