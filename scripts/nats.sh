# shellcheck shell=bash
# Sourced by scripts/test: a throwaway NATS server with JetStream for the backfill tests.
#
#   start_test_nats   installs Debian's nats-server when missing, starts `nats-server -js` on a free 127.0.0.1
#                     port with its store in a temp dir, and exports WARDEN_TEST_NATS (nats://127.0.0.1:PORT).
#                     The tests that restart a server mid-run start their own from the same binary
#                     (WARDEN_NATS_SERVER names it).
#   stop_test_nats    stops it and deletes its dir (call it from an EXIT trap).

_nats_pid=""
_nats_dir=""

start_test_nats() {
  if ! command -v nats-server >/dev/null 2>&1; then
    echo "==> installing nats-server (Debian package)"
    local sudo=""
    [[ $(id -u) -eq 0 ]] || sudo="sudo"
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null &&
      $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nats-server >/dev/null
    command -v nats-server >/dev/null 2>&1 || return 1
  fi

  export WARDEN_NATS_SERVER
  WARDEN_NATS_SERVER=$(command -v nats-server)
  _nats_dir=$(mktemp -d /tmp/warden-nats.XXXXXX)
  local port attempt
  # A free port, retried: another process may take it between the probe and the server's bind.
  for attempt in 1 2 3 4 5; do
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()' 2>/dev/null ||
      echo $((20000 + RANDOM % 20000)))
    "$WARDEN_NATS_SERVER" -js -a 127.0.0.1 -p "$port" -sd "$_nats_dir" >"$_nats_dir/log" 2>&1 &
    _nats_pid=$!
    for _ in $(seq 1 50); do
      if grep -q "Server is ready" "$_nats_dir/log" 2>/dev/null; then
        export WARDEN_TEST_NATS="nats://127.0.0.1:$port"
        echo "==> $("$WARDEN_NATS_SERVER" --version) with JetStream on 127.0.0.1:$port (throwaway store in $_nats_dir)"
        return 0
      fi
      kill -0 "$_nats_pid" 2>/dev/null || break
      sleep 0.1
    done
    kill "$_nats_pid" 2>/dev/null
    wait "$_nats_pid" 2>/dev/null
    echo "scripts/nats.sh: nats-server did not start on port $port (attempt $attempt)" >&2
  done
  return 1
}

stop_test_nats() {
  if [[ -n $_nats_pid ]]; then
    kill "$_nats_pid" 2>/dev/null
    wait "$_nats_pid" 2>/dev/null
    _nats_pid=""
  fi
  if [[ -n $_nats_dir ]]; then
    rm -rf "$_nats_dir"
    _nats_dir=""
  fi
}
