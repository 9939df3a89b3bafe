#!/usr/bin/env bash
# Apache Kafka (KRaft) for development and tests, from Maven Central jars: one broker, or a
# cluster of KAFKA_BROKERS nodes (each broker and controller) on 127.0.0.1.
#   broker.sh start           start every node in the background if not running; wait until each answers
#   broker.sh stop            stop every node (SIGTERM, then SIGKILL after 20 s)
#   broker.sh status          exit 0 if every node answers
#   broker.sh start-node N    start node N (1..KAFKA_BROKERS) alone, e.g. after kill-node
#   broker.sh stop-node N     stop node N gracefully
#   broker.sh kill-node N     SIGKILL node N (a broker's loss, for fault tests)
# Env: KAFKA_PORT (9092): node N listens on KAFKA_PORT+N-1;
#      KAFKA_CONTROLLER_PORT (KAFKA_PORT+10000): node N's controller on KAFKA_CONTROLLER_PORT+N-1;
#      KAFKA_BROKERS (1): nodes; with 3 or more, topics default to replication factor 3 and
#        min.insync.replicas 2, as in docker-compose.yml;
#      KAFKA_DIR (.cache/kafka/$KAFKA_PORT, or .cache/kafka/cluster-$KAFKA_PORT): data, logs, pid files.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
port=${KAFKA_PORT:-9092}
cport=${KAFKA_CONTROLLER_PORT:-$((port + 10000))}
nodes=${KAFKA_BROKERS:-1}
if [ "$nodes" -gt 1 ]; then default_dir=$root/.cache/kafka/cluster-$port; else default_dir=$root/.cache/kafka/$port; fi
dir=${KAFKA_DIR:-$default_dir}
jars=$here/target/dependency
BIND_WAIT_S=${KAFKA_BIND_WAIT_S:-90}  # how long a port held by closing connections (TIME_WAIT) is waited for

log() { echo "[broker] $*" >&2; }

node_port() { echo $((port + $1 - 1)); }
node_cport() { echo $((cport + $1 - 1)); }
# one broker keeps the layout it always had ($dir itself); a cluster has a directory per node
node_dir() { if [ "$nodes" -gt 1 ]; then echo "$dir/node-$1"; else echo "$dir"; fi; }
pidfile() { echo "$(node_dir "$1")/broker.pid"; }

answers() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

running() { local f; f=$(pidfile "$1"); [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null; }

# Why `p` cannot be bound now: "listening" (a program of its own has it), "time-wait" (only
# connections being closed hold it: the kernel frees it within a minute), or "" (free).
port_holder() {
  local p=$1
  if answers "$p"; then echo listening; return; fi
  python3 - "$p" <<'PY'
import socket, sys
port = int(sys.argv[1])
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the JVM's server sockets do
try:
    s.bind(("127.0.0.1", port))
except OSError:
    print("time-wait")
finally:
    s.close()
PY
}

# Every port of node N bindable, waiting out TIME_WAIT (saying so) up to BIND_WAIT_S.
wait_for_ports() {
  local n=$1 waited=0 p why
  for p in "$(node_port "$n")" "$(node_cport "$n")"; do
    while true; do
      why=$(port_holder "$p")
      case "$why" in
        "") break ;;
        listening)
          log "port $p is already taken by another program ($(ss -ltnpH "sport = :$p" 2>/dev/null | awk '{print $NF}' | head -1));"
          log "choose others with KAFKA_PORT / KAFKA_CONTROLLER_PORT"; exit 1 ;;
        *)
          if [ "$waited" -ge "$BIND_WAIT_S" ]; then
            log "port $p is still held after ${BIND_WAIT_S} s:"; ss -tanH "( sport = :$p or dport = :$p )" >&2 || true; exit 1
          fi
          [ $((waited % 10)) -eq 0 ] && log "port $p is held by connections being closed (TIME_WAIT, freed by the kernel within 60 s); waiting ..."
          sleep 1; waited=$((waited + 1)) ;;
      esac
    done
  done
}

resolve_jars() {
  if [ ! -f "$jars/kafka_2.13-"*.jar ] 2>/dev/null || [ "$(ls "$jars" 2>/dev/null | wc -l)" -lt 10 ]; then
    log "resolving Kafka jars from Maven Central (once) ..."
    (cd "$here" && mvn -q -B dependency:copy-dependencies -DincludeScope=runtime) >&2
  fi
}

java_cmd() {
  local d=$1; shift
  exec java -Xms256m -Xmx1g -XX:+UseG1GC -Djava.awt.headless=true \
    -Dkafka.logs.dir="$d" -Dlog4j2.configurationFile="$here/log4j2.properties" \
    -cp "$jars/*" "$@"
}

voters() {
  local n out=""
  for n in $(seq 1 "$nodes"); do out="$out${out:+,}$n@127.0.0.1:$(node_cport "$n")"; done
  echo "$out"
}

write_config() {
  local n=$1 d rf=1 isr=1
  d=$(node_dir "$n")
  if [ "$nodes" -ge 3 ]; then rf=3; isr=2; elif [ "$nodes" -eq 2 ]; then rf=2; fi
  mkdir -p "$d/data"
  cat > "$d/server.properties" <<PROPS
process.roles=broker,controller
node.id=$n
controller.quorum.voters=$(voters)
listeners=PLAINTEXT://127.0.0.1:$(node_port "$n"),CONTROLLER://127.0.0.1:$(node_cport "$n")
advertised.listeners=PLAINTEXT://127.0.0.1:$(node_port "$n")
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=$d/data
num.partitions=4
default.replication.factor=$rf
min.insync.replicas=$isr
unclean.leader.election.enable=false
offsets.topic.replication.factor=$rf
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=$isr
share.coordinator.state.topic.replication.factor=$rf
share.coordinator.state.topic.min.isr=$isr
group.initial.rebalance.delay.ms=0
group.consumer.min.session.timeout.ms=1000
group.min.session.timeout.ms=1000
auto.create.topics.enable=true
log.retention.hours=48
log.segment.bytes=67108864
log.cleaner.dedupe.buffer.size=16777216
PROPS
}

cluster_id() {
  [ -s "$dir/cluster.id" ] || { mkdir -p "$dir"; python3 -c 'import base64,uuid
# like Kafka'"'"'s own Uuid.randomUuid: never an id that starts with "-" (the format tool would read it as an option)
while (i := base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")).startswith("-"): pass
print(i)' > "$dir/cluster.id"; }
  cat "$dir/cluster.id"
}

launch() {
  local n=$1 d p
  d=$(node_dir "$n"); p=$(node_port "$n")
  if running "$n" && answers "$p"; then log "node $n already running on 127.0.0.1:$p"; return 0; fi
  wait_for_ports "$n"
  write_config "$n"
  if [ ! -f "$d/data/meta.properties" ]; then
    log "formatting storage in $d/data"
    (java_cmd "$d" kafka.tools.StorageTool format -t "$(cluster_id)" \
      -c "$d/server.properties" --ignore-formatted) >"$d/format.log" 2>&1 \
      || { cat "$d/format.log" >&2; exit 1; }
  fi
  log "starting Apache Kafka node $n of $nodes on 127.0.0.1:$p (logs: $d/broker.log)"
  (trap '' HUP; java_cmd "$d" kafka.Kafka "$d/server.properties") >"$d/stdout.log" 2>&1 &
  echo $! > "$(pidfile "$n")"
}

# Node N answers within 60 s, or the cause of its exit is shown.
await_node() {
  local n=$1 d p
  d=$(node_dir "$n"); p=$(node_port "$n")
  for _ in $(seq 1 120); do
    if answers "$p"; then log "node $n ready on 127.0.0.1:$p"; return 0; fi
    if ! running "$n"; then
      log "node $n exited; the cause:"
      if grep -q "Address already in use" "$d/stdout.log" "$d/broker.log" 2>/dev/null; then
        log "a port of node $n ($p or $(node_cport "$n")) was taken between the check and the start:"
        ss -tanH "( sport = :$p or sport = :$(node_cport "$n") )" >&2 || true
      fi
      grep -m5 -E "Exception|Error|Caused by" "$d/stdout.log" "$d/broker.log" >&2 2>/dev/null || tail -20 "$d/stdout.log" >&2
      return 1
    fi
    sleep 0.5
  done
  log "node $n did not answer within 60 s"; return 1
}

start() {
  local n
  resolve_jars
  for n in $(seq 1 "$nodes"); do launch "$n"; done  # all at once: a quorum needs a majority to answer
  for n in $(seq 1 "$nodes"); do await_node "$n" || exit 1; done
  [ "$nodes" -gt 1 ] && log "cluster of $nodes ready: bootstrap $(for n in $(seq 1 "$nodes"); do printf '127.0.0.1:%s,' "$(node_port "$n")"; done | sed 's/,$//')"
  return 0
}

stop_node() {
  local n=$1 sig=${2:-TERM} f pid
  f=$(pidfile "$n")
  if ! running "$n"; then log "node $n not running"; rm -f "$f"; return 0; fi
  pid=$(cat "$f"); kill -"$sig" "$pid" 2>/dev/null || true
  for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || { rm -f "$f"; log "node $n stopped ($sig)"; return 0; }; sleep 0.5; done
  kill -9 "$pid" 2>/dev/null || true; rm -f "$f"; log "node $n killed"
}

stop() {
  local n pids=()
  for n in $(seq 1 "$nodes"); do running "$n" && pids+=("$n"); done
  [ ${#pids[@]} -eq 0 ] && { log "not running"; for n in $(seq 1 "$nodes"); do rm -f "$(pidfile "$n")"; done; return 0; }
  for n in "${pids[@]}"; do stop_node "$n" & done  # together: a lone survivor would wait for its quorum
  wait
}

status() {
  local n
  for n in $(seq 1 "$nodes"); do running "$n" && answers "$(node_port "$n")" || return 1; done
}

check_node() {
  [[ "${1:-}" =~ ^[0-9]+$ ]] && [ "$1" -ge 1 ] && [ "$1" -le "$nodes" ] || { echo "node: 1..$nodes (KAFKA_BROKERS=$nodes)" >&2; exit 2; }
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  start-node) check_node "${2:-}"; resolve_jars; launch "$2"; await_node "$2" ;;
  stop-node) check_node "${2:-}"; stop_node "$2" ;;
  kill-node) check_node "${2:-}"; stop_node "$2" KILL ;;
  *) echo "usage: $0 start|stop|status|start-node N|stop-node N|kill-node N" >&2; exit 2 ;;
esac
