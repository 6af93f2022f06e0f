#!/usr/bin/env bash
# Issue 17 figures: (a) retroactive match of a 10,000-entry PDQ delta against a 10M-upload log on ONE core
# (taskset -c 0; time, CPU, peak RSS; target <= 10 s), (b) backfill throughput with 1 and 2 `warden worker`s
# vs `warden scan` on the same files (targets: 2 workers >= 1.8x one; queue overhead <= 10 % of scan's time
# per file), nats-server on loopback, on two file sets:
#   "samples": the 8 sample uploads (10-117 KB, ~3 ms to hash each) x copies: the fixed per-item cost is magnified;
#   "photos":  synthetic photo-sized JPEGs made here with ffmpeg (1024x768 to 3264x2448, ~0.1-2 MB, benign test
#              patterns with grain), the size of real stored uploads.
# Every run sees the same files (page cache warmed first), a fresh copy of the same database (the demo bank), and
# leaves out process start-up (scan: minus the same process on one file; backfill: first item done -> last done).
#   bash bench/measure/retro.sh REPO_ROOT          full size (~3 min on an idle 2-core machine)
#   SHORT=1 bash bench/measure/retro.sh REPO_ROOT  quick dry run (200k uploads, fewer files)
set -euo pipefail
cd "${1:?repository root}"
short=${SHORT:-0}
if [[ $short == 1 ]]; then uploads=200k; delta=2000; copies=10; photos=2; pcopies=1; else uploads=10m; delta=10000; copies=60; photos=10; pcopies=3; fi

echo "==> building (Release)"
dotnet build bench/Warden.Bench -c Release -v q -nologo >/dev/null
dotnet build src/Warden.Cli -c Release -v q -nologo >/dev/null
B=bench/Warden.Bench/bin/Release/net10.0/Warden.Bench.dll
W=src/Warden.Cli/bin/Release/net10.0/warden.dll
work=$(mktemp -d /tmp/warden-measure-retro.XXXXXX)
nats_pid=""
cleanup() { [[ -n $nats_pid ]] && kill "$nats_pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

echo "==> (a) retroactive match, one core: $uploads uploads (merged weeks, as RetroactiveSearch keeps them), delta $delta"
/usr/bin/time -v -o "$work/time-a.txt" taskset -c 0 dotnet "$B" retro --uploads "$uploads" --data uniform --merge 7 --delta "$delta" --dir "$work/retro" | tee "$work/a.txt"
a_rss=$(awk -F': ' '/Maximum resident/ {printf "%.0f", $2/1024}' "$work/time-a.txt")
m=$(grep -oE '[0-9.]+ s wall, [0-9.]+ s CPU' "$work/a.txt" || true)

echo "==> (b) backfill throughput: file sets"
mkdir -p "$work/samples" "$work/photos" "$work/gen"
for i in $(seq 1 "$copies"); do for f in samples/uploads/*; do cp "$f" "$work/samples/$i-$(basename "$f")"; done; done
# Photo-sized JPEGs: $photos distinct frames per size class; grain makes them compress like camera photos.
k=0
for spec in "1024x768 testsrc2 6 4" "1600x1200 mandelbrot 8 4" "2048x1536 testsrc2 14 3" "3264x2448 testsrc2 20 3"; do
  read -r size src grain q <<<"$spec"; k=$((k + 1))
  ffmpeg -loglevel error -f lavfi -i "$src=size=$size:rate=1,noise=alls=$grain:allf=t+u" -frames:v "$photos" -q:v "$q" "$work/gen/$k-%03d.jpg"
done
for i in $(seq 1 "$pcopies"); do for f in "$work"/gen/*.jpg; do cp "$f" "$work/photos/$i-$(basename "$f")"; done; done
dotnet "$W" bank create demo --db "$work/base.db" >/dev/null
dotnet "$W" bank import demo samples/demo-bank.csv --db "$work/base.db" >/dev/null
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
nats-server -js -a 127.0.0.1 -p "$port" -sd "$work/js" >"$work/nats.log" 2>&1 &
nats_pid=$!
for _ in $(seq 1 50); do grep -q "Server is ready" "$work/nats.log" && break; sleep 0.1; done
export WARDEN_NATS="nats://127.0.0.1:$port"

python3 - "$W" "$work" "$short" "$uploads" "$delta" "${m:-}" "$a_rss" <<'PY'
import glob, json, os, resource, shutil, subprocess, sys, time
W, work, short, uploads, delta, a_line, a_rss = sys.argv[1:8]
runs = 1 if short == "1" else 3

def cpu_children():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime

def warm(folder):
    for f in os.listdir(folder):
        with open(os.path.join(folder, f), "rb") as h:
            while h.read(1 << 20):
                pass

def fresh_db(tag):
    db = os.path.join(work, f"run-{tag}.db")
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(db + suffix):
            os.remove(db + suffix)
    shutil.copy(os.path.join(work, "base.db"), db)
    return db

def scan(folder, threads, pin):
    """Seconds and CPU seconds per file, start-up excluded: the run on the folder minus the same run on one file."""
    one = os.path.join(work, "one-" + os.path.basename(folder))
    os.makedirs(one, exist_ok=True)
    first = sorted(os.listdir(folder))[0]
    shutil.copy(os.path.join(folder, first), one)
    n = len(os.listdir(folder))
    db = fresh_db("scan")
    def run(path):
        c0, t0 = cpu_children(), time.perf_counter()
        subprocess.run((["taskset", "-c", "0"] if pin else []) + ["dotnet", W, "scan", path, "--db", db, "--threads", str(threads), "--no-progress", "--format", "jsonl"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return time.perf_counter() - t0, cpu_children() - c0
    base = min(run(one) for _ in range(runs)); full = min(run(folder) for _ in range(runs))
    return (full[0] - base[0]) / (n - 1), (full[1] - base[1]) / (n - 1)

queue_no = [0]
def backfill(folder, workers, threads, pin):
    """(seconds per item from the first item done to the last, items in that window, CPU ms per item while busy, stages ms per item)."""
    queue_no[0] += 1
    q = f"M{queue_no[0]}"
    db = fresh_db(q)
    subprocess.run(["dotnet", W, "backfill", folder, "--queue", q], check=True, stdout=subprocess.DEVNULL)
    procs = []
    for w in range(workers):
        out = open(os.path.join(work, f"{q}-{w}.out"), "w")
        cmd = ["dotnet", W, "worker", "--db", db, "--queue", q, "--name", f"w{w}", "--exit-when-idle", "1", "--threads", str(threads)]
        if pin:
            cmd = ["taskset", "-c", str(w % os.cpu_count())] + cmd
        procs.append((subprocess.Popen(cmd, stdout=out, stderr=subprocess.DEVNULL), out))
    for p, out in procs:
        p.wait(); out.close()
    ev = [json.loads(l) for f in glob.glob(os.path.join(work, f"{q}-*.out")) for l in open(f) if l.startswith("{")]
    dones = sorted(e["at"] for e in ev if e["event"] == "done")
    stats = [e for e in ev if e["event"] == "stats"]
    busy_items = sum(s["busy_items"] for s in stats)
    cpu = sum(s["busy_cpu_ms"] for s in stats) / max(1, busy_items)
    stages = {k: sum(s["stages_ms"][k] for s in stats) / max(1, sum(s["items"] for s in stats)) for k in stats[0]["stages_ms"]}
    return (dones[-1] - dones[0]) / 1000 / (len(dones) - 1), len(dones) - 1, cpu, stages

results = []
for name in ("samples", "photos"):
    folder = os.path.join(work, name)
    n = len(os.listdir(folder))
    sizes = [os.path.getsize(os.path.join(folder, f)) for f in os.listdir(folder)]
    warm(folder)
    s1p = scan(folder, 1, True)       # one core, one thread: the overhead's reference
    s1 = scan(folder, 1, False)
    s2 = scan(folder, 2, False)
    b1p = backfill(folder, 1, 1, True)   # one worker, one thread, pinned to core 0 like s1p
    b1 = backfill(folder, 1, 1, False)
    b2 = backfill(folder, 2, 1, False)
    b2p = backfill(folder, 2, 1, True)   # worker i on core i
    bt = backfill(folder, 1, 2, False)   # one worker, two hashing threads (the default on 2 cores)
    results.append((name, n, sum(sizes) / n / 1024, min(sizes) / 1024, max(sizes) / 1024, s1p, s1, s2, b1p, b1, b2, b2p, bt))

print("\n===== RESULTS: retroactive matching and backfill (issue 17) =====")
if a_line:
    wall, cpu = a_line.split(" s wall, ")[0], a_line.split(" s wall, ")[1].split(" ")[0]
    print(f"(a) retroactive {delta}-entry delta vs {uploads}-upload log, one core (taskset -c 0): query {wall} s wall, {cpu} s CPU; peak RSS of the whole run {a_rss} MB; target <= 10 s: {'MET' if float(wall) <= 10 else 'NOT MET'}")
print("(b) backfill vs warden scan, SQLite, demo bank, nats-server on loopback; times per file, start-up excluded")
for name, n, avg, lo, hi, s1p, s1, s2, b1p, b1, b2, b2p, bt in results:
    ms = lambda s: s * 1000
    print(f"  [{name}] {n} files, {avg:.0f} KB average ({lo:.0f}-{hi:.0f} KB)")
    print(f"    warden scan --threads 1, pinned to core 0 : {ms(s1p[0]):7.2f} ms/file wall, {ms(s1p[1]):6.2f} ms CPU/file")
    print(f"    warden scan --threads 1                   : {ms(s1[0]):7.2f} ms/file wall, {ms(s1[1]):6.2f} ms CPU/file")
    print(f"    warden scan --threads 2                   : {ms(s2[0]):7.2f} ms/file wall, {ms(s2[1]):6.2f} ms CPU/file")
    print(f"    backfill 1 worker --threads 1, core 0     : {ms(b1p[0]):7.2f} ms/file wall ({b1p[1]} items), {b1p[2]:6.2f} ms CPU/item")
    print(f"    backfill 1 worker --threads 1             : {ms(b1[0]):7.2f} ms/file wall ({b1[1]} items), {b1[2]:6.2f} ms CPU/item")
    print(f"    backfill 2 workers --threads 1            : {ms(b2[0]):7.2f} ms/file wall ({b2[1]} items), {b2[2]:6.2f} ms CPU/item")
    print(f"    backfill 2 workers --threads 1, cores 0+1 : {ms(b2p[0]):7.2f} ms/file wall ({b2p[1]} items), {b2p[2]:6.2f} ms CPU/item")
    print(f"    backfill 1 worker --threads 2             : {ms(bt[0]):7.2f} ms/file wall ({bt[1]} items), {bt[2]:6.2f} ms CPU/item")
    print(f"    worker stages, ms per item (1 worker, 1 thread, core 0): " + ", ".join(f"{k} {v:.3f}" for k, v in b1p[3].items()))
    print(f"    2 workers / 1 worker = {b1[0] / b2[0]:.2f}x unpinned, {b1p[0] / b2p[0]:.2f}x pinned (target >= 1.8x)")
    print(f"    queue overhead per file = (1 worker - scan), both one thread on core 0 = {(b1p[0] - s1p[0]) / s1p[0] * 100:.1f} % wall, "
          f"{(b1p[2] - ms(s1p[1])) / ms(s1p[1]) * 100:.1f} % CPU (target <= 10 %)")
PY
echo "CPU features: $(grep -o 'avx512[a-z]*' /proc/cpuinfo | sort -u | tr '\n' ' ')"
echo "cores: $(nproc); load average: $(cut -d' ' -f1-3 /proc/loadavg)"
