# shellcheck shell=bash
# The local broker's SASL_SSL listener (sourced by infra.sh after lib.sh):
#   SECURE://127.0.0.1:19095, TLS with a CA and broker certificate made here with openssl
#   (cached under .local/kafka/security/), SCRAM-SHA-512 login, client certificates
#   verified when presented (mTLS optional). The PLAINTEXT, CONTROLLER and POD listeners
#   stay as they are.
# A SCRAM user for tests is created through the PLAINTEXT listener after the broker started
# (KRaft keeps SCRAM credentials in its metadata log); .local/env gets the address, the CA
# and the credentials as KAFKA_SECURE_* (not OCR_*: no runtime process picks them up unasked).

KAFKA_SECURE_PORT=19095
KAFKA_SCRAM_USER=ocr-test
KAFKA_SECURITY_DIR="$LOCAL/kafka/security"

# Certificates: a CA, the broker's (127.0.0.1 and localhost) and a client's for mTLS.
kafka_security_certs() {
  local d="$KAFKA_SECURITY_DIR"
  [ -f "$d/.complete" ] && return 0
  command -v openssl >/dev/null 2>&1 || apt_ensure openssl openssl
  log "creating the local Kafka CA and certificates in $d (once)"
  rm -rf "$d" && mkdir -p "$d"
  (
    cd "$d"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=ocr-serving local CA" \
      -keyout ca.key -out ca.pem
    _kafka_leaf broker "subjectAltName=IP:127.0.0.1,DNS:localhost"
    _kafka_leaf client "extendedKeyUsage=clientAuth"
    # Kafka's PEM keystore: the (PKCS#8, unencrypted) key followed by its certificate.
    cat broker.key broker.crt >broker-keystore.pem
    openssl rand -hex 16 >scram-password
  ) >"$LOG_DIR/kafka-certs.log" 2>&1 || die "certificate generation failed (see $LOG_DIR/kafka-certs.log)"
  chmod 600 "$d"/*.key "$d/broker-keystore.pem" "$d/scram-password"
  touch "$d/.complete"
}

# _kafka_leaf NAME EXTENSION: NAME.key and NAME.crt signed by the CA (run inside the folder).
_kafka_leaf() {
  openssl req -newkey rsa:2048 -nodes -subj "/CN=$1" -keyout "$1.key" -out "$1.csr"
  openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 3650 \
    -extfile <(printf '%s\n' "$2") -out "$1.crt"
  rm -f "$1.csr"
}

# kafka_security_configure PROPERTIES: adds the SECURE listener to a server.properties.
kafka_security_configure() {
  local props="$1" d="$KAFKA_SECURITY_DIR"
  port_in_use "$KAFKA_SECURE_PORT" && die "port $KAFKA_SECURE_PORT is taken by a process that is not ours"
  kafka_security_certs
  sed -i -e "s|^listeners=.*|&,SECURE://127.0.0.1:$KAFKA_SECURE_PORT|" \
    -e "s|^advertised.listeners=.*|&,SECURE://127.0.0.1:$KAFKA_SECURE_PORT|" \
    -e "s|^listener.security.protocol.map=.*|&,SECURE:SASL_SSL|" "$props"
  cat >>"$props" <<EOF
sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.secure.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.secure.ssl.keystore.type=PEM
listener.name.secure.ssl.keystore.location=$d/broker-keystore.pem
listener.name.secure.ssl.truststore.type=PEM
listener.name.secure.ssl.truststore.location=$d/ca.pem
listener.name.secure.ssl.client.auth=requested
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
    KAFKA_SECURE_CA_FILE "$d/ca.pem" \
    KAFKA_SECURE_CLIENT_CERT_FILE "$d/client.crt" \
    KAFKA_SECURE_CLIENT_KEY_FILE "$d/client.key" \
    KAFKA_SECURE_USERNAME "$KAFKA_SCRAM_USER" \
    KAFKA_SECURE_PASSWORD "$(cat "$d/scram-password")"
}
