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
    start >/dev/null || { log "PostgreSQL did not start; the end of its log ($dir/postgres.log):"; tail -n 5 "$dir/postgres.log" >&2; return 1; }
}

# port_busy PORT: whether something already listens on 127.0.0.1:PORT.
port_busy() {
  python3 - "$1" <<'PY' 2>/dev/null
import socket, sys
s = socket.socket()
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(0)
sys.exit(1)
PY
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

# Node and npm build the dashboard (web/ → src/Kiln/wwwroot); Debian 12's own nodejs (18) builds it too.
ensure_node() {
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    log "installing nodejs and npm to build the dashboard"
    local sudo=""
    [[ $(id -u) -eq 0 ]] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
  fi
}

# Builds the dashboard into src/Kiln/wwwroot (copied to the server's output by the dotnet build). `npm ci` runs only
# when node_modules was installed from another package-lock.json, and the build only when the page's sources changed
# (stamps of their hashes), so repeated runs stay fast.
build_web() {
  ensure_node
  local web="$ROOT/web" stamp="$ROOT/web/node_modules/.kiln-lock-sha1" want
  want="$(sha1sum "$web/package-lock.json" | cut -d' ' -f1)"
  if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
    log "installing the dashboard's npm packages (npm ci)"
    (cd "$web" && npm ci --no-audit --no-fund --loglevel=error)
    echo "$want" > "$stamp"
  fi
  # Rebuild only when the page's sources changed since the last build (or the output is gone).
  local built="$web/node_modules/.kiln-build-sha1" sources
  sources="$( (cd "$web" && find src index.html vite.config.ts tsconfig.json package-lock.json -type f -print0 | sort -z | xargs -0 sha1sum) | sha1sum | cut -d' ' -f1)"
  if [[ -f "$ROOT/src/Kiln/wwwroot/index.html" && -f "$built" && "$(cat "$built")" == "$sources" ]]; then
    return 0
  fi
  (cd "$web" && npm run --silent build -- --logLevel warn)
  echo "$sources" > "$built"
}

# Whether `./kiln.sh test ARGS` runs the browser tests: always without a filter, with a filter only when it names
# them (Dashboard), or as KILN_E2E says (1 = always, 0 = never).
want_e2e() {
  [[ "${KILN_E2E:-}" == 1 ]] && return 0
  [[ "${KILN_E2E:-}" == 0 ]] && return 1
  [[ "$*" != *--filter* ]] && return 0
  [[ "$*" == *Dashboard* ]]
}

cmd_run() {
  ensure_packages
  build_web
  use_private_pg
  dotnet build "$ROOT/src/Kiln/Kiln.csproj" -c Release -nologo -v q
  # Two malloc arenas: libvips' threads otherwise spread freed image buffers over 16 (docs/decisions.md, "malloc
  # arenas"); glibc reads this only when the process starts.
  MALLOC_ARENA_MAX="${MALLOC_ARENA_MAX:-2}" dotnet "$ROOT/src/Kiln/bin/Release/net10.0/kiln.dll" serve --urls "${KILN_URLS:-http://127.0.0.1:8080}" "$@"
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
  build_web
  # A build that fails must fail the run: --no-build below would otherwise test the previous build's binaries.
  dotnet build Kiln.slnx -c Release -nologo -v q || { log "the build failed"; return 1; }
  local out="$pgdir/test-output.txt"
  # A per-test timeout: a test that runs longer than KILN_TEST_TIMEOUT (a hang, not a slow machine) ends the run
  # with its name in the log instead of blocking CI until the job's own limit.
  dotnet test Kiln.slnx -c Release --no-build -nologo --blame-hang-timeout "${KILN_TEST_TIMEOUT:-10m}" --blame-hang-dump-type none "$@" 2>&1 | tee "$out" || status=$?
  # The browser tests (web/e2e, node's test runner, Playwright driving Debian's Chromium) against a real built Kiln.
  if want_e2e "$@"; then
    local e2e_status=0
    (cd "$ROOT/web" && node --test --test-reporter=tap e2e/dashboard.test.mjs) 2>&1 | tee "$pgdir/e2e-output.txt" || e2e_status=$?
    # node's TAP summary ("# pass N", "# fail N", "# cancelled N", "# skipped N") in the form the awk below adds up;
    # a cancelled test (its setup failed) counts as failed.
    awk '/^# pass / { p = $3 } /^# fail / { f += $3 } /^# cancelled / { f += $3 } /^# skipped / { s = $3 }
         END { printf "Browser tests: %s! - Failed: %d, Passed: %d, Skipped: %d\n", (f ? "Failed" : "Passed"), f, p, s }' \
      "$pgdir/e2e-output.txt" >> "$out"
    tail -n 1 "$out"
    ((e2e_status == 0)) || status=$e2e_status
  fi
  # One plain closing line for whoever reads the log: "N passed, N failed".
  awk '/(Passed|Failed)! *-/ {
         for (i = 1; i <= NF; i++) {
           if ($(i) == "Failed:") f += $(i+1); if ($(i) == "Passed:") p += $(i+1); if ($(i) == "Skipped:") s += $(i+1) } }
       END { printf "tests: %d passed, %d failed, %d skipped\n", p, f, s }' "$out"
  return "$status"
}

# --- Operations commands (./kiln.sh keys|backup|restore|health|cleanup|kiln …) -------------------------------------
# They find the private PostgreSQL of ./data exactly as `run` does: reuse it when `run` has it up, else start it for
# the command and stop it afterwards. ConnectionStrings__Kiln set means an external database, used as is.

# use_private_pg: exports Kiln__DataDirectory and ConnectionStrings__Kiln for `run` and the operations commands:
# the given database, or the private cluster of ./data (reused when it is up, else started and stopped on exit).
use_private_pg() {
  local data="${KILN_DATA_DIR:-$ROOT/data}"
  mkdir -p "$data"
  export Kiln__DataDirectory="$data"
  if [[ -n "${ConnectionStrings__Kiln:-}" || -n "${KILN_CONNECTION_STRING:-}" ]]; then
    [[ -n "${ConnectionStrings__Kiln:-}" ]] || export ConnectionStrings__Kiln="$KILN_CONNECTION_STRING"
    return
  fi
  local pgdir port
  pgdir="$(pg_home_for "$data/pg")"
  port="${KILN_PG_PORT:-5544}"
  if [[ -f "$pgdir/cluster/PG_VERSION" ]] && as_pg "$PG_BIN/pg_ctl" -D "$pgdir/cluster" status >/dev/null 2>&1; then
    port="$(as_pg sed -n 4p "$pgdir/cluster/postmaster.pid")"
    log "using the running private PostgreSQL on 127.0.0.1:$port"
  else
    # The default port may belong to another PostgreSQL (or another Kiln checkout): take a free one then.
    if [[ -z "${KILN_PG_PORT:-}" ]] && port_busy "$port"; then
      port="$(free_port)"
      log "127.0.0.1:5544 is taken; the private PostgreSQL listens on $port instead (KILN_PG_PORT chooses)"
    fi
    start_pg "$pgdir" "$port"
    trap "stop_pg '$pgdir'" EXIT
    log "started the private PostgreSQL on 127.0.0.1:$port (cluster in $pgdir)"
  fi
  export ConnectionStrings__Kiln="Host=127.0.0.1;Port=$port;Username=postgres;Password=$(pg_password "$pgdir");Database=kiln"
}

build_kiln() { dotnet build "$ROOT/src/Kiln/Kiln.csproj" -c Release -nologo -v q >&2; }

# cmd_kiln ARGS…: any kiln command against ./data's database (./kiln.sh kiln keys list).
cmd_kiln() {
  ensure_packages
  use_private_pg
  build_kiln
  # Not exec: the EXIT trap must stop a cluster started for this command.
  dotnet "$ROOT/src/Kiln/bin/Release/net10.0/kiln.dll" "$@"
}

# cmd_health: asks the server `run` serves (KILN_URLS) for /health/ready; exit 0 healthy/degraded, 1 unhealthy, 3 down.
cmd_health() {
  command -v dotnet >/dev/null || { log "dotnet is required"; exit 1; }
  build_kiln
  local url="${KILN_URLS:-http://127.0.0.1:8080}"
  dotnet "$ROOT/src/Kiln/bin/Release/net10.0/kiln.dll" health --url "${url%%;*}" "$@"
}

# lint_checks: what CI's lint job runs, also run by `./kiln.sh test`. KILN_LINT=0 skips it (e.g. while a merge is
# being made format-clean: `dotnet format Kiln.slnx` fixes what --verify-no-changes reports).
lint_checks() {
  if [[ "${KILN_LINT:-1}" != 1 ]]; then log "lint skipped (KILN_LINT=${KILN_LINT})"; return 0; fi
  local status=0
  log "lint: dotnet format --verify-no-changes"
  if ! dotnet format "$ROOT/Kiln.slnx" --verify-no-changes -v q; then
    log "lint: dotnet format would change files; run 'dotnet format Kiln.slnx' and commit (or KILN_LINT=0 to skip)"
    status=1
  fi
  if [[ -f "$ROOT/web/package.json" ]]; then
    [[ -d "$ROOT/web/node_modules" ]] || (cd "$ROOT/web" && npm ci --no-audit --no-fund >/dev/null)
    local script
    for script in typecheck lint; do
      if grep -q "\"$script\":" "$ROOT/web/package.json"; then
        log "lint: npm run $script (web/)"
        (cd "$ROOT/web" && npm run -s "$script") || status=1
      fi
    done
  fi
  return "$status"
}

case "${1:-}" in
  run) shift; cmd_run "$@" ;;
  # Lint runs with the whole suite, not with a --filter while iterating.
  test) shift; status=0; cmd_test "$@" || status=$?; [[ " $* " == *" --filter"* ]] || lint_checks || status=1; exit "$status" ;;
  keys|backup|restore|cleanup) cmd_kiln "$@" ;;
  kiln) shift; cmd_kiln "$@" ;;
  health) shift; cmd_health "$@" ;;
  *) echo "usage: ./kiln.sh run | test | keys … | backup DIR | restore DIR [--force] | health | cleanup | kiln COMMAND…" >&2; exit 2 ;;
esac
