// Generated from the real command tree by NativeFrontEndTests (WARDEN_UPDATE_CATALOG=1): do not edit.
namespace Warden.Cli.FrontEnd;

/// <summary>Every top-level command as `warden --help` lists it, for the native front end's stubs.</summary>
internal static class CommandCatalog
{
    public static readonly CatalogCommand[] Commands =
    [
        new(
            "hash",
            "Compute PDQ (with quality), MD5, SHA-1 and SHA-256 of images, with width and height.\nVideos (recognised by content; needs ffmpeg) get vPDQ (Meta's format, one line per hashed frame joined by ';') and, with --tmk, TMK+PDQF.\nFiles that cannot be hashed are reported on stderr with the reason; the others are still hashed, and the exit code is 1.\n\nExamples:\n  warden hash photo.jpg\n  cat upload.bin | warden hash -f jsonl -\n  warden hash --format jsonl uploads/ > hashes.jsonl\n  warden hash --dihedral --format csv a.png b.webp",
            [],
            false,
            [new("PATH", 1, 100000, false, null)]),
        new(
            "scan",
            "Hash files (PDQ, MD5, SHA-1, SHA-256) and match them against every enabled bank.\nPDQ matches at each bank's threshold (default: distance ≤ 31, quality ≥ 50), over the 8 rotations/mirror images, and on the\nimage with uniform borders trimmed; crypto hashes match exactly (for any file, image or not). A hit in an allow-list bank suppresses block-list hits on the same file.\nVideos (recognised by content; needs ffmpeg) match vpdq entries (query frames matched ≥ 80 %, with the matched time ranges), tmk_pdqf entries (level 1 and 2 ≥ 0.7) and video_md5.\n\nExamples:\n  warden scan uploads/\n  warden scan --format jsonl --fail-on-match incoming.jpg",
            [],
            false,
            [new("PATH", 1, 100000, false, null)]),
        new(
            "bank",
            "Manage banks: named hash lists (block lists, or allow lists that suppress false positives).",
            [],
            false,
            []),
        new(
            "exchange",
            "Exchanges: clearinghouse feeds (NCMEC Hash Sharing, ...) that fill a bank and stay in sync, and take feedback back.",
            [],
            false,
            []),
        new(
            "serve",
            "Run the HTTP API (hash, match, banks, webhooks, HMA-compatible endpoints) over the database.\n\nEvery endpoint but /healthz, /readyz and /status needs an API key; create the first with 'warden key create --role admin'. The API reference is served at /docs, the OpenAPI description at /openapi/v1.json. Settings: appsettings.json or environment variables Warden__Name (see docs/operations.md).\n\nExamples:\n  warden serve\n  warden serve --db warden.db --urls http://127.0.0.1:8080\n  warden serve --urls http://127.0.0.1:8080 --hma-urls http://127.0.0.1:9876 --hma-role curator\n  warden serve --db 'Host=db;Database=warden;Username=warden'",
            [],
            false,
            []),
        new(
            "key",
            "Manage API keys for 'warden serve'.",
            [],
            false,
            []),
        new(
            "provenance",
            "Report AI-generation signals: generator metadata (A1111/Forge, ComfyUI, InvokeAI, NovelAI, Fooocus, SwarmUI, Midjourney), model references with their hashes, C2PA manifests (verified), IPTC XMP, invisible watermarks and weak hints, with a verdict.\nMetadata is a claim by whoever wrote the file: it can be forged or stripped, and its absence proves nothing.\n\nExamples:\n  warden provenance image.png\n  warden provenance --format jsonl --db warden.db uploads/\n  warden provenance --pixels auto --trust-anchors c2pa-trust.pem photo.jpg",
            [],
            false,
            [new("PATH", 1, 100000, false, null)]),
        new(
            "model",
            "AI model files (safetensors, PyTorch .ckpt/.pt/.bin zip and legacy, pickles, GGUF, diffusers and PEFT folders):\nread by content, pickles interpreted without executing anything, fingerprints that survive re-packaging (MFv1).",
            [],
            false,
            []),
        new(
            "user",
            "Manage review console users (log in at /review of 'warden serve').",
            [],
            false,
            []),
        new(
            "review",
            "Review state: move a legacy review file into the database; the bundled fake CyberTipline and a demo case.",
            [],
            false,
            []),
        new(
            "backfill",
            "Queue stored content for matching by 'warden worker' processes (any number, on any machines) through NATS JetStream.\nEach item is processed once even when workers die or the broker restarts; 'backfill status' shows progress, rate and ETA.\n\nExamples:\n  warden backfill /srv/uploads/2024\n  warden backfill --list urls.txt\n  warden backfill s3://media/uploads/2024/\n  warden backfill status --watch",
            [],
            false,
            [new("SOURCE", 0, 100000, false, null)]),
        new(
            "worker",
            "Process backfill items from NATS JetStream: read, hash, match against the enabled banks, log the signals (signal log) and record matches,\nonce per item. Run as many as you like, on any machines sharing the database. Prints one JSON line per item started and done.\n\nExample:\n  warden worker --db 'Host=db;Database=warden' --nats nats://queue:4222",
            [],
            false,
            []),
        new(
            "bench",
            "Benchmarks (not tests): print timings and memory for the docs.",
            [],
            false,
            []),
    ];
}
