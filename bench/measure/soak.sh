#!/usr/bin/env bash
# Open-loop soak (issue 16 §6): PostgreSQL (throwaway cluster), case intake on, 1M-hash bank, one node,
# 300 req/s for 30 minutes, 60 s intervals. Each interval prints latency and RSS, then the node's GC/heap line
# (managed heap by generation, fragmentation, committed, GCs and pause time, threads, Npgsql pool) and a
# PostgreSQL line (checkpoints, WAL, autovacuum/autoanalyze by table), so a spike or an RSS step can be matched
# to its cause; then the PostgreSQL log's checkpoint and autovacuum lines with their times.
#   soak.sh REPO_ROOT            full size: about 36 minutes (idle 2-core machine): the soak, then 4 × 45 s of
#                                bench native-heap (glibc's dynamic mmap threshold vs the fixed one)
#   SHORT=1 soak.sh REPO_ROOT    dry run: 20k bank, 60 req/s, 90 s, 15 s intervals
#   RATE=… DURATION=…            override the rate (req/s) and the length (s)
#   NATIVE_HEAP=0                skip the native-heap comparison after the soak (~3 minutes)
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
# The native heap's mechanism side by side in process (bench native-heap): glibc's dynamic mmap threshold against
# the fixed one the server sets (MallocMmapThreshold), for mixed PNG/WebP/GIF/JPEG and for the soak's 640x480 JPEGs.
NH_SECONDS=45; [[ $SHORT == 1 ]] && NH_SECONDS=10
thresholds="0 131072"; [[ ${NATIVE_HEAP:-1} == 0 ]] && thresholds=""
[[ -n $thresholds ]] && echo "==> native heap side by side, $NH_SECONDS s each"
for threshold in $thresholds; do
  for mix in "--formats png,webp,gif,jpeg" "--formats jpeg --sizes 640x480"; do
    # shellcheck disable=SC2086
    r=$(dotnet "$ROOT/bench/Warden.Bench/bin/Release/net10.0/Warden.Bench.dll" native-heap --seconds "$NH_SECONDS" --interval 5 --rate 60 --threads 2 \
      --arena-max 2 --mmap-threshold "$threshold" $mix 2>&1 | grep '^RESULT')
    echo "threshold ${threshold/#0/dynamic} ${mix}: ${r#RESULT }" | tee -a "$WORK/nh.txt"
  done
done
echo
echo "================ soak results ($(date -u +%FT%TZ), wall $(( $(date +%s) - START )) s) ================"
echo "machine: $MODEL, $(nproc) cores, AVX-512: ${FEATURES:-none}; load average now $(cut -d' ' -f1-3 /proc/loadavg)"
echo "PostgreSQL: throwaway local cluster (fsync=off, synchronous_commit=off); bank $ENTRIES PDQ; case intake on; one node; $RATE req/s open loop"
grep -E '^ *[0-9]+ s ' "$WORK/soak.txt"
grep -E '^(TOTAL|RSS)' "$WORK/soak.txt"
echo "Memory and GC per interval (MiB; arena-like = glibc arena mappings in smaps; malloc = mallinfo2 of the node;"
echo "flat means RSS and arena-like level after the baseline, malloc free not climbing, gen2 low):"
python3 - "$WORK/soak.txt" <<'PY'
import re, sys
print(f"{'t':>7} {'RSS':>5} {'arena':>6} {'maps':>4} {'m.use':>6} {'m.free':>6} {'m.mapd':>6} {'heap':>5} {'gen0/1/2':>12} {'pause':>6}")
t = rss = None
for line in open(sys.argv[1], encoding="utf-8", errors="replace"):
    m = re.match(r"^ *(\d+) s .*server RSS ([\d + ]+) MiB", line)
    if m:
        t, rss = m.group(1), sum(int(x) for x in m.group(2).split("+"))
        continue
    if t is not None and re.match(r"^ +gc heap", line):
        pats = [r"arena-like (\d+) MiB", r"in (\d+) maps", r"malloc in use (\S+)", r" free (\S+) mapped", r"mapped (\S+)$", r"gc heap (\d+) MiB", r"GCs (\S+)", r"pause (\d+) ms"]
        v = [(re.search(p, line.rstrip()) or [None, "?"])[1] for p in pats]
        print(f"{t + ' s':>7} {rss:>5} {v[0]:>6} {v[1]:>4} {v[2]:>6} {v[3]:>6} {v[4]:>6} {v[5]:>5} {v[6]:>12} {v[7]:>6}")
        t = None
PY
if [[ -f $WORK/nh.txt ]]; then
  echo "native heap side by side (bench native-heap, 60 decodes/s on 2 pool threads, arena max 2; RSS after the first quarter -> end):"
  cat "$WORK/nh.txt"
fi
