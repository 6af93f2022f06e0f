using System.Buffers;
using System.Globalization;
using System.Numerics;
using System.Text;

namespace Warden.Core.ModelFiles;

/// <summary>
/// The argument grammar of the protocol-0 text opcodes, as CPython reads them. Where the C unpickler
/// (<c>Modules/_pickle.c</c>, what <c>pickle.load</c> uses) and the pure-Python one (<c>Lib/pickle.py</c>) differ,
/// a text is accepted when either accepts it, so the scanner never stops before a loader does:
/// INT = C <c>strtol(s, 0)</c> (octal <c>010</c>, stops at NUL) or <c>PyLong_FromString(s, 0)</c>/<c>int(s, 0)</c>
/// (<c>0x10</c>, <c> 7</c>, <c>1_000</c>, <c>+5</c>); FLOAT = <c>PyOS_string_to_double</c> or <c>float()</c> (<c>inf</c>, <c>nan</c>,
/// blanks, underscores); PUT/GET = base-10 <c>PyLong_FromString</c> (<c>+1</c>, <c> 1</c>, <c>1_0</c>); STRING = quoted,
/// <c>string-escape</c> decoded; UNICODE = <c>raw-unicode-escape</c> decoded.
/// </summary>
internal static class PickleText
{
    private static readonly SearchValues<byte> FloatChars = SearchValues.Create("0123456789_.eE+-"u8);

    /// <summary>INT: bool for CPython's two-character 0/1 forms, else long or BigInteger.</summary>
    public static bool TryParseInt(ReadOnlySpan<byte> line, out object? value)
    {
        var c = CString(line);
        if (StrtolBase0(c, out var x, out var overflow) && !overflow)
        {
            // C: len == 3 (two characters + newline) and x in {0, 1} is a bool (I00 / I01, also " 1", "-0").
            value = line.Length == 2 && x is 0 or 1 ? x == 1 : x;
            return true;
        }

        if (TryPyLong(c, 0, out var big))
        {
            value = Narrow(big);
            return true;
        }

        value = null;
        return false;
    }

    /// <summary>LONG: an optional trailing 'L' removed, then <c>PyLong_FromString(s, 0)</c>.</summary>
    public static bool TryParseLong(ReadOnlySpan<byte> line, out object? value)
    {
        var s = line;
        if (s.Length > 0 && s[^1] == (byte)'L')
        {
            s = s[..^1];
        }

        if (TryPyLong(CString(s), 0, out var big))
        {
            value = Narrow(big);
            return true;
        }

        value = null;
        return false;
    }

    /// <summary>PUT/GET index: base-10 <c>PyLong_FromString</c>.</summary>
    public static bool TryParseIndex(ReadOnlySpan<byte> line, out BigInteger value) => TryPyLong(CString(line), 10, out value);

    /// <summary>FLOAT: C's strict form or Python's <c>float()</c> (blanks, underscores, inf/nan words).</summary>
    public static bool TryParseFloat(ReadOnlySpan<byte> line, out double value)
    {
        var s = Trim(CString(line));
        value = 0;
        if (s.IsEmpty || s.Length > 4096)
        {
            return s.Length > 4096 && AllFloatChars(s);
        }

        Span<char> buf = stackalloc char[s.Length];
        var n = 0;
        foreach (var b in s)
        {
            if (b == (byte)'_')
            {
                continue;
            }

            if (b >= 0x80)
            {
                return false;
            }

            buf[n++] = (char)b;
        }

        var text = buf[..n];
        var body = text.TrimStart("+-");
        if (body.Equals("inf", StringComparison.OrdinalIgnoreCase) || body.Equals("infinity", StringComparison.OrdinalIgnoreCase))
        {
            value = text[0] == '-' ? double.NegativeInfinity : double.PositiveInfinity;
            return text.Length - body.Length <= 1;
        }

        if (body.Equals("nan", StringComparison.OrdinalIgnoreCase))
        {
            value = double.NaN;
            return text.Length - body.Length <= 1;
        }

        return double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out value);
    }

    /// <summary>STRING: must be quoted with the same quote at both ends; the inside is <c>string-escape</c> decoded.</summary>
    public static bool TryParseString(ReadOnlySpan<byte> line, out string value)
    {
        value = string.Empty;
        if (line.Length < 2 || line[0] != line[^1] || line[0] is not ((byte)'\'' or (byte)'"'))
        {
            return false;
        }

        var inner = line[1..^1];
        if (!inner.Contains((byte)'\\'))
        {
            value = Decode8Bit(inner);
            return true;
        }

        var outBuf = new byte[inner.Length];
        var o = 0;
        for (var i = 0; i < inner.Length;)
        {
            var b = inner[i++];
            if (b != (byte)'\\')
            {
                outBuf[o++] = b;
                continue;
            }

            if (i == inner.Length)
            {
                return false; // "Trailing \ in string"
            }

            var c = inner[i++];
            switch (c)
            {
                case (byte)'\n':
                    break;
                case (byte)'\\':
                case (byte)'\'':
                case (byte)'"':
                    outBuf[o++] = c;
                    break;
                case (byte)'b':
                    outBuf[o++] = 8;
                    break;
                case (byte)'f':
                    outBuf[o++] = 12;
                    break;
                case (byte)'t':
                    outBuf[o++] = 9;
                    break;
                case (byte)'n':
                    outBuf[o++] = 10;
                    break;
                case (byte)'r':
                    outBuf[o++] = 13;
                    break;
                case (byte)'v':
                    outBuf[o++] = 11;
                    break;
                case (byte)'a':
                    outBuf[o++] = 7;
                    break;
                case >= (byte)'0' and <= (byte)'7':
                    {
                        var v = c - '0';
                        for (var k = 0; k < 2 && i < inner.Length && inner[i] is >= (byte)'0' and <= (byte)'7'; k++)
                        {
                            v = (v * 8) + (inner[i++] - '0');
                        }

                        outBuf[o++] = (byte)v;
                        break;
                    }

                case (byte)'x':
                    if (i + 1 < inner.Length && Hex(inner[i]) >= 0 && Hex(inner[i + 1]) >= 0)
                    {
                        outBuf[o++] = (byte)((Hex(inner[i]) << 4) | Hex(inner[i + 1]));
                        i += 2;
                        break;
                    }

                    return false; // "invalid \x escape"
                default:
                    // Unknown escapes stay as written (a DeprecationWarning in CPython, not an error).
                    outBuf[o++] = (byte)'\\';
                    i--;
                    break;
            }
        }

        value = Decode8Bit(outBuf.AsSpan(0, o));
        return true;
    }

    /// <summary>UNICODE: <c>raw-unicode-escape</c>: only \uXXXX / \UXXXXXXXX after an odd run of backslashes are escapes; other bytes are Latin-1.</summary>
    public static bool TryParseRawUnicodeEscape(ReadOnlySpan<byte> s, out string value)
    {
        value = string.Empty;
        var sb = new StringBuilder(s.Length);
        var i = 0;
        while (i < s.Length)
        {
            if (s[i] != (byte)'\\')
            {
                sb.Append((char)s[i++]);
                continue;
            }

            var start = i;
            while (i < s.Length && s[i] == (byte)'\\')
            {
                sb.Append('\\');
                i++;
            }

            if (((i - start) & 1) == 0 || i >= s.Length || (s[i] != (byte)'u' && s[i] != (byte)'U'))
            {
                continue;
            }

            sb.Length--;
            var count = s[i] == (byte)'u' ? 4 : 8;
            i++;
            long ch = 0;
            for (; count > 0 && i < s.Length; i++, count--)
            {
                var h = Hex(s[i]);
                if (h < 0)
                {
                    return false;
                }

                ch = (ch << 4) | (uint)h;
            }

            if (count > 0 || ch > 0x10FFFF)
            {
                return false;
            }

            if (ch >= 0x10000)
            {
                sb.Append(char.ConvertFromUtf32((int)ch));
            }
            else
            {
                sb.Append((char)ch);
            }
        }

        value = sb.ToString();
        return true;
    }

    /// <summary>Bytes of a Python 2 str: ASCII as is; otherwise UTF-8 (torch's encoding) when valid, else Latin-1.</summary>
    public static string Decode8Bit(ReadOnlySpan<byte> b)
    {
        if (System.Text.Ascii.IsValid(b))
        {
            return Encoding.ASCII.GetString(b);
        }

        return System.Text.Unicode.Utf8.IsValid(b) ? Encoding.UTF8.GetString(b) : Encoding.Latin1.GetString(b);
    }

    /// <summary>A long when it fits, else the BigInteger (boxed: the stack holds Python ints).</summary>
    public static object Narrow(BigInteger v) => v >= long.MinValue && v <= long.MaxValue ? (object)(long)v : v;

    // The C unpickler hands the line to C string functions: a NUL ends it.
    private static ReadOnlySpan<byte> CString(ReadOnlySpan<byte> s)
    {
        var z = s.IndexOf((byte)0);
        return z < 0 ? s : s[..z];
    }

    private static bool IsSpace(byte b) => b is (byte)' ' or (byte)'\t' or (byte)'\n' or (byte)'\r' or 0x0b or 0x0c;

    private static ReadOnlySpan<byte> Trim(ReadOnlySpan<byte> s)
    {
        var a = 0;
        var e = s.Length;
        while (a < e && IsSpace(s[a]))
        {
            a++;
        }

        while (e > a && IsSpace(s[e - 1]))
        {
            e--;
        }

        return s[a..e];
    }

    private static bool AllFloatChars(ReadOnlySpan<byte> s) => s.IndexOfAnyExcept(FloatChars) < 0;

    private static int Hex(byte b) => b switch
    {
        >= (byte)'0' and <= (byte)'9' => b - '0',
        >= (byte)'a' and <= (byte)'f' => b - 'a' + 10,
        >= (byte)'A' and <= (byte)'F' => b - 'A' + 10,
        _ => -1,
    };

    private static int Digit(byte b, int radix)
    {
        var d = Hex(b);
        return d >= 0 && d < radix ? d : -1;
    }

    // C strtol(s, &end, 0) that must end at the end of the (NUL-cut) line. overflow: value out of long range.
    private static bool StrtolBase0(ReadOnlySpan<byte> s, out long value, out bool overflow)
    {
        value = 0;
        overflow = false;
        var i = 0;
        while (i < s.Length && IsSpace(s[i]))
        {
            i++;
        }

        var neg = false;
        if (i < s.Length && s[i] is (byte)'+' or (byte)'-')
        {
            neg = s[i] == (byte)'-';
            i++;
        }

        var radix = 10;
        if (i + 1 < s.Length && s[i] == (byte)'0' && s[i + 1] is (byte)'x' or (byte)'X' && i + 2 < s.Length && Digit(s[i + 2], 16) >= 0)
        {
            radix = 16;
            i += 2;
        }
        else if (i < s.Length && s[i] == (byte)'0')
        {
            radix = 8;
        }

        var start = i;
        BigInteger acc = 0;
        while (i < s.Length && Digit(s[i], radix) is var d && d >= 0)
        {
            acc = (acc * radix) + d;
            i++;
        }

        if (i == start || i != s.Length)
        {
            return false;
        }

        if (neg)
        {
            acc = -acc;
        }

        overflow = acc < long.MinValue || acc > long.MaxValue;
        value = overflow ? 0 : (long)acc;
        return true;
    }

    // PyLong_FromString(s, NULL, base) / int(s, base) with base 0 or 10: blanks around, sign, 0x/0o/0b prefixes
    // (base 0), single underscores between digits (and after a prefix), no leading zeros in base 0 except for 0.
    private static bool TryPyLong(ReadOnlySpan<byte> s, int baseArg, out BigInteger value)
    {
        value = 0;
        s = Trim(s);
        var i = 0;
        var neg = false;
        if (i < s.Length && s[i] is (byte)'+' or (byte)'-')
        {
            neg = s[i] == (byte)'-';
            i++;
        }

        var radix = baseArg == 0 ? 10 : baseArg;
        var zeroOnly = false;
        var afterPrefix = false;
        if (baseArg == 0 && i < s.Length && s[i] == (byte)'0')
        {
            if (i + 1 < s.Length && s[i + 1] is (byte)'x' or (byte)'X' or (byte)'o' or (byte)'O' or (byte)'b' or (byte)'B')
            {
                radix = s[i + 1] is (byte)'x' or (byte)'X' ? 16 : s[i + 1] is (byte)'o' or (byte)'O' ? 8 : 2;
                i += 2;
                afterPrefix = true;
            }
            else
            {
                zeroOnly = true;
            }
        }

        if (afterPrefix && i < s.Length && s[i] == (byte)'_')
        {
            i++;
        }

        var digits = 0;
        var prevUnderscore = false;
        var body = s[i..];

        // Huge literals: grammar check only; the value is kept as a marker of its size.
        var big = body.Length > 20_000;
        BigInteger acc = 0;
        for (; i < s.Length; i++)
        {
            var b = s[i];
            if (b == (byte)'_')
            {
                if (prevUnderscore || digits == 0)
                {
                    return false;
                }

                prevUnderscore = true;
                continue;
            }

            var d = Digit(b, radix);
            if (d < 0)
            {
                return false;
            }

            if (zeroOnly && d != 0)
            {
                return false;
            }

            if (!big)
            {
                acc = (acc * radix) + d;
            }

            digits++;
            prevUnderscore = false;
        }

        if (digits == 0 || prevUnderscore)
        {
            return false;
        }

        value = big ? BigInteger.Pow(radix, Math.Min(digits, 1_000_000)) : neg ? -acc : acc;
        return true;
    }
}
