#!/usr/bin/env bash
# Issue 17 figures: (a) retroactive match of a 10,000-entry PDQ delta against a 10M-upload log on ONE core
# (taskset -c 0; time, CPU, peak RSS; target <= 10 s), (b) backfill throughput with 1 and 2 `warden worker`s
# vs `warden scan` on the same files (targets: 2 workers >= 1.8x one; queue overhead <= 10 % of scan's time
# per file), nats-server on loopback, on two file sets:
#   "photos":  synthetic photo-sized JPEGs made here with ffmpeg (1024x768 to 3264x2448, ~0.1-2 MB, benign test
#              patterns with grain), the size of real stored uploads: the representative set;
#   "samples": the 8 sample uploads (10-117 KB, ~3 ms to hash each) x copies: the fixed per-item cost is magnified.
# Backfill workers are long-running services, so the headline figure is the STEADY STATE: the workers start on a
# queue holding a warm-up set (~WARM items per worker: process start, JIT tier-up, libvips init, NATS connect) and
# then the measured set; the rate is taken over the measured items only (last warm-up item done -> last measured item
# done), and CPU per item (worker threads by kind, nats-server) over the same window from /proc. `warden scan` is
# measured the same way: (scan of warm-up + measured files) - (scan of the warm-up files), per measured file. The old
# end-to-end figure (cold workers, first item done -> last done, every item) is printed beside it.
# Every run sees the same files (page cache warmed first) and a fresh copy of the same database (the demo bank).
# Builds (BUILDS, default "jit r2r" full size, "jit" with SHORT=1): "jit" = `dotnet build` output run as `dotnet warden.dll`;
# "r2r" = the self-contained ReadyToRun build `scripts/install` publishes (warden-full, what an operator runs), photos
# only; `warden scan` and the workers always come from the same build, so each comparison is like for like.
# `warden worker` runs with dynamic PGO off (it re-executes itself with DOTNET_TieredPGO=0; docs/operations.md).
#   bash bench/measure/retro.sh REPO_ROOT          full size (~10 min on an idle 2-core machine: ~6 the JIT build, ~4 publishing and measuring the ReadyToRun one)
#   SHORT=1 bash bench/measure/retro.sh REPO_ROOT  quick dry run (200k uploads, few files)
#   RETRO=0 SETS=photos BUILDS=jit ...            only part (b), only the photos, only the JIT build
#   WORKER_ENV="DOTNET_GCgen0size=0x400000" ...   extra environment for scan and workers alike (A/B a runtime setting)
set -euo pipefail
cd "${1:?repository root}"
short=${SHORT:-0}
if [[ $short == 1 ]]; then builds=${BUILDS:-jit}; else builds=${BUILDS:-jit r2r}; fi
# photos: $photos distinct frames per size class x $pcopies copies measured, plus warm-up copies; samples: 8 x $copies.
if [[ $short == 1 ]]; then uploads=200k; delta=2000; copies=10; photos=2; pcopies=4; warm=24; else uploads=10m; delta=10000; copies=150; photos=25; pcopies=8; warm=300; fi

echo "==> building (Release)"
dotnet build bench/Warden.Bench -c Release -v q -nologo >/dev/null
dotnet build src/Warden.Cli -c Release -v q -nologo >/dev/null
B=bench/Warden.Bench/bin/Release/net10.0/Warden.Bench.dll
W=src/Warden.Cli/bin/Release/net10.0/warden.dll
work=$(mktemp -d /tmp/warden-measure-retro.XXXXXX)
if [[ " $builds " == *" r2r "* ]]; then
  echo "==> publishing the ReadyToRun build (as scripts/install; a few minutes)"
  dotnet publish src/Warden.Cli -c Release -r linux-x64 -o "$work/r2r" -nologo -v q >/dev/null
fi
nats_pid=""
cleanup() { [[ -n $nats_pid ]] && kill "$nats_pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

if [[ ${RETRO:-1} == 1 ]]; then
echo "==> (a) retroactive match, one core: $uploads uploads (merged weeks, as RetroactiveSearch keeps them), delta $delta"
/usr/bin/time -v -o "$work/time-a.txt" taskset -c 0 dotnet "$B" retro --uploads "$uploads" --data uniform --merge 7 --delta "$delta" --dir "$work/retro" | tee "$work/a.txt"
a_rss=$(awk -F': ' '/Maximum resident/ {printf "%.0f", $2/1024}' "$work/time-a.txt")
m=$(grep -oE '[0-9.]+ s wall, [0-9.]+ s CPU' "$work/a.txt" || true)
else a_rss=0; m=""; fi

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
# Warm-up sets (same content, other names, so other idempotency keys): $warm items per worker, 2 workers at most.
# The samples hash ~4x faster than the photos: 3x as many warm-up items give the JIT's tier-up as long.
for set in samples photos; do
  mkdir -p "$work/warm-$set"; files=("$work/$set"/*); n=0; want=$((2 * warm)); [[ $set == samples ]] && want=$((6 * warm))
  while [[ $n -lt $want ]]; do for f in "${files[@]}"; do [[ $n -ge $want ]] && break; ln "$f" "$work/warm-$set/w$n-$(basename "$f")"; n=$((n + 1)); done; done
done
dotnet "$W" bank create demo --db "$work/base.db" >/dev/null
dotnet "$W" bank import demo samples/demo-bank.csv --db "$work/base.db" >/dev/null
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
: >"$work/nats.log"
nats-server -js -a 127.0.0.1 -p "$port" -sd "$work/js" >"$work/nats.log" 2>&1 &
nats_pid=$!
for _ in $(seq 1 50); do grep -q "Server is ready" "$work/nats.log" && break; sleep 0.1; done
export WARDEN_NATS="nats://127.0.0.1:$port"

python3 - "$W" "$work" "$short" "$uploads" "$delta" "${m:-}" "$a_rss" "$nats_pid" "$warm" "$builds" "${SETS:-photos samples}" <<'PY'
import collections, glob, json, os, resource, shutil, subprocess, sys, time
W, work, short, uploads, delta, a_line, a_rss, nats_pid, warm, builds, sets = sys.argv[1:12]
# WORKER_ENV="NAME=VALUE ...": extra environment for `warden scan` and the workers alike (A/B of runtime settings,
# e.g. DOTNET_GCgen0size=0x400000 or DOTNET_TieredPGO=1), printed with the results.
EXTRA = dict(kv.split("=", 1) for kv in os.environ.get("WORKER_ENV", "").split())
ENV = dict(os.environ, **EXTRA)
BUILDS = {"jit": ["dotnet", W], "r2r": [os.path.join(work, "r2r", "warden")]}
CMD = BUILDS["jit"]
nats_pid, warm = int(nats_pid), int(warm)
runs = 1 if short == "1" else 2
HZ = os.sysconf("SC_CLK_TCK")

def cpu_children():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime

def warm_cache(folder):
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

def kind(thread):
    # .NET names its threads (/proc/PID/task/*/comm, cut to 15 characters): the JIT's tier-up worker (".NET Tiered Com"),
    # GC threads (".NET BGC", ".NET Server GC"), thread-pool workers (where items are hashed), the main thread (named
    # after the executable: dotnet, or warden-full for the published build).
    if thread.startswith(".NET Tiered"): return "jit"
    if "GC" in thread: return "gc"
    if thread.startswith("libvips") or thread.startswith("vips"): return "libvips"
    if thread.startswith(".NET TP") or thread in ("dotnet", "warden", "warden-full"): return "work"
    return "other"

def thread_cpu(pid):
    """CPU seconds per thread kind of a live process (/proc/PID/task/*/stat utime + stime). Threads that have exited
    (libvips and glib pool threads come and go) are gone from task/, but the process total keeps their time: the
    difference is counted as "other" (before, it was lost, and a thread exiting inside the window even gave a
    negative figure)."""
    out = collections.Counter()
    try:
        total = proc_cpu(pid)
    except OSError:
        return out
    for t in glob.glob(f"/proc/{pid}/task/*"):
        try:
            name = open(t + "/comm").read().strip()
            f = open(t + "/stat").read().rsplit(")", 1)[1].split()
            out[kind(name)] += (int(f[11]) + int(f[12])) / HZ
        except (OSError, IndexError):
            pass
    out["other"] += max(0.0, total - sum(out.values()))
    return out

def proc_counts(pid):
    """Minor page faults (process total) and context switches (voluntary, involuntary; summed over live threads)."""
    out = collections.Counter()
    try:
        out["minflt"] = int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[7])
    except (OSError, IndexError):
        pass
    for t in glob.glob(f"/proc/{pid}/task/*"):
        try:
            for line in open(t + "/status"):
                if line.startswith("voluntary_ctxt_switches:"): out["vcsw"] += int(line.split()[1])
                elif line.startswith("nonvoluntary_ctxt_switches:"): out["ivcsw"] += int(line.split()[1])
        except (OSError, IndexError, ValueError):
            pass
    return out

def proc_cpu(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / HZ

def scan(folder, threads, pin, mode):
    """Seconds and CPU seconds per measured file. mode "steady": (warm-up + measured files) - (warm-up files);
    mode "start": all files - one file (process start-up excluded, JIT tier-up included: the old figure)."""
    n = len(os.listdir(folder))
    if mode == "steady":
        base_paths, full_paths = [folder + "-warm1"], [folder + "-warm1", folder]
    else:
        one = os.path.join(work, "one-" + os.path.basename(folder))
        os.makedirs(one, exist_ok=True)
        shutil.copy(os.path.join(folder, sorted(os.listdir(folder))[0]), one)
        base_paths, full_paths, n = [one], [folder], n - 1
    db = fresh_db("scan")
    def run(paths):
        c0, t0 = cpu_children(), time.perf_counter()
        subprocess.run((["taskset", "-c", "0"] if pin else []) + CMD + ["scan", *paths, "--db", db, "--threads", str(threads), "--no-progress", "--format", "jsonl"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
        return time.perf_counter() - t0, cpu_children() - c0
    base = min(run(base_paths) for _ in range(runs)); full = min(run(full_paths) for _ in range(runs))
    return (full[0] - base[0]) / n, (full[1] - base[1]) / n

queue_no = [0]
def backfill(folder, workers, threads, pin):
    """Workers start on a queue holding warm-up items then the measured ones. Returns a dict of per-item figures."""
    queue_no[0] += 1
    q = f"M{queue_no[0]}"
    db = fresh_db(q)
    warm_folder = folder + f"-warm{workers}"
    nwarm, n = len(os.listdir(warm_folder)), len(os.listdir(folder))
    subprocess.run(CMD + ["backfill", warm_folder, "--queue", q], check=True, stdout=subprocess.DEVNULL)
    subprocess.run(CMD + ["backfill", folder, "--queue", q], check=True, stdout=subprocess.DEVNULL)
    procs, outs = [], []
    t_start = time.time()
    for w in range(workers):
        path = os.path.join(work, f"{q}-{w}.out")
        out = open(path, "w"); outs.append(path)
        cmd = CMD + ["worker", "--db", db, "--queue", q, "--name", f"w{w}", "--exit-when-idle", "2", "--threads", str(threads), "--stats-seconds", "0.2"]
        if pin:
            cmd = ["taskset", "-c", str(w % os.cpu_count())] + cmd
        procs.append((subprocess.Popen(cmd, stdout=out, stderr=subprocess.DEVNULL, env=ENV), out))
    # Count done lines incrementally (the poller must not take CPU from the workers it measures).
    readers, count, rest = [open(p, "rb") for p in outs], [0], [b""] * len(outs)
    def dones():
        for i, r in enumerate(readers):
            chunk = rest[i] + r.read()
            cut = chunk.rfind(b"\n") + 1          # whole lines only: a line being written is counted next time
            count[0] += chunk[:cut].count(b'"event":"done"')
            rest[i] = chunk[cut:]
        return count[0]
    samples = []
    for mark in (nwarm, nwarm + n):
        while dones() < mark and any(p.poll() is None for p, _ in procs):
            time.sleep(0.02)
        samples.append(([thread_cpu(p.pid) for p, _ in procs], proc_cpu(nats_pid), [proc_counts(p.pid) for p, _ in procs]))
    for p, out in procs:
        p.wait(); out.close()
    for r in readers:
        r.close()
    ev = [json.loads(l) for p in outs for l in open(p) if l.startswith("{")]
    d = sorted(e["at"] for e in ev if e["event"] == "done")
    (c0, n0, k0), (c1, n1, k1) = samples
    counts = collections.Counter()
    for a, b in zip(k0, k1):
        for k in b:
            counts[k] += b[k] - a.get(k, 0)
    cpu = collections.Counter()
    for a, b in zip(c0, c1):
        for k in set(a) | set(b):
            cpu[k] += b.get(k, 0) - a.get(k, 0)
    # Stages in the measured window: each worker's exit totals minus its last running totals before the window.
    mark = d[nwarm - 1]
    stages, items, gcs = collections.Counter(), 0, collections.Counter()
    for p in outs:
        lines = [json.loads(l) for l in open(p) if l.startswith("{")]
        end = next(e for e in lines if e["event"] == "stats")
        before = [e for e in lines if e["event"] == "stats_so_far" and e["at"] <= mark]
        start = before[-1] if before else {"items": 0, "stages_ms": {k: 0 for k in end["stages_ms"]}}
        items += end["items"] - start["items"]
        for k in end["stages_ms"]:
            stages[k] += end["stages_ms"][k] - start["stages_ms"][k]
        for k in ("allocated_mb", "gc0", "gc1", "gc2"):
            if k in end:
                gcs[k] += end[k] - start.get(k, 0)
    stages = {k: v / max(1, items) for k, v in stages.items()}
    gcs = {k: v / max(1, items) for k, v in gcs.items()}
    return {
        "steady": (d[-1] - d[nwarm - 1]) / 1000 / n,             # s per measured item, warm workers
        "old": (d[-1] - d[0]) / 1000 / (len(d) - 1),              # s per item, cold workers, first done -> last done
        "drained": (d[-1] / 1000 - t_start) / len(d),             # s per item, worker start -> last done
        "cpu": {k: v / n * 1000 for k, v in cpu.items()},         # ms per measured item, by thread kind
        "nats": (n1 - n0) / n * 1000,                             # ms per measured item
        "counts": {k: v / n for k, v in counts.items()},         # minor faults, context switches per measured item (workers)
        "stages": stages, "n": n, "items": len(d), "gc": gcs,
    }

def show_cpu(c):
    return f"{sum(c.values()):6.2f} ms CPU/item (" + ", ".join(f"{k} {c.get(k, 0):.2f}" for k in ("work", "libvips", "jit", "gc", "other")) + ")"

results = []
for name in ("photos", "samples"):
    folder = os.path.join(work, name)
    # Warm-up folders: warm1 (one worker; scan's baseline), warm2 (two workers: each gets about as many).
    os.makedirs(folder + "-warm1", exist_ok=True); os.makedirs(folder + "-warm2", exist_ok=True)
    for i, f in enumerate(sorted(os.listdir(os.path.join(work, "warm-" + name)))):
        os.link(os.path.join(work, "warm-" + name, f), os.path.join(folder + "-warm2", f))
        if i < warm * (3 if name == "samples" else 1):
            os.link(os.path.join(work, "warm-" + name, f), os.path.join(folder + "-warm1", f))
for build, name in [(b, s) for b in builds.split() for s in sets.split() if b == "jit" or s == "photos"]:
    CMD = BUILDS[build]
    folder = os.path.join(work, name)
    n = len(os.listdir(folder))
    sizes = [os.path.getsize(os.path.join(folder, f)) for f in os.listdir(folder)]
    warm_cache(folder); warm_cache(folder + "-warm2")
    r = {"n": n, "avg": sum(sizes) / n / 1024, "lo": min(sizes) / 1024, "hi": max(sizes) / 1024}
    r["s1p"] = scan(folder, 1, True, "steady")     # one core, one thread: the overhead's reference
    r["s1p_old"] = scan(folder, 1, True, "start")
    r["s1"] = scan(folder, 1, False, "steady")
    r["s2"] = scan(folder, 2, False, "steady")
    r["b1p"] = backfill(folder, 1, 1, True)        # one worker, one thread, pinned to core 0 like s1p
    r["b1"] = backfill(folder, 1, 1, False)
    r["b2"] = backfill(folder, 2, 1, False)
    r["b2p"] = backfill(folder, 2, 1, True)        # worker i on core i
    r["bt"] = backfill(folder, 1, 2, False)        # one worker, two hashing threads (the default on 2 cores)
    results.append((f"{name}, {build} build", r))

ms = lambda s: s * 1000
print("\n===== RESULTS: retroactive matching and backfill (issue 17) =====")
if a_line:
    wall, cpu = a_line.split(" s wall, ")[0], a_line.split(" s wall, ")[1].split(" ")[0]
    print(f"(a) retroactive {delta}-entry delta vs {uploads}-upload log, one core (taskset -c 0): query {wall} s wall, {cpu} s CPU; peak RSS of the whole run {a_rss} MB; target <= 10 s: {'MET' if float(wall) <= 10 else 'NOT MET'}")
print("(b) backfill vs warden scan, SQLite (in the worker process), demo bank, nats-server on loopback, per file." + (f" Extra environment (WORKER_ENV): {EXTRA}" if EXTRA else ""))
print(f"    STEADY = workers already up and warm ({warm} warm-up items per worker first), last warm-up item done -> last measured done;")
print("    scan: (warm-up + measured) - (warm-up alone). OLD = cold workers, first item done -> last done over every item (the earlier figure).")
for name, r in results:
    print(f"  [{name}] {r['n']} measured files, {r['avg']:.0f} KB average ({r['lo']:.0f}-{r['hi']:.0f} KB)")
    print(f"    warden scan --threads 1, core 0           : {ms(r['s1p'][0]):7.2f} ms/file wall, {ms(r['s1p'][1]):6.2f} ms CPU/file (steady); "
          f"{ms(r['s1p_old'][0]):.2f} ms, {ms(r['s1p_old'][1]):.2f} ms CPU (all files - one file)")
    print(f"    warden scan --threads 1                   : {ms(r['s1'][0]):7.2f} ms/file wall, {ms(r['s1'][1]):6.2f} ms CPU/file")
    print(f"    warden scan --threads 2                   : {ms(r['s2'][0]):7.2f} ms/file wall, {ms(r['s2'][1]):6.2f} ms CPU/file")
    for key, label in (("b1p", "1 worker --threads 1, core 0    "), ("b1", "1 worker --threads 1            "), ("b2", "2 workers --threads 1           "),
                       ("b2p", "2 workers --threads 1, cores 0+1"), ("bt", "1 worker --threads 2            ")):
        b = r[key]
        print(f"    backfill {label} : {ms(b['steady']):7.2f} ms/file steady (old {ms(b['old']):.2f}, start->drained {ms(b['drained']):.2f}); "
              f"workers {show_cpu(b['cpu'])}; nats-server {b['nats']:.2f} ms CPU/item; "
              f"per item: {b['counts'].get('minflt', 0):.0f} minor faults, {b['counts'].get('vcsw', 0):.1f} voluntary + {b['counts'].get('ivcsw', 0):.1f} involuntary context switches, "
              f"{b['gc'].get('allocated_mb', 0) * 1024:.0f} KB managed allocation, {b['gc'].get('gc0', 0) * 100:.1f} gen0 / {b['gc'].get('gc1', 0) * 100:.1f} gen1 / {b['gc'].get('gc2', 0) * 100:.1f} gen2 GCs per 100 items")
    st = r["b1p"]["stages"]
    db = sum(st[k] for k in ("ledger_check", "log_write", "ledger_write", "match_write", "begin_commit"))
    print("    worker stages, ms per item (1 worker, 1 thread, core 0; steady window): " + ", ".join(f"{k} {v:.3f}" for k, v in st.items()))
    print(f"    hash stage in the worker (steady) {st['hash']:.2f} ms/item vs warden scan's whole time per file {ms(r['s1p'][0]):.2f} ms (steady), {ms(r['s1p_old'][0]):.2f} ms (all - one)")
    print(f"    database (SQLite, in the worker: ledger check + log/ledger/match writes + commit) {db:.3f} ms/item; nats-server {r['b1p']['nats']:.2f} ms CPU/item")
    print(f"    2 workers / 1 worker STEADY = {r['b1']['steady'] / r['b2']['steady']:.2f}x unpinned, {r['b1p']['steady'] / r['b2p']['steady']:.2f}x pinned (target >= 1.8x); "
          f"OLD end-to-end {r['b1']['old'] / r['b2']['old']:.2f}x unpinned, {r['b1p']['old'] / r['b2p']['old']:.2f}x pinned")
    wcpu = sum(r["b1p"]["cpu"].values())
    print(f"    queue overhead per file (1 worker vs scan, one thread, core 0, steady) = {(r['b1p']['steady'] - r['s1p'][0]) / r['s1p'][0] * 100:.1f} % wall, "
          f"{(wcpu - ms(r['s1p'][1])) / ms(r['s1p'][1]) * 100:.1f} % CPU in the worker, {(wcpu + r['b1p']['nats'] - ms(r['s1p'][1])) / ms(r['s1p'][1]) * 100:.1f} % CPU with nats-server (target <= 10 %)")
PY
echo "CPU features: $(grep -o 'avx512[a-z]*' /proc/cpuinfo | sort -u | tr '\n' ' ')"
echo "cores: $(nproc); load average: $(cut -d' ' -f1-3 /proc/loadavg)"
