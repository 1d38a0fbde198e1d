# shellcheck shell=bash
# Shared by the deploy/local launchers (kafka.sh, clickhouse.sh); sourced, not run.
# Each launcher sets ATTEST_SERVICE (its name in messages) before sourcing this file.
# Everything here binds, probes and waits on 127.0.0.1 only.

ATTEST_CACHE_DIR="${ATTEST_CACHE_DIR:-$HOME/.cache/attest}"

say() { printf '%s: %s\n' "$ATTEST_SERVICE" "$*" >&2; }
die() { printf '%s: error: %s\n' "$ATTEST_SERVICE" "$*" >&2; exit 1; }

# Prints the last lines of a log file, indented, to stderr (for error messages).
log_tail() {
  local file="$1" lines="${2:-30}"
  if [ -s "$file" ]; then
    printf '%s: last %s lines of %s:\n' "$ATTEST_SERVICE" "$lines" "$file" >&2
    tail -n "$lines" "$file" | sed 's/^/    /' >&2
  else
    printf '%s: %s is empty or missing\n' "$ATTEST_SERVICE" "$file" >&2
  fi
}

# True when something listens on the TCP port, on any address (a wildcard listener blocks
# 127.0.0.1 too). ss sees listeners of every user; /dev/tcp is the fallback without iproute2.
port_in_use() {
  local port="$1"
  if command -v ss >/dev/null 2>&1; then
    [ -n "$(ss -Hltn "sport = :$port" 2>/dev/null)" ]
  else
    (: <"/dev/tcp/127.0.0.1/$port") 2>/dev/null
  fi
}

# Who holds a port, for the "port busy" error.
port_holder() {
  if command -v ss >/dev/null 2>&1; then ss -Hltnp "sport = :$1" 2>/dev/null | head -3; fi
}

# A port nobody listens on, from the range above the usual services and below Linux's
# ephemeral range (32768+), so outgoing connections do not take it in the meantime.
# Ports passed as arguments are excluded (the other ports of the same service).
free_port() {
  local port tries=0
  while [ "$tries" -lt 200 ]; do
    port=$((20000 + RANDOM % 12000))
    tries=$((tries + 1))
    case " $* " in *" $port "*) continue ;; esac
    if ! port_in_use "$port"; then echo "$port"; return 0; fi
  done
  die "found no free TCP port on 127.0.0.1 in 200 tries"
}

# validate_port NAME VALUE: a number in 1..65535, or die naming the variable.
validate_port() {
  case "$2" in
    '' | *[!0-9]*) die "$1 must be a TCP port number, got '$2'" ;;
  esac
  if [ "$2" -lt 1 ] || [ "$2" -gt 65535 ]; then die "$1 must be in 1..65535, got '$2'"; fi
}

# pick_port NAME REQUESTED SAVED EXCLUDED...: the requested port (which must be free), else the
# port of the previous start when still free (clients keep their address across a restart),
# else a free one.
pick_port() {
  local name="$1" requested="$2" saved="$3"
  shift 3
  if [ -n "$requested" ]; then
    validate_port "$name" "$requested"
    if port_in_use "$requested"; then
      die "port $requested ($name) is busy on this machine:
$(port_holder "$requested")
choose another with $name=PORT, or leave $name unset for a free one"
    fi
    echo "$requested"
  elif [ -n "$saved" ] && ! port_in_use "$saved"; then
    echo "$saved"
  else
    free_port "$@"
  fi
}

# pid_of_instance PIDFILE MARKER: prints the pid when the process in PIDFILE is alive and its
# command line contains MARKER (the instance directory), so a recycled pid is not mistaken for
# our server. Removes a stale pid file.
pid_of_instance() {
  local pidfile="$1" marker="$2" pid
  [ -f "$pidfile" ] || return 1
  pid="$(cat "$pidfile" 2>/dev/null || true)"
  case "$pid" in '' | *[!0-9]*) rm -f "$pidfile"; return 1 ;; esac
  if kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$marker"; then
    echo "$pid"
    return 0
  fi
  rm -f "$pidfile"
  return 1
}

# stop_pid PID GRACE_SECONDS: SIGTERM, then SIGKILL after the grace period; waits for the exit.
stop_pid() {
  local pid="$1" grace="$2" waited=0
  kill -TERM "$pid" 2>/dev/null || return 0
  while kill -0 "$pid" 2>/dev/null; do
    if [ "$waited" -ge $((grace * 10)) ]; then
      say "pid $pid did not exit within ${grace}s of SIGTERM; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      waited=0
      grace=5
    fi
    sleep 0.1
    waited=$((waited + 1))
  done
}

# Resident memory of a process in MiB, for status lines.
rss_mib() {
  local kb
  kb="$(awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null || true)"
  [ -n "$kb" ] && echo $((kb / 1024)) || echo '?'
}

now_ms() { date +%s%3N; }

# elapsed START_MS: seconds since START_MS with one decimal.
elapsed() { awk -v ms="$(($(now_ms) - $1))" 'BEGIN { printf "%.1f", ms / 1000 }'; }

# hold_lock FILE VAR: takes an exclusive lock held until the calling script exits, and stores its
# file descriptor in VAR. Concurrent `start`s of one instance (two test processes, say) or two
# installs serialise instead of racing. A server started under the lock must not inherit the
# descriptor (start it with `{VAR}>&-`), or the lock would live as long as the server.
hold_lock() {
  local file="$1" fd
  mkdir -p "$(dirname "$file")"
  exec {fd}>"$file"
  printf -v "$2" '%s' "$fd"
  if command -v flock >/dev/null 2>&1; then
    flock -w 300 "$fd" || die "timed out waiting for the lock $file"
  fi
}

# release_lock FD: closes the descriptor hold_lock opened, which releases the lock.
release_lock() {
  local fd="$1"
  exec {fd}>&-
}

# watch_owner PID LOCKFD: when ATTEST_SERVICE_OWNER_PID is set (the test harness sets it to its
# own pid), a small watcher stops the server once that process is gone, so a test run that dies
# without its teardown leaves no server behind. LOCKFD is closed in the watcher (see hold_lock).
watch_owner() {
  local pid="$1" lockfd="$2" owner="${ATTEST_SERVICE_OWNER_PID:-}"
  [ -n "$owner" ] || return 0
  case "$owner" in *[!0-9]*) die "ATTEST_SERVICE_OWNER_PID must be a pid, got '$owner'" ;; esac
  # shellcheck disable=SC2016 # expanded by the inner bash
  setsid nohup bash -c '
    while kill -0 "$1" 2>/dev/null && kill -0 "$2" 2>/dev/null; do sleep 1; done
    kill -0 "$2" 2>/dev/null || exit 0
    kill -TERM "$2" 2>/dev/null
    for _ in $(seq 300); do kill -0 "$2" 2>/dev/null || exit 0; sleep 0.1; done
    kill -KILL "$2" 2>/dev/null' _ "$owner" "$pid" {lockfd}>&- </dev/null >/dev/null 2>&1 &
}

# ── the commands every launcher shares ─────────────────────────────────────────────────────────
# A launcher sets INSTANCE, PIDFILE and ENDPOINT_VARIABLE, defines running_pid, start, install,
# endpoint (prints what ENDPOINT_VARIABLE holds) and describe (words for `status`), then calls
# service_main "$@".
# shellcheck disable=SC2153 # INSTANCE and PIDFILE are set by the launcher that sources this file

service_stop() {
  # shellcheck disable=SC2034 # hold_lock stores the lock's descriptor in `lock`
  local pid lock started
  [ -d "$INSTANCE" ] || { say "not running (no instance at $INSTANCE)"; return 0; }
  hold_lock "$INSTANCE/.lock" lock
  if ! pid="$(running_pid)"; then
    say "not running"
    return 0
  fi
  started="$(now_ms)"
  stop_pid "$pid" 30
  rm -f "$PIDFILE"
  say "stopped pid $pid in $(elapsed "$started")s (data kept in $INSTANCE/data)"
}

service_status() {
  local pid
  if pid="$(running_pid)"; then
    say "running: pid $pid, $(rss_mib "$pid") MiB resident, $(describe), data in $INSTANCE/data"
    return 0
  fi
  say "stopped (instance $INSTANCE)"
  return 3
}

service_env() {
  running_pid >/dev/null || die "not running (instance $INSTANCE); start it with deploy/local/$ATTEST_SERVICE start"
  echo "$ENDPOINT_VARIABLE=$(endpoint)"
}

service_reset() {
  service_stop
  rm -rf "$INSTANCE"
  say "deleted $INSTANCE"
}

service_main() {
  case "${1:-}" in
    start) start ;;
    stop) service_stop ;;
    status) service_status ;;
    env) service_env ;;
    install) install ;;
    reset) service_reset ;;
    *)
      echo "usage: $0 start|stop|status|env|install|reset" >&2
      exit 2
      ;;
  esac
}
