using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using System.Numerics;
using System.Text;

namespace Warden.Core.Models;

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

/// <summary>Bytes in the pickle (a slice of the input, never copied).</summary>
public sealed record PyBytes(ReadOnlyMemory<byte> Data);

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

/// <summary>What <see cref="PickleMachine.Run"/> returns.</summary>
/// <param name="Report">Findings.</param>
/// <param name="Root">The object the (first) STOP returned, or null.</param>
/// <param name="End">Offset just after the first STOP (or where scanning stopped).</param>
public sealed record PickleResult(PickleReport Report, object? Root, long End);

/// <summary>
/// A non-executing pickle interpreter for protocols 0-5. Globals are symbols; only the allowlisted torch
/// reconstruction calls are evaluated (into <see cref="TorchTensorRef"/> / dicts); every other call stays an
/// opaque <see cref="PyCall"/> node and every non-allowlisted global, dangerous opcode (INST, OBJ, EXT*),
/// non-string STACK_GLOBAL operand, corruption or limit is a finding. Bounded: opcodes, memo, stack, time,
/// and no allocation larger than the input (lengths are checked against the bytes left).
/// </summary>
public sealed class PickleMachine
{
    private readonly ModelLimits _limits;

    /// <summary>Creates a machine with the given limits.</summary>
    public PickleMachine(ModelLimits? limits = null) => _limits = limits ?? ModelLimits.Default;

    /// <summary>
    /// Scans <paramref name="data"/>: the first pickle is interpreted into <see cref="PickleResult.Root"/>; when
    /// <paramref name="scanTrailing"/> is set, any further pickles after STOP are scanned too (payload after a
    /// valid pickle) and reported.
    /// </summary>
    public PickleResult Run(ReadOnlyMemory<byte> data, string member, bool scanTrailing = true, long start = 0)
    {
        var state = new State(data, _limits) { Pos = start };
        var complete = state.RunOne(out var root);
        var end = state.Pos;
        if (complete && scanTrailing)
        {
            var n = 0;
            while (state.Pos < data.Length && n < 64)
            {
                // Zero padding after STOP is harmless; anything else is another stream a loader might read.
                if (data.Span[(int)state.Pos..].IndexOfAnyExcept((byte)0) < 0)
                {
                    break;
                }

                state.Add(PickleVerdict.Suspicious, "trailing", null, null, state.Pos, "bytes after STOP: scanning them as another pickle");
                n++;
                if (!state.RunOne(out _))
                {
                    complete = false;
                    break;
                }
            }
        }

        var report = new PickleReport(member, state.Findings, [.. state.Globals], state.Ops, complete);
        return new PickleResult(report, root, end);
    }

    private sealed class State(ReadOnlyMemory<byte> data, ModelLimits limits)
    {
        private readonly Dictionary<long, object?> _memo = [];
        private readonly List<object?> _stack = [];
        private readonly Stack<int> _marks = new();
        private readonly Stopwatch _clock = Stopwatch.StartNew();

        public long Pos { get; set; }

        public long Ops { get; private set; }

        public List<PickleFinding> Findings { get; } = [];

        public SortedSet<string> Globals { get; } = new(StringComparer.Ordinal);

        public void Add(PickleVerdict v, string kind, string? module, string? name, long offset, string detail)
        {
            if (Findings.Count < 10_000)
            {
                Findings.Add(new PickleFinding(v, kind, module, name, offset, detail));
            }
        }

        public bool RunOne(out object? root)
        {
            root = null;
            _stack.Clear();
            _marks.Clear();
            _memo.Clear();
            var start = Pos;
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

                    var opAt = Pos;
                    var op = U8();
                    if (Step(op, opAt, out root))
                    {
                        return true;
                    }
                }
            }
            catch (PickleLimitException ex)
            {
                Add(PickleVerdict.Suspicious, "limit", null, null, Pos, ex.Message);
            }
            catch (PickleCorruptException ex)
            {
                Add(PickleVerdict.Suspicious, "corrupt", null, null, Pos, $"{ex.Message} (stream started at {start}; globals before this point are reported)");
            }

            return false;
        }

        // Returns true on STOP.
        private bool Step(byte op, long at, out object? root)
        {
            root = null;
            switch (op)
            {
                case 0x80: // PROTO
                    var proto = U8();
                    if (proto > 5)
                    {
                        throw new PickleCorruptException($"unsupported protocol {proto}");
                    }

                    break;
                case 0x95: // FRAME
                    Take(8);
                    break;
                case (byte)'.': // STOP
                    root = Pop();
                    return true;
                case (byte)'(':
                    if (_marks.Count >= limits.MaxStack)
                    {
                        throw new PickleLimitException("mark stack too deep");
                    }

                    _marks.Push(_stack.Count);
                    break;
                case (byte)'0':
                    Pop();
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
                    Push(true);
                    break;
                case 0x89:
                    Push(false);
                    break;
                case (byte)'J':
                    Push((long)BinaryPrimitives.ReadInt32LittleEndian(Take(4)));
                    break;
                case (byte)'K':
                    Push((long)U8());
                    break;
                case (byte)'M':
                    Push((long)BinaryPrimitives.ReadUInt16LittleEndian(Take(2)));
                    break;
                case 0x8a: // LONG1
                    Push(Long(Take(U8())));
                    break;
                case 0x8b: // LONG4
                    Push(Long(Take(Length(BinaryPrimitives.ReadInt32LittleEndian(Take(4))))));
                    break;
                case (byte)'G':
                    Push(BinaryPrimitives.ReadDoubleBigEndian(Take(8)));
                    break;
                case (byte)'I':
                    {
                        var line = Line();
                        Push(line switch
                        {
                            "00" => false,
                            "01" => true,
                            _ => long.TryParse(line, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var v) ? v : throw new PickleCorruptException("bad INT"),
                        });
                        break;
                    }

                case (byte)'L':
                    {
                        var line = Line().TrimEnd('L');
                        Push(BigInteger.TryParse(line, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var v) ? Narrow(v) : throw new PickleCorruptException("bad LONG"));
                        break;
                    }

                case (byte)'F':
                    Push(double.TryParse(Line(), NumberStyles.Float, CultureInfo.InvariantCulture, out var f) ? f : throw new PickleCorruptException("bad FLOAT"));
                    break;
                case (byte)'S':
                    Push(Line().Trim('\'', '"'));
                    break;
                case (byte)'V':
                    Push(Line());
                    break;
                case (byte)'T':
                    Push(Latin1(Take(Length(BinaryPrimitives.ReadInt32LittleEndian(Take(4))))));
                    break;
                case (byte)'U':
                    Push(Latin1(Take(U8())));
                    break;
                case (byte)'X':
                    Push(Utf8(Take(Length(BinaryPrimitives.ReadUInt32LittleEndian(Take(4))))));
                    break;
                case 0x8c:
                    Push(Utf8(Take(U8())));
                    break;
                case 0x8d:
                    Push(Utf8(Take(Length(BinaryPrimitives.ReadInt64LittleEndian(Take(8))))));
                    break;
                case (byte)'B':
                    Push(Bytes(Length(BinaryPrimitives.ReadUInt32LittleEndian(Take(4)))));
                    break;
                case (byte)'C':
                    Push(Bytes(U8()));
                    break;
                case 0x8e:
                case 0x96:
                    Push(Bytes(Length(BinaryPrimitives.ReadInt64LittleEndian(Take(8)))));
                    break;
                case 0x97: // NEXT_BUFFER: out-of-band data; torch never uses it.
                    Add(PickleVerdict.Suspicious, "opcode", null, "NEXT_BUFFER", at, "out-of-band buffer (not used by model files)");
                    Push(null);
                    break;
                case 0x98:
                    break;
                case (byte)')':
                    Push(new PyTuple([]));
                    break;
                case 0x85:
                    Push(new PyTuple([Pop()]));
                    break;
                case 0x86:
                    {
                        var b = Pop();
                        var a = Pop();
                        Push(new PyTuple([a, b]));
                        break;
                    }

                case 0x87:
                    {
                        var c = Pop();
                        var b = Pop();
                        var a = Pop();
                        Push(new PyTuple([a, b, c]));
                        break;
                    }

                case (byte)'t':
                    Push(new PyTuple([.. PopMark()]));
                    break;
                case (byte)']':
                    Push(new PyList());
                    break;
                case (byte)'l':
                    {
                        var list = new PyList();
                        list.Items.AddRange(PopMark());
                        Push(list);
                        break;
                    }

                case (byte)'}':
                    Push(new PyDict());
                    break;
                case (byte)'d':
                    {
                        var items = PopMark();
                        var dict = new PyDict();
                        for (var i = 0; i + 1 < items.Count; i += 2)
                        {
                            dict.Entries.Add(new(items[i], items[i + 1]));
                        }

                        Push(dict);
                        break;
                    }

                case 0x8f:
                    Push(new PySet());
                    break;
                case 0x90: // ADDITEMS
                    {
                        var items = PopMark();
                        if (Peek() is PySet set)
                        {
                            set.Items.AddRange(items);
                        }

                        break;
                    }

                case 0x91:
                    {
                        var set = new PySet();
                        set.Items.AddRange(PopMark());
                        Push(set);
                        break;
                    }

                case (byte)'a':
                    {
                        var v = Pop();
                        if (Peek() is PyList list)
                        {
                            list.Items.Add(v);
                        }

                        break;
                    }

                case (byte)'e':
                    {
                        var items = PopMark();
                        if (Peek() is PyList list)
                        {
                            list.Items.AddRange(items);
                        }

                        break;
                    }

                case (byte)'s':
                    {
                        var v = Pop();
                        var k = Pop();
                        if (Peek() is PyDict dict)
                        {
                            dict.Entries.Add(new(k, v));
                        }

                        break;
                    }

                case (byte)'u':
                    {
                        var items = PopMark();
                        if (Peek() is PyDict dict)
                        {
                            for (var i = 0; i + 1 < items.Count; i += 2)
                            {
                                dict.Entries.Add(new(items[i], items[i + 1]));
                            }
                        }

                        break;
                    }

                case (byte)'g':
                    Push(Get(long.TryParse(Line(), NumberStyles.None, CultureInfo.InvariantCulture, out var gi) ? gi : throw new PickleCorruptException("bad GET")));
                    break;
                case (byte)'h':
                    Push(Get(U8()));
                    break;
                case (byte)'j':
                    Push(Get(BinaryPrimitives.ReadUInt32LittleEndian(Take(4))));
                    break;
                case (byte)'p':
                    Put(long.TryParse(Line(), NumberStyles.None, CultureInfo.InvariantCulture, out var pi) ? pi : throw new PickleCorruptException("bad PUT"));
                    break;
                case (byte)'q':
                    Put(U8());
                    break;
                case (byte)'r':
                    Put(BinaryPrimitives.ReadUInt32LittleEndian(Take(4)));
                    break;
                case 0x94: // MEMOIZE
                    Put(_memo.Count);
                    break;
                case (byte)'c': // GLOBAL
                    {
                        var module = Line();
                        var name = Line();
                        Push(Global(module, name, at, "GLOBAL"));
                        break;
                    }

                case 0x93: // STACK_GLOBAL
                    {
                        var name = Pop();
                        var module = Pop();
                        if (module is string m && name is string n)
                        {
                            Push(Global(m, n, at, "STACK_GLOBAL"));
                        }
                        else
                        {
                            Add(PickleVerdict.Dangerous, "stack-global", null, "STACK_GLOBAL", at,
                                $"STACK_GLOBAL operands are not strings ({Describe(module)}, {Describe(name)}): the callable cannot be known without running the pickle");
                            Push(new PyGlobal("?", "?"));
                        }

                        break;
                    }

                case (byte)'i': // INST: imports and calls in one opcode
                    {
                        var module = Line();
                        var name = Line();
                        var args = PopMark();
                        Global(module, name, at, "INST");
                        Add(PickleVerdict.Dangerous, "opcode", module, name, at, "INST imports and calls a class by name");
                        Push(new PyCall(new PyGlobal(module, name), new PyTuple([.. args])));
                        break;
                    }

                case (byte)'o': // OBJ
                    {
                        var items = PopMark();
                        var cls = items.Count > 0 ? items[0] : null;
                        Add(PickleVerdict.Dangerous, "opcode", (cls as PyGlobal)?.Module, (cls as PyGlobal)?.Name ?? "OBJ", at, "OBJ calls a class object from the stack");
                        Push(new PyCall(cls, new PyTuple([.. items.Skip(1)])));
                        break;
                    }

                case 0x82:
                case 0x83:
                case 0x84:
                    {
                        var code = op == 0x82 ? U8() : op == 0x83 ? BinaryPrimitives.ReadUInt16LittleEndian(Take(2)) : BinaryPrimitives.ReadInt32LittleEndian(Take(4));
                        Add(PickleVerdict.Dangerous, "opcode", null, $"EXT{(op == 0x82 ? 1 : op == 0x83 ? 2 : 4)}", at,
                            $"extension code {code} resolves through the loader's copyreg registry to any callable");
                        Push(new PyGlobal("copyreg.extension", code.ToString(CultureInfo.InvariantCulture)));
                        break;
                    }

                case (byte)'R': // REDUCE
                    {
                        var args = Pop();
                        var fn = Pop();
                        Push(Call(fn, args));
                        break;
                    }

                case 0x81: // NEWOBJ
                    {
                        var args = Pop();
                        var cls = Pop();
                        Push(Call(cls, args));
                        break;
                    }

                case 0x92: // NEWOBJ_EX
                    {
                        Pop();
                        var args = Pop();
                        var cls = Pop();
                        Push(Call(cls, args));
                        break;
                    }

                case (byte)'b': // BUILD: state is kept only symbolically.
                    Pop();
                    break;
                case (byte)'Q':
                    Push(new PyPersistent(Pop()));
                    break;
                case (byte)'P':
                    Push(new PyPersistent(Line()));
                    break;
                default:
                    throw new PickleCorruptException($"unknown opcode 0x{op:x2}");
            }

            return false;
        }

        private PyGlobal Global(string module, string name, long at, string how)
        {
            if (Globals.Count < 100_000)
            {
                Globals.Add(module + "." + name);
            }

            var verdict = PicklePolicy.Classify(module, name);
            if (verdict != PickleVerdict.Safe)
            {
                Add(verdict, "global", module, name, at, verdict == PickleVerdict.Dangerous
                    ? $"{how} {module}.{name} can run code or touch the system on load"
                    : $"{how} {module}.{name} is not on the model allowlist");
            }

            return new PyGlobal(module, name);
        }

        // Evaluates only the allowlisted reconstruction calls; everything else stays an opaque node.
        private static object? Call(object? fn, object? args)
        {
            var a = (args as PyTuple)?.Items ?? [];
            if (fn is not PyGlobal g)
            {
                return new PyCall(fn, args);
            }

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
                case "_codecs.encode" when a.Length >= 1 && a[0] is string s:
                    return new PyBytes(Encoding.Latin1.GetBytes(s));
                default:
                    return new PyCall(fn, args);
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
            string s => $"'{s}'",
            _ => o.GetType().Name,
        };

        private object? Get(long key) => _memo.TryGetValue(key, out var v) ? v : throw new PickleCorruptException($"memo key {key} was never stored");

        private void Put(long key)
        {
            if (_memo.Count >= limits.MaxMemo && !_memo.ContainsKey(key))
            {
                throw new PickleLimitException($"more than {limits.MaxMemo} memo entries");
            }

            _memo[key] = Peek();
        }

        private void Push(object? o)
        {
            if (_stack.Count >= limits.MaxStack)
            {
                throw new PickleLimitException($"stack deeper than {limits.MaxStack}");
            }

            _stack.Add(o);
        }

        private object? Pop()
        {
            if (_stack.Count == 0 || (_marks.Count > 0 && _marks.Peek() == _stack.Count))
            {
                throw new PickleCorruptException("pop from an empty stack");
            }

            var v = _stack[^1];
            _stack.RemoveAt(_stack.Count - 1);
            return v;
        }

        private object? Peek() => _stack.Count == 0 ? throw new PickleCorruptException("peek at an empty stack") : _stack[^1];

        private List<object?> PopMark()
        {
            if (_marks.Count == 0)
            {
                throw new PickleCorruptException("no MARK to pop to");
            }

            var at = _marks.Pop();
            var items = _stack.GetRange(at, _stack.Count - at);
            _stack.RemoveRange(at, _stack.Count - at);
            return items;
        }

        private byte U8() => Take(1)[0];

        private ReadOnlySpan<byte> Take(int n)
        {
            if (n < 0 || Pos + n > data.Length)
            {
                throw new PickleCorruptException($"truncated: needs {n} bytes at offset {Pos}, {data.Length - Pos} left");
            }

            var s = data.Span.Slice((int)Pos, n);
            Pos += n;
            return s;
        }

        // A length field is trusted only as far as the bytes that are actually there (no 2^40 allocations).
        private int Length(long n) => n < 0 || n > data.Length - Pos ? throw new PickleCorruptException($"length {n} runs past the end ({data.Length - Pos} bytes left)") : (int)n;

        private PyBytes Bytes(int n)
        {
            var at = (int)Pos;
            Take(n);
            return new PyBytes(data.Slice(at, n));
        }

        private string Line()
        {
            var rest = data.Span[(int)Pos..];
            var nl = rest[..Math.Min(rest.Length, 1 << 16)].IndexOf((byte)'\n');
            if (nl < 0)
            {
                throw new PickleCorruptException("unterminated text argument");
            }

            var s = Encoding.UTF8.GetString(rest[..nl]);
            Pos += nl + 1;
            return s;
        }

        private static string Utf8(ReadOnlySpan<byte> b) => Encoding.UTF8.GetString(b);

        private static string Latin1(ReadOnlySpan<byte> b) => Encoding.Latin1.GetString(b);

        private static object Long(ReadOnlySpan<byte> b)
        {
            if (b.Length == 0)
            {
                return 0L;
            }

            if (b.Length > 1024)
            {
                return new PyBytes(b.ToArray()); // absurd integer: keep opaque, bounded.
            }

            return Narrow(new BigInteger(b, isUnsigned: false, isBigEndian: false));
        }

        // Boxed on purpose: the stack holds Python ints as long when they fit, else BigInteger.
#pragma warning disable CA1859
        private static object Narrow(BigInteger v) => v >= long.MinValue && v <= long.MaxValue ? (long)v : v;
#pragma warning restore CA1859
    }

    private sealed class PickleCorruptException(string message) : Exception(message);

    private sealed class PickleLimitException(string message) : Exception(message);
}
