#!/usr/bin/env bash
# Instrumented fuzzing campaign figures for docs/fuzzing.md: every target of scripts/fuzz, coverage-guided in
# process (SharpFuzz instrumentation), one after another, from its committed seed corpus.
#   bench/measure/fuzz.sh REPO            full size: 45 s per target (~31 minutes for 37 targets, plus the build)
#   SHORT=1 bench/measure/fuzz.sh REPO    dry run: 3 s per target
# Prints one summary line per target and a results block; work folders go to a temporary directory, removed on exit.
set -euo pipefail
cd "$1"
secs=45
[[ ${SHORT:-0} == 1 ]] && secs=3
work=$(mktemp -d /tmp/warden-fuzz-measure.XXXXXX)
trap 'rm -rf "$work"' EXIT
export WARDEN_FUZZ_OUT=$work/out WARDEN_FUZZ_FINDINGS=$work/findings CONFIGURATION=Release
start=$(date +%s)
dotnet build fuzz/Warden.Fuzz -c Release -nologo -v quiet >/dev/null
scripts/fuzz --no-build --instrument >/dev/null
targets=$(dotnet fuzz/Warden.Fuzz/bin/Release/net10.0/Warden.Fuzz.dll list | awk '{print $1}')
results=$work/results.txt
: >"$results"
for t in $targets; do
  line=$(/usr/bin/time -a -o "$work/cpu.txt" -f "%U %S" scripts/fuzz --no-build --engine inproc "$t" "$secs" 2>&1 | grep -E '^target=' | tail -n 1 || true)
  echo "${line:-target=$t FAILED TO RUN}" | tee -a "$results"
done
total=$(($(date +%s) - start))
cpu=$(awk '{ u += $1; s += $2 } END { printf "user %.0f s, system %.0f s", u, s }' "$work/cpu.txt")
echo
echo "===== Warden instrumented fuzzing campaign ($secs s per target, in-process engine with SharpFuzz coverage) ====="
printf '%-26s %12s %9s %7s %7s %7s %9s\n' target executions exec/s edges crashes hangs peak_MiB
awk '{ for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
       printf "%-26s %12s %9s %7s %7s %7s %9s\n", v["target"], v["execs"], v["exec/s"], v["edges"], v["crashes"], v["hangs"], v["peak_rss_mb"]
       execs += v["execs"]; crashes += v["crashes"]; hangs += v["hangs"]; delete v }
     END { printf "total executions %d, crashes %d, hangs %d\n", execs, crashes, hangs }' "$results"
echo "targets: $(grep -c '^target=' "$results"), wall time ${total} s (build and instrumentation included), fuzzer CPU: $cpu"
echo "CPU: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); AVX-512: $(grep -o 'avx512[a-z]*' /proc/cpuinfo | sort -u | tr '\n' ' ')"
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
if [[ -d $WARDEN_FUZZ_FINDINGS ]] && find "$WARDEN_FUZZ_FINDINGS" -name '*.txt' | grep -q .; then
  echo "findings (first line of each):"
  find "$WARDEN_FUZZ_FINDINGS" -name '*.txt' -exec sed -n 2p {} \; | sort | uniq -c
fi
