using System.Reflection;
using System.Reflection.Emit;

namespace Warden.Server.Tests.Architecture;

/// <summary>
/// The namespace dependency graph of built assemblies, read by reflection: signatures (base types, interfaces,
/// fields, properties, parameters, return types, generic arguments, attributes) and every type, method and field
/// token in method bodies (IL), so a fully qualified name or a lambda cannot hide a dependency the way it hides from
/// a scan of <c>using</c> lines. Compiler-generated nested types (lambdas, async state machines) count for the
/// namespace of the type that holds them.
/// </summary>
internal static class NamespaceGraph
{
    private static readonly Dictionary<short, OpCode> OpCodesByValue = typeof(OpCodes)
        .GetFields(BindingFlags.Public | BindingFlags.Static)
        .Select(f => (OpCode)f.GetValue(null)!)
        .ToDictionary(o => o.Value);

    private const BindingFlags All = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;

    /// <summary>Edges namespace → namespaces it uses, for namespaces starting with <paramref name="prefix"/> in <paramref name="assemblies"/>.</summary>
    public static Dictionary<string, HashSet<string>> Build(IEnumerable<Assembly> assemblies, string prefix)
    {
        var graph = new Dictionary<string, HashSet<string>>(StringComparer.Ordinal);
        foreach (var assembly in assemblies)
        {
            foreach (var type in assembly.GetTypes())
            {
                var from = type.Namespace;
                if (from is null || !from.StartsWith(prefix, StringComparison.Ordinal))
                {
                    continue;
                }

                var edges = graph.TryGetValue(from, out var e) ? e : graph[from] = new HashSet<string>(StringComparer.Ordinal);
                foreach (var used in Referenced(type))
                {
                    foreach (var ns in Namespaces(used))
                    {
                        if (ns != from && ns.StartsWith(prefix, StringComparison.Ordinal))
                        {
                            edges.Add(ns);
                        }
                    }
                }
            }
        }

        return graph;
    }

    /// <summary>A path from <paramref name="from"/> to <paramref name="to"/> (namespaces), or null when there is none.</summary>
    public static IReadOnlyList<string>? Path(IReadOnlyDictionary<string, HashSet<string>> graph, string from, string to)
    {
        var previous = new Dictionary<string, string>(StringComparer.Ordinal) { [from] = from };
        var queue = new Queue<string>([from]);
        while (queue.TryDequeue(out var at))
        {
            foreach (var next in graph.TryGetValue(at, out var e) ? e : [])
            {
                if (!previous.TryAdd(next, at))
                {
                    continue;
                }

                if (next == to)
                {
                    var path = new List<string> { to };
                    for (var p = at; p != from; p = previous[p])
                    {
                        path.Add(p);
                    }

                    path.Add(from);
                    path.Reverse();
                    return path;
                }

                queue.Enqueue(next);
            }
        }

        return null;
    }

    /// <summary>Every strongly connected component with more than one namespace (each is a set of namespaces in a loop).</summary>
    public static List<List<string>> Cycles(IReadOnlyDictionary<string, HashSet<string>> graph)
    {
        // Tarjan's algorithm.
        var index = new Dictionary<string, int>(StringComparer.Ordinal);
        var low = new Dictionary<string, int>(StringComparer.Ordinal);
        var stack = new Stack<string>();
        var onStack = new HashSet<string>(StringComparer.Ordinal);
        var result = new List<List<string>>();
        var counter = 0;

        void Visit(string v)
        {
            index[v] = low[v] = counter++;
            stack.Push(v);
            onStack.Add(v);
            foreach (var w in graph.TryGetValue(v, out var e) ? e : [])
            {
                if (index.TryGetValue(w, out var wIndex))
                {
                    if (onStack.Contains(w))
                    {
                        low[v] = Math.Min(low[v], wIndex);
                    }
                }
                else
                {
                    Visit(w);
                    low[v] = Math.Min(low[v], low[w]);
                }
            }

            if (low[v] == index[v])
            {
                var component = new List<string>();
                string w;
                do
                {
                    w = stack.Pop();
                    onStack.Remove(w);
                    component.Add(w);
                }
                while (w != v);
                if (component.Count > 1)
                {
                    component.Sort(StringComparer.Ordinal);
                    result.Add(component);
                }
            }
        }

        foreach (var v in graph.Keys.Order(StringComparer.Ordinal))
        {
            if (!index.ContainsKey(v))
            {
                Visit(v);
            }
        }

        return result;
    }

    /// <summary>The namespaces a type reference names (its outermost type's, its element's, its generic arguments').</summary>
    public static IEnumerable<string> Namespaces(Type type)
    {
        if (type.IsArray || type.IsByRef || type.IsPointer)
        {
            foreach (var ns in Namespaces(type.GetElementType()!))
            {
                yield return ns;
            }

            yield break;
        }

        if (type.IsGenericParameter)
        {
            yield break;
        }

        var outer = type;
        while (outer.DeclaringType is { } d)
        {
            outer = d;
        }

        if (outer.Namespace is { } n)
        {
            yield return n;
        }

        if (type.IsConstructedGenericType)
        {
            foreach (var a in type.GetGenericArguments())
            {
                foreach (var ns in Namespaces(a))
                {
                    yield return ns;
                }
            }
        }
    }

    /// <summary>The types <paramref name="type"/> uses in its signatures and method bodies.</summary>
    public static IEnumerable<Type> Referenced(Type type)
    {
        if (type.BaseType is { } b)
        {
            yield return b;
        }

        foreach (var i in type.GetInterfaces())
        {
            yield return i;
        }

        foreach (var a in type.CustomAttributes)
        {
            yield return a.AttributeType;
        }

        foreach (var f in type.GetFields(All))
        {
            yield return f.FieldType;
        }

        foreach (var p in type.GetProperties(All))
        {
            yield return p.PropertyType;
        }

        foreach (var ev in type.GetEvents(All))
        {
            if (ev.EventHandlerType is { } h)
            {
                yield return h;
            }
        }

        foreach (var m in type.GetMethods(All).Cast<MethodBase>().Concat(type.GetConstructors(All)))
        {
            if (m is MethodInfo mi)
            {
                yield return mi.ReturnType;
            }

            foreach (var p in m.GetParameters())
            {
                yield return p.ParameterType;
            }

            foreach (var t in BodyReferences(m))
            {
                yield return t;
            }
        }
    }

    private static List<Type> BodyReferences(MethodBase method)
    {
        byte[]? il;
        try
        {
            il = method.GetMethodBody()?.GetILAsByteArray();
        }
        catch (InvalidOperationException)
        {
            return [];
        }

        if (il is null)
        {
            return [];
        }

        var module = method.Module;
        var typeArgs = method.DeclaringType is { IsGenericType: true } dt ? dt.GetGenericArguments() : null;
        var methodArgs = method.IsGenericMethod ? method.GetGenericArguments() : null;
        var found = new List<Type>();
        var pos = 0;
        while (pos < il.Length)
        {
            var value = (short)il[pos++];
            if (value == 0xFE)
            {
                value = (short)(0xFE00 | il[pos++]);
            }

            if (!OpCodesByValue.TryGetValue(value, out var op))
            {
                break; // not IL we can read: stop rather than misread operands
            }

            switch (op.OperandType)
            {
                case OperandType.InlineNone:
                    break;
                case OperandType.ShortInlineBrTarget or OperandType.ShortInlineI or OperandType.ShortInlineVar:
                    pos += 1;
                    break;
                case OperandType.InlineVar:
                    pos += 2;
                    break;
                case OperandType.InlineI8 or OperandType.InlineR:
                    pos += 8;
                    break;
                case OperandType.InlineSwitch:
                    var n = BitConverter.ToInt32(il, pos);
                    pos += 4 + (4 * n);
                    break;
                case OperandType.InlineType or OperandType.InlineTok or OperandType.InlineMethod or OperandType.InlineField:
                    var token = BitConverter.ToInt32(il, pos);
                    pos += 4;
                    try
                    {
                        var member = module.ResolveMember(token, typeArgs, methodArgs);
                        switch (member)
                        {
                            case Type t:
                                found.Add(t);
                                break;
                            case MethodBase mb:
                                found.Add(mb.DeclaringType!);
                                if (mb is MethodInfo { IsGenericMethod: true } gm)
                                {
                                    found.AddRange(gm.GetGenericArguments());
                                }

                                break;
                            case FieldInfo fi:
                                found.Add(fi.DeclaringType!);
                                found.Add(fi.FieldType);
                                break;
                        }
                    }
                    catch (Exception ex) when (ex is ArgumentException or BadImageFormatException or TypeLoadException or FileNotFoundException)
                    {
                        // A token into an assembly that is not loadable here names no Warden namespace we check.
                    }

                    break;
                default:
                    pos += 4; // InlineI, InlineBrTarget, InlineString, InlineSig, ShortInlineR
                    break;
            }
        }

        return found;
    }
}
