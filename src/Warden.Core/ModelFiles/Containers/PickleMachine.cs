using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using System.Numerics;
using System.Text;

namespace Warden.Core.ModelFiles;

/// <summary>A symbolic global (module, name): never imported, never called.</summary>
public sealed record PyGlobal(string Module, string Name)
{
    /// <inheritdoc />
    public override string ToString() => $"{Module}.{Name}";
}

/// <summary>The result of calling a non-evaluated callable: kept as a node, never run.</summary>
public sealed record PyCall(object? Callable, object? Args);

/// <summary>A persistent id (torch storages are referenced this way).</summary>
public sealed record PyPersistent(object? Id);

/// <summary>Bytes in the pickle (a slice of the input when scanning memory, never copied).</summary>
public sealed record PyBytes(ReadOnlyMemory<byte> Data);

/// <summary>A value the scanner does not keep: too large to hold, or only known by running the loader.</summary>
/// <param name="Kind">str, bytes, int, line, buffer, call.</param>
/// <param name="Length">Its size in bytes where known, else -1.</param>
public sealed record PyOpaque(string Kind, long Length);

/// <summary>A Python tuple.</summary>
public sealed record PyTuple(object?[] Items);

/// <summary>A Python list.</summary>
public sealed class PyList
{
    /// <summary>Items.</summary>
    public List<object?> Items { get; } = [];
}

/// <summary>A Python dict in insertion order.</summary>
public sealed class PyDict
{
    /// <summary>Entries in insertion order.</summary>
    public List<KeyValuePair<object?, object?>> Entries { get; } = [];
}

/// <summary>A Python set or frozenset.</summary>
public sealed class PySet
{
    /// <summary>Items.</summary>
    public List<object?> Items { get; } = [];
}

/// <summary>A torch tensor view rebuilt symbolically from _rebuild_tensor(_v2).</summary>
/// <param name="Storage">The persistent id of its storage.</param>
/// <param name="StorageOffset">Offset in elements.</param>
/// <param name="Size">Shape.</param>
/// <param name="Stride">Strides in elements.</param>
public sealed record TorchTensorRef(PyPersistent Storage, long StorageOffset, long[] Size, long[] Stride);

/// <summary>What <see cref="PickleMachine.Run(ReadOnlyMemory{byte}, string, bool, long)"/> returns.</summary>
/// <param name="Report">Findings.</param>
/// <param name="Root">The object the (first) STOP returned, or null.</param>
/// <param name="End">Offset just after the first STOP (or where scanning stopped).</param>
public sealed record PickleResult(PickleReport Report, object? Root, long End);

/// <summary>
/// A non-executing pickle interpreter for protocols 0-5 that reads every opcode's argument exactly as CPython
/// does (<see cref="PickleText"/>: where the C and the Python unpickler differ, whatever either accepts is
/// accepted, so the scan never stops before a loader would). Globals are resolved as <c>find_class</c> does
/// (<c>_compat_pickle</c> names under protocol &lt; 3, dotted names as attribute chains) and stay symbols; only
/// the allowlisted torch reconstruction calls are evaluated (into <see cref="TorchTensorRef"/> / dicts).
/// Fails closed: a global outside the allowlist, INST/OBJ/EXT*, a name the scanner cannot know, any cap
/// reached, and a stream it cannot finish after something callable was reached are <c>dangerous</c>.
/// Memory is bounded: streams are read through one window, long arguments are skipped, and the memo, stack,
/// object graph, opcodes, streams and time are capped.
/// </summary>
public sealed class PickleMachine
{
    /// <summary>Strings and bytes longer than this are skipped, not kept (a name this long is unknowable).</summary>
    public const int MaxValueBytes = 1 << 20;

    /// <summary>Allocation an allowlisted constructor may request before the pickle is flagged (bytes or elements).</summary>
    public const long MaxAllocation = 1L << 28;

    // Items kept in lists/dicts/sets across a scan; more is a cap (dangerous), not an unbounded graph.
    private const long MaxRetained = 16_000_000;

    // Streams after the first one a scan follows; more is a cap (dangerous).
    private const int MaxStreams = 1_000_000;

    private const int MaxFindings = 10_000;

    private const int MaxGlobals = 100_000;

    private readonly ModelLimits _limits;

    /// <summary>Creates a machine with the given limits.</summary>
    public PickleMachine(ModelLimits? limits = null) => _limits = limits ?? ModelLimits.Default;

    /// <summary>
    /// Scans <paramref name="data"/> from <paramref name="start"/>: the first pickle is interpreted into
    /// <see cref="PickleResult.Root"/>; when <paramref name="scanTrailing"/> is set, every further pickle after
    /// STOP is scanned too (a loader may read them) and reported.
    /// </summary>
    public PickleResult Run(ReadOnlyMemory<byte> data, string member, bool scanTrailing = true, long start = 0)
    {
        using var input = new PickleInput(data, start);
        var primary = Scan(input, scanTrailing);
        if (input.Straddled)
        {
            foreach (var min in FileReadings(input))
            {
                using var lossy = new PickleInput(data, start) { Lossy = true, FrameChunkMin = min };
                primary.Merge(Scan(lossy, scanTrailing), min);
            }
        }

        return primary.Result(member);
    }

    /// <summary>
    /// Scans a pickle stream of any size from the stream's current position in bounded memory (one window;
    /// long arguments are skipped, never buffered). Offsets are relative to that position.
    /// </summary>
    public PickleResult Run(Stream stream, string member, bool scanTrailing = true)
    {
        ArgumentNullException.ThrowIfNull(stream);
        var origin = stream.CanSeek ? stream.Position : -1;
        Outcome primary;
        bool straddled;
        IReadOnlyList<long> readings;
        using (var input = new PickleInput(stream))
        {
            primary = Scan(input, scanTrailing);
            straddled = input.Straddled;
            readings = FileReadings(input);
        }

        if (straddled)
        {
            if (origin < 0)
            {
                primary.State.MarkCap();
                primary.State.Add(PickleVerdict.Dangerous, "limit", null, "FRAME", 0,
                    "a read runs past the end of a FRAME and the stream cannot be read again to check how a file loader reads it");
            }
            else
            {
                foreach (var min in readings)
                {
                    stream.Position = origin;
                    using var lossy = new PickleInput(stream) { Lossy = true, FrameChunkMin = min };
                    primary.Merge(Scan(lossy, scanTrailing), min);
                }
            }
        }

        return primary.Result(member);
    }

    // How file loaders read a pickle whose reads straddle a FRAME: io.BytesIO (torch.load) drops what is left of
    // every frame; a buffered file only of frames of 128 KiB and more.
    private static long[] FileReadings(PickleInput input) => input.BigStraddled ? [0, 128 * 1024] : [0];

    private Outcome Scan(PickleInput input, bool scanTrailing)
    {
        var state = new State(input, _limits);
        var complete = state.RunOne(out var root);
        var end = input.Position;
        if (complete && scanTrailing)
        {
            var n = 0;
            while (input.Ensure(1))
            {
                if (input.PeekByte() == 0)
                {
                    // 0x00 is no opcode: a loader reading on fails at once. Zero padding is normal; say so otherwise.
                    var at = input.Position;
                    if (!state.RestIsZero())
                    {
                        state.Add(PickleVerdict.Suspicious, "trailing", null, null, at, "bytes after STOP start with 0x00: no loader reads past it");
                    }

                    break;
                }

                if (++n > MaxStreams)
                {
                    state.Add(PickleVerdict.Dangerous, "limit", null, null, input.Position, $"more than {MaxStreams} pickles after the first: the rest is not scanned");
                    state.MarkCap();
                    break;
                }

                state.Add(PickleVerdict.Suspicious, "trailing", null, null, input.Position, "bytes after STOP: scanning them as another pickle (a loader may read it)");
                if (!state.RunOne(out _))
                {
                    complete = false;
                    break;
                }
            }
        }

        return new Outcome(state, root, end, complete);
    }

    private sealed class Outcome(State state, object? root, long end, bool complete)
    {
        private long _extraOps;

        public State State => state;

        public void Merge(Outcome other, long frameMin)
        {
            state.Add(PickleVerdict.Dangerous, "frame", null, "FRAME", 0, frameMin == 0
                ? "a read runs past the end of a FRAME: the C unpickler reading a file (torch.load's io.BytesIO) drops the rest of the frame and reads on after it, so it sees other opcodes than pickle.loads; that reading was scanned too"
                : "a read runs past the end of a FRAME of 128 KiB or more: a buffered file drops the rest of the frame; that reading was scanned too");
            var seen = state.Findings.Select(f => (f.Kind, f.Symbol, f.Offset)).ToHashSet();
            foreach (var f in other.State.Findings)
            {
                if (seen.Add((f.Kind, f.Symbol, f.Offset)))
                {
                    state.Add(f.Verdict, f.Kind, f.Module, f.Name, f.Offset, "(file reading) " + f.Detail);
                }
            }

            state.Globals.UnionWith(other.State.Globals);
            _extraOps += other.State.Ops;
            if (other.State.CapReached)
            {
                state.MarkCap();
            }
        }

        public PickleResult Result(string member) =>
            new(new PickleReport(member, state.Findings, [.. state.Globals], state.Ops + _extraOps, complete && !state.CapReached), root, end);
    }

    private sealed class State(PickleInput input, ModelLimits limits)
    {
        private static readonly object True = true;
        private static readonly object False = false;
        private static readonly object[] SmallInts = [.. Enumerable.Range(0, 257).Select(i => (object)(long)i)];

        private readonly Dictionary<long, object?> _memo = [];
        private readonly List<object?> _stack = [];
        private readonly List<int> _marks = [];
        private readonly Stopwatch _clock = Stopwatch.StartNew();
        private readonly HashSet<string> _reported = new(StringComparer.Ordinal);
        private Dictionary<BigInteger, object?>? _bigMemo;
        private int _proto;
        private bool _callable;
        private long _retained;
        private bool _findingsFull;

        public long Ops { get; private set; }

        public bool CapReached { get; private set; }

        public List<PickleFinding> Findings { get; } = [];

        public SortedSet<string> Globals { get; } = new(StringComparer.Ordinal);

        private int Fence => _marks.Count == 0 ? 0 : _marks[^1];

        public void Add(PickleVerdict v, string kind, string? module, string? name, long offset, string detail)
        {
            if (Findings.Count < MaxFindings)
            {
                Findings.Add(new PickleFinding(v, kind, module, name, offset, detail));
            }
            else if (!_findingsFull)
            {
                _findingsFull = true;
                CapReached = true;
                Findings.Add(new PickleFinding(PickleVerdict.Dangerous, "limit", null, null, offset, $"more than {MaxFindings} findings: the rest are not listed"));
            }
        }

        public bool RestIsZero()
        {
            while (input.Ensure(1))
            {
                if (input.Take(1)[0] != 0)
                {
                    return false;
                }
            }

            return true;
        }

        public void MarkCap() => CapReached = true;

        public bool RunOne(out object? root)
        {
            root = null;
            _stack.Clear();
            _marks.Clear();
            _proto = 0; // load() starts at protocol 0; the memo is kept (one Unpickler reading again keeps it)
            _callable = false;
            var start = input.Position;
            long opAt = start;
            try
            {
                while (true)
                {
                    if (++Ops > limits.MaxPickleOps)
                    {
                        throw new PickleLimitException($"more than {limits.MaxPickleOps} opcodes");
                    }

                    if ((Ops & 4095) == 0 && _clock.Elapsed > limits.MaxPickleTime)
                    {
                        throw new PickleLimitException($"scan took longer than {limits.MaxPickleTime.TotalSeconds:F0} s");
                    }

                    opAt = input.Position;
                    var op = input.ReadByte();
                    if (op < 0)
                    {
                        throw new PickleCorruptException("ran out of input before STOP");
                    }

                    if (Step((byte)op, opAt, out root))
                    {
                        return true;
                    }
                }
            }
            catch (PickleLimitException ex)
            {
                CapReached = true;
                Add(PickleVerdict.Dangerous, "limit", null, null, input.Position, $"{ex.Message}: a cap was reached, so what follows is not known (stream started at {start})");
            }
            catch (PickleCorruptException ex)
            {
                // CPython stops at the same byte. Before it, anything that reached a callable has already run.
                var v = _callable ? PickleVerdict.Dangerous : PickleVerdict.Suspicious;
                Add(v, "corrupt", null, null, opAt, _callable
                    ? $"{ex.Message} at opcode offset {opAt} (stream started at {start}): a callable was reached before the stream stopped, so it is not known to be harmless"
                    : $"{ex.Message} at opcode offset {opAt} (stream started at {start}): the loader stops here before reaching any callable");
            }

            return false;
        }

        private bool Step(byte op, long at, out object? root)
        {
            root = null;
            switch (op)
            {
                case 0x80: // PROTO
                    {
                        var p = U8();
                        if (p > 5)
                        {
                            throw new PickleCorruptException($"unsupported pickle protocol {p}");
                        }

                        _proto = p;
                        break;
                    }

                case 0x95: // FRAME: the content is read on as usual; a read past its end is a straddle (PickleInput).
                    input.Frame(Size8());
                    break;
                case (byte)'.': // STOP
                    root = Pop();
                    return true;
                case (byte)'(':
                    if (_marks.Count >= limits.MaxStack)
                    {
                        throw new PickleLimitException("mark stack too deep");
                    }

                    _marks.Add(_stack.Count);
                    break;
                case (byte)'0': // POP: pops the MARK itself when the mark is on top (pop_mark semantics)
                    if (_marks.Count > 0 && _marks[^1] == _stack.Count)
                    {
                        _marks.RemoveAt(_marks.Count - 1);
                    }
                    else
                    {
                        Pop();
                    }

                    break;
                case (byte)'1':
                    PopMark();
                    break;
                case (byte)'2':
                    Push(Peek());
                    break;
                case (byte)'N':
                    Push(null);
                    break;
                case 0x88:
                    Push(True);
                    break;
                case 0x89:
                    Push(False);
                    break;
                case (byte)'J':
                    Push(Box(BinaryPrimitives.ReadInt32LittleEndian(Fixed(4))));
                    break;
                case (byte)'K':
                    Push(SmallInts[U8()]);
                    break;
                case (byte)'M':
                    Push(Box(BinaryPrimitives.ReadUInt16LittleEndian(Fixed(2))));
                    break;
                case 0x8a: // LONG1
                    Push(Long(U8()));
                    break;
                case 0x8b: // LONG4
                    {
                        var n = BinaryPrimitives.ReadInt32LittleEndian(Fixed(4));
                        if (n < 0)
                        {
                            throw new PickleCorruptException("LONG pickle has negative byte count");
                        }

                        Push(Long(n));
                        break;
                    }

                case (byte)'G':
                    Push(BinaryPrimitives.ReadDoubleBigEndian(Fixed(8)));
                    break;
                case (byte)'I':
                    {
                        var (line, ok) = TextLine("INT");
                        Push(!ok ? new PyOpaque("int", -1) : PickleText.TryParseInt(line, out var v) ? v : throw new PickleCorruptException("INT argument is not an integer"));
                        break;
                    }

                case (byte)'L':
                    {
                        var (line, ok) = TextLine("LONG");
                        Push(!ok ? new PyOpaque("int", -1) : PickleText.TryParseLong(line, out var v) ? v : throw new PickleCorruptException("LONG argument is not an integer"));
                        break;
                    }

                case (byte)'F':
                    {
                        var (line, ok) = TextLine("FLOAT");
                        Push(!ok ? new PyOpaque("float", -1) : PickleText.TryParseFloat(line, out var v) ? v : throw new PickleCorruptException("FLOAT argument is not a number"));
                        break;
                    }

                case (byte)'S':
                    {
                        var (line, ok) = TextLine("STRING");
                        Push(!ok ? new PyOpaque("str", -1) : PickleText.TryParseString(line, out var s) ? s : throw new PickleCorruptException("STRING argument is not a quoted, validly escaped string"));
                        break;
                    }

                case (byte)'V':
                    {
                        var (line, ok) = TextLine("UNICODE");
                        Push(!ok ? new PyOpaque("str", -1) : PickleText.TryParseRawUnicodeEscape(line, out var s) ? s : throw new PickleCorruptException("UNICODE argument has a bad \\u escape"));
                        break;
                    }

                case (byte)'T': // BINSTRING: the C unpickler reads the size unsigned
                    Push(Text(BinaryPrimitives.ReadUInt32LittleEndian(Fixed(4)), latin1: true));
                    break;
                case (byte)'U':
                    Push(Text(U8(), latin1: true));
                    break;
                case (byte)'X':
                    Push(Text(BinaryPrimitives.ReadUInt32LittleEndian(Fixed(4)), latin1: false));
                    break;
                case 0x8c:
                    Push(Text(U8(), latin1: false));
                    break;
                case 0x8d:
                    Push(Text(Size8(), latin1: false));
                    break;
                case (byte)'B':
                    Push(Bytes(BinaryPrimitives.ReadUInt32LittleEndian(Fixed(4))));
                    break;
                case (byte)'C':
                    Push(Bytes(U8()));
                    break;
                case 0x8e:
                case 0x96:
                    Push(Bytes(Size8()));
                    break;
                case 0x97: // NEXT_BUFFER: out-of-band data the loader supplies; torch never uses it.
                    Add(PickleVerdict.Suspicious, "opcode", null, "NEXT_BUFFER", at, "out-of-band buffer (not used by model files)");
                    Push(new PyOpaque("buffer", -1));
                    break;
                case 0x98: // READONLY_BUFFER
                    Peek();
                    break;
                case (byte)')':
                    Push(new PyTuple([]));
                    break;
                case 0x85:
                    Push(new PyTuple(PopN(1)));
                    break;
                case 0x86:
                    Push(new PyTuple(PopN(2)));
                    break;
                case 0x87:
                    Push(new PyTuple(PopN(3)));
                    break;
                case (byte)'t':
                    Push(new PyTuple([.. PopMark()]));
                    break;
                case (byte)']':
                    Push(new PyList());
                    break;
                case (byte)'l':
                    {
                        var list = new PyList();
                        Retain(list.Items, PopMark());
                        Push(list);
                        break;
                    }

                case (byte)'}':
                    Push(new PyDict());
                    break;
                case (byte)'d':
                    {
                        var items = PopMark();
                        if (items.Count % 2 != 0)
                        {
                            throw new PickleCorruptException("odd number of items for DICT");
                        }

                        var dict = new PyDict();
                        RetainPairs(dict, items);
                        Push(dict);
                        break;
                    }

                case 0x8f:
                    Push(new PySet());
                    break;
                case 0x90: // ADDITEMS
                    {
                        var items = PopMark();
                        var target = PeekBelowFence();
                        if (target is PySet set)
                        {
                            Retain(set.Items, items);
                        }

                        break;
                    }

                case 0x91:
                    {
                        var set = new PySet();
                        Retain(set.Items, PopMark());
                        Push(set);
                        break;
                    }

                case (byte)'a':
                    {
                        if (_stack.Count - 1 <= Fence)
                        {
                            throw Underflow();
                        }

                        var v = Pop();
                        if (Peek() is PyList list)
                        {
                            Retain(list.Items, v);
                        }

                        break;
                    }

                case (byte)'e':
                    {
                        var items = PopMark();
                        var target = PeekBelowFence();
                        if (target is PyList list)
                        {
                            Retain(list.Items, items);
                        }

                        break;
                    }

                case (byte)'s':
                    {
                        if (_stack.Count - 2 <= Fence)
                        {
                            throw Underflow();
                        }

                        var v = Pop();
                        var k = Pop();
                        if (Peek() is PyDict dict)
                        {
                            RetainPair(dict, k, v);
                        }

                        break;
                    }

                case (byte)'u':
                    {
                        var items = PopMark();
                        var target = PeekBelowFence();
                        if (items.Count % 2 != 0)
                        {
                            throw new PickleCorruptException("odd number of items for SETITEMS");
                        }

                        if (target is PyDict dict)
                        {
                            RetainPairs(dict, items);
                        }

                        break;
                    }

                case (byte)'g':
                    {
                        var (line, ok) = TextLine("GET");
                        if (!ok)
                        {
                            Push(new PyOpaque("memo", -1));
                            break;
                        }

                        Push(PickleText.TryParseIndex(line, out var key) ? Get(key) : throw new PickleCorruptException("GET argument is not a decimal integer"));
                        break;
                    }

                case (byte)'h':
                    Push(Get(U8()));
                    break;
                case (byte)'j':
                    Push(Get(BinaryPrimitives.ReadUInt32LittleEndian(Fixed(4))));
                    break;
                case (byte)'p':
                    {
                        var (line, ok) = TextLine("PUT");
                        Peek();
                        if (!ok)
                        {
                            break;
                        }

                        if (!PickleText.TryParseIndex(line, out var key))
                        {
                            throw new PickleCorruptException("PUT argument is not a decimal integer");
                        }

                        if (key.Sign < 0)
                        {
                            throw new PickleCorruptException("negative PUT argument");
                        }

                        Put(key);
                        break;
                    }

                case (byte)'q':
                    Put(U8());
                    break;
                case (byte)'r':
                    Put(BinaryPrimitives.ReadUInt32LittleEndian(Fixed(4)));
                    break;
                case 0x94: // MEMOIZE: the key is the number of memo entries
                    Put(_memo.Count + (_bigMemo?.Count ?? 0));
                    break;
                case (byte)'c': // GLOBAL
                    {
                        _callable = true;
                        var (module, name, full) = TwoLines("GLOBAL");
                        Push(full ? Global(module, name, at, "GLOBAL") : new PyOpaque("global", -1));
                        break;
                    }

                case 0x93: // STACK_GLOBAL
                    {
                        _callable = true;
                        var name = Pop();
                        var module = Pop();
                        if (module is string m && name is string n)
                        {
                            Push(Global(m, n, at, "STACK_GLOBAL"));
                        }
                        else
                        {
                            Add(PickleVerdict.Dangerous, "stack-global", module as string, (name as string) ?? "STACK_GLOBAL", at,
                                $"STACK_GLOBAL operands are ({Describe(module)}, {Describe(name)}): the callable cannot be known without running the pickle");
                            Push(new PyOpaque("global", -1));
                        }

                        break;
                    }

                case (byte)'i': // INST: imports and calls in one opcode
                    {
                        _callable = true;
                        var (module, name, full) = TwoLines("INST");
                        object? cls = full ? Global(module, name, at, "INST") : new PyOpaque("global", -1);
                        Add(PickleVerdict.Dangerous, "opcode", full ? module : null, full ? name : "INST", at, "INST imports and calls a class by name");
                        var args = PopMark();
                        Push(new PyCall(cls, new PyTuple([.. args])));
                        break;
                    }

                case (byte)'o': // OBJ
                    {
                        _callable = true;
                        var items = PopMark();
                        if (items.Count < 1)
                        {
                            throw Underflow();
                        }

                        var cls = items[0];
                        Add(PickleVerdict.Dangerous, "opcode", (cls as PyGlobal)?.Module, (cls as PyGlobal)?.Name ?? "OBJ", at, "OBJ calls a class object from the stack");
                        Push(new PyCall(cls, new PyTuple([.. items.Skip(1)])));
                        break;
                    }

                case 0x82:
                case 0x83:
                case 0x84:
                    {
                        _callable = true;
                        long code = op == 0x82 ? U8() : op == 0x83 ? BinaryPrimitives.ReadUInt16LittleEndian(Fixed(2)) : BinaryPrimitives.ReadInt32LittleEndian(Fixed(4));
                        if (code <= 0)
                        {
                            throw new PickleCorruptException("EXT specifies code <= 0");
                        }

                        var ext = $"EXT{(op == 0x82 ? 1 : op == 0x83 ? 2 : 4)}";
                        Add(PickleVerdict.Dangerous, "opcode", "copyreg.extension", $"{ext}:{code.ToString(CultureInfo.InvariantCulture)}", at,
                            $"{ext} code {code} resolves through the loader's copyreg extension registry to any registered callable");
                        Push(new PyGlobal("copyreg.extension", code.ToString(CultureInfo.InvariantCulture)));
                        break;
                    }

                case (byte)'R': // REDUCE
                    {
                        _callable = true;
                        var args = Pop();
                        var fn = Pop();
                        Push(Call(fn, args, at));
                        break;
                    }

                case 0x81: // NEWOBJ
                    {
                        _callable = true;
                        var args = Pop();
                        var cls = Pop();
                        Push(Call(cls, args, at));
                        break;
                    }

                case 0x92: // NEWOBJ_EX
                    {
                        _callable = true;
                        var kwargs = Pop();
                        var args = Pop();
                        var cls = Pop();
                        CheckAllocation(cls, kwargs, at);
                        Push(Call(cls, args, at));
                        break;
                    }

                case (byte)'b': // BUILD: calls the object's __setstate__; state kept only symbolically.
                    {
                        _callable = true;
                        if (_stack.Count - 2 < Fence)
                        {
                            throw Underflow();
                        }

                        var stateValue = Pop();
                        if (Peek() is PyCall { Callable: PyGlobal g })
                        {
                            CheckAllocation(g, stateValue, at);
                        }

                        break;
                    }

                case (byte)'Q':
                    _callable = true;
                    Push(new PyPersistent(Pop()));
                    break;
                case (byte)'P':
                    {
                        _callable = true;
                        var (line, ok) = TextLine("PERSID");
                        Push(new PyPersistent(ok ? Encoding.Latin1.GetString(line) : new PyOpaque("str", -1)));
                        break;
                    }

                default:
                    throw new PickleCorruptException($"invalid opcode 0x{op:x2}");
            }

            return false;
        }

        // A text argument: Ok → the line; too long or cut by the end of the input → a cap or truncation.
        private (byte[] Line, bool Ok) TextLine(string opcode)
        {
            switch (input.ReadLine(out var line, out var length))
            {
                case PickleInput.LineStatus.Ok:
                    return (line.ToArray(), true);
                case PickleInput.LineStatus.TooLong:
                    CapReached = true;
                    Add(PickleVerdict.Dangerous, "limit", null, opcode, input.Position, $"{opcode} argument is {length} bytes, longer than the {PickleInput.MaxLine}-byte line cap: its value is not known");
                    return ([], false);
                default:
                    throw new PickleCorruptException($"{opcode} argument runs to the end of the input without a newline");
            }
        }

        // GLOBAL/INST: two text lines (UTF-8 / ASCII). Returns full=false when a line was too long.
        private (string Module, string Name, bool Full) TwoLines(string opcode)
        {
            var s1 = input.ReadLine(out var l1, out var n1);
            if (s1 == PickleInput.LineStatus.Eof)
            {
                // The pure-Python unpickler still imports here: module = the cut line minus its last byte, name ''.
                if (l1.Length > 1)
                {
                    Global(Name(l1[..^1]), string.Empty, input.Position, opcode + " cut by the end of the input (the pure-Python unpickler still imports the module)");
                }

                throw new PickleCorruptException($"{opcode} module runs to the end of the input without a newline");
            }

            var module = s1 == PickleInput.LineStatus.Ok ? Name(l1) : null;
            var s2 = input.ReadLine(out var l2, out var n2);
            if (s2 == PickleInput.LineStatus.Eof)
            {
                if (module is not null)
                {
                    Global(module, l2.IsEmpty ? string.Empty : Name(l2[..^1]), input.Position, opcode + " cut by the end of the input (the pure-Python unpickler still resolves it)");
                }

                throw new PickleCorruptException($"{opcode} name runs to the end of the input without a newline");
            }

            if (module is null || s2 != PickleInput.LineStatus.Ok)
            {
                CapReached = true;
                Add(PickleVerdict.Dangerous, "limit", module, opcode, input.Position,
                    $"{opcode} module/name of {n1}/{n2} bytes is longer than the {PickleInput.MaxLine}-byte line cap: the global cannot be known");
                return (string.Empty, string.Empty, false);
            }

            return (module, Name(l2), true);
        }

        private static string Name(ReadOnlySpan<byte> b) => System.Text.Ascii.IsValid(b) ? Encoding.ASCII.GetString(b) : Encoding.UTF8.GetString(b);

        // find_class: _compat_pickle under protocol < 3 (fix_imports, the default), then import + getattr chain.
        private PyGlobal Global(string module, string name, long at, string how)
        {
            var (m, n) = PickleCompat.Map(module, name, _proto);
            var symbol = m + "." + n;
            if (Globals.Count < MaxGlobals)
            {
                Globals.Add(symbol);
            }
            else if (!Globals.Contains(symbol))
            {
                CapReached = true;
                Add(PickleVerdict.Dangerous, "limit", m, n, at, $"more than {MaxGlobals} distinct globals");
            }

            var verdict = PicklePolicy.Classify(m, n);
            var raw = PicklePolicy.Classify(module, name); // a loader with fix_imports=False resolves the raw name
            var mapped = m != module || n != name;
            if ((verdict != PickleVerdict.Safe || (mapped && raw != PickleVerdict.Safe)) && _reported.Add(symbol + "\n" + module + "\n" + name))
            {
                var via = mapped ? $" (written {module}.{name}; _compat_pickle maps it under protocol {_proto})" : string.Empty;
                var dotted = n.Contains('.', StringComparison.Ordinal) ? $"; the name is an attribute chain from module {m} ({(_proto >= 4 ? "resolved" : "resolved from protocol 4 on")})" : string.Empty;
                Add(PickleVerdict.Dangerous, "global", m, n, at, $"{how} {symbol}{via}{dotted}: {PicklePolicy.Explain(m, n)}");
            }

            return new PyGlobal(m, n);
        }

        // Evaluates only the allowlisted reconstruction calls; everything else stays an opaque node.
        private object? Call(object? fn, object? args, long at)
        {
            var a = (args as PyTuple)?.Items ?? [];
            if (fn is not PyGlobal g)
            {
                return new PyCall(fn, args);
            }

            CheckAllocation(g, args, at);
            switch (g.Module + "." + g.Name)
            {
                case "collections.OrderedDict" when a.Length == 0:
                    return new PyDict();
                case "torch._utils._rebuild_tensor_v2":
                case "torch._utils._rebuild_tensor":
                    if (a.Length >= 4 && a[0] is PyPersistent storage && a[1] is long offset && Ints(a[2]) is { } size && Ints(a[3]) is { } stride && size.Length == stride.Length)
                    {
                        return new TorchTensorRef(storage, offset, size, stride);
                    }

                    return new PyCall(fn, args);
                case "torch._utils._rebuild_parameter":
                case "torch._utils._rebuild_parameter_with_state":
                    return a.Length >= 1 && a[0] is TorchTensorRef t ? t : new PyCall(fn, args);
                case "_codecs.encode" when a.Length >= 2 && a[0] is string s && a[1] is string enc && enc.Replace("-", string.Empty, StringComparison.Ordinal).Replace("_", string.Empty, StringComparison.Ordinal).ToUpperInvariant() is "LATIN1" or "ISO88591" or "L1":
                    return new PyBytes(Encoding.Latin1.GetBytes(s));
                default:
                    return new PyCall(fn, args);
            }
        }

        // Huge sizes handed to allowlisted constructors (bytearray(1.5e9), UntypedStorage(2**40), ndarray shapes).
        private void CheckAllocation(object? fn, object? args, long at)
        {
            if (fn is not PyGlobal g || !PicklePolicy.Allocates(g.Module, g.Name))
            {
                return;
            }

            var req = Requested(args, 0);
            if (req > MaxAllocation)
            {
                Add(PickleVerdict.Dangerous, "allocation", g.Module, g.Name, at,
                    $"{g.Module}.{g.Name} is asked for {(req >= double.MaxValue ? "an unbounded" : req.ToString("0", CultureInfo.InvariantCulture))} bytes/elements on load (more than {MaxAllocation}): resource exhaustion");
            }
        }

        private static double Requested(object? v, int depth)
        {
            switch (v)
            {
                case long l:
                    return Math.Abs((double)l);
                case BigInteger b:
                    return Math.Abs((double)b);
                case double d:
                    return double.IsFinite(d) ? Math.Abs(d) : double.MaxValue;
                case PyOpaque { Kind: "int" or "float" }:
                    return double.MaxValue;
                case PyTuple t when depth < 4:
                    {
                        double max = 0, product = 1;
                        var ints = 0;
                        foreach (var item in t.Items.Take(64))
                        {
                            var r = Requested(item, depth + 1);
                            max = Math.Max(max, r);
                            if (item is long or BigInteger)
                            {
                                product *= Math.Max(r, 1);
                                ints++;
                            }
                        }

                        return Math.Max(max, ints > 1 ? product : 0);
                    }

                case PyList l when depth < 4:
                    return l.Items.Take(64).Select(i => Requested(i, depth + 1)).DefaultIfEmpty(0).Max();
                case PyDict d when depth < 4:
                    return d.Entries.Take(64).Select(e => Requested(e.Value, depth + 1)).DefaultIfEmpty(0).Max();
                default:
                    return 0;
            }
        }

        private static long[]? Ints(object? o)
        {
            if (o is not PyTuple t || t.Items.Length > 64)
            {
                return null;
            }

            var r = new long[t.Items.Length];
            for (var i = 0; i < r.Length; i++)
            {
                if (t.Items[i] is not long v)
                {
                    return null;
                }

                r[i] = v;
            }

            return r;
        }

        private static string Describe(object? o) => o switch
        {
            null => "None",
            string s => $"'{(s.Length > 80 ? s[..80] + "…" : s)}'",
            PyOpaque p => $"<{p.Kind} not known without running the loader>",
            PyCall => "<result of a call>",
            _ => o.GetType().Name,
        };

        private object? Get(BigInteger key)
        {
            if (key >= long.MinValue && key <= long.MaxValue)
            {
                return Get((long)key);
            }

            return _bigMemo is not null && _bigMemo.TryGetValue(key, out var v) ? v : throw new PickleCorruptException($"memo key {key} was never stored");
        }

        private object? Get(long key) => _memo.TryGetValue(key, out var v) ? v : throw new PickleCorruptException($"memo key {key} was never stored");

        private void Put(BigInteger key)
        {
            if (key <= long.MaxValue)
            {
                Put((long)key);
                return;
            }

            _bigMemo ??= [];
            MemoCap(_bigMemo.ContainsKey(key));
            _bigMemo[key] = Peek();
        }

        private void Put(long key)
        {
            MemoCap(_memo.ContainsKey(key));
            _memo[key] = Peek();
        }

        private void MemoCap(bool exists)
        {
            if (!exists && _memo.Count + (_bigMemo?.Count ?? 0) >= limits.MaxMemo)
            {
                throw new PickleLimitException($"more than {limits.MaxMemo} memo entries");
            }
        }

        private void Push(object? o)
        {
            if (_stack.Count >= limits.MaxStack)
            {
                throw new PickleLimitException($"stack deeper than {limits.MaxStack}");
            }

            _stack.Add(o);
        }

        private PickleCorruptException Underflow() => new(_marks.Count > 0 ? "unexpected MARK found" : "unpickling stack underflow");

        private object? Pop()
        {
            if (_stack.Count <= Fence)
            {
                throw Underflow();
            }

            var v = _stack[^1];
            _stack.RemoveAt(_stack.Count - 1);
            return v;
        }

        private object?[] PopN(int n)
        {
            if (_stack.Count - n < Fence)
            {
                throw Underflow();
            }

            var r = _stack.GetRange(_stack.Count - n, n).ToArray();
            _stack.RemoveRange(_stack.Count - n, n);
            return r;
        }

        private object? Peek() => _stack.Count <= Fence ? throw Underflow() : _stack[^1];

        // The object just below the mark that PopMark removed (APPENDS/SETITEMS/ADDITEMS target).
        private object? PeekBelowFence() => _stack.Count <= Fence ? throw Underflow() : _stack[^1];

        private List<object?> PopMark()
        {
            if (_marks.Count == 0)
            {
                throw new PickleCorruptException("could not find MARK");
            }

            var at = _marks[^1];
            _marks.RemoveAt(_marks.Count - 1);
            var items = _stack.GetRange(at, _stack.Count - at);
            _stack.RemoveRange(at, _stack.Count - at);
            return items;
        }

        private void Retain(List<object?> into, object? item)
        {
            if (++_retained > MaxRetained)
            {
                throw new PickleLimitException($"more than {MaxRetained} container items");
            }

            into.Add(item);
        }

        private void Retain(List<object?> into, List<object?> items)
        {
            _retained += items.Count;
            if (_retained > MaxRetained)
            {
                throw new PickleLimitException($"more than {MaxRetained} container items");
            }

            into.AddRange(items);
        }

        private void RetainPair(PyDict dict, object? k, object? v)
        {
            if (++_retained > MaxRetained)
            {
                throw new PickleLimitException($"more than {MaxRetained} container items");
            }

            dict.Entries.Add(new(k, v));
        }

        private void RetainPairs(PyDict dict, List<object?> items)
        {
            for (var i = 0; i + 1 < items.Count; i += 2)
            {
                RetainPair(dict, items[i], items[i + 1]);
            }
        }

        private int U8()
        {
            var b = input.ReadByte();
            return b < 0 ? throw Truncated(1) : b;
        }

        private ReadOnlySpan<byte> Fixed(int n)
        {
            input.Need(n);
            return input.Ensure(n) ? input.Take(n) : throw Truncated(n);
        }

        private PickleCorruptException Truncated(long n) => new($"truncated: needs {n} more bytes at offset {input.Position}");

        private long Size8()
        {
            var n = BinaryPrimitives.ReadUInt64LittleEndian(Fixed(8));
            return n > long.MaxValue ? throw new PickleCorruptException("8-byte size exceeds the system's maximum") : (long)n;
        }

        // Strings: kept up to MaxValueBytes; longer ones are skipped (never buffered) and become opaque.
        private object Text(long n, bool latin1)
        {
            input.Need(n);
            if (n > MaxValueBytes)
            {
                return input.Skip(n) == n ? new PyOpaque("str", n) : throw Truncated(n);
            }

            var len = (int)n;
            if (!input.Ensure(len))
            {
                throw Truncated(n);
            }

            var b = input.Take(len);
            return latin1 ? PickleText.Decode8Bit(b) : Encoding.UTF8.GetString(b);
        }

        private object Bytes(long n)
        {
            if (n > MaxValueBytes && !input.IsMemory)
            {
                var skipped = input.Skip(n);
                input.AfterReadInto();
                return skipped == n ? new PyOpaque("bytes", n) : throw Truncated(n);
            }

            if (n > int.MaxValue || !input.Ensure((int)n))
            {
                throw Truncated(n);
            }

            var bytes = new PyBytes(input.TakeMemory((int)n));
            input.AfterReadInto();
            return bytes;
        }

        private object Long(int n)
        {
            if (n == 0)
            {
                return SmallInts[0];
            }

            input.Need(n);
            if (n > 1024)
            {
                return input.Skip(n) == n ? new PyOpaque("int", n) : throw Truncated(n);
            }

            if (!input.Ensure(n))
            {
                throw Truncated(n);
            }

            return PickleText.Narrow(new BigInteger(input.Take(n), isUnsigned: false, isBigEndian: false));
        }

        private static object Box(long v) => v is >= 0 and <= 256 ? SmallInts[v] : v;
    }

    private sealed class PickleCorruptException(string message) : Exception(message);

    private sealed class PickleLimitException(string message) : Exception(message);
}
