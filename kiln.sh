#!/usr/bin/env bash
# The one entry point: `./kiln.sh run` serves Kiln, `./kiln.sh test` runs the whole test suite.
# Both install what is missing with apt-get and start a private PostgreSQL when none is configured.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PG_BIN="/usr/lib/postgresql/15/bin"
# What Kiln shells out to (ffmpeg, yt-dlp, aria2c, pocketsphinx) and what the tests drive (chromium, flite,
# prometheus/promtool, docker-compose for config checks, alsa-utils for a recorded voice).
APT_PACKAGES=(postgresql libvips42 ffmpeg chromium ca-certificates procps yt-dlp aria2 pocketsphinx pocketsphinx-en-us
  flite prometheus docker-compose alsa-utils jq)

log() { printf '[kiln.sh] %s\n' "$*" >&2; }

# Turn Ctrl-C and kill into a normal exit, so the EXIT trap stops the private PostgreSQL.
trap 'exit 130' INT
trap 'exit 143' TERM

ensure_packages() {
  local missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if ((${#missing[@]})); then
    log "installing missing packages: ${missing[*]}"
    local sudo=""
    [[ $(id -u) -eq 0 ]] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  if ! command -v dotnet >/dev/null; then
    log "the .NET 10 SDK is required (dotnet on PATH); see https://learn.microsoft.com/dotnet/core/install/linux-debian"
    exit 1
  fi
}

# Runs a command as the PostgreSQL owner: PostgreSQL refuses to run as root.
as_pg() {
  if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

free_port() {
  python3 - <<'PY' 2>/dev/null || echo $((20000 + RANDOM % 20000))
import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()
PY
}

# start_pg DIR PORT: initialises (once) and starts a cluster in DIR listening on 127.0.0.1:PORT.
# The password is kept next to the cluster, readable only by its owner.
start_pg() {
  local dir="$1" port="$2"
  mkdir -p "$dir"
  if [[ $(id -u) -eq 0 ]]; then chown postgres:postgres "$dir"; fi
  chmod 700 "$dir"
  if [[ ! -f "$dir/cluster/PG_VERSION" ]]; then
    local pw
    pw="$(head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 24)"
    printf '%s' "$pw" > "$dir/password"
    if [[ $(id -u) -eq 0 ]]; then chown postgres:postgres "$dir/password"; fi
    chmod 600 "$dir/password"
    as_pg "$PG_BIN/initdb" -D "$dir/cluster" -U postgres --pwfile="$dir/password" --auth=scram-sha-256 -E UTF8 >/dev/null
  fi
  as_pg "$PG_BIN/pg_ctl" -D "$dir/cluster" -l "$dir/postgres.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories='$dir' -c max_connections=300 -c shared_buffers=256MB -c fsync=${PG_FSYNC:-on} -c synchronous_commit=on" \
    start >/dev/null
}

stop_pg() {
  local dir="$1"
  as_pg "$PG_BIN/pg_ctl" -D "$dir/cluster" -m fast -w stop >/dev/null 2>&1 || true
}

pg_password() { if [[ $(id -u) -eq 0 ]]; then cat "$1/password"; else cat "$1/password"; fi; }

# A directory the postgres user can reach: the data directory when its path is traversable, else /var/lib.
pg_home_for() {
  local wanted="$1"
  mkdir -p "$wanted"
  if [[ $(id -u) -ne 0 ]] || runuser -u postgres -- test -x "$(dirname "$wanted")"; then
    echo "$wanted"
  else
    local alt="/var/lib/kiln/pg-$(echo -n "$wanted" | sha1sum | cut -c1-12)"
    log "postgres cannot reach $wanted; keeping the private cluster in $alt"
    echo "$alt"
  fi
}

cmd_run() {
  ensure_packages
  local data="${KILN_DATA_DIR:-$ROOT/data}"
  mkdir -p "$data"
  export Kiln__DataDirectory="$data"
  if [[ -z "${ConnectionStrings__Kiln:-}" && -z "${KILN_CONNECTION_STRING:-}" ]]; then
    local pgdir port
    pgdir="$(pg_home_for "$data/pg")"
    port="${KILN_PG_PORT:-5544}"
    start_pg "$pgdir" "$port"
    trap "stop_pg '$pgdir'" EXIT
    export ConnectionStrings__Kiln="Host=127.0.0.1;Port=$port;Username=postgres;Password=$(pg_password "$pgdir");Database=kiln"
    log "private PostgreSQL on 127.0.0.1:$port (cluster in $pgdir)"
  fi
  dotnet build "$ROOT/src/Kiln/Kiln.csproj" -c Release -nologo -v q
  dotnet "$ROOT/src/Kiln/bin/Release/net10.0/kiln.dll" serve --urls "${KILN_URLS:-http://127.0.0.1:8080}" "$@"
}

cmd_test() {
  ensure_packages
  local pgdir port status=0
  pgdir="$(mktemp -d /tmp/kiln-test-pg.XXXXXX)"
  chmod 755 "$pgdir"
  port="$(free_port)"
  # A throwaway cluster: durability is not under test, speed of the suite is.
  PG_FSYNC=off start_pg "$pgdir/pg" "$port"
  trap "stop_pg '$pgdir/pg'; rm -rf '$pgdir'" EXIT
  export KILN_TEST_PG="Host=127.0.0.1;Port=$port;Username=postgres;Password=$(pg_password "$pgdir/pg");Database=postgres"
  log "throwaway PostgreSQL on 127.0.0.1:$port"
  cd "$ROOT"
  dotnet build Kiln.slnx -c Release -nologo -v q
  local out="$pgdir/test-output.txt"
  # A per-test timeout: a test that runs longer than KILN_TEST_TIMEOUT (a hang, not a slow machine) ends the run
  # with its name in the log instead of blocking CI until the job's own limit.
  dotnet test Kiln.slnx -c Release --no-build -nologo --blame-hang-timeout "${KILN_TEST_TIMEOUT:-10m}" --blame-hang-dump-type none "$@" 2>&1 | tee "$out" || status=$?
  # One plain closing line for whoever reads the log: "N passed, N failed".
  awk '/(Passed|Failed)! *-/ {
         for (i = 1; i <= NF; i++) {
           if ($(i) == "Failed:") f += $(i+1); if ($(i) == "Passed:") p += $(i+1); if ($(i) == "Skipped:") s += $(i+1) } }
       END { printf "tests: %d passed, %d failed, %d skipped\n", p, f, s }' "$out"
  return "$status"
}

case "${1:-}" in
  run) shift; cmd_run "$@" ;;
  test) shift; cmd_test "$@" ;;
  *) echo "usage: ./kiln.sh run | test" >&2; exit 2 ;;
esac
