#!/usr/bin/env bash
# `make run`: a live demo on this machine. Starts (unless KAFKA_BOOTSTRAP points at a
# cluster) the local Kafka broker, one worker and the traffic simulator, prints the
# dashboard URL, and stops everything it started on Ctrl-C.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
PY=$root/.venv/bin/python
port=${KAFKA_PORT:-9092}
web_port=${WEB_PORT:-6066}
rate=${SIM_RATE:-5}
logs=$root/.cache/run
mkdir -p "$logs"
pids=()
own_broker=0

say() { printf '\033[1m[run]\033[0m %s\n' "$*"; }

cleanup() {
  trap - INT TERM EXIT
  say "stopping ..."
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ "$own_broker" = 1 ]; then KAFKA_PORT=$port dev/kafka/broker.sh stop || true; fi
  say "stopped"
}
trap cleanup INT TERM EXIT

if [ -z "${KAFKA_BOOTSTRAP:-}" ]; then
  KAFKA_PORT=$port dev/kafka/broker.sh start
  own_broker=1
  export KAFKA_BOOTSTRAP=127.0.0.1:$port
else
  say "using the Kafka cluster at $KAFKA_BOOTSTRAP"
fi
export WEB_PORT=$web_port DATA_DIR=${DATA_DIR:-$root/.cache/run/data} LOG_FORMAT=${LOG_FORMAT:-text}
token=$(printf '%s' "${AUTH_TOKENS:-dev-manager-token=manager}" | tr ',' '\n' | awk -F= '$2=="manager"{print $1; exit}')

# a stand-in for an external system, started in the background; waits for its "listening" line
doubles=()
start_double() {  # name, log file, command...
  local name=$1 log=$2; shift 2
  say "starting $name (log: $log)"
  "$PY" "$@" >"$log" 2>&1 &
  local pid=$!
  doubles+=("$pid")
  for _ in $(seq 1 50); do
    if grep -q "listening" "$log" 2>/dev/null; then return 0; fi
    if ! kill -0 "$pid" 2>/dev/null; then say "$name stopped; its log says:"; tail -30 "$log"; exit 1; fi
    sleep 0.1
  done
}

# the Asterisk Manager Interface double (dev/ami_double.py); --lenient: the simulator's
# operators become queue members on their first QueuePause
ami_port=${AMI_PORT:-5038}
start_double "the AMI double on 127.0.0.1:$ami_port" "$logs/ami.log" \
  -m app ami-double --port "$ami_port" --control-port "${AMI_CONTROL_PORT:-5039}" --lenient
# the city's KRT (dev/krt_sandbox.py; control API on its own port) and `personal` (dev/personal.py)
krt_port=${KRT_PORT:-8088}
start_double "the KRT sandbox on 127.0.0.1:$krt_port" "$logs/krt.log" \
  -m app krt-sandbox --port "$krt_port" --control-port "${KRT_CONTROL_PORT:-8089}"
personal_port=${PERSONAL_PORT:-8095}
start_double "the personal stand-in on 127.0.0.1:$personal_port" "$logs/personal.log" -m app personal --port "$personal_port"
export KRT_URL=${KRT_URL:-http://switchboard:switchboard@127.0.0.1:$krt_port}
export PERSONAL_URL=${PERSONAL_URL:-http://127.0.0.1:$personal_port}
export AMI_URL=${AMI_URL:-ami://switchboard:switchboard@127.0.0.1:$ami_port}
# the double does not hold the simulator's queue members: the panel is not reconciled against it
export AMI_RECONCILE_PANEL=${AMI_RECONCILE_PANEL:-false}

say "starting a worker (log: $logs/worker.log)"
"$PY" -m app worker -l info >"$logs/worker.log" 2>&1 &
pids+=($!)
pids+=("${doubles[@]}")  # after the worker's: the readiness loop below watches pids[0]
for i in $(seq 1 120); do
  if curl -fsS "http://127.0.0.1:$web_port/ready" >/dev/null 2>&1; then break; fi
  if ! kill -0 "${pids[0]}" 2>/dev/null; then say "the worker stopped; its log says:"; tail -30 "$logs/worker.log"; exit 1; fi
  [ $((i % 10)) = 0 ] && say "waiting for the worker to be ready ($i s)"
  sleep 1
done

# 5 events/s: a shift of ~450 operators in 4 queues logging in over the first minutes,
# calls of ~3 minutes; SIM_ARGS adds options (e.g. "--operators 120 --seed 7")
say "starting the traffic simulator at $rate events/s (log: $logs/simulate.log)"
# shellcheck disable=SC2086
"$PY" -m app simulate --rate "$rate" ${SIM_ARGS:-} >"$logs/simulate.log" 2>&1 &
pids+=($!)

cat <<MSG

  Dashboard:  http://127.0.0.1:$web_port/#token=$token
  API:        curl -H 'Authorization: Bearer $token' http://127.0.0.1:$web_port/queues/status
  Metrics:    http://127.0.0.1:$web_port/metrics
  Chat:       http://127.0.0.1:$web_port/chat/operator?token=dev-operator-token   (operator console)
              http://127.0.0.1:$web_port/chat/client?token=dev-client-token       (a client)

  Ctrl-C stops the simulator, the worker and the broker.

MSG
wait -n "${pids[@]}"
say "a process ended; see $logs"
