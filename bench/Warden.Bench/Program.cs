using BenchmarkDotNet.Running;
using Warden.Bench;

// Usage:
//   compat [minSide...]          distances of each pipeline from Meta's outputs
//   throughput <corpus> [...]    images/s and MB/s, one core and all cores (corpus: test | large | DIR | LIST)
//   borders [DIR]                framed/letterboxed copies: recall and false matches with the trimmed hash
//   index [--size 10m] [--data uniform|clustered] [sweep]   matching index: build, queries/s, RSS
//   model [--gib 2] [--passes 2]   model fingerprint throughput (GB/s, one core and two) on a synthetic checkpoint in /tmp
//   (anything else)              BenchmarkDotNet micro benchmarks, e.g. --filter '*Pdq*'
return args.FirstOrDefault() switch
{
    "compat" => CompatCommand.Run(args[1..]),
    "throughput" => ThroughputCommand.Run(args[1..]),
    "index" => IndexCommand.Run(args[1..]),
    "borders" => BordersCommand.Run(args[1..]),
    "model" => ModelBenchCommand.Run(args[1..]),
    _ => Run(args),
};

static int Run(string[] args)
{
    BenchmarkSwitcher.FromAssembly(typeof(Corpora).Assembly).Run(args);
    return 0;
}
