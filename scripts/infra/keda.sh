#!/usr/bin/env bash
# KEDA on the local cluster's real node: its operator built from the Go module proxy with
# only the kafka, cpu and memory scalers (k8s-build.sh keda), in an image made from the local
# Debian base, with KEDA's own CRDs and ClusterRole, and a serving certificate made here.
# The metrics adapter is not installed: the operator alone scales a worker Deployment between
# zero and its first replica from the Kafka scaler's activation, which is what a stack's
# scale-to-zero needs; above one replica the HPA it creates reads external metrics that
# no adapter serves here.
#
# Usage: keda.sh up|down|status    (needs `make cluster-up` with the real node)
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
# shellcheck source-path=SCRIPTDIR
. "$REPO_ROOT/scripts/images/lib.sh"
LOG_TAG=keda

NAMESPACE=keda
DIR="$(keda_dir)"
IMAGE="localhost/ocr-keda:$KEDA_VERSION-${DIR##*-}"  # the build's hash: a new build, a new tag
export KUBECONFIG="${KUBECONFIG:-$LOCAL/kubeconfig}"

kc() { kubectl --request-timeout=60s "$@"; }

keda_image() {
  if podman image exists "$IMAGE"; then return 0; fi
  ensure_podman
  ensure_debian_image
  log "building $IMAGE"
  podman build -q -f "$KEDA_SRC/Containerfile" --build-arg BASE="$DEBIAN_IMAGE" -t "$IMAGE" \
    "$DIR/bin" >/dev/null
}

# The operator's gRPC metrics service refuses to start without a certificate; KEDA's own
# rotation would write one to a Secret and wait for the kubelet to mount it.
certificate_secret() {
  kc -n "$NAMESPACE" get secret kedaorg-certs >/dev/null 2>&1 && return 0
  local tmp
  tmp="$(mktemp -d)"
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=keda-ca" \
    -keyout "$tmp/ca.key" -out "$tmp/ca.crt" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=keda-operator.$NAMESPACE.svc" \
    -addext "subjectAltName=DNS:keda-operator,DNS:keda-operator.$NAMESPACE.svc,DNS:localhost" \
    -keyout "$tmp/tls.key" -out "$tmp/tls.csr" 2>/dev/null
  openssl x509 -req -in "$tmp/tls.csr" -CA "$tmp/ca.crt" -CAkey "$tmp/ca.key" -CAcreateserial \
    -days 3650 -copy_extensions copy -out "$tmp/tls.crt" 2>/dev/null
  kc -n "$NAMESPACE" create secret generic kedaorg-certs --from-file="$tmp/ca.crt" \
    --from-file="$tmp/tls.crt" --from-file="$tmp/tls.key" >/dev/null
  rm -rf "$tmp"
}

manifests() {
  cat <<YAML
apiVersion: v1
kind: ServiceAccount
metadata: {name: keda-operator, namespace: $NAMESPACE}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: keda-operator}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: keda-operator}
subjects: [{kind: ServiceAccount, name: keda-operator, namespace: $NAMESPACE}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: keda-operator, namespace: $NAMESPACE, labels: {app: keda-operator}}
spec:
  replicas: 1
  selector: {matchLabels: {app: keda-operator}}
  template:
    metadata: {labels: {app: keda-operator}}
    spec:
      serviceAccountName: keda-operator
      nodeSelector: {ocr-serving.local/node: real}
      tolerations: [{key: ocr-serving.local/real-node, operator: Exists, effect: NoSchedule}]
      securityContext: {runAsNonRoot: true, runAsUser: 65532, seccompProfile: {type: RuntimeDefault}}
      containers:
        - name: keda-operator
          image: $IMAGE
          imagePullPolicy: Never
          args: [--zap-log-level=info, --zap-encoder=json, --enable-cert-rotation=false,
                 --enable-webhook-patching=false, --enable-apiservice-patching=false]
          env:
            - {name: POD_NAMESPACE, valueFrom: {fieldRef: {fieldPath: metadata.namespace}}}
            - {name: WATCH_NAMESPACE, value: ""}
            - {name: KEDA_HTTP_DEFAULT_TIMEOUT, value: "3000"}
          ports: [{containerPort: 8080, name: metrics}]
          readinessProbe: {httpGet: {path: /readyz, port: 8081}, periodSeconds: 2}
          resources: {requests: {cpu: 50m, memory: 64Mi}, limits: {memory: 512Mi}}
          securityContext:
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            capabilities: {drop: [ALL]}
          volumeMounts: [{name: certificates, mountPath: /certs, readOnly: true}]
      volumes: [{name: certificates, secret: {secretName: kedaorg-certs}}]
YAML
}

up() {
  "$REPO_ROOT/scripts/infra/k8s-build.sh" keda
  keda_image
  "$REPO_ROOT/scripts/infra/node.sh" load-images
  kc create namespace "$NAMESPACE" --dry-run=client -o yaml | kc apply -f - >/dev/null
  kc apply --server-side --force-conflicts -f "$DIR/src/config/crd/bases" >/dev/null
  # `kubectl wait` fails at once on a CRD too new to have conditions: ask again.
  local tries=0
  until kc wait --for=condition=Established --timeout=60s -f "$DIR/src/config/crd/bases" \
      >/dev/null 2>&1; do
    tries=$((tries + 1))
    [ "$tries" -lt 30 ] || die "KEDA's CRDs not Established"
    sleep 1
  done
  kc apply --server-side --force-conflicts -f "$DIR/src/config/rbac/role.yaml" >/dev/null
  certificate_secret
  manifests | kc apply --server-side --force-conflicts -f - >/dev/null
  kc -n "$NAMESPACE" rollout status deployment/keda-operator --timeout=180s >/dev/null \
    || die "KEDA's operator did not become ready: $(kc -n "$NAMESPACE" logs deploy/keda-operator --tail=20 2>&1)"
  log "KEDA $KEDA_VERSION running on the real node ($IMAGE)"
}

down() {
  kc delete namespace "$NAMESPACE" --ignore-not-found --wait=false >/dev/null
  kc delete clusterrolebinding keda-operator --ignore-not-found >/dev/null
  log "KEDA removed (its CRDs stay, with any ScaledObjects)"
}

status() {
  kc -n "$NAMESPACE" get deployment keda-operator -o jsonpath='{.status.readyReplicas}' 2>/dev/null \
    | grep -qx 1 && echo "KEDA: running" && return 0
  echo "KEDA: not running"
  return 1
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  *) die "usage: $0 up|down|status" ;;
esac
