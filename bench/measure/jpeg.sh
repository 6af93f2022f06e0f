#!/usr/bin/env bash
# In-process JPEG decode cost, libvips against Warden's own decoder, one core (issue 14 §1, issue 16 §6).
#   bash bench/measure/jpeg.sh REPO_ROOT          full run: 7 passes (best of) per set
#   SHORT=1 bash bench/measure/jpeg.sh REPO_ROOT  dry run: 1 pass
# Sets: the 64 generated 640x480 q85 JPEGs of `bench load` (full scale, and 1/4 as /v1/match decodes them: libvips
# against Warden's own decoder, with a pixel check; Warden's 1/4 and 1/8 alone also with AVX-512 off), and the
# large set (1/8 shrink-on-load, the `warden hash` path): the Debian wallpapers when installed, else the proxy list
# /tmp/large-proxy/list.txt (docs/performance.md). CPU time (clock_gettime process CPU), not wall time.
set -euo pipefail
cd "${1:?usage: jpeg.sh REPO_ROOT}"
if [ -z "${LARGE:-}" ]; then
  if [ -f /usr/share/wallpapers/Honeywave/contents/images/5120x2880.jpg ]; then LARGE=large; else LARGE=/tmp/large-proxy/list.txt; fi
fi
if [ "${SHORT:-0}" = 1 ]; then passes=1; else passes=7; fi
start=$(date +%s)
log=$(mktemp /tmp/jpeg-measure.XXXXXX)
trap 'rm -f "$log" "$log.load" "$log.large" "$log.ours" "$log.ours512"' EXIT

echo "== build bench (Release)"
dotnet build bench/Warden.Bench -c Release -v q -nologo > "$log" 2>&1 || { tail -30 "$log"; exit 1; }
bench="dotnet bench/Warden.Bench/bin/Release/net10.0/Warden.Bench.dll"

echo "== 640x480 load set: full-scale decode, and the decode as /v1/match does it"
taskset -c 0 $bench jpeg load --passes $passes | tee "$log.load"
echo "== 640x480 load set: Warden's decoder alone, AVX-512 on, then off"
taskset -c 0 $bench jpeg load-ours --passes $((passes * 2)) | tee "$log.ours"
DOTNET_EnableAVX512=0 taskset -c 0 $bench jpeg load-ours --passes $((passes * 2)) | tee "$log.ours512"
echo "== large set ($LARGE), 1/8 decode"
taskset -c 0 $bench jpeg "$LARGE" --passes $passes | tee "$log.large"

echo
echo "===== RESULTS (jpeg) ====="
grep -h "load set:" "$log.load"
echo "load set, Warden's decoder alone, AVX-512 on:  $(tr '\n' ';' < "$log.ours")"
echo "load set, Warden's decoder alone, AVX-512 off: $(tr '\n' ';' < "$log.ours512")"
echo "large set, 1/8 decode, CPU ms summed over the files (best of $passes each): $(tail -1 "$log.large")"
echo "large set files whose pixels differ from libvips: $(grep -c ' NO ' "$log.large" || true)"
echo "cpu features: $(grep -o 'avx512[a-z]*\|avx2' /proc/cpuinfo | sort -u | tr '\n' ' ')"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "wall: $(( $(date +%s) - start )) s"
