#!/usr/bin/env bash
# Single-node Apache Kafka (KRaft, broker+controller in one JVM) from Maven Central jars.
#
#   deploy/kafka/kafka.sh fetch|start|stop|status [--version V] [--port P] [--dir D]
#                         [--controller-port C] [--timeout SECONDS]
#                         [--extra-config FILE] [--scram 'MECHANISM=[name=U,password=P]']
#
#   fetch   download the broker jars for V into deploy/kafka/lib/V/ (Maven; skipped if present)
#   start   fetch if needed, write D/server.properties, format D/data once, start java in the
#           background, wait until the broker answers a Metadata request (protocol level)
#   stop    TERM the broker by its pid file, KILL after a timeout; leaves no process behind
#   status  exit 0 if running and answering, 1 otherwise
#
# Defaults: V=$KAFKA_VERSION or 3.9.2, P=9092, C=P+1, D=var/kafka-<P> (a relative D is taken
# from the repo root), start timeout 60 s. --extra-config appends FILE's properties to the
# broker's (a key given again there wins: listeners for SASL_SSL, say); --scram (repeatable)
# adds a SCRAM credential when the storage is formatted.
# Environment: JAVA_HOME, KAFKA_HEAP_OPTS (default -Xmx512m -Xms128m), KAFKA_JVM_OPTS (extra),
#   KAFKA_PYTHON (python for the readiness check; default <repo>/.venv/bin/python or python3),
#   MVN (default mvn), MVN_OPTS (extra maven args, e.g. -o).
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"
DEFAULT_VERSION="3.9.2"

usage() {
  sed -n '2,/^set /p' "${BASH_SOURCE[0]}" | grep '^#' | sed 's/^# \{0,1\}//'
  exit 2
}

die() { echo "kafka.sh: $*" >&2; exit 1; }
log() { echo "kafka.sh: $*"; }

[[ $# -ge 1 ]] || usage
CMD="$1"; shift
VERSION="${KAFKA_VERSION:-$DEFAULT_VERSION}"
PORT=9092
DIR=""
CONTROLLER_PORT=""
START_TIMEOUT=60
STOP_TIMEOUT=30
EXTRA_CONFIG=""
SCRAM=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --version) VERSION="${2:?--version needs a value}"; shift 2 ;;
    --port) PORT="${2:?--port needs a value}"; shift 2 ;;
    --dir) DIR="${2:?--dir needs a value}"; shift 2 ;;
    --controller-port) CONTROLLER_PORT="${2:?--controller-port needs a value}"; shift 2 ;;
    --timeout) START_TIMEOUT="${2:?--timeout needs a value}"; shift 2 ;;
    --extra-config) EXTRA_CONFIG="${2:?--extra-config needs a file}"; shift 2 ;;
    --scram) SCRAM+=(--add-scram "${2:?--scram needs a credential}"); shift 2 ;;
    -h|--help) usage ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
done
[[ "$PORT" =~ ^[0-9]+$ ]] || die "bad --port: $PORT"
[[ "$VERSION" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "bad --version: $VERSION"
CONTROLLER_PORT="${CONTROLLER_PORT:-$((PORT + 1))}"
DIR="${DIR:-var/kafka-$PORT}"
[[ "$DIR" = /* ]] || DIR="$REPO_ROOT/$DIR"
LINE="${VERSION%%.*}"
[[ "$LINE" == 3 || "$LINE" == 4 ]] || die "Kafka $VERSION: only the 3.x (KRaft, 3.9 tested) and 4.x lines are supported"
LIB_DIR="$SCRIPT_DIR/lib/$VERSION"
BOOTSTRAP="127.0.0.1:$PORT"
PID_FILE="$DIR/kafka.pid"
LOG_DIR="$DIR/logs"

if [[ -n "${KAFKA_PYTHON:-}" ]]; then
  PYTHON="$KAFKA_PYTHON"
elif [[ -x "$REPO_ROOT/.venv/bin/python" ]]; then
  PYTHON="$REPO_ROOT/.venv/bin/python"
else
  PYTHON="python3"
fi
if [[ -n "${JAVA_HOME:-}" ]]; then JAVA="$JAVA_HOME/bin/java"; else JAVA="java"; fi

# ---------------------------------------------------------------------------------- fetch
jars_present() {
  [[ -f "$LIB_DIR/.complete" && -f "$LIB_DIR/kafka_2.13-$VERSION.jar" ]]
}

do_fetch() {
  if jars_present; then
    log "Kafka $VERSION jars present in ${LIB_DIR#"$REPO_ROOT"/}"
    return 0
  fi
  mkdir -p "$SCRIPT_DIR/lib"
  (
    # one Maven run per machine at a time; fd 8 is closed for everything started later
    exec 8>"$SCRIPT_DIR/lib/.fetch.lock"
    flock -w 600 8 || die "timed out waiting for another fetch"
    if jars_present; then exit 0; fi
    log "fetching Kafka $VERSION (line $LINE) from Maven Central into ${LIB_DIR#"$REPO_ROOT"/}"
    rm -rf "$LIB_DIR"
    local_start=$SECONDS
    # shellcheck disable=SC2086
    "${MVN:-mvn}" -B -q -ntp -Dstyle.color=never ${MVN_OPTS:-} -f "$SCRIPT_DIR/pom.xml" package \
      -Dkafka.version="$VERSION" -Dkafka.line="$LINE" >"$SCRIPT_DIR/lib/fetch-$VERSION.log" 2>&1 \
      || { tail -n 40 "$SCRIPT_DIR/lib/fetch-$VERSION.log" >&2; die "maven failed to fetch Kafka $VERSION"; }
    [[ -f "$LIB_DIR/kafka_2.13-$VERSION.jar" ]] || die "maven ran but $LIB_DIR has no kafka jar"
    touch "$LIB_DIR/.complete"
    log "fetched $(find "$LIB_DIR" -name '*.jar' | wc -l) jars in $((SECONDS - local_start)) s"
  )
}

# ---------------------------------------------------------------------------------- process
# pid of our broker for $DIR, or empty. Only trusts a pid whose command line is a
# kafka.Kafka started with this dir's server.properties (pid reuse safe).
running_pid() {
  [[ -f "$PID_FILE" ]] || return 0
  local pid
  pid="$(tr -dc '0-9' <"$PID_FILE")"
  [[ -n "$pid" ]] || return 0
  if [[ -r "/proc/$pid/cmdline" ]] \
    && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "kafka.Kafka $DIR/server.properties"; then
    echo "$pid"
  fi
}

ready() {  # $1 = timeout seconds (0 = one attempt)
  "$PYTHON" "$SCRIPT_DIR/kafka_ready.py" "$BOOTSTRAP" --timeout "$1" --quiet
}

log_tail() {
  local f
  for f in "$LOG_DIR/kafka.out" "$LOG_DIR/server.log"; do
    if [[ -s "$f" ]]; then
      echo "----- last 60 lines of $f -----" >&2
      tail -n 60 "$f" >&2
    fi
  done
}

port_busy() {  # $1 = port; true if something accepts connections on 127.0.0.1:$1
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

alive() {  # $1 = pid; a zombie (exited, not yet reaped by its parent) counts as dead
  [[ -e "/proc/$1" ]] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null
}

kill_pid() {  # $1 = pid: TERM, wait STOP_TIMEOUT, then KILL
  local pid="$1" waited=0
  kill -TERM "$pid" 2>/dev/null || true
  while alive "$pid"; do
    if (( waited >= STOP_TIMEOUT * 10 )); then
      log "pid $pid did not exit after ${STOP_TIMEOUT}s of TERM; sending KILL"
      kill -KILL "$pid" 2>/dev/null || true
      waited=0
      while alive "$pid" && (( waited++ < 50 )); do sleep 0.1; done
      break
    fi
    sleep 0.1
    waited=$((waited + 1))
  done
}

with_dir_lock() {  # run "$@" holding <dir>/.kafka.sh.lock (fd 9; closed for java)
  mkdir -p "$DIR"
  exec 9>"$DIR/.kafka.sh.lock"
  flock -w 120 9 || die "timed out waiting for another kafka.sh on $DIR"
  "$@"
  exec 9>&-
}

# ---------------------------------------------------------------------------------- start
write_config() {
  local data_dir="$DIR/data"
  sed -e "s|@PORT@|$PORT|g" \
      -e "s|@CONTROLLER_PORT@|$CONTROLLER_PORT|g" \
      -e "s|@DATA_DIR@|$data_dir|g" \
      "$SCRIPT_DIR/server.properties.template" >"$DIR/server.properties.new"
  if [[ -n "$EXTRA_CONFIG" ]]; then  # appended: a key given again there wins
    { echo; echo "# from --extra-config $EXTRA_CONFIG"; cat "$EXTRA_CONFIG"; } >>"$DIR/server.properties.new"
  fi
  mv "$DIR/server.properties.new" "$DIR/server.properties"
}

format_storage() {
  local data_dir="$DIR/data"
  if [[ -f "$data_dir/meta.properties" ]]; then
    return 0
  fi
  local cluster_id
  # same shape as StorageTool random-uuid (base64url of 16 random bytes, never starting with
  # '-', which the CLI would take for an option), without paying for a second JVM start
  cluster_id="$("$PYTHON" -c '
import base64, uuid
while True:
    cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    if not cid.startswith("-"):
        print(cid)
        break
')"
  log "formatting $data_dir (cluster id $cluster_id)"
  "$JAVA" -Xmx256m -cp "$LIB_DIR/*" "${LOG_PROPS[@]}" -Dkafka.logs.dir="$LOG_DIR" \
    kafka.tools.StorageTool format -t "$cluster_id" -c "$DIR/server.properties" "${SCRAM[@]}" \
    >"$LOG_DIR/format.out" 2>&1 9>&- \
    || { cat "$LOG_DIR/format.out" >&2; die "StorageTool format failed"; }
}

start_locked() {
  local pid
  pid="$(running_pid)"
  if [[ -n "$pid" ]]; then
    if ready 30; then
      log "already running (pid $pid) on $BOOTSTRAP"
      return 0
    fi
    log_tail
    die "pid $pid is running but the broker on $BOOTSTRAP does not answer"
  fi
  rm -f "$PID_FILE"
  if [[ -f "$DIR/kafka.version" && "$(cat "$DIR/kafka.version")" != "$VERSION" ]]; then
    die "$DIR holds data of Kafka $(cat "$DIR/kafka.version"), not $VERSION: use another --dir or remove it"
  fi
  port_busy "$PORT" && die "port $PORT is already in use by another process"
  port_busy "$CONTROLLER_PORT" && die "controller port $CONTROLLER_PORT is already in use (choose --controller-port)"

  mkdir -p "$LOG_DIR" "$DIR/data"
  case "$LINE" in
    3) LOG_PROPS=(-Dlog4j.configuration="file:$SCRIPT_DIR/log4j.properties") ;;
    *) LOG_PROPS=(-Dlog4j2.configurationFile="$SCRIPT_DIR/log4j2.xml") ;;
  esac
  write_config
  format_storage
  echo "$VERSION" >"$DIR/kafka.version"

  local heap extra
  read -r -a heap <<<"${KAFKA_HEAP_OPTS:--Xmx512m -Xms128m}"
  read -r -a extra <<<"${KAFKA_JVM_OPTS:-}"
  local t0=$SECONDS
  : >"$LOG_DIR/kafka.out"
  # setsid: own session, so the caller's signals/terminal do not reach it;
  # all fds redirected so callers capturing our output do not wait on the JVM.
  setsid "$JAVA" "${heap[@]}" \
    -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:+ExplicitGCInvokesConcurrent \
    -Djava.awt.headless=true "${extra[@]}" \
    "${LOG_PROPS[@]}" -Dkafka.logs.dir="$LOG_DIR" \
    -cp "$LIB_DIR/*" kafka.Kafka "$DIR/server.properties" \
    </dev/null >>"$LOG_DIR/kafka.out" 2>&1 9>&- &
  pid=$!
  echo "$pid" >"$PID_FILE"
  log "started Kafka $VERSION (pid $pid) on $BOOTSTRAP, controller 127.0.0.1:$CONTROLLER_PORT, dir $DIR"

  local deadline=$((SECONDS + START_TIMEOUT))
  while (( SECONDS < deadline )); do
    if ! alive "$pid"; then
      rm -f "$PID_FILE"
      log_tail
      die "the broker exited during start-up"
    fi
    if ready 0; then
      log "broker answers on $BOOTSTRAP after $((SECONDS - t0)) s"
      return 0
    fi
    sleep 0.5
  done
  log "broker did not answer on $BOOTSTRAP within ${START_TIMEOUT}s"
  log_tail
  kill_pid "$pid"
  rm -f "$PID_FILE"
  die "start timed out"
}

do_start() {
  do_fetch
  with_dir_lock start_locked
}

# ---------------------------------------------------------------------------------- stop
stop_locked() {
  local pid
  pid="$(running_pid)"
  if [[ -z "$pid" ]]; then
    rm -f "$PID_FILE"
    log "not running (dir $DIR)"
    return 0
  fi
  local t0=$SECONDS
  kill_pid "$pid"
  if alive "$pid"; then
    die "pid $pid survived KILL"
  fi
  rm -f "$PID_FILE"
  log "stopped (pid $pid) in $((SECONDS - t0)) s"
}

do_stop() {
  [[ -d "$DIR" ]] || { log "not running (no dir $DIR)"; return 0; }
  with_dir_lock stop_locked
}

# ---------------------------------------------------------------------------------- status
do_status() {
  local pid
  pid="$(running_pid)"
  if [[ -z "$pid" ]]; then
    echo "not running (dir $DIR)"
    return 1
  fi
  if ready 5; then
    echo "running (pid $pid) on $BOOTSTRAP, Kafka $(cat "$DIR/kafka.version" 2>/dev/null || echo '?'), dir $DIR"
    return 0
  fi
  echo "pid $pid is running but the broker on $BOOTSTRAP does not answer"
  return 1
}

case "$CMD" in
  fetch) do_fetch ;;
  start) do_start ;;
  stop) do_stop ;;
  status) do_status ;;
  -h|--help|help) usage ;;
  *) die "unknown command: $CMD (fetch|start|stop|status)" ;;
esac
