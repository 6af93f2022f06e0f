using System.Diagnostics.CodeAnalysis;

namespace Warden.Core.Signals;

/// <summary>
/// The signal types an engine knows: the built-ins plus plug-ins, each with its hasher (plug-ins) — what
/// hashing, bank import, matching, the API and the CLI enumerate. The server takes one from its options (DI);
/// elsewhere <see cref="Current"/> is the one in scope (<see cref="Use"/>), else <see cref="Default"/>.
/// Register at start-up: reads are lock-free snapshots.
/// </summary>
public sealed class SignalTypeRegistry
{
    private static readonly AsyncLocal<SignalTypeRegistry?> Ambient = new();

    private readonly bool _frozen;
    private volatile Snapshot _snapshot = new([], [], string.Empty);

    private SignalTypeRegistry(bool frozen, IEnumerable<ISignalType> types)
    {
        foreach (var t in types)
        {
            RegisterCore(t, null);
        }

        _frozen = frozen;
    }

    /// <summary>The built-in types only; cannot be changed (make one with <see cref="CreateDefault"/> to add plug-ins).</summary>
    public static SignalTypeRegistry Default { get; } = new(true, SignalTypes.Builtin);

    /// <summary>The registry in scope on this call path (<see cref="Use"/>), else <see cref="Default"/>.</summary>
    public static SignalTypeRegistry Current => Ambient.Value ?? Default;

    /// <summary>A new registry with the built-in types, to which plug-ins can be added.</summary>
    public static SignalTypeRegistry CreateDefault() => new(false, SignalTypes.Builtin);

    /// <summary>Makes <paramref name="registry"/> <see cref="Current"/> on this call path (and the tasks and threads it starts) until disposed.</summary>
    public static IDisposable Use(SignalTypeRegistry registry)
    {
        ArgumentNullException.ThrowIfNull(registry);
        var previous = Ambient.Value;
        Ambient.Value = registry;
        return new Scope(previous);
    }

    /// <summary>Every type, built-ins first, in registration order.</summary>
    public IReadOnlyList<ISignalType> All => _snapshot.Types;

    /// <summary>The plug-in hashers, with their types.</summary>
    public IReadOnlyList<(ISignalType Type, ISignalHasher Hasher)> Hashers => _snapshot.Hashers;

    /// <summary>The names, comma-separated, for messages.</summary>
    public string Names => _snapshot.Names;

    /// <summary>Adds a plug-in type and the hasher that computes it from content (none: signals come only from lists and lookups).</summary>
    /// <exception cref="ArgumentException">The name is taken, or not lowercase letters, digits and '_'.</exception>
    /// <exception cref="InvalidOperationException">This is <see cref="Default"/>.</exception>
    public SignalTypeRegistry Register(ISignalType type, ISignalHasher? hasher = null)
    {
        if (_frozen)
        {
            throw new InvalidOperationException("The default signal type registry cannot change; register plug-ins in one from SignalTypeRegistry.CreateDefault().");
        }

        RegisterCore(type, hasher);
        return this;
    }

    private void RegisterCore(ISignalType type, ISignalHasher? hasher)
    {
        ArgumentNullException.ThrowIfNull(type);
        var name = type.Name;
        if (string.IsNullOrEmpty(name) || name.Length > 64 || !name.All(c => c is (>= 'a' and <= 'z') or (>= '0' and <= '9') or '_'))
        {
            throw new ArgumentException($"A signal type name is 1-64 lowercase letters, digits and '_'; got '{name}'.", nameof(type));
        }

        lock (this)
        {
            var s = _snapshot;
            if (s.Types.Any(t => t.Name == name))
            {
                throw new ArgumentException($"Signal type '{name}' is already registered.", nameof(type));
            }

            ISignalType[] types = [.. s.Types, type];
            _snapshot = new Snapshot(types, hasher is null ? s.Hashers : [.. s.Hashers, (type, hasher)], string.Join(", ", types.Select(t => t.Name)));
        }
    }

    /// <summary>Finds a type by name (case-insensitive, trimmed).</summary>
    public bool TryGet(string? name, [NotNullWhen(true)] out ISignalType? type)
    {
        var trimmed = name.AsSpan().Trim();
        foreach (var t in _snapshot.Types)
        {
            if (trimmed.Equals(t.Name, StringComparison.OrdinalIgnoreCase))
            {
                type = t;
                return true;
            }
        }

        type = null;
        return false;
    }

    /// <summary>Finds a type by name or throws <see cref="ArgumentException"/> listing the known ones.</summary>
    public ISignalType Get(string name) =>
        TryGet(name, out var type) ? type : throw new ArgumentException($"Unknown signal type '{name}'; known types: {Names}.", nameof(name));

    private sealed record Snapshot(ISignalType[] Types, (ISignalType, ISignalHasher)[] Hashers, string Names);

    private sealed class Scope(SignalTypeRegistry? previous) : IDisposable
    {
        public void Dispose() => Ambient.Value = previous;
    }
}
