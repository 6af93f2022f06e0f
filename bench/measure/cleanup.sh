#!/usr/bin/env bash
# Code-health clean-up before issue 16/17 close (helper s7-cleanup). Run on the IDLE 2-core machine:
#   bench/measure/cleanup.sh REPO_ROOT            full size (~3-4 min after the builds: 1M index, 20 widening passes)
#   SHORT=1 bench/measure/cleanup.sh REPO_ROOT    dry run (100k index, 2 passes)
# Before/after in the same minutes, one core pinned (taskset -c 0), process CPU beside wall time:
#  1. PDQ snapshot load (best of 3) and the loaded index's per-query µs, single and 8 variants: BASE (big segments
#     copied into huge pages at load) vs this tree (searched in the mapping, LargePages removed).
#  2. fp16/bf16 → fp32 widening, CPU ms per 16 MiB: BASE (two hand-written loops) vs this tree (WidenHalves<T>).
# "Before" runs this tree's bench against BASE's Warden.Core.dll (BASE=rev, default b8671ad: main before s7).
set -euo pipefail
ROOT=${1:?usage: cleanup.sh REPO_ROOT}
cd "$ROOT"
SHORT=${SHORT:-0}
BASE=${BASE:-b8671ad}
if [ "$SHORT" = 1 ]; then IDX=100k; Q=2000; PASSES=2; else IDX=1m; Q=20000; PASSES=20; fi
TMP=$(mktemp -d /tmp/warden-measure-cleanup.XXXXXX)
cleanup() { git worktree remove --force "$TMP/base" >/dev/null 2>&1 || true; rm -rf "$TMP"; }
trap cleanup EXIT

echo "== build (Release): this tree's bench, and Warden.Core at $BASE"
dotnet build -c Release bench/Warden.Bench -v q -nologo 2>&1 | grep -E " error |Elapsed" || true
git worktree add --detach "$TMP/base" "$BASE" >/dev/null 2>&1
dotnet build -c Release "$TMP/base/src/Warden.Core" -v q -nologo 2>&1 | grep -E " error |Elapsed" || true
cp -r bench/Warden.Bench/bin/Release/net10.0 "$TMP/after"
cp -r bench/Warden.Bench/bin/Release/net10.0 "$TMP/before"
cp "$TMP/base/src/Warden.Core/bin/Release/net10.0/Warden.Core.dll" "$TMP/before/"
OUT=$TMP/out.txt
START=$(date +%s)

for round in 1 2; do
  for v in before after; do
    echo "-- index $IDX, $v (round $round)" | tee -a "$OUT"
    taskset -c 0 dotnet "$TMP/$v/Warden.Bench.dll" index --size $IDX --queries $Q --brute 3 --snapshot "$TMP" 2>&1 \
      | grep -E "^snapshot|^loaded|rror|xception" | tee -a "$OUT" || true
  done
done
for round in 1 2 3; do
  for v in before after; do
    echo "-- widen, $v (round $round)" | tee -a "$OUT"
    taskset -c 0 dotnet "$TMP/$v/Warden.Bench.dll" widen --passes $PASSES 2>&1 | grep -E "widen|rror|xception" | tee -a "$OUT" || true
  done
done

echo
echo "================ results (cleanup.sh, $(date -u +%FT%TZ), SHORT=$SHORT, base $BASE) ================"
cat "$OUT"
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) cores; AVX-512: $(grep -o 'avx512[a-z]*' /proc/cpuinfo | sort -u | tr '\n' ' ')"
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg); measured wall time $(( $(date +%s) - START )) s"
echo "(In 'before', the index line says 'loaded (mapped)' but BASE's Load copied big segments into huge pages.)"
