namespace Warden.Core.ModelFiles;

/// <summary>How risky a pickle is. Ordered: a file's verdict is the worst of its findings.</summary>
public enum PickleVerdict
{
    /// <summary>Only allowlisted globals and opcodes (what torch's weights-only loader accepts).</summary>
    Safe = 0,

    /// <summary>An oddity that cannot run anything (bytes after STOP, a stream that stops before any callable).</summary>
    Suspicious = 1,

    /// <summary>
    /// A global outside the allowlist (importing and calling it runs code outside the model allowlist), an opcode
    /// that calls by itself, a name the scanner cannot know, a cap reached, or a stream it could not finish after
    /// a callable was reached.
    /// </summary>
    Dangerous = 2,
}

/// <summary>One thing the pickle scanner found.</summary>
/// <param name="Verdict">How bad.</param>
/// <param name="Kind">global, opcode, stack-global, allocation, frame, corrupt, limit, trailing.</param>
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
/// Which globals a model pickle may reference. Allowlist (torch weights-only loader + A1111's Lightning
/// additions): safe; everything else is dangerous, because <c>find_class</c> imports the module (running its
/// code) and the pickle may call what it gets. The union of picklescan's and modelscan's block lists (with the
/// parent-module rule) only sharpens the explanation.
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

    // Allowlisted constructors that allocate what their arguments ask for.
    private static readonly HashSet<string> Allocating = new(StringComparer.Ordinal)
    {
        "builtins.bytearray", "__builtin__.bytearray", "torch.storage.UntypedStorage", "torch.storage.TypedStorage", "torch.Tensor",
        "numpy.ndarray", "numpy.core.multiarray._reconstruct", "numpy._core.multiarray._reconstruct", "collections.Counter",
    };

    /// <summary>
    /// Classifies a global as <c>find_class</c> resolves it (module imported, then the name as an attribute
    /// chain: <c>zipfile</c> + <c>os.system</c> reaches <c>os.system</c>): safe only on the allowlist, else dangerous.
    /// </summary>
    public static PickleVerdict Classify(string module, string name)
    {
        ArgumentNullException.ThrowIfNull(module);
        ArgumentNullException.ThrowIfNull(name);
        return IsAllowed(module, name) ? PickleVerdict.Safe : PickleVerdict.Dangerous;
    }

    /// <summary>True for an allowlisted global (exact module + name, or the same path written as a dotted name).</summary>
    public static bool IsAllowed(string module, string name) =>
        Allowed.Contains(module + "." + name) || IsStorageClass(module, name) || IsLegacyTensorClass(module, name);

    /// <summary>True when the global is on the known code-execution block lists (or is reached through one).</summary>
    public static bool IsKnownDangerous(string module, string name)
    {
        ArgumentNullException.ThrowIfNull(module);
        ArgumentNullException.ThrowIfNull(name);
        var m = module == "__builtin__" ? "builtins" : module;
        var full = m + "." + name;
        if (DangerousNames.Contains(full) || DangerousModules.Contains(full))
        {
            return true;
        }

        // Parent-module rule over the whole path: "asyncio.unix_events" is as bad as "asyncio", and a dotted
        // name ("zipfile" + "os.system") is checked by what it reaches ("os.system") as well.
        if (HasDangerousPrefix(full))
        {
            return true;
        }

        var parts = name.Split('.');
        for (var i = 0; i < parts.Length - 1; i++)
        {
            var tail = string.Join('.', parts[i..]);
            if (DangerousNames.Contains(tail) || HasDangerousPrefix(tail) || DangerousNames.Contains("builtins." + tail))
            {
                return true;
            }
        }

        return parts.Any(p => p.StartsWith("__", StringComparison.Ordinal) && p is not "__init__");
    }

    /// <summary>Why a global is not safe, in words.</summary>
    public static string Explain(string module, string name) =>
        IsAllowed(module, name) ? "on the model allowlist"
        : IsKnownDangerous(module, name) ? "a known code-execution or system-access primitive"
        : "not on the model allowlist: the loader imports its module and may call it";

    /// <summary>True for allowlisted constructors whose arguments size an allocation.</summary>
    public static bool Allocates(string module, string name) => Allocating.Contains(module + "." + name) || IsStorageClass(module, name);

    private static bool HasDangerousPrefix(string path)
    {
        var span = path.AsSpan();
        while (true)
        {
            if (DangerousModules.Contains(span.ToString()) || DangerousNames.Contains(span.ToString()))
            {
                return true;
            }

            var dot = span.LastIndexOf('.');
            if (dot < 0)
            {
                return false;
            }

            span = span[..dot];
        }
    }

    /// <summary>True for torch typed storage classes (torch.FloatStorage…).</summary>
    public static bool IsStorageClass(string module, string name) =>
        module is "torch" or "torch.cuda" && name.EndsWith("Storage", StringComparison.Ordinal) && TensorDTypes.FromTorchStorage(name) != TensorDType.Unknown;

    /// <summary>
    /// True for torch's legacy typed tensor classes (torch.FloatTensor…): pre-0.4 tar checkpoints name them in their
    /// <c>tensors</c> member, and torch's weights-only unpickler allows them (<c>torch._tensor_classes</c>).
    /// </summary>
    public static bool IsLegacyTensorClass(string module, string name) =>
        module is "torch" or "torch.cuda" && name.EndsWith("Tensor", StringComparison.Ordinal) && name.Length > "Tensor".Length
        && TensorDTypes.FromTorchStorage(string.Concat(name.AsSpan(0, name.Length - "Tensor".Length), "Storage")) != TensorDType.Unknown;
}
