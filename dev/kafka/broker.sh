#!/usr/bin/env bash
# A single-node Apache Kafka (KRaft) for development and tests, from Maven Central jars.
#   broker.sh start   start in the background if not running; wait until it answers
#   broker.sh stop    stop it (SIGTERM, then SIGKILL after 20 s)
#   broker.sh status  exit 0 if it answers
# Env: KAFKA_PORT (9092), KAFKA_CONTROLLER_PORT (KAFKA_PORT+10000),
#      KAFKA_DIR (.cache/kafka/$KAFKA_PORT): data, logs and pid file.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
port=${KAFKA_PORT:-9092}
cport=${KAFKA_CONTROLLER_PORT:-$((port + 10000))}
dir=${KAFKA_DIR:-$root/.cache/kafka/$port}
jars=$here/target/dependency
pidfile=$dir/broker.pid

log() { echo "[broker] $*" >&2; }

answers() { (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; }

running() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

resolve_jars() {
  if [ ! -f "$jars/kafka_2.13-"*.jar ] 2>/dev/null || [ "$(ls "$jars" 2>/dev/null | wc -l)" -lt 10 ]; then
    log "resolving Kafka jars from Maven Central (once) ..."
    (cd "$here" && mvn -q -B dependency:copy-dependencies -DincludeScope=runtime) >&2
  fi
}

java_cmd() {
  exec java -Xms256m -Xmx1g -XX:+UseG1GC -Djava.awt.headless=true \
    -Dkafka.logs.dir="$dir" -Dlog4j2.configurationFile="$here/log4j2.properties" \
    -cp "$jars/*" "$@"
}

write_config() {
  mkdir -p "$dir/data"
  cat > "$dir/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=$dir/data
num.partitions=4
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
group.consumer.min.session.timeout.ms=1000
group.min.session.timeout.ms=1000
auto.create.topics.enable=true
log.retention.hours=48
log.segment.bytes=67108864
log.cleaner.dedupe.buffer.size=16777216
PROPS
}

start() {
  if running && answers; then log "already running on 127.0.0.1:$port"; return 0; fi
  for p in "$port" "$cport"; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      log "port $p is already taken by another program; choose others with KAFKA_PORT / KAFKA_CONTROLLER_PORT"; exit 1
    fi
  done
  resolve_jars
  write_config
  if [ ! -f "$dir/data/meta.properties" ]; then
    log "formatting storage in $dir/data"
    [ -s "$dir/cluster.id" ] || python3 -c 'import base64,uuid
# like Kafka'"'"'s own Uuid.randomUuid: never an id that starts with "-" (the format tool would read it as an option)
while (i := base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")).startswith("-"): pass
print(i)' > "$dir/cluster.id"
    (java_cmd kafka.tools.StorageTool format -t "$(cat "$dir/cluster.id")" \
      -c "$dir/server.properties" --ignore-formatted) >"$dir/format.log" 2>&1 \
      || { cat "$dir/format.log" >&2; exit 1; }
  fi
  log "starting Apache Kafka on 127.0.0.1:$port (logs: $dir/broker.log)"
  (trap '' HUP; java_cmd kafka.Kafka "$dir/server.properties") >"$dir/stdout.log" 2>&1 &
  echo $! > "$pidfile"
  for _ in $(seq 1 120); do
    if answers; then log "ready on 127.0.0.1:$port"; return 0; fi
    if ! running; then
      log "broker exited; the cause:"
      grep -m5 -E "Exception|Error|Caused by" "$dir/stdout.log" "$dir/broker.log" >&2 2>/dev/null || tail -20 "$dir/stdout.log" >&2
      exit 1
    fi
    sleep 0.5
  done
  log "broker did not answer within 60 s"; exit 1
}

stop() {
  if ! running; then log "not running"; rm -f "$pidfile"; return 0; fi
  pid=$(cat "$pidfile"); kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || { rm -f "$pidfile"; log "stopped"; return 0; }; sleep 0.5; done
  kill -9 "$pid" 2>/dev/null || true; rm -f "$pidfile"; log "killed"
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  status) running && answers ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
