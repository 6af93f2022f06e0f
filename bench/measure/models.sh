#!/usr/bin/env bash
# Issue 18 figures (docs/models.md "Scale: the near index"): `warden bench models` on the idle machine.
#  (a) near-match of one 2 GB-checkpoint-sized fingerprint (1,100 tensors, 12,000 rows) against 100,000 registered
#      models through NearIndex: index build (time, CPU, postings, memory), per-query lookup + candidate check
#      (target <= 1 s beyond hashing), peak RSS;
#  (b) scan throughput: fingerprinting a generated 2 GB fp16 safetensors on 2 cores (taskset -c 0,1; target >= 1 GB/s):
#      as `warden model scan` (SHA-256, AutoV1/V2/V3, CRC32, MFv1 tensor hashes, sketches, rows), as `warden model
#      hash` (+ BLAKE3) and the tensor work alone; GB/s (file bytes / wall) and CPU-s per GB (the stable figure);
#  (c) the server's model index start-up over a bank of 100,000 registered models (record files + sha256 entries
#      in a temp SQLite bank): built from the record files (before) and loaded from its snapshot (after).
#   bash bench/measure/models.sh REPO_ROOT           full size (~15-20 min on an idle 2-core machine, ~7 GB temp disk)
#   SHORT=1 bash bench/measure/models.sh REPO_ROOT   quick dry run (5,000 models, 0.2 GB, 2,000-model start-up)
set -euo pipefail
cd "${1:?repository root}"
short=${SHORT:-0}
if [[ $short == 1 ]]; then models=5000; gb=0.2; queries=3; startup=2000; else models=100000; gb=2; queries=9; startup=100000; fi

echo "==> building (Release)"
dotnet build src/Warden.Cli -c Release -v q -nologo >/dev/null && dotnet build bench/Warden.Bench -c Release -v q -nologo >/dev/null
W=src/Warden.Cli/bin/Release/net10.0/warden.dll
work=$(mktemp -d /tmp/warden-measure-models.XXXXXX)
cleanup() { rm -rf "$work"; }
trap cleanup EXIT
export TMPDIR="$work"   # the bench writes its hash file to the temp folder and deletes it

echo "==> (a) near index: $models registered models, $queries queries"
/usr/bin/time -v -o "$work/time-a.txt" dotnet "$W" bench models --models "$models" --queries "$queries" | tee "$work/a.txt"
a_rss=$(awk -F': ' '/Maximum resident/ {printf "%.0f", $2/1024}' "$work/time-a.txt")
a_cpu=$(awk -F': ' '/User time/ {u=$2} /System time/ {s=$2} END {printf "%.1f", u+s}' "$work/time-a.txt")

echo "==> (b) scan throughput: $gb GB fp16 safetensors on 2 cores"
/usr/bin/time -v -o "$work/time-b.txt" taskset -c 0,1 dotnet "$W" bench models --models 100 --queries 1 --hash-gb "$gb" | tee "$work/b.txt"
b_rss=$(awk -F': ' '/Maximum resident/ {printf "%.0f", $2/1024}' "$work/time-b.txt")

echo "==> (c) model index start-up: $startup registered models"
/usr/bin/time -v -o "$work/time-c.txt" dotnet bench/Warden.Bench/bin/Release/net10.0/Warden.Bench.dll model-index --models "$startup" | tee "$work/c.txt"
c_rss=$(awk -F': ' '/Maximum resident/ {printf "%.0f", $2/1024}' "$work/time-c.txt")

echo
echo "================ RESULTS: models (issue 18) ================"
echo "date:            $(date -u +%FT%TZ)  short=$short"
echo "machine:         $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "CPU features:    $(grep -o 'avx512[a-z]*' /proc/cpuinfo | sort -u | tr '\n' ' ') $(grep -qw avx2 /proc/cpuinfo && echo avx2)"
echo "load average:    $(cut -d' ' -f1-3 /proc/loadavg)"
echo "-- (a) near match against $models registered models (target: <= 1 s beyond hashing)"
grep -E '^(bank|index build|near match)' "$work/a.txt" | sed 's/^/   /'
echo "   whole process: ${a_cpu} s CPU, peak RSS ${a_rss} MiB"
echo "-- (b) scan throughput on 2 cores (target: >= 1 GB/s; CPU-s/GB is the figure a loaded machine does not distort)"
grep -E '^(hash file|fingerprint)' "$work/b.txt" | sed 's/^/   /'
echo "   peak RSS ${b_rss} MiB"
echo "-- (c) model index start-up, $startup registered models (first answer after start)"
grep -E '^(start-up bank|index start-up)' "$work/c.txt" | sed 's/^/   /'
echo "   peak RSS ${c_rss} MiB"
echo "============================================================"
