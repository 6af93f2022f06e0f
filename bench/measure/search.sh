#!/usr/bin/env bash
# Issue 16 §6 (helper s6-search): cheaper POST /v1/match. Run on the IDLE 2-core machine:
#   bench/measure/search.sh REPO_ROOT            full size (~25-35 min: 1M banks, 30 s closed loops)
#   SHORT=1 bench/measure/search.sh REPO_ROOT    dry run (small banks, 5 s loops)
# Prints, per run: req/s, p50/p99, CPU µs per request of the server, PostgreSQL and the load generator, RSS.
#  1. PDQ index per-query µs at 1M (single and 8-variant; built, and the loaded snapshot searched in its 4 KiB-page
#     mapping as the server does), snapshot load time, AVX-512 off and on.
#  2. bench load closed loop, 16 connections, case intake on: PostgreSQL AVX-512 off, PostgreSQL AVX-512 on, SQLite.
#  3. Runtime settings on the PostgreSQL AVX-512-off run: Server GC, TieredPGO off, LOH threshold (uploads in gen0).
#  4. bench reqpath stages (in-process CPU per stage), AVX-512 off and on.
set -euo pipefail
ROOT=${1:?usage: search.sh REPO_ROOT}
cd "$ROOT"
SHORT=${SHORT:-0}
if [ "$SHORT" = 1 ]; then
  ENTRIES=20k; DUR=5; IDX=100k; Q=2000; ITER=100
else
  ENTRIES=1m; DUR=30; IDX=1m; Q=20000; ITER=2000
fi
TMP=$(mktemp -d /tmp/warden-measure-search.XXXXXX)
cleanup() { rm -rf "$TMP"; }
trap cleanup EXIT

echo "== build (Release)"
dotnet build -c Release bench/Warden.Bench -v q -nologo 2>&1 | grep -E "error|Warn|Elapsed" || true
B=bench/Warden.Bench/bin/Release/net10.0/Warden.Bench.dll
OUT=$TMP/out.txt
START=$(date +%s)

section() { echo; echo "######## $*" | tee -a "$OUT"; }
run() { # label, then the command; keeps the lines that carry figures (ALL=1: every line)
  local label=$1; shift
  echo "-- $label" | tee -a "$OUT"
  if [ "${ALL:-0}" = 1 ]; then
    "$@" 2>&1 | tee -a "$OUT" || echo "(exit $?)" | tee -a "$OUT"
  else
    "$@" 2>&1 | tee "$TMP/last.txt" | grep -E "single|8-var|loaded|snapshot|TOTAL|node 1|RSS|this runtime|server JIT|rror|xception" | tee -a "$OUT" || true
  fi
}

section "1. PDQ index at $IDX (one core, taskset -c 0): per-query µs"
run "AVX-512 off" env DOTNET_EnableAVX512=0 taskset -c 0 dotnet $B index --size $IDX --queries $Q --brute 3 --snapshot "$TMP"
run "AVX-512 on"  taskset -c 0 dotnet $B index --size $IDX --queries $Q --brute 3 --snapshot "$TMP"

section "2. closed loop, 16 connections, $DUR s, case intake on, $ENTRIES-hash PDQ bank"
run "PostgreSQL, AVX-512 off (server)" dotnet $B load --pg --entries $ENTRIES --closed --closed-duration $DUR --connections 16 --server-env DOTNET_EnableAVX512=0 --dir "$TMP/pg-off"
run "PostgreSQL, AVX-512 on"           dotnet $B load --pg --entries $ENTRIES --closed --closed-duration $DUR --connections 16 --dir "$TMP/pg-on"
run "SQLite, AVX-512 off (server)"     dotnet $B load --entries $ENTRIES --closed --closed-duration $DUR --connections 16 --server-env DOTNET_EnableAVX512=0 --dir "$TMP/sqlite"

section "3. runtime settings (PostgreSQL, AVX-512 off, same run as 2's first row otherwise)"
run "Server GC (DOTNET_gcServer=1)" dotnet $B load --pg --entries $ENTRIES --closed --closed-duration $DUR --connections 16 --server-env DOTNET_EnableAVX512=0 --server-env DOTNET_gcServer=1 --dir "$TMP/gcs"
run "TieredPGO off"                 dotnet $B load --pg --entries $ENTRIES --closed --closed-duration $DUR --connections 16 --server-env DOTNET_EnableAVX512=0 --server-env DOTNET_TieredPGO=0 --dir "$TMP/pgo"
run "LOH threshold 256 KiB (uploads in gen0)" dotnet $B load --pg --entries $ENTRIES --closed --closed-duration $DUR --connections 16 --server-env DOTNET_EnableAVX512=0 --server-env DOTNET_GCLOHThreshold=0x40000 --dir "$TMP/loh"

section "4. reqpath stages (in process, one thread, CPU µs per call)"
# (The stages build their bank in memory; a server loads a snapshot and searches it mapped, on 4 KiB pages.)
ALL=1 run "AVX-512 off" env DOTNET_EnableAVX512=0 dotnet $B reqpath stages --entries $ENTRIES --iterations $ITER
ALL=1 run "AVX-512 on"  dotnet $B reqpath stages --entries $ENTRIES --iterations $ITER

echo
echo "================ RESULTS (search.sh, SHORT=$SHORT) ================"
cat "$OUT"
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); cores $(nproc); AVX-512 features: $(grep -o 'avx512[a-z]*' /proc/cpuinfo | sort -u | tr '\n' ' ')"
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg); wall time $(( $(date +%s) - START )) s"
