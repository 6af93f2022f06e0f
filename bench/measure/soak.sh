#!/usr/bin/env bash
# Open-loop soak (issue 16 §6): PostgreSQL (throwaway cluster), case intake on, 1M-hash bank, one node,
# 300 req/s for 30 minutes, 60 s intervals. Each interval prints latency and RSS, then the node's GC/heap line
# (managed heap by generation, fragmentation, committed, GCs and pause time, threads, Npgsql pool) and a
# PostgreSQL line (checkpoints, WAL, autovacuum/autoanalyze by table), so a spike or an RSS step can be matched
# to its cause; then the PostgreSQL log's checkpoint and autovacuum lines with their times.
#   soak.sh REPO_ROOT            full size: about 33 minutes (idle 2-core machine)
#   SHORT=1 soak.sh REPO_ROOT    dry run: 20k bank, 60 req/s, 90 s, 15 s intervals
#   RATE=… DURATION=…            override the rate (req/s) and the length (s)
set -uo pipefail
cd "$1" || exit 1
ROOT=$(pwd)
SHORT=${SHORT:-0}
if [[ $SHORT == 1 ]]; then
  ENTRIES=20k; RATE=${RATE:-60}; DURATION=${DURATION:-90}; INTERVAL=15; BASE=30
else
  ENTRIES=1m; RATE=${RATE:-300}; DURATION=${DURATION:-1800}; INTERVAL=60; BASE=120
fi
START=$(date +%s)
echo "==> building bench/Warden.Bench (Release)"
dotnet build bench/Warden.Bench -c Release -nologo -v q >/tmp/soak-build.$$.log 2>&1 || { tail -30 /tmp/soak-build.$$.log; rm -f /tmp/soak-build.$$.log; exit 1; }
rm -f /tmp/soak-build.$$.log
# shellcheck source=/dev/null
source scripts/postgres.sh
WORK=$(mktemp -d /tmp/soak.XXXXXX)
cleanup() { stop_test_postgres; rm -rf "$WORK"; }
trap cleanup EXIT
start_test_postgres || exit 1
FEATURES=$(grep -o 'avx512[a-z]*' /proc/cpuinfo | sort -u | tr '\n' ' ')
MODEL=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)
echo "==> $(date -u +%FT%TZ) $MODEL, $(nproc) cores, AVX-512: ${FEATURES:-none}; load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "==> open loop $RATE req/s for $DURATION s, $ENTRIES bank, intervals of $INTERVAL s"
dotnet "$ROOT/bench/Warden.Bench/bin/Release/net10.0/Warden.Bench.dll" load --postgres "$WARDEN_TEST_POSTGRES" --entries "$ENTRIES" --open --rate "$RATE" \
  --duration "$DURATION" --interval "$INTERVAL" --rss-baseline "$BASE" --dir "$WORK" | tee "$WORK/soak.txt"
echo "==> PostgreSQL log: checkpoints and autovacuum runs during the soak"
grep -hE 'checkpoint (starting|complete)|automatic (vacuum|analyze)' "$_pg_dir"/server.log 2>/dev/null | sed -E 's/^([0-9-]+ [0-9:.]+) [A-Z]+ \[[0-9]+\] /\1 /' | cut -c1-200 | tail -60
echo
echo "================ soak results ($(date -u +%FT%TZ), wall $(( $(date +%s) - START )) s) ================"
echo "machine: $MODEL, $(nproc) cores, AVX-512: ${FEATURES:-none}; load average now $(cut -d' ' -f1-3 /proc/loadavg)"
echo "PostgreSQL: throwaway local cluster (fsync=off, synchronous_commit=off); bank $ENTRIES PDQ; case intake on; one node; $RATE req/s open loop"
grep -E '^ *[0-9]+ s ' "$WORK/soak.txt"
grep -E '^(TOTAL|RSS)' "$WORK/soak.txt"
echo "GC per interval (heap MiB, GCs gen0/1/2, pause ms):"
grep -E '^ +gc heap' "$WORK/soak.txt" | sed -E 's/^ +gc heap ([0-9]+) MiB.*committed ([0-9]+) MiB; GCs ([^ ]+) pause ([0-9]+) ms.*threads ([0-9]+) pool.*/  heap \1 committed \2  GCs \3  pause \4 ms  pool threads \5/'
