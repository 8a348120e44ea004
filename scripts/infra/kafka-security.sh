# shellcheck shell=bash
# The local broker's SASL_SSL listeners (sourced by infra.sh after lib.sh):
#   SECURE://127.0.0.1:19095 for the host's clients, and PODSECURE://127.0.0.1:19096,
#   advertised as kafka.kafka.svc:9093, which the real node's pods reach through node.sh's
#   forwarder. Both: TLS with a CA and broker certificate made here with openssl (cached
#   under .local/kafka/security/), SCRAM-SHA-512 login, client certificates verified when
#   presented (mTLS optional). The PLAINTEXT, CONTROLLER and POD listeners stay as they are.
# A SCRAM user for tests is created through the PLAINTEXT listener after the broker started
# (KRaft keeps SCRAM credentials in its metadata log); .local/env gets the address, the CA
# and the credentials as KAFKA_SECURE_* (not OCR_*: no runtime process picks them up unasked).

KAFKA_SECURE_PORT=19095
KAFKA_POD_SECURE_PORT=19096
KAFKA_POD_SECURE_ADDRESS=kafka.kafka.svc:9093
KAFKA_SCRAM_USER=ocr-test
KAFKA_SECURITY_DIR="$LOCAL/kafka/security"
# Every name a client dials the broker by: loopback on the host; the kafka Service's names
# in the node's cluster DNS (short forms through a pod's search path) for pods.
KAFKA_BROKER_SAN="IP:127.0.0.1,DNS:localhost,DNS:kafka.kafka.svc,DNS:kafka.kafka.svc.cluster.local,DNS:kafka.kafka"

# Certificates: a CA, a client's for mTLS, and the broker's for KAFKA_BROKER_SAN. The broker's
# is signed again when that list changed since it was made; the CA, the client's and the
# SCRAM password stay, so whatever trusts the CA keeps trusting the broker.
kafka_security_certs() {
  local d="$KAFKA_SECURITY_DIR"
  [ -f "$d/.complete" ] || _kafka_ca_and_client "$d"
  [ "$(cat "$d/broker.san" 2>/dev/null)" = "$KAFKA_BROKER_SAN" ] || _kafka_broker_cert "$d"
}

_kafka_ca_and_client() {
  local d="$1"
  command -v openssl >/dev/null 2>&1 || apt_ensure openssl openssl
  log "creating the local Kafka CA and client certificate in $d (once)"
  rm -rf "$d" && mkdir -p "$d"
  (
    cd "$d"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=ocr-serving local CA" \
      -keyout ca.key -out ca.pem
    _kafka_leaf client "extendedKeyUsage=clientAuth"
    openssl rand -hex 16 >scram-password
  ) >"$LOG_DIR/kafka-certs.log" 2>&1 || die "certificate generation failed (see $LOG_DIR/kafka-certs.log)"
  chmod 600 "$d"/*.key "$d/scram-password"
  touch "$d/.complete"
}

_kafka_broker_cert() {
  local d="$1"
  command -v openssl >/dev/null 2>&1 || apt_ensure openssl openssl
  log "signing the broker's certificate for $KAFKA_BROKER_SAN"
  (
    cd "$d"
    _kafka_leaf broker "subjectAltName=$KAFKA_BROKER_SAN"
    # Kafka's PEM keystore: the (PKCS#8, unencrypted) key followed by its certificate.
    cat broker.key broker.crt >broker-keystore.pem
  ) >>"$LOG_DIR/kafka-certs.log" 2>&1 || die "certificate signing failed (see $LOG_DIR/kafka-certs.log)"
  chmod 600 "$d/broker.key" "$d/broker-keystore.pem"
  printf '%s\n' "$KAFKA_BROKER_SAN" >"$d/broker.san"
}

# _kafka_leaf NAME EXTENSION: NAME.key and NAME.crt signed by the CA (run inside the folder).
_kafka_leaf() {
  openssl req -newkey rsa:2048 -nodes -subj "/CN=$1" -keyout "$1.key" -out "$1.csr"
  openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 3650 \
    -extfile <(printf '%s\n' "$2") -out "$1.crt"
  rm -f "$1.csr"
}

# kafka_security_configure PROPERTIES: adds the SECURE and PODSECURE listeners to a
# server.properties.
kafka_security_configure() {
  local props="$1" port listener
  for port in "$KAFKA_SECURE_PORT" "$KAFKA_POD_SECURE_PORT"; do
    port_in_use "$port" && die "port $port is taken by a process that is not ours"
  done
  kafka_security_certs
  sed -i \
    -e "s|^listeners=.*|&,SECURE://127.0.0.1:$KAFKA_SECURE_PORT,PODSECURE://127.0.0.1:$KAFKA_POD_SECURE_PORT|" \
    -e "s|^advertised.listeners=.*|&,SECURE://127.0.0.1:$KAFKA_SECURE_PORT,PODSECURE://$KAFKA_POD_SECURE_ADDRESS|" \
    -e "s|^listener.security.protocol.map=.*|&,SECURE:SASL_SSL,PODSECURE:SASL_SSL|" "$props"
  echo "sasl.enabled.mechanisms=SCRAM-SHA-512" >>"$props"
  for listener in secure podsecure; do _kafka_listener_security "$listener" >>"$props"; done
}

# _kafka_listener_security NAME: the SCRAM login and the TLS key material of one listener.
_kafka_listener_security() {
  local p="listener.name.$1" d="$KAFKA_SECURITY_DIR"
  cat <<EOF
$p.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
$p.ssl.keystore.type=PEM
$p.ssl.keystore.location=$d/broker-keystore.pem
$p.ssl.truststore.type=PEM
$p.ssl.truststore.location=$d/ca.pem
$p.ssl.client.auth=requested
EOF
}

# kafka_security_provision LIBS: the test user's SCRAM-SHA-512 credential, once per cluster
# (the marker holds the cluster id, so a reformatted log directory gets it again).
kafka_security_provision() {
  local libs="$1" marker="$KAFKA_SECURITY_DIR/scram-provisioned" cluster
  cluster="$(sed -n 's/^cluster.id=//p' "$LOCAL/kafka/data/meta.properties")"
  [ -f "$marker" ] && [ "$(cat "$marker")" = "$cluster" ] && return 0
  log "creating the SCRAM-SHA-512 user $KAFKA_SCRAM_USER"
  kafka_java "$libs" kafka.admin.ConfigCommand --bootstrap-server "127.0.0.1:$KAFKA_PORT" \
    --alter --entity-type users --entity-name "$KAFKA_SCRAM_USER" --add-config \
    "SCRAM-SHA-512=[iterations=4096,password=$(cat "$KAFKA_SECURITY_DIR/scram-password")]" \
    >"$LOG_DIR/kafka-scram.log" 2>&1 \
    || die "could not create the SCRAM user (see $LOG_DIR/kafka-scram.log)"
  printf '%s\n' "$cluster" >"$marker"
}

kafka_security_write_env() {
  local d="$KAFKA_SECURITY_DIR"
  env_set \
    KAFKA_SECURE_BOOTSTRAP "127.0.0.1:$KAFKA_SECURE_PORT" \
    KAFKA_SECURE_POD_BOOTSTRAP "$KAFKA_POD_SECURE_ADDRESS" \
    KAFKA_SECURE_POD_LISTENER "127.0.0.1:$KAFKA_POD_SECURE_PORT" \
    KAFKA_SECURE_CA_FILE "$d/ca.pem" \
    KAFKA_SECURE_CLIENT_CERT_FILE "$d/client.crt" \
    KAFKA_SECURE_CLIENT_KEY_FILE "$d/client.key" \
    KAFKA_SECURE_USERNAME "$KAFKA_SCRAM_USER" \
    KAFKA_SECURE_PASSWORD "$(cat "$d/scram-password")"
}
