using BenchmarkDotNet.Running;
using Warden.Bench;

// Usage:
//   compat [minSide...]          distances of each pipeline from Meta's outputs
//   throughput <corpus> [...]    images/s and MB/s, one core and all cores (corpus: test | large | DIR | LIST)
//   (anything else)              BenchmarkDotNet micro benchmarks, e.g. --filter '*Pdq*'
return args.FirstOrDefault() switch
{
    "compat" => CompatCommand.Run(args[1..]),
    "throughput" => ThroughputCommand.Run(args[1..]),
    _ => Run(args),
};

static int Run(string[] args)
{
    BenchmarkSwitcher.FromAssembly(typeof(Corpora).Assembly).Run(args);
    return 0;
}
