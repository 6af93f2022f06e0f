# shellcheck shell=bash
# Sourced by scripts/test and scripts/with-postgres: a throwaway PostgreSQL cluster for the tests.
#
#   start_test_postgres   installs Debian's postgresql when missing, creates a cluster in a temp dir owned by
#                         the postgres user (initdb refuses root), starts it on a free 127.0.0.1 port with its
#                         unix socket in that dir, creates database "warden" and exports WARDEN_TEST_POSTGRES
#                         (an Npgsql connection string; the user may CREATE DATABASE, as the tests do).
#   stop_test_postgres    stops the cluster and deletes its dir (call it from an EXIT trap).
#
# Uses the versioned Debian binaries under /usr/lib/postgresql/*/bin (a pg_ctl elsewhere on PATH may be
# something else).

_pg_bin=""
_pg_dir=""
_pg_owner=""

_pg_as_owner() {
  if [[ $(id -u) -eq 0 ]]; then
    runuser -u "$_pg_owner" -- "$@"
  else
    "$@"
  fi
}

_pg_find_bin() {
  local d
  while read -r d; do
    if [[ -x $d/initdb && -x $d/pg_ctl && -x $d/postgres ]]; then
      echo "$d"
      return 0
    fi
  done < <(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V -r)
  return 1
}

start_test_postgres() {
  _pg_bin=$(_pg_find_bin)
  if [[ -z $_pg_bin ]]; then
    echo "==> installing postgresql (Debian package)"
    local sudo=""
    [[ $(id -u) -eq 0 ]] || sudo="sudo"
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null &&
      $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null
    _pg_bin=$(_pg_find_bin)
    if [[ -z $_pg_bin ]]; then
      echo "scripts/postgres.sh: no /usr/lib/postgresql/*/bin/initdb after installing postgresql" >&2
      return 1
    fi
  fi

  # initdb refuses to run as root: as root the cluster belongs to the postgres user (the package creates it).
  if [[ $(id -u) -eq 0 ]]; then
    _pg_owner=postgres
    id -u postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
  else
    _pg_owner=$(id -un)
  fi

  _pg_dir=$(mktemp -d /tmp/warden-pg.XXXXXX)
  chown "$_pg_owner" "$_pg_dir"
  chmod 700 "$_pg_dir"

  if ! _pg_as_owner "$_pg_bin/initdb" -D "$_pg_dir/data" -U warden --auth=trust -E UTF8 --locale=C.UTF-8 >"$_pg_dir/initdb.log" 2>&1; then
    cat "$_pg_dir/initdb.log" >&2
    return 1
  fi

  # A free port, retried: another process may take it between the probe and the server's bind.
  # Throwaway data: durability off makes the tests several times faster; enough connections for the
  # concurrency tests and two server processes. Checkpoints and autovacuum runs are logged to server.log so a
  # latency spike in a load run can be matched to them (bench load also prints them per interval).
  local port started=""
  for _ in 1 2 3; do
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()' 2>/dev/null ||
      echo $((20000 + RANDOM % 20000)))
    if _pg_as_owner "$_pg_bin/pg_ctl" -D "$_pg_dir/data" -l "$_pg_dir/server.log" -w -t 60 \
      -o "-c listen_addresses=127.0.0.1 -p $port -k $_pg_dir -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200 -c log_checkpoints=on -c log_autovacuum_min_duration=0" \
      start >/dev/null; then
      started=1
      break
    fi
  done
  if [[ -z $started ]]; then
    cat "$_pg_dir/server.log" >&2
    return 1
  fi
  if ! _pg_as_owner "$_pg_bin/psql" -h 127.0.0.1 -p "$port" -U warden -d postgres -qAt -c "CREATE DATABASE warden" >/dev/null; then
    return 1
  fi

  export WARDEN_TEST_POSTGRES="Host=127.0.0.1;Port=$port;Username=warden;Database=warden"
  echo "==> PostgreSQL $("$_pg_bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port (throwaway cluster in $_pg_dir)"
}

stop_test_postgres() {
  if [[ -n $_pg_dir && -d $_pg_dir ]]; then
    _pg_as_owner "$_pg_bin/pg_ctl" -D "$_pg_dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    rm -rf "$_pg_dir"
  fi
  _pg_dir=""
  unset WARDEN_TEST_POSTGRES
}
