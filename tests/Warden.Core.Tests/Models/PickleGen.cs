using System.Buffers.Binary;
using System.Text;

namespace Warden.Core.Tests.Models;

/// <summary>
/// Seeded generator of pickles for the differential tests: a random benign opcode sequence (every protocol
/// 0-5, every opcode, the alternative argument spellings CPython accepts) around a payload global written one
/// of many ways (GLOBAL, STACK_GLOBAL from any string opcode, memo indirection, INST/OBJ, dotted and
/// _compat_pickle names), then optionally mutated (byte flips, insertions, deletions, truncation, splices).
/// </summary>
public sealed class PickleGen(int seed)
{
    /// <summary>Payload globals: code execution, dotted paths, Python 2 names, benign allowlisted ones.</summary>
    public static readonly (string Module, string Name)[] Payloads =
    [
        ("os", "system"), ("posix", "system"), ("nt", "system"), ("subprocess", "Popen"), ("builtins", "eval"), ("builtins", "exec"),
        ("builtins", "getattr"), ("__builtin__", "eval"), ("__builtin__", "apply"), ("cPickle", "loads"), ("copy_reg", "_reconstructor"),
        ("commands", "getoutput"), ("UserDict", "UserDict"), ("exceptions", "Exception"), ("zipfile", "os.system"), ("torch", "os.system"),
        ("collections", "OrderedDict.fromkeys"), ("runpy", "_run_code"), ("my_pkg.layers", "CustomLayer"), ("builtins", "dict"),
        ("collections", "OrderedDict"), ("torch._utils", "_rebuild_tensor_v2"), ("torch", "FloatStorage"), ("_codecs", "encode"),
        ("builtins", "bytearray"), ("__builtin__", "set"), ("torch", "_utils._rebuild_tensor_v2"), ("numpy.core.multiarray", "_reconstruct"),
        ("os.path", "join"), ("pickle", "loads"), ("webbrowser", "open"), ("a.b.c", "d.e.f"),
    ];

    // Spellings both unpicklers accept come first; the rest are accepted by only one of them.
    private static readonly string[] IntSpellings = ["0x10", " 7", "1_000", "+5", "-0", " 1", "00", "01", "7 ", "0b101", "0o17", "0x_1f", "99999999999999999999999", "-12", "010", "7\0junk"];
    private static readonly string[] LongSpellings = ["0x10L", " 7L", "1_0L", "12345678901234567890L", "-5", "0L", "0o7L"];
    private static readonly string[] FloatSpellings = ["inf", "-Infinity", "nan", "1.5", ".5", "5.", "1e5", "-0.0", " 1.5", "1_0.5", "1e400", "1.5\0x"];
    private static readonly string[] IndexSpellings = ["{0}", "+{0}", " {0}", "{0} ", "0{0}", "{0}_0"];

    private readonly Random _rng = new(seed);
    private readonly List<byte> _b = [];
    private int _proto;
    private int _memo;
    private readonly List<long> _memoKeys = [];

    /// <summary>The payload the last <see cref="Next"/> embedded.</summary>
    public (string Module, string Name) Payload { get; private set; }

    /// <summary>How the last case was mutated ("" for none).</summary>
    public string Mutation { get; private set; } = string.Empty;

    public byte[] Next()
    {
        _b.Clear();
        _memo = 0;
        _memoKeys.Clear();
        _proto = _rng.Next(6);
        if (_proto >= 2 || _rng.Next(4) == 0)
        {
            Op(0x80).Op((byte)_proto);
        }

        var frameAt = -1;
        if (_proto >= 4 && _rng.Next(2) == 0)
        {
            // FRAME: exact (patched below), or too long / short (reads straddle its end).
            frameAt = _b.Count;
            Op(0x95).U64((ulong)_rng.Next(0, 200));
        }

        Payload = Payloads[_rng.Next(Payloads.Length)];
        Op((byte)'(');
        var n = _rng.Next(0, 8);
        var payloadAt = _rng.Next(n + 1);
        for (var i = 0; i <= n; i++)
        {
            if (i == payloadAt)
            {
                PayloadStatement();
            }
            else
            {
                Value(2);
            }

            MaybeMemo();
        }

        Op((byte)'t');
        if (_rng.Next(8) == 0)
        {
            // MARK followed by POP pops the mark itself.
            Op((byte)'(').Op((byte)'0');
        }

        Op((byte)'.');
        if (_rng.Next(10) == 0)
        {
            // A second stream after STOP, carrying another payload.
            var second = Payloads[_rng.Next(Payloads.Length)];
            Op((byte)'c').Ascii(second.Module + "\n" + second.Name + "\n").Op((byte)')').Op((byte)'R').Op((byte)'.');
        }

        var bytes = _b.ToArray();
        if (frameAt >= 0 && _rng.Next(3) != 0)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(frameAt + 1), (ulong)(bytes.Length - frameAt - 9));
        }

        Mutation = string.Empty;
        return _rng.Next(3) == 0 ? Mutate(bytes) : bytes;
    }

    private byte[] Mutate(byte[] b)
    {
        var list = new List<byte>(b);
        var kinds = _rng.Next(1, 3);
        var names = new List<string>();
        for (var k = 0; k < kinds && list.Count > 0; k++)
        {
            var at = _rng.Next(list.Count);
            switch (_rng.Next(6))
            {
                case 0:
                    list[at] ^= (byte)(1 << _rng.Next(8));
                    names.Add($"flip@{at}");
                    break;
                case 1:
                    list[at] = (byte)_rng.Next(256);
                    names.Add($"set@{at}");
                    break;
                case 2:
                    list.Insert(at, (byte)"(0N.\n)}]a1"[_rng.Next(10)]);
                    names.Add($"insert@{at}");
                    break;
                case 3:
                    list.RemoveAt(at);
                    names.Add($"delete@{at}");
                    break;
                case 4:
                    list.RemoveRange(at, list.Count - at);
                    names.Add($"truncate@{at}");
                    break;
                default:
                    {
                        var len = Math.Min(_rng.Next(1, 12), list.Count - at);
                        list.InsertRange(_rng.Next(list.Count), list.GetRange(at, len));
                        names.Add($"splice@{at}+{len}");
                        break;
                    }
            }
        }

        Mutation = string.Join(',', names);
        return [.. list];
    }

    private void PayloadStatement()
    {
        var (m, n) = Payload;
        switch (_rng.Next(9))
        {
            case 0:
            case 1:
                Op((byte)'c').Ascii(m + "\n" + n + "\n");
                break;
            case 2:
            case 3:
                Str(m);
                MaybeMemo();
                Str(n);
                MaybeMemo();
                Op(0x93);
                break;
            case 4:
                {
                    // STACK_GLOBAL through the memo: put both names away, fetch them back.
                    Str(m);
                    var km = Put();
                    Op((byte)'0');
                    Str(n);
                    var kn = Put();
                    Op((byte)'0');
                    Get(km);
                    Get(kn);
                    Op(0x93);
                    break;
                }

            case 5:
                Op((byte)'(');
                Value(1);
                Op((byte)'i').Ascii(m + "\n" + n + "\n");
                return;
            case 6:
                Op((byte)'(').Op((byte)'c').Ascii(m + "\n" + n + "\n");
                Value(1);
                Op((byte)'o');
                return;
            case 7:
                // Escaped spellings of the names.
                Op((byte)'S').Ascii("'" + string.Concat(m.Select(ch => $"\\x{(int)ch:x2}")) + "'\n");
                Op((byte)'V').Ascii(string.Concat(n.Select(ch => $"\\u{(int)ch:x4}")) + "\n");
                Op(0x93);
                break;
            default:
                Op((byte)'c').Ascii(m + "\n" + n + "\n");
                MaybeMemo();
                break;
        }

        switch (_rng.Next(5))
        {
            case 0:
                Value(1);
                Op(0x85).Op((byte)'R');
                break;
            case 1:
                Op((byte)')').Op(0x81);
                break;
            case 2:
                Op((byte)'}');
                Op((byte)'b');
                break;
            case 3:
                Op((byte)')').Op((byte)'}').Op(0x92);
                break;
            default:
                break;
        }
    }

    // Pushes exactly one value.
    private void Value(int depth)
    {
        var k = _rng.Next(depth > 0 ? 30 : 22);
        switch (k)
        {
            case 0:
                Op((byte)'N');
                break;
            case 1:
                Op(_rng.Next(2) == 0 ? (byte)0x88 : (byte)0x89);
                break;
            case 2:
                Op((byte)'I').Ascii(IntSpellings[_rng.Next(_rng.Next(4) == 0 ? IntSpellings.Length : 14)] + "\n");
                break;
            case 3:
                Op((byte)'L').Ascii(LongSpellings[_rng.Next(LongSpellings.Length)] + "\n");
                break;
            case 4:
                Op((byte)'F').Ascii(FloatSpellings[_rng.Next(_rng.Next(4) == 0 ? FloatSpellings.Length : 8)] + "\n");
                break;
            case 5:
                Op((byte)'K').Op((byte)_rng.Next(256));
                break;
            case 6:
                Op((byte)'M').U16((ushort)_rng.Next(65536));
                break;
            case 7:
                Op((byte)'J').U32((uint)_rng.Next());
                break;
            case 8:
                {
                    var len = _rng.Next(0, 9);
                    Op(0x8a).Op((byte)len);
                    for (var i = 0; i < len; i++)
                    {
                        Op((byte)_rng.Next(256));
                    }

                    break;
                }

            case 9:
                Op(0x8b).U32(2).Op(1).Op(2);
                break;
            case 10:
                Op((byte)'G').U64((ulong)_rng.NextInt64());
                break;
            case 11:
                Op((byte)'S').Ascii(_rng.Next(4) switch
                {
                    0 => "'a\\'b'",
                    1 => "\"q\\n\\x41\\101\\q\"",
                    2 => "''",
                    _ => "'" + new string('z', _rng.Next(200) == 0 ? 70_000 : 5) + "'",
                }).Op((byte)'\n');
                break;
            case 12:
                Op((byte)'V').Ascii(_rng.Next(3) switch { 0 => "\\u0041bc", 1 => "\\\\u0041", _ => "plain" }).Op((byte)'\n');
                break;
            case 13:
                Str("key" + _rng.Next(100));
                break;
            case 14:
                {
                    var len = _rng.Next(0, 20);
                    switch (_rng.Next(4))
                    {
                        case 0:
                            Op((byte)'C').Op((byte)len);
                            break;
                        case 1:
                            Op((byte)'B').U32((uint)len);
                            break;
                        case 2:
                            Op(0x8e).U64((ulong)len);
                            break;
                        default:
                            Op(0x96).U64((ulong)len);
                            break;
                    }

                    for (var i = 0; i < len; i++)
                    {
                        Op((byte)_rng.Next(256));
                    }

                    if (_rng.Next(4) == 0)
                    {
                        Op(0x98);
                    }

                    break;
                }

            case 15:
                Op((byte)')');
                break;
            case 16:
                Op((byte)']');
                break;
            case 17:
                Op((byte)'}');
                break;
            case 18:
                Op(0x8f);
                break;
            case 19:
                if (_memoKeys.Count > 0)
                {
                    Get(_memoKeys[_rng.Next(_memoKeys.Count)]);
                }
                else
                {
                    Op((byte)'N');
                }

                break;
            case 20:
                Op((byte)'(').Op((byte)'0').Op((byte)'N');
                break;
            case 21:
                Op((byte)'N').Op((byte)'2').Op((byte)'0');
                break;
            case 22:
                Op((byte)'(');
                Value(depth - 1);
                Value(depth - 1);
                Op((byte)'l');
                break;
            case 23:
                Op((byte)']').Op((byte)'(');
                Value(depth - 1);
                Op((byte)'e');
                Op((byte)']');
                Value(depth - 1);
                Op((byte)'a').Op((byte)'0');
                break;
            case 24:
                Op((byte)'(');
                Str("k");
                Value(depth - 1);
                Op((byte)'d');
                break;
            case 25:
                Op((byte)'}').Op((byte)'(');
                Str("a");
                Value(depth - 1);
                Op((byte)'u');
                Str("b");
                Value(depth - 1);
                Op((byte)'s');
                break;
            case 26:
                Op(0x8f).Op((byte)'(').Op((byte)'K').Op(1).Op(0x90);
                break;
            case 27:
                Op((byte)'(').Op((byte)'K').Op(2).Op(0x91);
                break;
            case 28:
                Value(depth - 1);
                Value(depth - 1);
                Op(0x86);
                break;
            default:
                if (_rng.Next(2) == 0)
                {
                    Op((byte)'P').Ascii("pid" + _rng.Next(10) + "\n");
                }
                else
                {
                    Value(depth - 1);
                    Op((byte)'Q');
                }

                break;
        }
    }

    private void MaybeMemo()
    {
        if (_rng.Next(3) == 0)
        {
            Put();
        }
    }

    private long Put()
    {
        switch (_rng.Next(4))
        {
            case 0:
                {
                    var k = _memo++ + 300;
                    Op((byte)'p').Ascii(string.Format(System.Globalization.CultureInfo.InvariantCulture, IndexSpellings[_rng.Next(IndexSpellings.Length)], k) + "\n");
                    _memoKeys.Add(k);
                    return k;
                }

            case 1:
                {
                    var k = _memo++ % 256;
                    Op((byte)'q').Op((byte)k);
                    _memoKeys.Add(k);
                    return k;
                }

            case 2:
                {
                    var k = _memo++ + 70_000;
                    Op((byte)'r').U32((uint)k);
                    _memoKeys.Add(k);
                    return k;
                }

            default:
                {
                    // MEMOIZE stores at len(memo): only predictable when every key so far is distinct.
                    var k = _memoKeys.Distinct().Count();
                    Op(0x94);
                    _memoKeys.Add(k);
                    return k;
                }
        }
    }

    private void Get(long k)
    {
        if (k < 256 && _rng.Next(2) == 0)
        {
            Op((byte)'h').Op((byte)k);
        }
        else if (_rng.Next(2) == 0)
        {
            Op((byte)'j').U32((uint)k);
        }
        else
        {
            Op((byte)'g').Ascii(string.Format(System.Globalization.CultureInfo.InvariantCulture, IndexSpellings[_rng.Next(IndexSpellings.Length)], k) + "\n");
        }
    }

    // A str pushed by one of the opcodes that make one.
    private void Str(string s)
    {
        var b = Encoding.UTF8.GetBytes(s);
        switch (_rng.Next(7))
        {
            case 0:
                Op((byte)'X').U32((uint)b.Length).Raw(b);
                break;
            case 1:
                Op(0x8c).Op((byte)b.Length).Raw(b);
                break;
            case 2:
                Op(0x8d).U64((ulong)b.Length).Raw(b);
                break;
            case 3:
                Op((byte)'U').Op((byte)b.Length).Raw(b);
                break;
            case 4:
                Op((byte)'T').U32((uint)b.Length).Raw(b);
                break;
            case 5:
                Op((byte)'S').Ascii("'" + s + "'\n");
                break;
            default:
                Op((byte)'V').Ascii(s + "\n");
                break;
        }
    }

    private PickleGen Op(byte b)
    {
        _b.Add(b);
        return this;
    }

    private PickleGen Raw(byte[] b)
    {
        _b.AddRange(b);
        return this;
    }

    private PickleGen Ascii(string s) => Raw(Encoding.UTF8.GetBytes(s));

    private PickleGen U16(ushort v)
    {
        Span<byte> b = stackalloc byte[2];
        BinaryPrimitives.WriteUInt16LittleEndian(b, v);
        _b.AddRange(b);
        return this;
    }

    private PickleGen U32(uint v)
    {
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(b, v);
        _b.AddRange(b);
        return this;
    }

    private PickleGen U64(ulong v)
    {
        Span<byte> b = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(b, v);
        _b.AddRange(b);
        return this;
    }
}
