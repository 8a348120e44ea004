# shellcheck shell=bash
# Shared helpers for infra.sh and cluster.sh (sourced, not executed).
# State lives under $LOCAL (the repo's git-ignored .local/); downloads and builds are cached
# outside the repo under $CACHE, one folder per tool and version.

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
LOCAL="${OCR_LOCAL_DIR:-$REPO_ROOT/.local}"
CACHE="${OCR_CACHE_DIR:-$HOME/.cache/ocr-serving}"
RUN_DIR="$LOCAL/run"
LOG_DIR="$LOCAL/logs"
ENV_FILE="$LOCAL/env"

log() { printf '[%s %s] %s\n' "$(date +%H:%M:%S)" "${LOG_TAG:-infra}" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# The real node's own Go tools (CoreDNS with the plugins we use, cri-stop), built from
# scripts/infra/node-tools and cached under a key of those sources.
NODE_TOOLS_SRC="$REPO_ROOT/scripts/infra/node-tools"
node_tools_dir() {
  local key
  key="$(cd "$NODE_TOOLS_SRC" && find . -type f \( -name '*.go' -o -name 'go.mod' -o -name 'go.sum' \) \
    | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -c1-12)"
  printf '%s/node-tools-%s' "$CACHE" "$key"
}

# KEDA's operator, built from its module with scripts/infra/keda's overlay (only the scalers
# a stack uses) and cached under a key of the version and the overlay's sources.
KEDA_VERSION="${OCR_KEDA_VERSION:-v2.21.0}"
KEDA_SRC="$REPO_ROOT/scripts/infra/keda"
keda_dir() {
  local key
  key="$( (echo "$KEDA_VERSION"; cd "$KEDA_SRC" && find . -type f \( -name '*.go' -o -name '*.py' \) \
    | LC_ALL=C sort | xargs sha256sum) | sha256sum | cut -c1-12)"
  printf '%s/keda-%s-%s' "$CACHE" "$KEDA_VERSION" "$key"
}

ensure_dirs() { mkdir -p "$LOCAL" "$RUN_DIR" "$LOG_DIR" "$CACHE"; }

# Runs a command as root (directly when we are root, through sudo otherwise).
as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo -n "$@"; fi
}

# Installs Debian packages whose marker command is missing: apt_ensure CMD PKG [PKG...].
apt_ensure() {
  local cmd="$1"; shift
  if command -v "$cmd" >/dev/null 2>&1 || [ -x "$cmd" ]; then return 0; fi
  log "installing Debian packages: $* (for $cmd)"
  export DEBIAN_FRONTEND=noninteractive
  # Keep Debian's maintainer scripts from starting system services: we run our own.
  local policy=/usr/sbin/policy-rc.d created_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | as_root tee "$policy" >/dev/null
    as_root chmod +x "$policy"; created_policy=1
  fi
  # Another step may be installing at the same moment (scripts/prepare.sh overlaps them):
  # wait for dpkg's lock instead of failing on it.
  local apt_install=(apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends)
  if ! as_root "${apt_install[@]}" "$@" >>"$LOG_DIR/apt.log" 2>&1; then
    log "apt-get install failed; refreshing the package index and retrying"
    as_root apt-get update >>"$LOG_DIR/apt.log" 2>&1 || true
    as_root "${apt_install[@]}" "$@" >>"$LOG_DIR/apt.log" 2>&1 \
      || { [ "$created_policy" = 1 ] && as_root rm -f "$policy"; die "apt-get install $* failed (see $LOG_DIR/apt.log)"; }
  fi
  [ "$created_policy" = 1 ] && as_root rm -f "$policy"
  return 0
}

# --- Maven -----------------------------------------------------------------------------

# Resolves a Java tool's runtime jars from Maven Central once and prints their folder:
#   maven_libs NAME VERSION DEPENDENCIES_XML [DEPENDENCY_MANAGEMENT_XML]
# into $CACHE/NAME-VERSION/libs (a .complete marker says the copy finished).
maven_libs() {
  local name="$1" version="$2" dependencies="$3" management="${4:-}"
  local dir="$CACHE/$name-$version"
  if [ -f "$dir/.complete" ]; then echo "$dir/libs"; return 0; fi
  command -v java >/dev/null 2>&1 || apt_ensure java openjdk-17-jre-headless
  command -v mvn >/dev/null 2>&1 || apt_ensure mvn maven
  log "resolving $name $version jars from Maven Central into $dir (once)"
  mkdir -p "$dir"
  {
    echo '<project xmlns="http://maven.apache.org/POM/4.0.0">'
    echo '  <modelVersion>4.0.0</modelVersion>'
    echo "  <groupId>local.ocr-serving</groupId><artifactId>$name-dist</artifactId><version>1</version>"
    echo '  <packaging>pom</packaging>'
    [ -z "$management" ] || echo "  <dependencyManagement><dependencies>$management</dependencies></dependencyManagement>"
    echo "  <dependencies>$dependencies</dependencies>"
    echo '</project>'
  } >"$dir/pom.xml"
  rm -rf "$dir/libs"
  mvn -B -q -f "$dir/pom.xml" dependency:copy-dependencies -DincludeScope=runtime \
    -DoutputDirectory="$dir/libs" >"$LOG_DIR/$name-mvn.log" 2>&1 \
    || die "mvn could not resolve $name (see $LOG_DIR/$name-mvn.log)"
  touch "$dir/.complete"
  echo "$dir/libs"
}

# --- processes -------------------------------------------------------------------------

pid_file() { echo "$RUN_DIR/$1.pid"; }

# pid_alive NAME: the pid in NAME's pid file exists and is not a zombie, whatever it runs
# (just after start_bg it may still be the forked shell, before setsid execs the service):
# what a wait for a service just started asks.
pid_alive() {
  local f pid state
  f="$(pid_file "$1")"
  [ -f "$f" ] || return 1
  pid="$(cat "$f")"
  [ -n "$pid" ] || return 1
  state="$(ps -o stat= -p "$pid" 2>/dev/null)" || return 1
  [ -n "$state" ] && [ "${state:0:1}" != "Z" ]
}

# is_running NAME: pid_alive, and the pid still runs the program we started (a pid reused by
# an unrelated process after a reboot is not ours): what deciding whether to start asks.
is_running() {
  local pid comm
  pid_alive "$1" || return 1
  pid="$(cat "$(pid_file "$1")")"
  [ -f "$RUN_DIR/$1.comm" ] || return 0
  comm="$(ps -o comm= -p "$pid" 2>/dev/null)" || return 1
  [ "$comm" = "$(cat "$RUN_DIR/$1.comm")" ]
}

# started_with NAME TEXT: true when the running NAME's command line holds TEXT (a component
# reads its flags only when it starts, so a running one may lack a flag a script now passes).
started_with() {
  tr '\0' ' ' <"/proc/$(cat "$(pid_file "$1")")/cmdline" 2>/dev/null | grep -q -- "$2"
}

# started_in_env NAME VAR=VALUE: true when the running NAME was started with that variable.
started_in_env() {
  tr '\0' '\n' <"/proc/$(cat "$(pid_file "$1")")/environ" 2>/dev/null | grep -qx -- "$2"
}

# print_status NAME...: one line per component; fails when any of them is stopped.
print_status() {
  local name rc=0
  for name in "$@"; do
    if is_running "$name"; then echo "$name: running (pid $(cat "$(pid_file "$name")"))"
    else echo "$name: stopped"; rc=1; fi
  done
  return "$rc"
}

# start_bg NAME CMD...: runs CMD detached in its own session, logs to $LOG_DIR/NAME.log.
start_bg() {
  local name="$1" program
  shift
  program="$(basename "$1")"
  printf '%s\n' "${program:0:15}" >"$RUN_DIR/$name.comm" # the kernel keeps 15 characters
  # Without job control a background job is no group leader: setsid execs in place, so $!
  # is the service's own pid.
  setsid "$@" >>"$LOG_DIR/$name.log" 2>&1 </dev/null &
  echo $! >"$(pid_file "$name")"
}

# stop_all TIMEOUT NAME...: SIGTERM to each, SIGKILL to those still alive after TIMEOUT
# seconds, then verifies all are gone and removes their pid files. Stops run in parallel.
stop_all() {
  local timeout="$1" name pids=() deadline
  shift
  for name in "$@"; do
    [ -f "$(pid_file "$name")" ] || continue
    if is_running "$name"; then
      pids+=("$(cat "$(pid_file "$name")")")
      log "stopping $name (pid ${pids[-1]})"
      kill -TERM "${pids[-1]}" 2>/dev/null || true
    fi
  done
  deadline=$(( $(date +%s) + timeout ))
  while any_running "$@" && [ "$(date +%s)" -lt "$deadline" ]; do sleep 0.2; done
  for name in "$@"; do
    if is_running "$name"; then
      log "$name did not stop within ${timeout}s of SIGTERM; killing it"
      kill -KILL "$(cat "$(pid_file "$name")")" 2>/dev/null || true
    fi
  done
  # Wait for init to reap the zombies, so that `ps` right after `down` shows nothing of ours.
  deadline=$(( $(date +%s) + 10 ))
  while [ "${#pids[@]}" -gt 0 ] && any_pid_alive "${pids[@]}" \
      && [ "$(date +%s)" -lt "$deadline" ]; do
    sleep 0.1
  done
  for name in "$@"; do
    is_running "$name" && die "$name (pid $(cat "$(pid_file "$name")")) is still running"
    rm -f "$(pid_file "$name")" "$RUN_DIR/$name.comm"
  done
  return 0
}

any_pid_alive() {
  local pid
  for pid in "$@"; do kill -0 "$pid" 2>/dev/null && return 0; done
  return 1
}

any_running() {
  local name
  for name in "$@"; do is_running "$name" && return 0; done
  return 1
}

# wait_tcp HOST PORT TIMEOUT NAME: waits until a TCP connect succeeds; fails if NAME died.
wait_tcp() {
  local host="$1" port="$2" timeout="$3" name="$4" deadline
  deadline=$(( $(date +%s) + timeout ))
  until (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; do
    if [ -n "$name" ] && ! pid_alive "$name"; then
      tail -n 30 "$LOG_DIR/$name.log" >&2 || true
      die "$name exited before listening on $host:$port (log: $LOG_DIR/$name.log)"
    fi
    [ "$(date +%s)" -lt "$deadline" ] || die "$name not listening on $host:$port after ${timeout}s"
    sleep 0.2
  done
}

# port_in_use PORT: true when something listens on 127.0.0.1:PORT.
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# --- .local/env ------------------------------------------------------------------------

# env_set KEY VALUE...: merges `export KEY=VALUE` lines into .local/env, keeping other keys.
env_set() {
  ensure_dirs
  local tmp="$ENV_FILE.tmp.$$" key
  # infra.sh and cluster.sh may run at once (make -j): serialise the read-modify-write.
  exec 8>"$LOCAL/.env.lock"
  flock 8
  touch "$ENV_FILE"
  cp "$ENV_FILE" "$tmp"
  while [ $# -ge 2 ]; do
    key="$1"
    grep -v "^export $key=" "$tmp" >"$tmp.2" || true
    printf 'export %s=%s\n' "$key" "$2" >>"$tmp.2"
    mv "$tmp.2" "$tmp"
    shift 2
  done
  mv "$tmp" "$ENV_FILE"
  exec 8>&-
}
