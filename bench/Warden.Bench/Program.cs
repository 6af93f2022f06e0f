using BenchmarkDotNet.Running;
using Warden.Bench;

// Usage:
//   compat [minSide...]          distances of each pipeline from Meta's outputs
//   throughput <corpus> [...]    images/s and MB/s, one core and all cores (corpus: test | large | DIR | LIST)
//   borders [DIR]                framed/letterboxed copies: recall and false matches with the trimmed hash
//   provenance [corpus]         provenance extraction cost next to hashing (metadata only, with pixel checks)
//   index [--size 10m] [--data uniform|clustered] [sweep]   matching index: build, queries/s, RSS
//   load [--entries 1m] [--rate 300] [--duration 60] [--connections 16] [--warmup 30]   warden serve: hash+match of 100 KB JPEGs
//   native-heap [--threads 2] [--threading fixed|pool|churn] [--rate 100] [--via decoder|buffer|source] [--arena-max N] [--mmap-threshold B] [--trim S]   libvips decoding vs glibc's arenas, RSS and gen2 GCs
//   reqpath [--entries 1m] [--variants full,noprov,nodihedral,hash,health] [--intake off] [--warmup 15] [--pg] [--server-env N=V] [--b-env N=V] [--b-dll DLL] [--rounds N]   server CPU µs per request by variant (A/B in alternating rounds); reqpath stages: in-process CPU µs per stage
//   intake [--db TARGET] [--n 5000] [--uploaders 50]   case intake of a matched upload: µs and CPU per intake (SQLite, PostgreSQL)
//   review [--items N]          cases/clusters, evidence vault, audit log and report delivery costs
//   video [--cores 1|2|both] [--skip-long] [--skip-oracle] [--clip F] [--rounds 3] [--only TEXT] [--frame]   video hashing vs ffmpeg decode-only; fast-mode match cost
//   model-index [--models 100000]   the server's model index start-up: built from record files vs loaded from its snapshot
//   model [--gib 2] [--passes 2]   model fingerprint throughput (GB/s, one core and two) on a synthetic checkpoint in /tmp
//   widen [--passes 10]         fp16/bf16 → fp32 tensor widening alone: CPU ms per 16 MiB
//   console [--uploads N]       warden serve with the review console: matched-upload latency, case log replay
//   retro [--uploads 10m] [--days 10] [--variants 1] [--delta 10000]   retroactive matching of a delta against signal-log partition snapshots
//   retro db [--uploads 200k] [--days 4]   the same end to end through a SQLite signal log (and its size per million uploads)
//   exchange [--entries 100k]  first sync of an N-entry NCMEC feed from the loopback fake into a SQLite bank: time, entries/s, memory
//   (anything else)              BenchmarkDotNet micro benchmarks, e.g. --filter '*Pdq*'
return args.FirstOrDefault() switch
{
    "compat" => CompatCommand.Run(args[1..]),
    "throughput" => ThroughputCommand.Run(args[1..]),
    "jpeg" => JpegDecodeCommand.Run(args[1..]),
    "index" => IndexCommand.Run(args[1..]),
    "borders" => BordersCommand.Run(args[1..]),
    "load" => LoadCommand.Run(args[1..]),
    "native-heap" => NativeHeapCommand.Run(args[1..]),
    "reqpath" => LoadCommand.ReqPath(args[1..]),
    "review" => ReviewCommand.Run(args[1..]),
    "intake" => IntakeCommand.Run(args[1..]),
    "provenance" => ProvenanceCommand.Run(args[1..]),
    "video" => VideoCommand.Run(args[1..]),
    "model" => ModelBenchCommand.Run(args[1..]),
    "model-index" => ModelIndexStartupCommand.Run(args[1..]),
    "widen" => WidenCommand.Run(args[1..]),
    "console" => ConsoleCommand.Run(args[1..]),
    "retro" => RetroCommand.Run(args[1..]),
    "exchange" => await ExchangeCommand.RunAsync(args[1..]),
    _ => Run(args),
};

static int Run(string[] args)
{
    BenchmarkSwitcher.FromAssembly(typeof(Corpora).Assembly).Run(args);
    return 0;
}
