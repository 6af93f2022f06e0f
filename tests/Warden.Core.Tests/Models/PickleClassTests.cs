using System.Globalization;
using System.Text;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Warden.Core.ModelFiles;

namespace Warden.Core.Tests.Models;

/// <summary>
/// The parser-differential and cap classes of issue 12 §1, each with many generated members: argument
/// spellings CPython accepts, escapes, MARK+POP, long lines, PUT/GET forms, dotted and Python 2 names, odd
/// first opcodes, payloads after many streams or huge arguments, caps, allocations, fail-closed verdicts.
/// </summary>
public class PickleClassTests
{
    private static readonly byte[] Payload = Encoding.ASCII.GetBytes("cos\nsystem\n(S'touch /nonexistent/MARKER'\ntR");

    private static PickleReport Scan(byte[] b, ModelLimits? limits = null) => new PickleMachine(limits).Run(b, "p").Report;

    private static byte[] Cat(params byte[][] parts) => [.. parts.SelectMany(p => p)];

    private static byte[] A(string s) => Encoding.Latin1.GetBytes(s);

    private static void AssertPayloadFound(PickleReport r, string symbol = "os.system")
    {
        Assert.Contains(symbol, r.Globals);
        Assert.Equal(PickleVerdict.Dangerous, r.Verdict);
        Assert.Contains(r.Findings, f => f.Kind == "global" && f.Symbol == symbol && f.Verdict == PickleVerdict.Dangerous);
    }

    /// <summary>Members of every class here, for the CPython differential harness.</summary>
    public static IEnumerable<(string Name, byte[] Bytes)> DifferentialClassFixtures()
    {
        foreach (var s in IntForms(new Random(1), 40))
        {
            yield return ($"int {s}", Cat(A($"I{s}\n0"), Payload, A(".")));
            yield return ($"long {s}", Cat(A($"L{s}L\n0"), Payload, A(".")));
        }

        foreach (var f in new[] { "inf", "-inf", "nan", "Infinity", "-NaN", "1e400", " 1.5", "1.5 ", "1_0.5", "1.5\0x", ".5", "5." })
        {
            yield return ($"float {f}", Cat(A($"F{f}\n0"), Payload, A(".")));
        }

        foreach (var k in new[] { "+1", " 1", "1 ", "01", "1_0", "\t7", "7\0z" })
        {
            yield return ($"put/get {k}", Cat(A($"S'os'\np{k}\n0S'system'\np99\n0g{k}\ng99\n\x93)R.")));
        }

        foreach (var (m, n) in EscapedNames(new Random(2), 20))
        {
            yield return ($"escaped {m}/{n}", Cat(A(m), A(n), A("\x93)R.")));
        }

        foreach (var p in new[] { 0, 1, 2, 3, 4, 5 })
        {
            yield return ($"dotted zipfile p{p}", DottedGlobal(p, "zipfile", "os.system", stack: false));
            yield return ($"dotted torch p{p}", DottedGlobal(p, "torch", "os.system", stack: true));
            yield return ($"compat cPickle p{p}", Cat(p >= 2 ? [0x80, (byte)p] : [], A("ccPickle\nloads\n(S'x'\ntR.")));
            yield return ($"compat __builtin__ p{p}", Cat(p >= 2 ? [0x80, (byte)p] : [], A("c__builtin__\neval\n(S'1'\ntR.")));
        }

        yield return ("mark-pop", Cat(A("(0"), Payload, A(".")));
        yield return ("mark-mark-pop-pop", Cat(A("((00"), Payload, A(".")));
        yield return ("long-S-line", Cat(A("S'" + new string('a', 70_000) + "'\n0"), Payload, A(".")));
        foreach (var start in new[] { "}0", "N0", "K\x01" + "0", "]0", ")0", "\x88" + "0", "I1\n0", "V\n0" })
        {
            yield return ($"starts {start[0]}", Cat(A(start), Payload, A(".")));
        }
    }

    public static IEnumerable<string> IntForms(Random rng, int count)
    {
        for (var i = 0; i < count; i++)
        {
            var v = rng.NextInt64(2, long.MaxValue >> rng.Next(0, 60));
            yield return Spell(v, rng.Next(8), rng.Next(4), rng.Next(3) == 0);
        }
    }

    // A Python int literal for v: decimal with underscores, 0x/0o/0b prefixes (with '_' after the prefix), blanks, '+'.
    private static string Spell(long v, int style, int blanks, bool plus)
    {
        var body = style switch
        {
            0 => "0x" + v.ToString("x", CultureInfo.InvariantCulture),
            1 => "0X_" + v.ToString("X", CultureInfo.InvariantCulture),
            2 => "0o" + Convert.ToString(v, 8),
            3 => "0b" + Convert.ToString(v, 2),
            4 => Underscored(v.ToString(CultureInfo.InvariantCulture)),
            _ => v.ToString(CultureInfo.InvariantCulture),
        };
        var s = (plus ? "+" : string.Empty) + body;
        return blanks switch
        {
            1 => " " + s,
            2 => s + " ",
            3 => "\t" + s + " \r",
            _ => s,
        };
    }

    private static string Underscored(string digits)
    {
        var sb = new StringBuilder();
        for (var i = 0; i < digits.Length; i++)
        {
            if (i > 0 && i % 3 == 0)
            {
                sb.Append('_');
            }

            sb.Append(digits[i]);
        }

        return sb.ToString();
    }

    // Module and name text opcodes spelling "os"/"system" with escapes: S with \x, octal, quotes; V with \u, \U.
    private static IEnumerable<(string Module, string Name)> EscapedNames(Random rng, int count)
    {
        string S(string s)
        {
            var q = rng.Next(2) == 0 ? "'" : "\"";
            return "S" + q + string.Concat(s.Select(c => rng.Next(3) switch
            {
                0 => $"\\x{(int)c:x2}",
                1 => "\\" + Convert.ToString(c, 8),
                _ => c.ToString(),
            })) + q + "\n";
        }

        string V(string s) => "V" + string.Concat(s.Select(c => rng.Next(3) switch
        {
            0 => $"\\u{(int)c:x4}",
            1 => $"\\U{(int)c:x8}",
            _ => c.ToString(),
        })) + "\n";
        for (var i = 0; i < count; i++)
        {
            yield return (rng.Next(2) == 0 ? S("os") : V("os"), rng.Next(2) == 0 ? S("system") : V("system"));
        }
    }

    private static byte[] DottedGlobal(int proto, string module, string name, bool stack)
    {
        var b = new List<byte>();
        if (proto >= 2)
        {
            b.AddRange([0x80, (byte)proto]);
        }

        if (stack)
        {
            foreach (var s in new[] { module, name })
            {
                var bytes = Encoding.ASCII.GetBytes(s);
                b.Add(0x8c);
                b.Add((byte)bytes.Length);
                b.AddRange(bytes);
            }

            b.Add(0x93);
        }
        else
        {
            b.AddRange(A($"c{module}\n{name}\n"));
        }

        b.AddRange(A("(S'x'\ntR."));
        return [.. b];
    }

    [Fact]
    public void Every_class_member_is_parsed_to_its_payload()
    {
        foreach (var (name, bytes) in DifferentialClassFixtures())
        {
            var r = Scan(bytes);
            Assert.True(r.Verdict == PickleVerdict.Dangerous, $"{name}: {r.Verdict}");
            Assert.True(r.Complete, $"{name}: stopped early: {string.Join("; ", r.Findings.Select(f => f.Detail))}");
        }
    }

    [Property(MaxTest = 300)]
    public Property Int_and_long_spellings_parse_to_their_value() =>
        Prop.ForAll(Gen.Choose(0, 7).Zip(Gen.Choose(0, 3)).Zip(Gen.Choose(2, int.MaxValue)).ToArbitrary(), t =>
        {
            var ((style, blanks), v) = t;
            var s = Spell(v, style, blanks, v % 2 == 0);
            object? iv = null, lv = null;
            var ok = PickleText.TryParseInt(A(s), out iv) && PickleText.TryParseLong(A(s + "L"), out lv);
            return ok && iv is long a && a == v && lv is long b && b == v;
        });

    [Fact]
    public void Int_forms_follow_the_C_and_Python_grammars()
    {
        Assert.True(PickleText.TryParseInt(A("010"), out var octal) && octal is 8L); // C strtol base 0
        Assert.True(PickleText.TryParseInt(A("01"), out var t) && t is true);
        Assert.True(PickleText.TryParseInt(A("-0"), out var f) && f is false);
        Assert.True(PickleText.TryParseInt(A("7\0junk"), out var nul) && nul is 7L);
        Assert.True(PickleText.TryParseInt(A("99999999999999999999999"), out var big) && big is System.Numerics.BigInteger);
        foreach (var bad in new[] { "", "x", "0x", "1__0", "_1", "1_", "08", "1 2", "0b2" })
        {
            Assert.False(PickleText.TryParseInt(A(bad), out _), bad);
        }

        Assert.False(PickleText.TryParseLong(A("010"), out _)); // PyLong_FromString base 0 refuses leading zeros
        Assert.True(PickleText.TryParseIndex(A("+1"), out var idx) && idx == 1);
        Assert.False(PickleText.TryParseIndex(A("0x1"), out _));
    }

    [Fact]
    public void String_escapes_decode_like_CPython()
    {
        Assert.True(PickleText.TryParseString(A(@"'\x6f\x73'"), out var os) && os == "os");
        Assert.True(PickleText.TryParseString(A(@"""\157\163"""), out var oct) && oct == "os");
        Assert.True(PickleText.TryParseString(A(@"'a\'b\q'"), out var q) && q == @"a'b\q");
        Assert.False(PickleText.TryParseString(A(@"'\'"), out _)); // trailing backslash
        Assert.False(PickleText.TryParseString(A(@"'\x6'"), out _));
        Assert.False(PickleText.TryParseString(A("'os\""), out _));
        Assert.True(PickleText.TryParseRawUnicodeEscape(A(@"\u006fs"), out var u) && u == "os");
        Assert.True(PickleText.TryParseRawUnicodeEscape(A(@"\\u006f"), out var even) && even == @"\\u006f");
        Assert.True(PickleText.TryParseRawUnicodeEscape(A(@"\U0001F600"), out var astral) && astral == "\U0001F600");
        Assert.False(PickleText.TryParseRawUnicodeEscape(A(@"\u00"), out _));
        Assert.True(PickleText.TryParseFloat(A("inf"), out var inf) && double.IsPositiveInfinity(inf));
        Assert.True(PickleText.TryParseFloat(A(" 1_0.5 "), out var py) && py == 10.5);
        Assert.False(PickleText.TryParseFloat(A("0x10"), out _));
    }

    [Theory]
    [InlineData(2, "zipfile", "os.system")]
    [InlineData(4, "zipfile", "os.system")]
    [InlineData(5, "torch", "os.system")]
    [InlineData(4, "collections", "OrderedDict.fromkeys")]
    [InlineData(4, "torch", "_utils.__builtins__")]
    public void Dotted_names_are_reported_as_CPython_resolves_them_and_are_dangerous(int proto, string module, string name)
    {
        foreach (var stack in new[] { false, true })
        {
            var r = Scan(DottedGlobal(proto, module, name, stack));
            AssertPayloadFound(r, module + "." + name);
        }
    }

    [Fact]
    public void An_allowlisted_path_written_as_a_dotted_name_stays_safe()
    {
        var r = Scan(Cat([0x80, 4, 0x8c, 5], A("torch"), [0x8c, 25], A("_utils._rebuild_tensor_v2"), [0x93, (byte)'.']));
        Assert.Equal(PickleVerdict.Safe, r.Verdict);
        Assert.Contains("torch._utils._rebuild_tensor_v2", r.Globals);
    }

    [Theory]
    [InlineData("cPickle", "loads", "pickle.loads")]
    [InlineData("__builtin__", "eval", "builtins.eval")]
    [InlineData("__builtin__", "reduce", "functools.reduce")]
    [InlineData("commands", "getoutput", "subprocess.getoutput")]
    [InlineData("copy_reg", "_reconstructor", "copyreg._reconstructor")]
    public void Python_2_names_map_under_protocol_below_3_only(string module, string name, string mapped)
    {
        for (var p = 0; p <= 5; p++)
        {
            var bytes = Cat(p >= 1 ? [0x80, (byte)p] : [], A($"c{module}\n{name}\n(S'x'\ntR."));
            var r = Scan(bytes);
            Assert.Equal(PickleVerdict.Dangerous, r.Verdict);
            Assert.Contains(p < 3 ? mapped : module + "." + name, r.Globals);
        }

        // PROTO can change mid-stream: the protocol in force at the GLOBAL decides.
        var switched = Scan(Cat([0x80, 4, (byte)'N', (byte)'0', 0x80, 2], A($"c{module}\n{name}\n)R.")));
        Assert.Contains(mapped, switched.Globals);
    }

    [Fact]
    public void Payload_after_many_benign_streams_is_reported()
    {
        foreach (var streams in new[] { 1, 64, 65, 500 })
        {
            var benign = Enumerable.Repeat(new byte[] { 0x80, 2, (byte)'}', (byte)'.' }, streams).SelectMany(b => b);
            var r = Scan([.. benign, .. Payload, (byte)'.']);
            AssertPayloadFound(r);
        }
    }

    [Fact]
    public void Payload_after_a_huge_argument_is_found_in_bounded_memory_through_a_stream()
    {
        foreach (var size in new[] { (1L << 20) + 1, 300L << 20 })
        {
            using var s = new PaddedStream(size);
            var before = GC.GetAllocatedBytesForCurrentThread();
            var r = new PickleMachine().Run(s, "data.pkl").Report;
            var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            AssertPayloadFound(r);
            Assert.True(r.Complete);
            Assert.True(allocated < 8 << 20, $"allocated {allocated} bytes for a {size}-byte argument");
        }
    }

    [Property(MaxTest = 200)]
    public Property Streaming_and_in_memory_scans_agree(int seed) =>
        Prop.ForAll(Gen.Choose(1, 70).ToArbitrary(), chunk =>
        {
            var bytes = new PickleGen(seed).Next();
            var mem = Scan(bytes);
            using var trickle = new TrickleStream(bytes, chunk);
            var str = new PickleMachine().Run(trickle, "p").Report;
            return mem.Verdict == str.Verdict && mem.Globals.SequenceEqual(str.Globals) && mem.Complete == str.Complete
                && mem.Findings.Select(f => (f.Kind, f.Symbol, f.Offset)).SequenceEqual(str.Findings.Select(f => (f.Kind, f.Symbol, f.Offset)));
        });

    [Fact]
    public void Any_cap_reached_is_dangerous()
    {
        var ops = new List<byte> { 0x80, 2 };
        for (var i = 0; i < 5000; i++)
        {
            ops.AddRange("N0"u8.ToArray());
        }

        ops.AddRange("N."u8.ToArray());
        Assert.Equal(PickleVerdict.Dangerous, Scan([.. ops], ModelLimits.Default with { MaxPickleOps = 1000 }).Verdict);

        var memo = new List<byte> { 0x80, 4, (byte)'N' };
        memo.AddRange(Enumerable.Repeat((byte)0x94, 500));
        Assert.Equal(PickleVerdict.Dangerous, Scan([.. memo], ModelLimits.Default with { MaxMemo = 100 }).Verdict);

        var marks = Enumerable.Repeat((byte)'(', 5000).Prepend((byte)2).Prepend((byte)0x80).ToArray();
        Assert.Equal(PickleVerdict.Dangerous, Scan(marks, ModelLimits.Default with { MaxStack = 1000 }).Verdict);

        var r = Scan(Cat(A("S'" + new string('a', PickleInput.MaxLine + 10) + "'\n0"), Payload, A(".")));
        Assert.Equal(PickleVerdict.Dangerous, r.Verdict);
        Assert.Contains(r.Findings, f => f.Kind == "limit");
        Assert.Contains("os.system", r.Globals); // the scan goes on after the cap
    }

    [Theory]
    [InlineData("builtins", "bytearray", 1_500_000_000L)]
    [InlineData("torch.storage", "UntypedStorage", 1L << 40)]
    [InlineData("torch", "FloatStorage", 1L << 33)]
    public void Huge_allocations_by_allowlisted_constructors_are_flagged(string module, string name, long size)
    {
        var p = Cat([0x80, 2], A($"c{module}\n{name}\n"), [0x8a, 8], BitConverter.GetBytes(size), [0x85, (byte)'R', (byte)'.']);
        var r = Scan(p);
        Assert.Equal(PickleVerdict.Dangerous, r.Verdict);
        Assert.Contains(r.Findings, f => f.Kind == "allocation");

        var small = Cat([0x80, 2], A($"c{module}\n{name}\n"), [(byte)'K', 16, 0x85, (byte)'R', (byte)'.']);
        Assert.Equal(PickleVerdict.Safe, Scan(small).Verdict);
    }

    [Fact]
    public void A_stream_that_stops_before_any_callable_is_not_dangerous_but_one_after_a_global_is()
    {
        var rng = new Random(7);
        for (var i = 0; i < 200; i++)
        {
            // Data opcodes only, then a byte no loader accepts.
            var data = Cat(A("(I1\nK\x05]S'x'\n"), [(byte)"\x00\xff\xfe"[rng.Next(3)]]);
            var r = Scan(data);
            Assert.False(r.Complete);
            Assert.Equal(PickleVerdict.Suspicious, r.Verdict);

            var afterGlobal = Cat(A("ccollections\nOrderedDict\n)R"), [(byte)"\x00\xff\xfe"[rng.Next(3)]]);
            var r2 = Scan(afterGlobal);
            Assert.Equal(PickleVerdict.Dangerous, r2.Verdict);
            Assert.Contains(r2.Findings, f => f.Kind == "corrupt");
        }
    }

    [Fact]
    public void Every_opcode_of_protocols_0_to_5_is_interpreted()
    {
        var p = Cat([0x80, 5, 0x95], BitConverter.GetBytes(10L), A("("),
            A("NI7\nL8L\nF1.5\nS'a'\nV\\u0062\n"), [0x88, 0x89, (byte)'J', 1, 0, 0, 0, (byte)'K', 2, (byte)'M', 3, 0, 0x8a, 1, 4, 0x8b, 1, 0, 0, 0, 5],
            [(byte)'G', 0, 0, 0, 0, 0, 0, 0, 0], [(byte)'T', 1, 0, 0, 0, (byte)'c', (byte)'U', 1, (byte)'d', (byte)'X', 1, 0, 0, 0, (byte)'e', 0x8c, 1, (byte)'f'],
            [0x8d, 1, 0, 0, 0, 0, 0, 0, 0, (byte)'g', (byte)'B', 1, 0, 0, 0, 1, (byte)'C', 1, 2, 0x8e, 1, 0, 0, 0, 0, 0, 0, 0, 3, 0x96, 1, 0, 0, 0, 0, 0, 0, 0, 4, 0x98],
            A(")]}"), [0x8f, (byte)'(', (byte)'K', 1, 0x90, (byte)'(', (byte)'K', 1, 0x91, (byte)'N', 0x85, (byte)'N', (byte)'N', 0x86, (byte)'N', (byte)'N', (byte)'N', 0x87],
            A("(l(d]N(e]Na}NNs}(NNu"), A("p0\nq1r\x02\x00\x00\x00\x94g0\nh1j\x02\x00\x00\x00"), A("20(1"), A("tPpid\nNQ."));
        var r = Scan(p);
        Assert.True(r.Complete, string.Join("; ", r.Findings.Select(f => f.Detail)));
        Assert.Equal(PickleVerdict.Safe, r.Verdict);
    }

    // A pickle whose one SHORT... BINBYTES8 argument is `size` bytes of zeros, then the payload; generated on the fly.
    private sealed class PaddedStream(long size) : Stream
    {
        private readonly byte[] _head = [0x80, 4, 0x8e, .. BitConverter.GetBytes(size)];
        private readonly byte[] _tail = [(byte)'0', .. Payload, (byte)'.'];
        private long _pos;

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => _head.Length + size + _tail.Length;

        public override long Position { get => _pos; set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count)
        {
            var n = 0;
            while (n < count && _pos < Length)
            {
                var b = _pos < _head.Length ? _head[_pos] : _pos < _head.Length + size ? (byte)0 : _tail[_pos - _head.Length - size];
                buffer[offset + n++] = b;
                _pos++;
                if (_pos >= _head.Length && _pos < _head.Length + size)
                {
                    var zeros = (int)Math.Min(count - n, _head.Length + size - _pos);
                    Array.Clear(buffer, offset + n, zeros);
                    n += zeros;
                    _pos += zeros;
                }
            }

            return n;
        }

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }

    // Hands out at most `chunk` bytes per Read, to exercise the window refills.
    private sealed class TrickleStream(byte[] data, int chunk) : Stream
    {
        private int _pos;

        public override bool CanRead => true;

        public override bool CanSeek => true;

        public override bool CanWrite => false;

        public override long Length => data.Length;

        public override long Position { get => _pos; set => _pos = (int)value; }

        public override int Read(byte[] buffer, int offset, int count)
        {
            var n = Math.Min(Math.Min(count, chunk), data.Length - _pos);
            Array.Copy(data, _pos, buffer, offset, n);
            _pos += n;
            return n;
        }

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => _pos = (int)(origin switch
        {
            SeekOrigin.Begin => offset,
            SeekOrigin.Current => _pos + offset,
            _ => data.Length + offset,
        });

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
