#!/usr/bin/env bash
# Three nodes on one PostgreSQL (issue 16 §6): the highest open-loop rate with p99 <= 50 ms and no errors,
# case intake on, 1M-hash PDQ bank, requests round-robin over three `warden serve` processes (bench load
# --nodes 3 --find-max: a ramp of open-loop steps from START req/s up by a quarter until a step fails, then two
# bisections). The load generator, the three nodes and PostgreSQL share the machine.
#   nodes.sh REPO_ROOT            full size: about 5-8 minutes (idle 2-core machine: build check, 1M import, 3 node starts, 6-10 steps of 20 s)
#   SHORT=1 nodes.sh REPO_ROOT    dry run: 20k bank, 5 s steps
#   START=… STEP=…                override the first rate (req/s, default 200) and the step length (s)
set -uo pipefail
cd "$1" || exit 1
ROOT=$(pwd)
SHORT=${SHORT:-0}
if [[ $SHORT == 1 ]]; then
  ENTRIES=20k; START_RATE=${START:-60}; STEP=${STEP:-5}
else
  ENTRIES=1m; START_RATE=${START:-200}; STEP=${STEP:-20}
fi
T0=$(date +%s)
echo "==> building bench/Warden.Bench (Release)"
dotnet build bench/Warden.Bench -c Release -nologo -v q >/tmp/nodes-build.$$.log 2>&1 || { tail -30 /tmp/nodes-build.$$.log; rm -f /tmp/nodes-build.$$.log; exit 1; }
rm -f /tmp/nodes-build.$$.log
# shellcheck source=/dev/null
source scripts/postgres.sh
WORK=$(mktemp -d /tmp/nodes.XXXXXX)
cleanup() { stop_test_postgres; rm -rf "$WORK"; }
trap cleanup EXIT
start_test_postgres || exit 1
FEATURES=$(grep -o 'avx512[a-z]*' /proc/cpuinfo | sort -u | tr '\n' ' ')
MODEL=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)
echo "==> $(date -u +%FT%TZ) $MODEL, $(nproc) cores, AVX-512: ${FEATURES:-none}; load $(cut -d' ' -f1-3 /proc/loadavg)"
dotnet "$ROOT/bench/Warden.Bench/bin/Release/net10.0/Warden.Bench.dll" load --postgres "$WARDEN_TEST_POSTGRES" --entries "$ENTRIES" --nodes 3 \
  --find-max --rate "$START_RATE" --step "$STEP" --p99-budget 50 --dir "$WORK" | tee "$WORK/nodes.txt"
echo
echo "================ three-node results ($(date -u +%FT%TZ), wall $(( $(date +%s) - T0 )) s) ================"
echo "machine: $MODEL, $(nproc) cores, AVX-512: ${FEATURES:-none}; load average now $(cut -d' ' -f1-3 /proc/loadavg)"
echo "PostgreSQL: throwaway local cluster (fsync=off, synchronous_commit=off); bank $ENTRIES PDQ; case intake on; 3 nodes + load generator + PostgreSQL on this machine"
grep -E '^node [0-9]+ .*ready' "$WORK/nodes.txt"
grep -E '^  +[0-9]+ req/s' "$WORK/nodes.txt"
grep -E '^FIND-MAX' "$WORK/nodes.txt" || echo "FIND-MAX: no result (see the log above)"
