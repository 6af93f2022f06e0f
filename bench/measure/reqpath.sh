#!/usr/bin/env bash
# Issue 16 §6 (helper s7-reqpath): the request path of POST /v1/match outside the decoder and the index search.
# Run on the IDLE 2-core machine:
#   bench/measure/reqpath.sh REPO_ROOT            full size (~45 min: 1M bank, 3 alternating rounds of 15 s per server and variant)
#   SHORT=1 bench/measure/reqpath.sh REPO_ROOT    dry run (20k bank, 1 round of 4 s per pair)
# Each pair is two `warden serve` processes on the same bank, measured in alternating closed-loop rounds (A B, B A,
# ...) so both see the same minutes; the figure is the server's CPU µs per request (utime + stime / requests), with
# allocated KiB and GCs per request from the server's /metrics. AVX-512 off (DOTNET_EnableAVX512=0) throughout, as
# in the capacity target. Pairs (A = the defaults; B = one setting changed):
#  1. Kestrel's zero-byte wait before each receive (Warden__SocketWaitForData=true: .NET's default, this tree's off)
#  2. thread-pool spinning off (DOTNET_ThreadPool_UnfairSemaphoreSpinLimit=0 vs the runtimeconfig's value)
#  3. non-concurrent GC (DOTNET_gcConcurrent=0), 4. gen0 budget 64 MiB (DOTNET_GCgen0size=0x4000000), 5. Server GC
#  6. case intake off (the share of the match record + case intake writes), SQLite
#  7. the same pair 6 on PostgreSQL (throwaway cluster via scripts/with-postgres): server and PostgreSQL CPU
#  8. Kestrel's memory-pool block size (Warden__ReceiveBlockBytes=0: Kestrel's own 4 KiB pool), 9. TieredPGO off
set -euo pipefail
ROOT=${1:?usage: reqpath.sh REPO_ROOT}
cd "$ROOT"
SHORT=${SHORT:-0}
if [ "$SHORT" = 1 ]; then
  ENTRIES=20k; DUR=4; ROUNDS=1; WARM=5
else
  ENTRIES=1m; DUR=15; ROUNDS=3; WARM=30
fi
TMP=$(mktemp -d /tmp/warden-measure-reqpath.XXXXXX)
cleanup() { rm -rf "$TMP"; }
trap cleanup EXIT

echo "== build (Release)"
dotnet build -c Release bench/Warden.Bench -v q -nologo 2>&1 | grep -E "error|Warn|Elapsed" || true
B=$ROOT/bench/Warden.Bench/bin/Release/net10.0/Warden.Bench.dll
OUT=$TMP/out.txt
START=$(date +%s)
export DOTNET_EnableAVX512=0

pair() { # label, then extra reqpath arguments
  local label=$1; shift
  echo "-- $label" | tee -a "$OUT"
  dotnet "$B" reqpath --entries $ENTRIES --dir "$TMP" --variants full,health --duration $DUR --warmup $WARM --rounds $ROUNDS "$@" 2>&1 \
    | tee "$TMP/last.txt" | grep -E "^(A|B):|^case intake|^full|^health|summary|^  (full|health)|rror|xception" | tee -a "$OUT" || true
}

pair "1. Kestrel zero-byte wait (B: Warden__SocketWaitForData=true)" --b-env Warden__SocketWaitForData=true
pair "2. thread-pool spinning (B: DOTNET_ThreadPool_UnfairSemaphoreSpinLimit=70, .NET's default)" --b-env DOTNET_ThreadPool_UnfairSemaphoreSpinLimit=70
pair "3. GC (B: DOTNET_gcConcurrent=0)" --b-env DOTNET_gcConcurrent=0
pair "4. GC (B: DOTNET_GCgen0size=0x4000000)" --b-env DOTNET_GCgen0size=0x4000000
pair "5. GC (B: DOTNET_gcServer=1)" --b-env DOTNET_gcServer=1
pair "6. database writes, SQLite (B: case intake off)" --b-env Warden__Review__CaseIntake=false
pair "7. database writes, PostgreSQL (B: case intake off)" --pg --b-env Warden__Review__CaseIntake=false
pair "8. Kestrel memory-pool blocks (B: Warden__ReceiveBlockBytes=0, Kestrel's 4 KiB pool; A: 32 KiB)" --b-env Warden__ReceiveBlockBytes=0
pair "9. JIT (B: DOTNET_TieredPGO=0)" --b-env DOTNET_TieredPGO=0

echo
echo "================ RESULTS (reqpath.sh, SHORT=$SHORT) ================"
cat "$OUT"
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); cores $(nproc); AVX-512 features: $(grep -o 'avx512[a-z]*' /proc/cpuinfo | sort -u | tr '\n' ' ') (off in the servers: DOTNET_EnableAVX512=0)"
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg); wall time $(( $(date +%s) - START )) s"
