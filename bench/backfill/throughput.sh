#!/usr/bin/env bash
# Backfill throughput: 1 and 2 `warden worker` processes against `warden scan` on the same files (docs/performance.md).
#   bench/backfill/throughput.sh [COPIES]   (default 60 copies of the 8 sample uploads = 480 files)
# Needs nats-server on PATH and a Release build (dotnet build src/Warden.Cli -c Release).
set -euo pipefail
cd "$(dirname "$0")/../.."
copies=${1:-60}
warden=(dotnet "$PWD/src/Warden.Cli/bin/Release/net10.0/warden.dll")
work=$(mktemp -d /tmp/warden-bf-bench.XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
nats-server -js -a 127.0.0.1 -p "$port" -sd "$work/js" >"$work/nats.log" 2>&1 &
nats_pid=$!
trap 'kill $nats_pid 2>/dev/null; rm -rf "$work"' EXIT
sleep 1
export WARDEN_NATS="nats://127.0.0.1:$port"
mkdir -p "$work/files"
for i in $(seq 1 "$copies"); do
  for f in samples/uploads/*; do cp "$f" "$work/files/$i-$(basename "$f")"; done
done
n=$(ls "$work/files" | wc -l)
"${warden[@]}" bank create demo --db "$work/w.db" >/dev/null
"${warden[@]}" bank import demo samples/demo-bank.csv --db "$work/w.db" >/dev/null

# items/s while busy: from the first item started to the last item done, over every worker's JSON lines.
rate() { python3 -c '
import json, sys
ev = [json.loads(l) for f in sys.argv[1:] for l in open(f) if l.startswith("{")]
t0 = min(e["at"] for e in ev if e["event"] == "start"); t1 = max(e["at"] for e in ev if e["event"] == "done")
done = sum(1 for e in ev if e["event"] == "done")
print(f"{done} items in {(t1 - t0) / 1000:.2f} s = {done / ((t1 - t0) / 1000):.1f} files/s")' "$@"; }

for threads in 1 2; do
  start=$(date +%s.%N)
  "${warden[@]}" scan "$work/files" --db "$work/w.db" --threads "$threads" --no-progress --format jsonl >/dev/null 2>&1 || true
  end=$(date +%s.%N)
  python3 -c "print(f'warden scan --threads $threads: $n files in {$end - $start:.2f} s = {$n / ($end - $start):.1f} files/s (process start included)')"
done

for workers in 1 2; do
  "${warden[@]}" backfill "$work/files" --queue "BENCH$workers" >/dev/null
  pids=()
  for w in $(seq 1 "$workers"); do
    "${warden[@]}" worker --db "$work/w.db" --queue "BENCH$workers" --name "w$w" --exit-when-idle 1 >"$work/w$workers-$w.out" 2>/dev/null &
    pids+=($!)
  done
  wait "${pids[@]}"
  echo -n "backfill, $workers worker(s): "; rate "$work"/w"$workers"-*.out
  # the next round must not find these items done: a fresh ledger per round
  python3 - "$work/w.db" <<'PY'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1]); c.execute("DELETE FROM backfill_items"); c.execute("DELETE FROM signal_matches"); c.commit()
PY
done
