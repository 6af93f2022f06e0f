namespace Warden.Core.Models;

/// <summary>How risky a pickle is. Ordered: a file's verdict is the worst of its findings.</summary>
public enum PickleVerdict
{
    /// <summary>Only allowlisted globals and opcodes (what torch's weights-only loader accepts).</summary>
    Safe = 0,

    /// <summary>Something outside the allowlist, or a stream the scanner could not finish.</summary>
    Suspicious = 1,

    /// <summary>A global or opcode that can run code on load.</summary>
    Dangerous = 2,
}

/// <summary>One thing the pickle scanner found.</summary>
/// <param name="Verdict">How bad.</param>
/// <param name="Kind">global, opcode, stack-global, corrupt, limit, trailing.</param>
/// <param name="Module">Module of a global (or null).</param>
/// <param name="Name">Name of a global, or the opcode name.</param>
/// <param name="Offset">Byte offset in the stream.</param>
/// <param name="Detail">Why.</param>
public sealed record PickleFinding(PickleVerdict Verdict, string Kind, string? Module, string? Name, long Offset, string Detail)
{
    /// <summary>"module.name" or the name.</summary>
    public string Symbol => Module is null ? Name ?? Kind : $"{Module}.{Name}";
}

/// <summary>The scan of one pickle stream (or a member holding several concatenated ones).</summary>
/// <param name="Member">Where it came from (zip member, "legacy#N", file).</param>
/// <param name="Findings">Every non-allowlisted global, dangerous opcode, corruption or limit.</param>
/// <param name="Globals">Every distinct global referenced (allowlisted ones too).</param>
/// <param name="Ops">Opcodes interpreted.</param>
/// <param name="Complete">False when the stream was corrupt, truncated or hit a limit.</param>
public sealed record PickleReport(string Member, IReadOnlyList<PickleFinding> Findings, IReadOnlyList<string> Globals, long Ops, bool Complete)
{
    /// <summary>Worst finding.</summary>
    public PickleVerdict Verdict => Findings.Count == 0 ? PickleVerdict.Safe : Findings.Max(f => f.Verdict);
}

/// <summary>
/// Which globals a model pickle may reference. Allowlist first (torch weights-only loader + A1111's Lightning
/// additions); everything else is suspicious, and the union of picklescan's and modelscan's block lists
/// (with the parent-module rule: a submodule of a blocked module is blocked) is dangerous.
/// </summary>
public static class PicklePolicy
{
    private static readonly HashSet<string> Allowed = new(StringComparer.Ordinal)
    {
        "collections.OrderedDict", "collections.Counter",
        "torch._utils._rebuild_tensor", "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_tensor_v3",
        "torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state", "torch._utils._rebuild_qtensor",
        "torch._utils._rebuild_sparse_tensor", "torch._utils._rebuild_meta_tensor_no_storage", "torch._utils._rebuild_wrapper_subclass",
        "torch._utils._rebuild_device_tensor_from_numpy", "torch._utils._rebuild_device_tensor_from_cpu_tensor",
        "torch._tensor._rebuild_from_type_v2", "torch.serialization._get_layout",
        "torch.Size", "torch.Tensor", "torch.device", "torch.nn.parameter.Parameter", "torch.nn.modules.container.ParameterDict",
        "torch.storage.UntypedStorage", "torch.storage.TypedStorage",
        "torch.float32", "torch.float16", "torch.bfloat16", "torch.float64", "torch.int64", "torch.int32", "torch.int16", "torch.int8",
        "torch.uint8", "torch.bool", "torch.float8_e4m3fn", "torch.float8_e5m2",
        "_codecs.encode", "builtins.set", "builtins.frozenset", "builtins.bytearray", "builtins.complex", "__builtin__.set",
        "numpy.core.multiarray.scalar", "numpy.core.multiarray._reconstruct", "numpy._core.multiarray.scalar", "numpy._core.multiarray._reconstruct",
        "numpy.dtype", "numpy.ndarray",
        "pytorch_lightning.callbacks.model_checkpoint.ModelCheckpoint", "pytorch_lightning.callbacks.ModelCheckpoint",
    };

    // Whole modules (and all their submodules) that run code, touch files, network or processes.
    private static readonly HashSet<string> DangerousModules = new(StringComparer.Ordinal)
    {
        "os", "posix", "nt", "sys", "subprocess", "_posixsubprocess", "_winapi", "socket", "shutil", "pty", "runpy", "pickle", "_pickle",
        "pdb", "bdb", "asyncio", "aiohttp", "ctypes", "_ctypes", "ssl", "urllib", "http", "httplib", "requests", "webbrowser", "pip", "ensurepip",
        "pydoc", "timeit", "profile", "cProfile", "venv", "uuid", "importlib", "code", "codeop", "commands", "multiprocessing",
        "trace", "doctest", "idlelib", "lib2to3", "cloudpickle", "dill", "distutils", "setuptools", "signal", "marshal", "zipimport",
        "threading", "_thread", "ftplib", "smtplib", "telnetlib", "xmlrpc", "imaplib", "poplib", "nntplib", "pkgutil", "operator",
        "_operator", "_io", "io", "logging", "tempfile", "glob", "sqlite3", "numpy.f2py", "numpy.testing", "pandas.io",
        "torch.hub", "torch._inductor", "torch.utils.collect_env", "torch.utils.bottleneck", "torch.jit", "torch.package",
        "torch._dynamo", "torch.distributed", "torch.serialization.load", "builtins.__import__",
    };

    private static readonly HashSet<string> DangerousNames = new(StringComparer.Ordinal)
    {
        "builtins.eval", "builtins.exec", "builtins.execfile", "builtins.compile", "builtins.getattr", "builtins.setattr",
        "builtins.delattr", "builtins.apply", "builtins.open", "builtins.breakpoint", "builtins.__import__", "builtins.input",
        "builtins.globals", "builtins.locals", "builtins.vars", "builtins.help", "builtins.exit", "builtins.quit", "builtins.memoryview",
        "functools.partial", "functools.reduce", "types.CodeType", "types.FunctionType", "types.MethodType", "types.ModuleType",
        "torch.serialization.load", "torch.load", "torch.classes", "numpy.load", "numpy.fromfile", "pandas.read_csv", "pandas.read_pickle",
    };

    /// <summary>Classifies a global reference.</summary>
    public static PickleVerdict Classify(string module, string name)
    {
        ArgumentNullException.ThrowIfNull(module);
        ArgumentNullException.ThrowIfNull(name);
        var m = module == "__builtin__" ? "builtins" : module;
        var full = m + "." + name;
        if (Allowed.Contains(full) || Allowed.Contains(module + "." + name))
        {
            return PickleVerdict.Safe;
        }

        if (IsStorageClass(m, name))
        {
            return PickleVerdict.Safe;
        }

        if (DangerousNames.Contains(full) || DangerousModules.Contains(full))
        {
            return PickleVerdict.Dangerous;
        }

        // Parent-module rule: "asyncio.unix_events" is as bad as "asyncio"; a dotted name ("os.path.join"
        // written as module "os.path") is checked prefix by prefix.
        var span = m.AsSpan();
        while (true)
        {
            if (DangerousModules.Contains(span.ToString()))
            {
                return PickleVerdict.Dangerous;
            }

            var dot = span.LastIndexOf('.');
            if (dot < 0)
            {
                break;
            }

            span = span[..dot];
        }

        // Names that are themselves dotted paths ("getattr" hidden as "x.getattr") or dunder access.
        if (name.Contains("__", StringComparison.Ordinal) && name is not "__init__")
        {
            return PickleVerdict.Dangerous;
        }

        return PickleVerdict.Suspicious;
    }

    /// <summary>True for torch typed storage classes (torch.FloatStorage…).</summary>
    public static bool IsStorageClass(string module, string name) =>
        module is "torch" or "torch.cuda" && name.EndsWith("Storage", StringComparison.Ordinal) && TensorDTypes.FromTorchStorage(name) != TensorDType.Unknown;
}
