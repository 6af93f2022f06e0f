using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using SharpFuzz.Common;

namespace Warden.Fuzz;

/// <summary>
/// In-process edge coverage from SharpFuzz's instrumentation: assemblies rewritten by the <c>sharpfuzz</c> tool count
/// edge hits into <see cref="Trace.SharedMem"/> (the AFL map), which afl-fuzz normally provides. Here the map is ours,
/// so the mutation loop keeps every input that reaches a new edge or hit-count bucket, the way AFL does. With
/// uninstrumented assemblies the map stays empty and the loop is plain random mutation.
/// </summary>
public sealed unsafe class Coverage
{
    /// <summary>AFL's map size (SharpFuzz uses 64 KiB).</summary>
    public const int MapSize = 1 << 16;

    private static readonly object Gate = new();
    private static byte* _map;

    private readonly byte[] _virgin = new byte[MapSize];

    /// <summary>Points the instrumentation at this process's map, which every run of the loop clears and reads.</summary>
    public Coverage()
    {
        lock (Gate)
        {
            InstallMap();
            // SharpFuzz's afl fork server repoints the map at afl's shared memory; the in-process loop reads ours.
            Trace.SharedMem = _map;
        }
    }

    /// <summary>Edges (map slots) seen so far.</summary>
    public int Edges { get; private set; }

    /// <summary>
    /// Gives instrumented code a map before any of it runs. Every instrumented edge increments
    /// <c>Trace.SharedMem[edge]</c>, and SharpFuzz leaves that pointer null until a fuzzing loop starts, so the first
    /// Warden method to run (the <see cref="Targets"/> initialiser, while the command line picks a target) wrote to
    /// address 0 and the runtime died with an AccessViolationException. A module initializer runs before any code
    /// of this assembly, so no path (run, afl, repro, smoke, list) can reach Warden code without a map.
    /// </summary>
#pragma warning disable CA2255 // This is the application's own entry assembly; it must run before Main.
    [ModuleInitializer]
#pragma warning restore CA2255
    internal static void InstallMap()
    {
        lock (Gate)
        {
            if (_map is null)
            {
                _map = (byte*)NativeMemory.AllocZeroed(MapSize);
                Trace.SharedMem = _map;
            }
        }
    }

    /// <summary>Clears the map before an execution.</summary>
    public static void Reset()
    {
        new Span<byte>(_map, MapSize).Clear();
        Trace.PrevLocation = 0;
    }

    /// <summary>True when the last execution hit an edge or hit-count bucket never seen before.</summary>
    public bool Collect()
    {
        var map = new Span<ulong>(_map, MapSize / 8);
        var fresh = false;
        var start = 0;
        while (true)
        {
            var i = map[start..].IndexOfAnyExcept(0UL);
            if (i < 0)
            {
                break;
            }

            i += start;
            var word = map[i];
            for (var b = 0; b < 8; b++)
            {
                var count = (byte)(word >> (b * 8));
                if (count == 0)
                {
                    continue;
                }

                var bucket = Bucket(count);
                ref var seen = ref _virgin[(i * 8) + b];
                if ((bucket & ~seen) != 0)
                {
                    if (seen == 0)
                    {
                        Edges++;
                    }

                    seen |= bucket;
                    fresh = true;
                }
            }

            start = i + 1;
            if (start >= map.Length)
            {
                break;
            }
        }

        return fresh;
    }

    // AFL's hit-count classes: 1, 2, 3, 4-7, 8-15, 16-31, 32-127, 128+.
    private static byte Bucket(byte count) => count switch
    {
        1 => 1,
        2 => 2,
        3 => 4,
        < 8 => 8,
        < 16 => 16,
        < 32 => 32,
        < 128 => 64,
        _ => 128,
    };
}
