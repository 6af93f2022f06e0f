#!/usr/bin/env bash
# Issue 15: NCMEC first sync of 1M entries (md5+sha1+pdq each: 3M fingerprints, 1M replacement tombstones) from
# the tests' loopback fake NCMEC server (in process) into a fresh bank, through ExchangeSync as
# `warden exchange fetch` runs it, on SQLite and on PostgreSQL (scripts/with-postgres: a throwaway cluster).
# Prints entries/s, CPU, peak RSS, bytes written (/proc/self/io of the process; PostgreSQL: the server's WAL and
# data pages) and the database size. Usage: exchanges.sh REPO_ROOT   (SHORT=1: 20k entries, a dry run)
set -uo pipefail
cd "$1" || exit 2
ENTRIES=1m
[[ ${SHORT:-0} == 1 ]] && ENTRIES=20k
OUT=$(mktemp -d /tmp/warden-measure-exchanges.XXXXXX)
trap 'rm -rf "$OUT"' EXIT
echo "==> building bench/Warden.Bench (Release)"
dotnet build bench/Warden.Bench -c Release -v q -nologo >"$OUT/build.log" 2>&1 || { tail -30 "$OUT/build.log"; exit 1; }
BENCH=bench/Warden.Bench/bin/Release/net10.0/Warden.Bench.dll

run() { # $1 label, $2 db kind, rest: a command prefix (scripts/with-postgres for PostgreSQL)
  local label=$1 db=$2; shift 2
  echo "==> $label: first sync of $ENTRIES entries (load average $(cut -d' ' -f1-3 /proc/loadavg))"
  local start end rc
  start=$(date +%s.%N)
  "$@" /usr/bin/time -v -o "$OUT/$label.time" dotnet "$BENCH" exchange --entries "$ENTRIES" --commit 100k --dir "$OUT/db" --db "$db" >"$OUT/$label.log" 2>"$OUT/$label.err"
  rc=$?
  end=$(date +%s.%N)
  grep -E '^(entries=|first sync|bank:|CPU|peak RSS|PostgreSQL|\()' "$OUT/$label.log" | sed 's/^/    /'
  grep -E 'Maximum resident set size|User time|System time|Elapsed' "$OUT/$label.time" | sed 's/^\s*/    time -v: /'
  printf '    wall (whole process, feed build included) %.1f s, exit %d\n' "$(echo "$end - $start" | bc)" "$rc"
  [[ $rc -eq 0 ]] || tail -5 "$OUT/$label.err" | sed 's/^/    stderr: /'
  rm -rf "$OUT/db"
}

echo "===== exchanges: NCMEC first sync ($ENTRIES entries) ====="
echo "CPU: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); AVX-512: $(grep -o 'avx512[a-z]*' /proc/cpuinfo | sort -u | tr '\n' ' ')"
run sqlite sqlite
run postgres postgres scripts/with-postgres
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "HMA: not measured (it needs HMA's Python/PostgreSQL stack and network access to install; not available offline here)."
