using System.Diagnostics;
using System.Globalization;
using Warden.Core.ModelFiles;

namespace Warden.Bench;

/// <summary>
/// `widen [--passes 10]`: fp16 and bf16 → canonical fp32 widening (<see cref="TensorValues.Widen"/>) over 16 MiB of
/// random 16-bit patterns (NaNs, ±0, ±Inf and subnormals among them): best of 5 rounds of N passes, in process CPU
/// and wall time. Pin it to one core (taskset -c 0) and compare before/after in the same minutes.
/// </summary>
internal static class WidenCommand
{
    public static int Run(string[] args)
    {
        var passes = int.Parse(args.SkipWhile(a => a != "--passes").Skip(1).FirstOrDefault() ?? "10", CultureInfo.InvariantCulture);
        const int values = 8 << 20;
        var src = new byte[2 * values];
        new Random(1).NextBytes(src);
        var dst = new float[values];
        foreach (var t in new[] { TensorDType.F16, TensorDType.BF16 })
        {
            // Warm-up: the widening is fully optimised from its first call, the rest of this loop is not.
            for (var w = 0; w < 3; w++)
            {
                TensorValues.Widen(src, t, dst);
            }

            var cpu = double.MaxValue;
            var wall = double.MaxValue;
            for (var round = 0; round < 5; round++)
            {
                var process = Process.GetCurrentProcess();
                var cpu0 = process.TotalProcessorTime;
                var sw = Stopwatch.StartNew();
                for (var i = 0; i < passes; i++)
                {
                    TensorValues.Widen(src, t, dst);
                }

                wall = Math.Min(wall, sw.Elapsed.TotalSeconds);
                process.Refresh();
                cpu = Math.Min(cpu, (process.TotalProcessorTime - cpu0).TotalSeconds);
            }

            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"widen {t,-5} {cpu / passes * 1e3:F2} ms CPU, {wall / passes * 1e3:F2} ms wall per 16 MiB ({passes * 16.0 / 1024 / cpu:F2} GB/s of input per CPU-s)"));
        }

        return 0;
    }
}
