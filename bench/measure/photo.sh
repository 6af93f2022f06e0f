#!/usr/bin/env bash
# Whole-process `warden hash` against Meta's C++ pdq-photo-hasher, one core, both corpora (issue 14 §1).
#   bash bench/measure/photo.sh REPO_ROOT          full run: scripts/install, then 10 passes (test) / 7 (large)
#   SHORT=1 bash bench/measure/photo.sh REPO_ROOT  dry run: 2 passes each, reuses REPO_ROOT/out if present
# REFERENCE=path to Meta's pdq-photo-hasher (default /tmp/pdq-ref/pdq-photo-hasher; docs/performance.md says how
# to build it). LARGE=corpus for the large set (default: "large" when the Debian wallpapers are installed, else
# the proxy list /tmp/large-proxy/list.txt described in docs/performance.md).
set -euo pipefail
cd "${1:?usage: photo.sh REPO_ROOT}"
reference=${REFERENCE:-/tmp/pdq-ref/pdq-photo-hasher}
if [ -z "${LARGE:-}" ]; then
  if [ -f /usr/share/wallpapers/Honeywave/contents/images/5120x2880.jpg ]; then LARGE=large; else LARGE=/tmp/large-proxy/list.txt; fi
fi
if [ "${SHORT:-0}" = 1 ]; then test_passes=2; large_passes=2; else test_passes=10; large_passes=7; fi
[ -x "$reference" ] || { echo "photo.sh: no reference binary at $reference" >&2; exit 2; }

echo "== build (scripts/install, Release, self-contained; Native AOT front end)"
start=$(date +%s)
if [ "${SHORT:-0}" = 1 ] && [ -x out/warden ]; then
  echo "   SHORT=1: reusing out/warden"
else
  scripts/install out > /tmp/photo-install.log 2>&1 || { tail -30 /tmp/photo-install.log; exit 1; }
fi
install_s=$(( $(date +%s) - start ))
echo "   install took ${install_s} s"

dotnet build bench/Warden.Bench -c Release -v q -nologo > /tmp/photo-bench-build.log 2>&1 || { tail -30 /tmp/photo-bench-build.log; exit 1; }
bench="dotnet bench/Warden.Bench/bin/Release/net10.0/Warden.Bench.dll"

echo "== test corpus (28 JPEGs), one core"
$bench throughput test --mode process --warden out/warden --reference "$reference" --passes $test_passes --cpu 0 | tee /tmp/photo-test.txt
echo "== large corpus ($LARGE), one core"
$bench throughput "$LARGE" --mode process --warden out/warden --reference "$reference" --passes $large_passes --cpu 0 | tee /tmp/photo-large.txt
echo "== in-process decode, large corpus: libvips 1/8 vs Warden's decoder (CPU ms per file, best of 3)"
taskset -c 0 $bench jpeg "$LARGE" --passes 3 | tail -1

echo
echo "===== RESULTS (photo) ====="
echo "install: ${install_s} s"
grep -h "ratio reference/warden, cpu" /tmp/photo-test.txt | sed 's/^/test:  /'
grep -h "ratio reference/warden, wall" /tmp/photo-test.txt | sed 's/^/test:  /'
grep -h "ratio reference/warden, cpu" /tmp/photo-large.txt | sed 's/^/large: /'
grep -h "ratio reference/warden, wall" /tmp/photo-large.txt | sed 's/^/large: /'
grep -h "corpus  *wall" /tmp/photo-test.txt /tmp/photo-large.txt
echo "cpu features: $(grep -o 'avx512[a-z]*\|sha_ni' /proc/cpuinfo | sort -u | tr '\n' ' ')"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
rm -f /tmp/photo-install.log /tmp/photo-bench-build.log /tmp/photo-test.txt /tmp/photo-large.txt
