using System.Diagnostics.CodeAnalysis;

namespace Warden.Core.Banks.Formats;

/// <summary>
/// The list formats an engine reads and writes: the built-ins plus plug-ins — what import, export, detection, the
/// API and the CLI enumerate. Same shape as <see cref="Signals.SignalTypeRegistry"/>: the server takes one from its
/// options and makes it <see cref="Current"/> for every request; elsewhere <see cref="Current"/> is the one in scope
/// (<see cref="Use"/>), else <see cref="Default"/>. Register at start-up: reads are lock-free snapshots.
/// </summary>
public sealed class ListFormatRegistry
{
    private static readonly AsyncLocal<ListFormatRegistry?> Ambient = new();

    private readonly bool _frozen;
    private volatile Snapshot _snapshot = new([], [], []);

    private ListFormatRegistry(bool frozen)
    {
        // Registration order is detection order: XML and JSON open with a telling character; CSV claims a comma;
        // a plain list is the residue (hex digits only).
        RegisterCore(NcmecXmlFormat.Instance);
        RegisterCore(JsonLinesFormat.Instance);
        RegisterCore(CsvListFormat.Instance);
        RegisterCore(PlainListFormat.Instance);
        _frozen = frozen;
    }

    /// <summary>The built-in formats only; cannot be changed (make one with <see cref="CreateDefault"/> to add plug-ins).</summary>
    public static ListFormatRegistry Default { get; } = new(true);

    /// <summary>The registry in scope on this call path (<see cref="Use"/>), else <see cref="Default"/>.</summary>
    public static ListFormatRegistry Current => Ambient.Value ?? Default;

    /// <summary>A new registry with the built-in formats, to which plug-ins can be added.</summary>
    public static ListFormatRegistry CreateDefault() => new(false);

    /// <summary>Makes <paramref name="registry"/> <see cref="Current"/> on this call path (and the tasks it starts) until disposed.</summary>
    public static IDisposable Use(ListFormatRegistry registry)
    {
        ArgumentNullException.ThrowIfNull(registry);
        var previous = Ambient.Value;
        Ambient.Value = registry;
        return new Scope(previous);
    }

    /// <summary>Every format, in the order the CLI lists them (csv, jsonl, plain, ncmec, then plug-ins).</summary>
    public IReadOnlyList<BankFileFormat> All => _snapshot.Listed;

    /// <summary>The names of <see cref="All"/>.</summary>
    public IReadOnlyList<string> Names => _snapshot.Names;

    /// <summary>The formats that can be written (export).</summary>
    public IEnumerable<BankFileFormat> Writable => _snapshot.Listed.Where(f => f.CanWrite);

    /// <summary>Adds a plug-in format. Its content sniffing runs after the formats registered before it.</summary>
    /// <exception cref="ArgumentException">The name or an alias is taken, or the name is not lowercase letters, digits, '-' and '_'.</exception>
    /// <exception cref="InvalidOperationException">This is <see cref="Default"/>.</exception>
    public ListFormatRegistry Register(BankFileFormat format)
    {
        if (_frozen)
        {
            throw new InvalidOperationException("The default list format registry cannot change; register plug-ins in one from ListFormatRegistry.CreateDefault().");
        }

        RegisterCore(format);
        return this;
    }

    private void RegisterCore(BankFileFormat format)
    {
        ArgumentNullException.ThrowIfNull(format);
        var name = format.Name;
        if (string.IsNullOrEmpty(name) || name.Length > 32 || !name.All(c => c is (>= 'a' and <= 'z') or (>= '0' and <= '9') or '_' or '-'))
        {
            throw new ArgumentException($"A list format name is 1-32 lowercase letters, digits, '-' and '_'; got '{name}'.", nameof(format));
        }

        lock (this)
        {
            var s = _snapshot;
            foreach (var n in format.Aliases.Prepend(name))
            {
                if (s.Detection.Any(f => f.Name.Equals(n, StringComparison.OrdinalIgnoreCase) || f.Aliases.Contains(n, StringComparer.OrdinalIgnoreCase)))
                {
                    throw new ArgumentException($"List format name '{n}' is already registered.", nameof(format));
                }
            }

            BankFileFormat[] detection = [.. s.Detection, format];

            // The CLI lists the built-ins in their documented order, plug-ins after.
            var listed = detection.OrderBy(f => Array.IndexOf(BuiltinOrder, f) is var i && i < 0 ? int.MaxValue : i).ToArray();
            _snapshot = new Snapshot(detection, listed, [.. listed.Select(f => f.Name)]);
        }
    }

    private static BankFileFormat[] BuiltinOrder => [CsvListFormat.Instance, JsonLinesFormat.Instance, PlainListFormat.Instance, NcmecXmlFormat.Instance];

    /// <summary>Finds a format by name or alias (case-insensitive, trimmed).</summary>
    public bool TryGet(string? name, [NotNullWhen(true)] out BankFileFormat? format)
    {
        var trimmed = name.AsSpan().Trim();
        foreach (var f in _snapshot.Listed)
        {
            if (trimmed.Equals(f.Name, StringComparison.OrdinalIgnoreCase))
            {
                format = f;
                return true;
            }

            foreach (var alias in f.Aliases)
            {
                if (trimmed.Equals(alias, StringComparison.OrdinalIgnoreCase))
                {
                    format = f;
                    return true;
                }
            }
        }

        format = null;
        return false;
    }

    /// <summary>See <see cref="BankFileFormats.Detect"/>.</summary>
    public BankFileFormat? Detect(string? path, ReadOnlySpan<byte> head)
    {
        var formats = _snapshot.Detection;
        var extension = Path.GetExtension(path.AsSpan());
        if (!extension.IsEmpty)
        {
            foreach (var f in formats)
            {
                foreach (var e in f.Extensions)
                {
                    if (extension.Equals(e, StringComparison.OrdinalIgnoreCase))
                    {
                        return f;
                    }
                }
            }
        }

        var line = BankFileFormats.FirstLine(head);
        if (line.IsEmpty)
        {
            return null;
        }

        foreach (var f in formats)
        {
            if (f.Sniff(line))
            {
                return f;
            }
        }

        return null;
    }

    private sealed record Snapshot(BankFileFormat[] Detection, BankFileFormat[] Listed, string[] Names);

    private sealed class Scope(ListFormatRegistry? previous) : IDisposable
    {
        public void Dispose() => Ambient.Value = previous;
    }
}
