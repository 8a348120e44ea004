#!/usr/bin/env bash
# A real S3 server for the s3:// model source:
#   S3Proxy (Maven Central jars)  127.0.0.1:15900, the filesystem provider's buckets under
#     .local/s3/data, AWS Signature V4 only, one access key generated once into .local/s3
# Jars cached in ~/.cache/ocr-serving/s3proxy-<version>/; the endpoint, the key pair and the
# bucket made at start go into .local/env as OCR_TEST_S3_* (not OCR_MODEL_S3_*: no runtime
# process picks them up unasked).
# Usage: s3.sh up|start|wait|down|status (start and wait: up in two halves)
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
LOG_TAG=s3

S3PROXY_VERSION="${OCR_S3PROXY_VERSION:-4.1.0}"
# The BOMs S3Proxy 4.1.0 is built with (its pom's dependencyManagement): Maven does not apply a
# dependency's imports to whoever depends on it, and without them Jackson 3 meets the 2.18
# annotations the cloud SDKs bring and the server fails at start.
JACKSON_BOM_VERSION=3.2.2
AWS_SDK_BOM_VERSION=2.54.2
OPENTELEMETRY_BOM_VERSION=1.65.0
S3_PORT="${OCR_S3_PORT:-15900}" # another port lets a test run a second server beside this one
S3_ENDPOINT="http://127.0.0.1:$S3_PORT"
S3_BUCKET=ocr-models
S3_REGION=us-east-1
S3_DIR="$LOCAL/s3"

s3proxy_libs() {
  local bom="<type>pom</type><scope>import</scope></dependency>"
  maven_libs s3proxy "$S3PROXY_VERSION" \
    "<dependency><groupId>org.gaul</groupId><artifactId>s3proxy</artifactId><version>$S3PROXY_VERSION</version></dependency>" \
    "<dependency><groupId>tools.jackson</groupId><artifactId>jackson-bom</artifactId><version>$JACKSON_BOM_VERSION</version>$bom
    <dependency><groupId>software.amazon.awssdk</groupId><artifactId>bom</artifactId><version>$AWS_SDK_BOM_VERSION</version>$bom
    <dependency><groupId>io.opentelemetry</groupId><artifactId>opentelemetry-bom</artifactId><version>$OPENTELEMETRY_BOM_VERSION</version>$bom"
}

# The key pair, made once: tests and the runtime sign with it, S3Proxy checks it.
s3_credentials() {
  [ -f "$S3_DIR/credentials" ] && return 0
  mkdir -p "$S3_DIR"
  log "creating the S3 access key in $S3_DIR/credentials (once)"
  (
    umask 077
    printf 'OCRTEST%s %s\n' \
      "$(head -c 7 /dev/urandom | od -An -tx1 | tr -d ' \n' | tr '[:lower:]' '[:upper:]')" \
      "$(head -c 30 /dev/urandom | od -An -tx1 | tr -d ' \n')" >"$S3_DIR/credentials"
  )
}

s3_access_key() { cut -d' ' -f1 "$S3_DIR/credentials"; }
s3_secret_key() { cut -d' ' -f2 "$S3_DIR/credentials"; }

s3_configure() {
  s3_credentials
  # A folder under the base directory is a bucket to the filesystem provider, which takes a
  # folder others may read for a public-read bucket that answers unsigned requests.
  mkdir -p "$S3_DIR/data/$S3_BUCKET"
  chmod 700 "$S3_DIR/data" "$S3_DIR/data/$S3_BUCKET"
  (
    umask 077 # the file holds the secret key
    cat >"$S3_DIR/s3proxy.properties" <<EOF
s3proxy.endpoint=$S3_ENDPOINT
s3proxy.authorization=aws-v4
s3proxy.identity=$(s3_access_key)
s3proxy.credential=$(s3_secret_key)
jclouds.provider=filesystem
jclouds.filesystem.basedir=$S3_DIR/data
jclouds.region=$S3_REGION
EOF
  )
  # S3Proxy ships no logging configuration, and logback's fallback logs every DEBUG line.
  cat >"$S3_DIR/logback.xml" <<'EOF'
<configuration>
  <appender name="STDOUT" class="ch.qos.logback.core.ConsoleAppender">
    <encoder><pattern>[%d{HH:mm:ss.SSS}] %-5level %logger{36} - %msg%n</pattern></encoder>
  </appender>
  <root level="INFO"><appender-ref ref="STDOUT"/></root>
</configuration>
EOF
}

start() {
  ensure_dirs
  if is_running s3proxy; then log "s3proxy already running"; return 0; fi
  port_in_use "$S3_PORT" && die "port $S3_PORT is taken by a process that is not ours"
  local libs
  libs="$(s3proxy_libs)"
  s3_configure
  : >"$LOG_DIR/s3proxy.log"
  start_bg s3proxy java -Xms64m -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
    -Dlogback.configurationFile="$S3_DIR/logback.xml" -cp "$libs/*" org.gaul.s3proxy.Main --properties "$S3_DIR/s3proxy.properties"
}

# Ready once a request signed with the generated key lists the bucket: the port alone says
# nothing of the credentials or the bucket.
wait_ready() {
  local begin deadline
  begin=$(date +%s)
  wait_tcp 127.0.0.1 "$S3_PORT" 120 s3proxy
  deadline=$(( $(date +%s) + 60 ))
  until curl -fsS -o /dev/null --aws-sigv4 "aws:amz:$S3_REGION:s3" \
      -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" --user "$(s3_access_key):$(s3_secret_key)" "$S3_ENDPOINT/$S3_BUCKET?list-type=2" 2>/dev/null; do
    pid_alive s3proxy || die "s3proxy exited (see $LOG_DIR/s3proxy.log)"
    [ "$(date +%s)" -lt "$deadline" ] || die "s3proxy does not list $S3_BUCKET after 60 s (see $LOG_DIR/s3proxy.log)"
    sleep 0.3
  done
  env_set \
    OCR_TEST_S3_ENDPOINT "$S3_ENDPOINT" \
    OCR_TEST_S3_ACCESS_KEY_ID "$(s3_access_key)" \
    OCR_TEST_S3_SECRET_ACCESS_KEY "$(s3_secret_key)" \
    OCR_TEST_S3_BUCKET "$S3_BUCKET"
  log "s3proxy ready on $S3_ENDPOINT, bucket $S3_BUCKET (waited $(( $(date +%s) - begin )) s)"
}

down() {
  stop_all 30 s3proxy
  log "s3proxy stopped"
}

case "${1:-}" in
  up) start; wait_ready ;;
  start) start ;;
  wait) wait_ready ;;
  down) down ;;
  status) print_status s3proxy ;;
  *) die "usage: $0 up|start|wait|down|status" ;;
esac
