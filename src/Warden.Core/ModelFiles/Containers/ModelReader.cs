using System.Buffers.Binary;
using System.Text.Json;
using Microsoft.Win32.SafeHandles;
using Warden.Core.Runtime;

namespace Warden.Core.ModelFiles;

/// <summary>
/// Opens a model file or folder by content (never by extension) and returns its <see cref="ModelDocument"/>:
/// the tensor directory, metadata, anomalies and pickle findings. Only headers and pickles are read here;
/// tensor bytes stay on disk until a fingerprint pass streams them.
/// </summary>
public static class ModelReader
{
    /// <summary>
    /// The primary format of a file from its first bytes and length (what its tensors are read as). Sniffing is
    /// never exclusive: <see cref="ReadFile"/> also checks every other interpretation a loader could take (a zip
    /// directory at the end, a tar header, a pickle stream from byte 0).
    /// </summary>
    public static ModelFormat Sniff(ReadOnlySpan<byte> head, long length)
    {
        if (head.Length >= 4 && head[0] == 0x50 && head[1] == 0x4b && head[2] == 3 && head[3] == 4)
        {
            return ModelFormat.Zip; // torch or not: decided by its members
        }

        if (head.Length >= 15 && head[..15].SequenceEqual(LegacyMagicPickle))
        {
            return ModelFormat.TorchLegacy;
        }

        if (head.Length >= 4 && BinaryPrimitives.ReadUInt32LittleEndian(head) == 0x46554747)
        {
            return ModelFormat.Gguf;
        }

        if (head.Length >= 6 && head[..6].SequenceEqual(SevenZipMagic))
        {
            return ModelFormat.OtherArchive;
        }

        // A tar only when tarfile.open would accept its first header (checksum), not because "ustar" sits at 257.
        if (TarReader.IsTarHeader(head))
        {
            return ModelFormat.OtherArchive;
        }

        if (head.Length >= 6 && head[0] == 0x93 && head[1..6].SequenceEqual("NUMPY"u8))
        {
            return ModelFormat.Numpy;
        }

        if (head.Length >= 9)
        {
            var n = BinaryPrimitives.ReadUInt64LittleEndian(head);
            if (n >= 2 && n <= 100_000_000 && (long)n + 8 <= length && head[8] == (byte)'{')
            {
                return ModelFormat.Safetensors;
            }
        }

        if (OnnxReader.LooksLikeOnnx(head))
        {
            return ModelFormat.Onnx;
        }

        // CPython starts unpickling at any opcode byte, not only PROTO, '(' or 'c'.
        if (head.Length >= 1 && PickleOpcodes.IsOpcode(head[0]))
        {
            return ModelFormat.Pickle;
        }

        return ModelFormat.Unknown;
    }

    private static ReadOnlySpan<byte> SevenZipMagic => [0x37, 0x7a, 0xbc, 0xaf, 0x27, 0x1c];

    private static ReadOnlySpan<byte> LegacyMagicPickle => [0x80, 0x02, 0x8A, 0x0A, 0x6C, 0xFC, 0x9C, 0x46, 0xF9, 0x20, 0x6A, 0xA8, 0x50, 0x19, 0x2E];

    /// <summary>True when <paramref name="path"/> is a folder Warden reads as one model.</summary>
    public static bool IsModelFolder(string path) =>
        Directory.Exists(path) && (File.Exists(Path.Combine(path, "model_index.json")) || File.Exists(Path.Combine(path, "adapter_config.json"))
            || Directory.EnumerateFiles(path, "*.index.json").Any()
            || (File.Exists(Path.Combine(path, "config.json")) && Directory.EnumerateFiles(path, "*.safetensors").Any()));

    /// <summary>Reads a file or a model folder.</summary>
    public static ModelDocument Read(string path, ModelLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        limits ??= ModelLimits.Default;
        return Directory.Exists(path) ? ReadFolder(path, limits) : ReadFile(path, limits);
    }

    /// <summary>
    /// Reads one file: its primary format for tensors and metadata, then every other interpretation a loader could
    /// take, for pickles: a zip central directory at the end (zipfile.is_zipfile), a tar (tarfile.open, which torch
    /// tries first on every non-zip file), and a pickle stream from byte 0 (pickle.load). Each found stream is
    /// scanned; the file's verdict is the worst of them.
    /// </summary>
    public static ModelDocument ReadFile(string path, ModelLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        limits ??= ModelLimits.Default;
        using var handle = RegularFile.OpenRead(path, FileOptions.RandomAccess);
        var length = RandomAccess.GetLength(handle);
        var head = new byte[(int)Math.Min(length, 512)];
        ZipDirectory.ReadExactly(handle, head, 0);
        var primary = Sniff(head, length);
        var tar = TarReader.IsTarHeader(head);
        var zipAtEnd = primary != ModelFormat.Zip && ZipDirectory.HasEndRecord(handle, length);
        List<TarMember>? tarMembers = null;
        var tarProbe = new ModelDocument { Path = path, Format = ModelFormat.OtherArchive };
        if (tar)
        {
            tarMembers = TarReader.ReadMembers(handle, length, tarProbe, limits);
        }

        var format = primary switch
        {
            ModelFormat.Zip => ModelFormat.TorchZip,
            ModelFormat.OtherArchive when tarMembers is not null && tarMembers.Any(m => m.Name is "storages" or "tensors" or "pickle") => ModelFormat.TorchLegacyTar,
            ModelFormat.Unknown when zipAtEnd => ModelFormat.Zip,
            _ => primary,
        };
        if (format == ModelFormat.Unknown)
        {
            throw new ModelFormatException("not a model format Warden reads (safetensors, torch zip/legacy, pickle, GGUF, ONNX)") { NotAModel = true };
        }

        var d = new ModelDocument { Path = path, Format = format };
        d.Files.Add(path);
        if (tarMembers is not null)
        {
            d.Anomalies.AddRange(tarProbe.Anomalies);
            TarReader.Scan(handle, tarMembers, d, limits);
        }

        switch (format)
        {
            case ModelFormat.TorchZip:
                TorchReader.ReadZip(handle, length, d, limits);
                break;
            case ModelFormat.Safetensors:
                SafetensorsReader.Read(handle, length, d, limits);
                break;
            case ModelFormat.TorchLegacy:
                TorchReader.ReadLegacy(handle, length, d, limits);
                break;
            case ModelFormat.Pickle:
                TorchReader.ReadPickle(handle, length, d, limits, protoFirst: head[0] == 0x80);
                break;
            case ModelFormat.Gguf:
                GgufReader.Read(handle, length, d, limits);
                break;
            case ModelFormat.Onnx:
                OnnxReader.Read(handle, length, d, limits);
                break;
            case ModelFormat.OtherArchive when tarMembers is null:
                d.Flag(AnomalySeverity.Warning, "archive.unopened", "7z archive: not opened; contents unknown");
                break;
            case ModelFormat.Numpy:
                d.Flag(AnomalySeverity.Info, "numpy", "NumPy array file: not a model container");
                break;
        }

        if (zipAtEnd)
        {
            // zipfile.is_zipfile looks for the end record, wherever the file starts: a pickle + zip polyglot.
            TorchReader.ScanZipMembers(handle, length, d, limits);
        }

        if (head.Length > 0 && PickleOpcodes.IsOpcode(head[0]) && format is not (ModelFormat.Pickle or ModelFormat.TorchLegacy or ModelFormat.TorchZip))
        {
            // pickle.load(f) on this file would start unpickling at byte 0, whatever else the file is.
            TorchReader.ScanAsPickle(handle, length, d, limits);
        }

        if (format == ModelFormat.Pickle && d.Pickles.Count == 0 && !zipAtEnd)
        {
            throw new ModelFormatException("not a model format Warden reads: its first byte is a pickle opcode, but CPython's unpickler stops before reaching anything it could call") { NotAModel = true };
        }

        return d;
    }

    private static ModelDocument ReadFolder(string root, ModelLimits limits)
    {
        var full = Path.GetFullPath(root);
        var isPeft = File.Exists(Path.Combine(full, "adapter_config.json"));
        var isDiffusers = File.Exists(Path.Combine(full, "model_index.json"));
        var doc = new ModelDocument
        {
            Path = root,
            Format = isPeft ? ModelFormat.PeftFolder : isDiffusers ? ModelFormat.DiffusersFolder : ModelFormat.ShardedFolder,
        };
        foreach (var config in new[] { "model_index.json", "adapter_config.json", "config.json" })
        {
            ReadConfig(Path.Combine(full, config), config, doc);
        }

        var files = new List<(string File, string Component)>();
        if (isDiffusers)
        {
            foreach (var sub in Directory.EnumerateDirectories(full).Order(StringComparer.Ordinal))
            {
                if (IsLink(sub, doc))
                {
                    continue;
                }

                var component = Path.GetFileName(sub);
                ReadConfig(Path.Combine(sub, "config.json"), component + "/config.json", doc);
                files.AddRange(WeightFiles(sub, doc).Select(f => (f, component)));
            }
        }
        else
        {
            files.AddRange(WeightFiles(full, doc).Select(f => (f, string.Empty)));
        }

        if (files.Count > limits.MaxFolderFiles)
        {
            throw new ModelFormatException($"folder has more than {limits.MaxFolderFiles} weight files");
        }

        // ONNX graphs first: the external data files they name are read as their tensors, not as models of their own.
        files = [.. files.OrderBy(f => SniffFile(f.File) == ModelFormat.Onnx ? 0 : 1)];
        var consumed = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (file, component) in files)
        {
            if (consumed.Contains(Path.GetFullPath(file)))
            {
                continue;
            }

            var rel = Path.GetRelativePath(full, file);
            ModelDocument part;
            try
            {
                part = ReadFile(file, limits);
            }
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                Unreadable(doc, rel, ex);
                continue;
            }

            foreach (var f in part.Files)
            {
                doc.Files.Add(f);
                doc.FileComponents[f] = component;
                consumed.Add(Path.GetFullPath(f));
            }

            doc.Tensors.AddRange(part.Tensors);
            MergeFindings(doc, part, rel);
            foreach (var (k, v) in part.Metadata)
            {
                doc.Metadata.TryAdd(k, v);
            }
        }

        // Loaders pick other files of the same folder (variant="fp16", use_safetensors=False, a .bin beside the
        // .safetensors, another component's weights): every file in the tree is scanned, not only the ones the
        // fingerprint reads. The folder's verdict is the worst of them.
        var read = files.Select(f => f.File).Concat(doc.Files).ToHashSet(StringComparer.Ordinal);
        foreach (var file in TreeFiles(full, limits, doc))
        {
            if (read.Contains(file))
            {
                continue;
            }

            var rel = Path.GetRelativePath(full, file);
            try
            {
                MergeFindings(doc, ReadFile(file, limits), rel);
            }
            catch (ModelFormatException ex) when (ex.NotAModel && !IsWeightName(file))
            {
                // A config, tokenizer or README: nothing a loader unpickles.
            }
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                Unreadable(doc, rel, ex);
            }
        }

        if (doc.Files.Count == 0)
        {
            throw new ModelFormatException("folder holds no weight files Warden reads");
        }

        return doc;
    }

    private static readonly string[] WeightExtensions = [".bin", ".pt", ".pth", ".ckpt", ".safetensors", ".gguf", ".pkl", ".pickle", ".joblib", ".npy", ".npz", ".h5", ".msgpack", ".onnx", ".tar"];

    private static bool IsWeightName(string file) => WeightExtensions.Any(e => file.EndsWith(e, StringComparison.OrdinalIgnoreCase));

    private static void MergeFindings(ModelDocument doc, ModelDocument part, string rel)
    {
        doc.Pickles.AddRange(part.Pickles.Select(p => p with { Member = rel + ":" + p.Member }));
        doc.Anomalies.AddRange(part.Anomalies.Select(a => a with { Message = rel + ": " + a.Message }));
    }

    // One file's failure is that file's error, and never "safe": a weight file Warden cannot read fully may still be
    // one a loader reads (and unpickles), so it counts as dangerous; the scan goes on with the other files.
    private static void Unreadable(ModelDocument doc, string rel, Exception ex)
    {
        var message = ex is ModelFormatException or IOException or UnauthorizedAccessException ? ex.Message : $"{ex.GetType().Name}: {ex.Message}";
        doc.Flag(AnomalySeverity.Error, "folder.unreadable", $"{rel}: {message}");
        doc.Pickles.Add(new PickleReport(rel, [new PickleFinding(PickleVerdict.Dangerous, "unreadable", null, null, 0, $"file could not be fully read ({message}): not scanned, so not safe")], [], 0, false));
    }

    // Every regular file under the folder (links are never followed), depth-first in ordinal order, bounded.
    private static List<string> TreeFiles(string root, ModelLimits limits, ModelDocument doc)
    {
        var result = new List<string>();
        var stack = new Stack<(string Dir, int Depth)>();
        stack.Push((root, 0));
        while (stack.Count > 0)
        {
            var (dir, depth) = stack.Pop();
            IEnumerable<string> entries;
            try
            {
                entries = Directory.EnumerateFileSystemEntries(dir).Order(StringComparer.Ordinal).ToList();
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                doc.Flag(AnomalySeverity.Error, "folder.unreadable", $"{Path.GetRelativePath(root, dir)}: {ex.Message}");
                doc.Pickles.Add(new PickleReport(Path.GetRelativePath(root, dir), [new PickleFinding(PickleVerdict.Dangerous, "unreadable", null, null, 0, "folder could not be listed: its files are unscanned")], [], 0, false));
                continue;
            }

            foreach (var e in entries.Reverse())
            {
                var info = new FileInfo(e);
                if (info.LinkTarget is not null)
                {
                    // Never followed (a link can point anywhere on the host), but a loader follows it: what it points
                    // at is unscanned, so the folder cannot be called safe.
                    var rel = Path.GetRelativePath(root, e);
                    doc.Flag(AnomalySeverity.Error, "folder.symlink", $"'{rel}' is a symbolic link; not followed");
                    doc.Pickles.Add(new PickleReport(rel, [new PickleFinding(PickleVerdict.Dangerous, "unscanned-link", null, null, 0, "symbolic link not followed: a loader would read its target, which is unscanned, so not safe (scan the target itself)")], [], 0, false));
                    continue;
                }

                if (Directory.Exists(e))
                {
                    if (depth < 16)
                    {
                        stack.Push((e, depth + 1));
                    }
                    else
                    {
                        doc.Flag(AnomalySeverity.Warning, "folder.depth", $"{Path.GetRelativePath(root, e)}: deeper than 16 folders; not scanned");
                    }
                }
                else
                {
                    result.Add(e);
                }
            }

            if (result.Count > limits.MaxFolderFiles)
            {
                throw new ModelFormatException($"folder has more than {limits.MaxFolderFiles} files");
            }
        }

        result.Sort(StringComparer.Ordinal);
        return result;
    }

    // Weight files of one folder: an index.json's shards when present, else every file that sniffs as weights
    // (one variant only: fp32 preferred over .fp16 copies, safetensors over .bin).
    private static List<string> WeightFiles(string dir, ModelDocument doc)
    {
        var result = new List<string>();
        foreach (var index in Directory.EnumerateFiles(dir, "*.index.json").Order(StringComparer.Ordinal))
        {
            try
            {
                using var json = JsonDocument.Parse(RegularFile.ReadAllBytes(index, MaxSidecarBytes), new JsonDocumentOptions { MaxDepth = 16 });
                if (json.RootElement.TryGetProperty("weight_map", out var map) && map.ValueKind == JsonValueKind.Object)
                {
                    foreach (var shard in map.EnumerateObject().Select(p => p.Value.GetString()).Where(s => s is not null).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal))
                    {
                        var path = Path.GetFullPath(Path.Combine(dir, shard!));
                        if (!path.StartsWith(Path.GetFullPath(dir) + Path.DirectorySeparatorChar, StringComparison.Ordinal))
                        {
                            doc.Flag(AnomalySeverity.Error, "folder.path-escape", $"index.json names '{shard}' outside the folder; not read");
                        }
                        else if (!File.Exists(path))
                        {
                            doc.Flag(AnomalySeverity.Error, "folder.missing-shard", $"shard '{shard}' is missing");
                        }
                        else if (!IsLink(path, doc))
                        {
                            result.Add(path);
                        }
                    }
                }
            }
            catch (Exception ex) when (ex is JsonException or IOException or UnauthorizedAccessException)
            {
                // Unreadable, not a regular file or over the size limit: flagged, never silently skipped.
                doc.Flag(AnomalySeverity.Error, "folder.bad-index", $"{Path.GetFileName(index)}: {ex.Message}");
            }

            if (result.Count > 0)
            {
                return result;
            }
        }

        var candidates = Directory.EnumerateFiles(dir).Where(f => !f.EndsWith(".json", StringComparison.OrdinalIgnoreCase) && !f.EndsWith(".txt", StringComparison.OrdinalIgnoreCase))
            .Order(StringComparer.Ordinal).ToList();
        var weights = candidates.Where(f => !IsLink(f, doc) && SniffFile(f) != ModelFormat.Unknown).ToList();
        var preferred = weights.Where(f => !Path.GetFileName(f).Contains(".fp16.", StringComparison.Ordinal)).ToList();
        if (preferred.Count > 0)
        {
            weights = preferred;
        }

        var safetensors = weights.Where(f => SniffFile(f) == ModelFormat.Safetensors).ToList();
        return safetensors.Count > 0 ? safetensors : weights;
    }

    private static ModelFormat SniffFile(string f)
    {
        try
        {
            using var h = RegularFile.OpenRead(f);
            var len = RandomAccess.GetLength(h);
            var head = new byte[(int)Math.Min(len, 512)];
            ZipDirectory.ReadExactly(h, head, 0);
            return Sniff(head, len);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ModelFormatException)
        {
            return ModelFormat.Unknown;
        }
    }

    // Links are never followed: a link can point anywhere on the host.
    private static bool IsLink(string path, ModelDocument doc)
    {
        var info = new FileInfo(path);
        if (info.LinkTarget is null && new DirectoryInfo(path).LinkTarget is null)
        {
            return false;
        }

        doc.Flag(AnomalySeverity.Error, "folder.symlink", $"'{Path.GetFileName(path)}' is a symbolic link; not followed");
        return true;
    }

    private static void ReadConfig(string path, string key, ModelDocument doc)
    {
        if (!File.Exists(path) || IsLink(path, doc))
        {
            return;
        }

        var info = new FileInfo(path);
        if (info.Length > 1 << 20)
        {
            doc.Flag(AnomalySeverity.Warning, "folder.config-size", $"{key} is over 1 MiB; not read");
            return;
        }

        try
        {
            using var json = JsonDocument.Parse(RegularFile.ReadAllBytes(path, 1 << 20), new JsonDocumentOptions { MaxDepth = 32 });
            doc.Metadata["config:" + key] = json.RootElement.GetRawText();
        }
        catch (Exception ex) when (ex is JsonException or IOException or UnauthorizedAccessException)
        {
            doc.Flag(AnomalySeverity.Error, "folder.bad-config", $"{key}: {ex.Message}");
        }
    }

    internal static SafeFileHandle Open(string path) => RegularFile.OpenRead(path);

    // A sharded model's index.json lists tensor names and shard files: a few MiB at most even for the largest models.
    private const int MaxSidecarBytes = 16 << 20;
}
