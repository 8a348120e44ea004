#!/usr/bin/env bash
# Local services for integration tests, as our own processes on loopback, non-default ports:
#   Kafka 4.x KRaft broker (Maven Central jars)  127.0.0.1:19092 (controller 19093; pods of
#     the real node reach 19094 as kafka.kafka.svc:9092 through node.sh's forwarder;
#     SASL_SSL with SCRAM-SHA-512 on 19095, and on 19096 for pods as kafka.kafka.svc:9093,
#     see kafka-security.sh)
#   MariaDB (Debian)                              127.0.0.1:13306  user/password/db: ocr
#   Redis (Debian)                                127.0.0.1:16379
#   Prometheus (Debian), 1 s scrape of .local/prometheus/targets.json  127.0.0.1:19090
#   MLflow (PyPI), model registry                 127.0.0.1:15000 (scripts/infra/mlflow.sh)
#   S3Proxy (Maven Central jars), S3 with SigV4    127.0.0.1:15900 (scripts/infra/s3.sh)
# State under .local/ (git-ignored); jars cached in ~/.cache/ocr-serving/kafka-<version>/.
# Usage: infra.sh up|down|status|restart SERVICE (kafka, mariadb, redis or prometheus)
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/kafka-security.sh"
LOG_TAG=infra

KAFKA_VERSION="${OCR_KAFKA_VERSION:-4.1.1}"
LOG4J_VERSION=2.24.3 # the log4j Kafka 4.1 pulls in; its slf4j 1.7 binding goes with it
KAFKA_PORT=19092
KAFKA_CONTROLLER_PORT=19093
KAFKA_POD_PORT=19094
MARIADB_PORT=13306
REDIS_PORT=16379
PROMETHEUS_PORT=19090
SERVICES=(kafka mariadb redis prometheus)

# --- Kafka ---------------------------------------------------------------------------------

kafka_libs() {
  local d="<dependency><groupId>org.apache"
  maven_libs kafka "$KAFKA_VERSION" \
    "$d.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$KAFKA_VERSION</version></dependency>
    $d.kafka</groupId><artifactId>kafka-tools</artifactId><version>$KAFKA_VERSION</version></dependency>
    $d.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId><version>$LOG4J_VERSION</version></dependency>
    $d.logging.log4j</groupId><artifactId>log4j-core</artifactId><version>$LOG4J_VERSION</version></dependency>"
}

kafka_configure() {
  local d="$LOCAL/kafka"
  mkdir -p "$d/data"
  cat >"$d/server.properties" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT,POD://127.0.0.1:$KAFKA_POD_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,POD://kafka.kafka.svc:9092
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,POD:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs=$d/data
num.partitions=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
log.retention.hours=24
EOF
  kafka_security_configure "$d/server.properties"
  cat >"$d/log4j2.properties" <<EOF
rootLogger.level=INFO
rootLogger.appenderRef.stdout.ref=STDOUT
appender.stdout.type=Console
appender.stdout.name=STDOUT
appender.stdout.layout.type=PatternLayout
appender.stdout.layout.pattern=[%d] %p %m (%c)%n
logger.kafka.name=kafka
logger.kafka.level=INFO
logger.state.name=state.change.logger
logger.state.level=WARN
EOF
}

kafka_java() {
  local libs="$1"; shift
  java -Xms128m -Xmx512m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
    -Dlog4j2.configurationFile="$LOCAL/kafka/log4j2.properties" \
    -cp "$libs/*" "$@"
}

kafka_up() {
  if is_running kafka; then
    log "kafka already running"
    # A broker keeps the listeners it started with: one from before PODSECURE lacks it.
    port_in_use "$KAFKA_POD_SECURE_PORT" || log "WARNING: kafka has no listener on" \
      "$KAFKA_POD_SECURE_PORT ($KAFKA_POD_SECURE_ADDRESS for pods): \`$0 restart kafka\` adds it"
    return 0
  fi
  port_in_use "$KAFKA_PORT" && die "port $KAFKA_PORT is taken by a process that is not ours"
  local libs
  libs="$(kafka_libs)"
  kafka_configure
  if [ ! -f "$LOCAL/kafka/data/meta.properties" ]; then
    log "formatting the KRaft log directory"
    kafka_java "$libs" kafka.tools.StorageTool format --ignore-formatted \
      -t "$(kafka_java "$libs" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n1)" \
      -c "$LOCAL/kafka/server.properties" >>"$LOG_DIR/kafka-format.log" 2>&1 \
      || die "kafka storage format failed (see $LOG_DIR/kafka-format.log)"
  fi
  : >"$LOG_DIR/kafka.log"
  start_bg kafka java -Xms128m -Xmx512m -XX:+UseSerialGC \
    -Dlog4j2.configurationFile="$LOCAL/kafka/log4j2.properties" \
    -cp "$libs/*" kafka.Kafka "$LOCAL/kafka/server.properties"
}

kafka_wait() {
  wait_tcp 127.0.0.1 "$KAFKA_PORT" 120 kafka
  local deadline=$(( $(date +%s) + 120 ))
  until grep -q 'Kafka Server started' "$LOG_DIR/kafka.log"; do
    pid_alive kafka || die "kafka exited (see $LOG_DIR/kafka.log)"
    [ "$(date +%s)" -lt "$deadline" ] || die "kafka not started after 120 s"
    sleep 0.3
  done
  kafka_security_provision "$(kafka_libs)"
  log "kafka ready on 127.0.0.1:$KAFKA_PORT (SASL_SSL on $KAFKA_SECURE_PORT, for pods on $KAFKA_POD_SECURE_PORT)"
}

# --- MariaDB -------------------------------------------------------------------------------

MARIADB_SOCKET="$LOCAL/mariadb/mysqld.sock"

# mariadbd refuses to run as root unless told to.
MARIADB_USER_FLAG=()
[ "$(id -u)" -eq 0 ] && MARIADB_USER_FLAG=(--user=root)

mariadb_up() {
  if is_running mariadb; then log "mariadb already running"; return 0; fi
  port_in_use "$MARIADB_PORT" && die "port $MARIADB_PORT is taken by a process that is not ours"
  apt_ensure /usr/sbin/mariadbd mariadb-server mariadb-client
  local d="$LOCAL/mariadb"
  mkdir -p "$d"
  if [ ! -d "$d/data/mysql" ]; then
    log "initialising the MariaDB data directory"
    mariadb-install-db --no-defaults "${MARIADB_USER_FLAG[@]}" --datadir="$d/data" \
      --auth-root-authentication-method=socket --skip-test-db >"$LOG_DIR/mariadb-init.log" 2>&1 \
      || die "mariadb-install-db failed (see $LOG_DIR/mariadb-init.log)"
  fi
  # Durability traded for speed: this database only ever holds test data.
  start_bg mariadb /usr/sbin/mariadbd --no-defaults "${MARIADB_USER_FLAG[@]}" \
    --datadir="$d/data" --socket="$MARIADB_SOCKET" --pid-file="$d/mariadbd.pid" \
    --port="$MARIADB_PORT" --bind-address=127.0.0.1 --skip-name-resolve \
    --character-set-server=utf8mb4 --collation-server=utf8mb4_unicode_ci \
    --innodb-buffer-pool-size=128M --innodb-log-file-size=48M \
    --innodb-flush-log-at-trx-commit=2 --skip-innodb-doublewrite --max-connections=300 \
    --log-error="$LOG_DIR/mariadb-error.log"
}

mariadb_wait() {
  wait_tcp 127.0.0.1 "$MARIADB_PORT" 60 mariadb
  # The ocr user may create databases of its own: tests isolate themselves that way.
  mariadb --no-defaults --socket="$MARIADB_SOCKET" -uroot <<'SQL' \
    || die "could not provision the ocr user (see $LOG_DIR/mariadb-error.log)"
CREATE DATABASE IF NOT EXISTS ocr CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
CREATE USER IF NOT EXISTS 'ocr'@'127.0.0.1' IDENTIFIED BY 'ocr';
CREATE USER IF NOT EXISTS 'ocr'@'localhost' IDENTIFIED BY 'ocr';
GRANT ALL PRIVILEGES ON *.* TO 'ocr'@'127.0.0.1';
GRANT ALL PRIVILEGES ON *.* TO 'ocr'@'localhost';
SQL
  log "mariadb ready on 127.0.0.1:$MARIADB_PORT"
}

# --- Redis ---------------------------------------------------------------------------------

redis_up() {
  if is_running redis; then log "redis already running"; return 0; fi
  port_in_use "$REDIS_PORT" && die "port $REDIS_PORT is taken by a process that is not ours"
  apt_ensure redis-server redis-server
  local d="$LOCAL/redis"
  mkdir -p "$d"
  cat >"$d/redis.conf" <<EOF
bind 127.0.0.1
port $REDIS_PORT
protected-mode yes
daemonize no
dir $d
save ""
appendonly no
maxmemory 256mb
EOF
  start_bg redis redis-server "$d/redis.conf"
}

redis_wait() {
  wait_tcp 127.0.0.1 "$REDIS_PORT" 30 redis
  log "redis ready on 127.0.0.1:$REDIS_PORT"
}

# --- Prometheus ----------------------------------------------------------------------------

prometheus_up() {
  if is_running prometheus; then log "prometheus already running"; return 0; fi
  port_in_use "$PROMETHEUS_PORT" && die "port $PROMETHEUS_PORT is taken by a process that is not ours"
  apt_ensure prometheus prometheus
  local d="$LOCAL/prometheus"
  mkdir -p "$d/data"
  # Tests rewrite targets.json; keep what is there across restarts.
  [ -f "$d/targets.json" ] || echo '[]' >"$d/targets.json"
  cat >"$d/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: ocr
    file_sd_configs:
      - files: ["$d/targets.json"]
        refresh_interval: 1s
EOF
  start_bg prometheus prometheus --config.file="$d/prometheus.yml" \
    --storage.tsdb.path="$d/data" --storage.tsdb.retention.time=1d \
    --web.listen-address="127.0.0.1:$PROMETHEUS_PORT" --web.enable-lifecycle
}

prometheus_wait() {
  wait_tcp 127.0.0.1 "$PROMETHEUS_PORT" 60 prometheus
  local deadline=$(( $(date +%s) + 60 ))
  until curl -fsS "http://127.0.0.1:$PROMETHEUS_PORT/-/ready" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$deadline" ] || die "prometheus not ready after 60 s"
    sleep 0.3
  done
  log "prometheus ready on http://127.0.0.1:$PROMETHEUS_PORT"
}

# --- commands ------------------------------------------------------------------------------

write_env() {
  env_set \
    OCR_KAFKA_BOOTSTRAP "127.0.0.1:$KAFKA_PORT" \
    OCR_DATABASE_URL "mysql+aiomysql://ocr:ocr@127.0.0.1:$MARIADB_PORT/ocr" \
    OCR_REDIS_URL "redis://127.0.0.1:$REDIS_PORT/0" \
    PROMETHEUS_URL "http://127.0.0.1:$PROMETHEUS_PORT" \
    PROMETHEUS_TARGETS_FILE "$LOCAL/prometheus/targets.json"
  kafka_security_write_env
}

up() {
  ensure_dirs
  local start s
  start=$(date +%s)
  # Start everything first, then wait: the JVMs warm up while the others start. The model
  # registry and the S3 server live in scripts of their own.
  "$(dirname "$0")/mlflow.sh" start
  "$(dirname "$0")/s3.sh" start
  for s in "${SERVICES[@]}"; do "${s}_up"; done
  for s in "${SERVICES[@]}"; do "${s}_wait"; done
  write_env
  "$(dirname "$0")/s3.sh" wait
  "$(dirname "$0")/mlflow.sh" wait
  log "all services up in $(( $(date +%s) - start )) s; environment in $ENV_FILE"
}

# restart SERVICE: one service stopped and started again with the configuration written
# now (a new Kafka listener, say), the others left running.
restart() {
  local s="${1:-}"
  [[ " ${SERVICES[*]} " == *" $s "* ]] || die "usage: $0 restart ${SERVICES[*]}"
  ensure_dirs
  stop_all 30 "$s"
  "${s}_up"
  "${s}_wait"
  write_env
}

down() {
  "$(dirname "$0")/mlflow.sh" down
  "$(dirname "$0")/s3.sh" down
  stop_all 30 "${SERVICES[@]}"
  # .local/env keeps its (fixed) addresses: fixtures find the services stopped and restart them.
  log "infra stopped"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  restart) restart "${2:-}" ;;
  status)
    # Every component's line, stopped ones included; fails when any is stopped.
    rc=0
    print_status "${SERVICES[@]}" || rc=1
    "$(dirname "$0")/mlflow.sh" status || rc=1
    "$(dirname "$0")/s3.sh" status || rc=1
    exit "$rc" ;;
  *) die "usage: $0 up|down|status|restart SERVICE" ;;
esac
