#!/usr/bin/env bash
# A local Kubernetes control plane (no kubelet, no containers): etcd, kube-apiserver
# (https://127.0.0.1:16443, RBAC, ServiceAccount tokens), kube-controller-manager,
# kube-scheduler and kwok faking GPU nodes, so Deployments roll out and pods become Ready,
# plus one real node (node.sh: kubelet, containerd, CNI, kube-proxy, CoreDNS) for pods
# that tolerate its taint. OCR_REAL_NODE=0 leaves the real node out.
# Binaries are built once from the Go module proxy (k8s-build.sh); state lives under
# .local/k8s/; the admin kubeconfig is .local/kubeconfig.
# Usage: cluster.sh up|down|status
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
LOG_TAG=cluster

K8S_VERSION="${OCR_K8S_VERSION:-v1.34.4}"
KWOK_VERSION="${OCR_KWOK_VERSION:-v0.7.0}"
BIN="$CACHE/kubernetes-$K8S_VERSION/bin"
KWOK="$CACHE/kwok-$KWOK_VERSION/bin/kwok"
APISERVER_PORT=16443
ETCD_PORT=12379
ETCD_PEER_PORT=12380
KWOK_PORT=16447
FAKE_NODES="${OCR_FAKE_GPU_NODES:-2}"
# Above a kubelet's default 110: the operator benchmark applies 200 stacks (400 pods) at once.
PODS_PER_FAKE_NODE=500
GPUS_PER_NODE=4
K="$LOCAL/k8s"
KUBECONFIG_PATH="$LOCAL/kubeconfig"
SERVER="https://127.0.0.1:$APISERVER_PORT"
COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok)
# The control plane's Go runtimes collect when the heap reaches 5x its live size instead of
# 2x (GOGC=400): 200 stacks applied at once are CPU-bound on the apiserver, a tenth to a
# fifth of whose CPU went to its collector, and memory is not what this machine lacks.
CONTROL_PLANE_GOGC="${OCR_CONTROL_PLANE_GOGC:-400}"

# --- credentials ---------------------------------------------------------------------------

# One CA signs the apiserver's serving certificate and is the root CA handed to pods;
# one RSA key signs and verifies ServiceAccount tokens.
make_pki() {
  mkdir -p "$K/pki"
  local p="$K/pki"
  [ -f "$p/ca.crt" ] && [ -f "$p/apiserver.crt" ] && [ -f "$p/sa.key" ] && return 0
  log "generating the cluster CA, serving certificate and ServiceAccount key"
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=ocr-serving-local-ca" \
    -keyout "$p/ca.key" -out "$p/ca.crt" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=kube-apiserver" \
    -keyout "$p/apiserver.key" -out "$p/apiserver.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local\nextendedKeyUsage=serverAuth\n' \
    >"$p/apiserver.ext"
  openssl x509 -req -in "$p/apiserver.csr" -CA "$p/ca.crt" -CAkey "$p/ca.key" \
    -CAcreateserial -days 3650 -extfile "$p/apiserver.ext" -out "$p/apiserver.crt" 2>/dev/null
  openssl genrsa -out "$p/sa.key" 2048 2>/dev/null
  openssl rsa -in "$p/sa.key" -pubout -out "$p/sa.pub" 2>/dev/null
  chmod 600 "$p"/*.key
}

# The apiserver's client certificate towards kubelets (logs, exec, port-forward).
make_kubelet_client_cert() {
  local p="$K/pki"
  [ -f "$p/apiserver-kubelet-client.crt" ] && return 0
  openssl req -newkey rsa:2048 -nodes -subj "/O=system:masters/CN=kube-apiserver-kubelet-client" \
    -keyout "$p/apiserver-kubelet-client.key" -out "$p/apiserver-kubelet-client.csr" 2>/dev/null
  printf 'extendedKeyUsage=clientAuth\n' >"$p/apiserver-kubelet-client.ext"
  openssl x509 -req -in "$p/apiserver-kubelet-client.csr" -CA "$p/ca.crt" -CAkey "$p/ca.key" \
    -CAcreateserial -days 3650 -extfile "$p/apiserver-kubelet-client.ext" \
    -out "$p/apiserver-kubelet-client.crt" 2>/dev/null
  chmod 600 "$p/apiserver-kubelet-client.key"
}

# Static bearer tokens: admin (system:masters) for people, tests and kwok; the controller
# manager and scheduler get their own identities, which RBAC's bootstrap policy knows; so do
# the real node's kubelet (Node authorizer), kube-proxy and CoreDNS (bound by node.sh).
make_tokens() {
  local f="$K/tokens.csv"
  [ -f "$f" ] || log "generating bearer tokens"
  touch "$f"
  chmod 600 "$f"
  ensure_token admin system:masters
  ensure_token system:kube-controller-manager ""
  ensure_token system:kube-scheduler ""
  ensure_token system:node:ocr-node system:nodes
  ensure_token system:kube-proxy ""
  ensure_token system:coredns ""
}

# ensure_token USER GROUP: appends a token line for USER unless it has one.
ensure_token() {
  [ -n "$(token_of "$1")" ] && return 0
  echo "$(openssl rand -hex 24),$1,$1,$2" >>"$K/tokens.csv"
}

token_of() { awk -F, -v u="$1" '$2 == u {print $1}' "$K/tokens.csv"; }

# write_kubeconfig PATH USER: a kubeconfig with a bearer token for USER.
write_kubeconfig() {
  local path="$1" user="$2"
  cat >"$path" <<EOF
apiVersion: v1
kind: Config
clusters:
  - name: ocr-local
    cluster:
      server: $SERVER
      insecure-skip-tls-verify: true
users:
  - name: $user
    user:
      token: $(token_of "$user")
contexts:
  - name: ocr-local
    context:
      cluster: ocr-local
      user: $user
      namespace: default
current-context: ocr-local
EOF
  chmod 600 "$path"
}

# --- components ----------------------------------------------------------------------------

ensure_binaries() {
  local b
  for b in etcd kube-apiserver kube-controller-manager kube-scheduler; do
    [ -x "$BIN/$b" ] || { build_binaries; return 0; }
  done
  [ -x "$KWOK" ] || build_binaries
}

build_binaries() {
  log "Kubernetes binaries not cached: building them (once; about 13 min on 2 cores)"
  OCR_K8S_VERSION="$K8S_VERSION" OCR_KWOK_VERSION="$KWOK_VERSION" "$(dirname "$0")/k8s-build.sh" all
}

ensure_kubectl() {
  command -v kubectl >/dev/null 2>&1 && return 0
  apt_ensure kubectl kubernetes-client
}

etcd_up() {
  mkdir -p "$K/etcd"
  # No fsync: this etcd holds throwaway test state, and fsync dominates on a shared disk.
  start_bg etcd "$BIN/etcd" --name=ocr-local --data-dir="$K/etcd" \
    --listen-client-urls="http://127.0.0.1:$ETCD_PORT" \
    --advertise-client-urls="http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-advertise-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster="ocr-local=http://127.0.0.1:$ETCD_PEER_PORT" \
    --listen-metrics-urls="" --unsafe-no-fsync --quota-backend-bytes=2147483648 \
    --log-level=warn
  wait_tcp 127.0.0.1 "$ETCD_PORT" 60 etcd
}

kube_apiserver_up() {
  local p="$K/pki"
  start_bg kube-apiserver "$BIN/kube-apiserver" \
    --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
    --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$APISERVER_PORT" \
    --tls-cert-file="$p/apiserver.crt" --tls-private-key-file="$p/apiserver.key" \
    --client-ca-file="$p/ca.crt" \
    --service-cluster-ip-range=10.96.0.0/16 \
    --authorization-mode=Node,RBAC --token-auth-file="$K/tokens.csv" \
    --kubelet-client-certificate="$p/apiserver-kubelet-client.crt" \
    --kubelet-client-key="$p/apiserver-kubelet-client.key" \
    --kubelet-preferred-address-types=InternalIP \
    --kubelet-certificate-authority="$p/ca.crt" \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$p/sa.pub" --service-account-signing-key-file="$p/sa.key" \
    --api-audiences=https://kubernetes.default.svc.cluster.local \
    --allow-privileged=true --endpoint-reconciler-type=none --profiling=false \
    --watch-cache=true --v=1
}

apiserver_ready() {
  curl -ksf -H "Authorization: Bearer $(token_of admin)" "$SERVER/readyz" >/dev/null 2>&1
}

wait_apiserver() {
  local deadline=$(( $(date +%s) + 120 ))
  until apiserver_ready; do
    pid_alive kube-apiserver || { tail -n 30 "$LOG_DIR/kube-apiserver.log" >&2; die "kube-apiserver exited (see $LOG_DIR/kube-apiserver.log)"; }
    [ "$(date +%s)" -lt "$deadline" ] || die "kube-apiserver not ready after 120 s"
    sleep 0.5
  done
  log "kube-apiserver ready at $SERVER"
}

kube_controller_manager_up() {
  write_kubeconfig "$K/controller-manager.kubeconfig" system:kube-controller-manager
  start_bg kube-controller-manager "$BIN/kube-controller-manager" \
    --kubeconfig="$K/controller-manager.kubeconfig" \
    --authentication-skip-lookup=true --secure-port=0 --leader-elect=false \
    --use-service-account-credentials=true \
    --service-account-private-key-file="$K/pki/sa.key" --root-ca-file="$K/pki/ca.crt" \
    --cluster-signing-cert-file="$K/pki/ca.crt" --cluster-signing-key-file="$K/pki/ca.key" \
    --service-cluster-ip-range=10.96.0.0/16 \
    --kube-api-qps=500 --kube-api-burst=1000 \
    --concurrent-deployment-syncs=20 --concurrent-replicaset-syncs=20 \
    --concurrent-job-syncs=20 --v=1
  # Client-side limits lifted, as kwokctl's disableQPSLimits does: at its default 20 requests
  # per second, 200 stacks (600 Deployments, their ReplicaSets, pods and Jobs) wait minutes
  # on the controller-manager alone. The apiserver's own flow control still applies.
}

kube_scheduler_up() {
  write_kubeconfig "$K/scheduler.kubeconfig" system:kube-scheduler
  start_bg kube-scheduler "$BIN/kube-scheduler" \
    --kubeconfig="$K/scheduler.kubeconfig" --authentication-skip-lookup=true \
    --secure-port=0 --leader-elect=false --v=1
}

kwok_up() {
  write_kubeconfig "$K/kwok.kubeconfig" admin
  # kwok plays the kubelet of every node carrying the kwok annotation.
  start_bg kwok "$KWOK" --kubeconfig="$K/kwok.kubeconfig" \
    --manage-all-nodes=false \
    --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake \
    --server-address="127.0.0.1:$KWOK_PORT" \
    --cidr=10.244.0.0/16 --node-ip=10.200.0.1 \
    --node-lease-duration-seconds=40
  # Without node leases kwok heartbeats the Node status about once a minute, past the
  # controller-manager's 50 s grace: nodes flap NotReady and every pod on them is marked
  # NotReady for good (kwok never sets Ready again). Leases are renewed every ~10 s.
}

# start_component NAME: starts NAME unless it already runs with the flags of this script.
start_component() {
  local name="$1"
  if is_running "$name" && stale_flags "$name"; then
    log "$name runs with other flags or GOGC than this script's: restarting it"
    stop_all 5 "$name"
  fi
  if is_running "$name"; then log "$name already running"; return 0; fi
  log "starting $name"
  GOGC="$CONTROL_PLANE_GOGC" "${name//-/_}_up"
}

fake_nodes_manifest() {
  local i
  for i in $(seq 0 $((FAKE_NODES - 1))); do
    cat <<EOF
---
apiVersion: v1
kind: Node
metadata:
  name: kwok-gpu-$i
  annotations:
    kwok.x-k8s.io/node: fake
    node.alpha.kubernetes.io/ttl: "0"
  labels:
    type: kwok
    kubernetes.io/hostname: kwok-gpu-$i
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    nvidia.com/gpu.present: "true"
    node-role.kubernetes.io/gpu-worker: ""
spec: {}
status:
  capacity: {cpu: "32", memory: 256Gi, pods: "$PODS_PER_FAKE_NODE", nvidia.com/gpu: "$GPUS_PER_NODE"}
  allocatable: {cpu: "32", memory: 256Gi, pods: "$PODS_PER_FAKE_NODE", nvidia.com/gpu: "$GPUS_PER_NODE"}
EOF
  done
}

ensure_fake_nodes() {
  local kc=(kubectl --kubeconfig="$KUBECONFIG_PATH")
  fake_nodes_manifest | "${kc[@]}" apply -f - >/dev/null
  local i
  for i in $(seq 0 $((FAKE_NODES - 1))); do
    # A create may drop .status; the capacity must be there for the scheduler.
    "${kc[@]}" patch node "kwok-gpu-$i" --subresource=status --type=merge -p \
      "{\"status\":{\"capacity\":{\"cpu\":\"32\",\"memory\":\"256Gi\",\"pods\":\"$PODS_PER_FAKE_NODE\",\"nvidia.com/gpu\":\"$GPUS_PER_NODE\"},\"allocatable\":{\"cpu\":\"32\",\"memory\":\"256Gi\",\"pods\":\"$PODS_PER_FAKE_NODE\",\"nvidia.com/gpu\":\"$GPUS_PER_NODE\"}}}" \
      >/dev/null
  done
  "${kc[@]}" wait --for=condition=Ready node -l type=kwok --timeout=90s >/dev/null \
    || die "fake nodes not Ready (see $LOG_DIR/kwok.log)"
  log "$FAKE_NODES fake nodes Ready with $GPUS_PER_NODE nvidia.com/gpu each"
}

# Pods need the namespace's default ServiceAccount, which the controller manager creates.
wait_default_service_account() {
  local deadline=$(( $(date +%s) + 60 ))
  until kubectl --kubeconfig="$KUBECONFIG_PATH" get serviceaccount default -n default >/dev/null 2>&1; do
    pid_alive kube-controller-manager || die "kube-controller-manager exited (see $LOG_DIR/kube-controller-manager.log)"
    [ "$(date +%s)" -lt "$deadline" ] || die "no default ServiceAccount after 60 s"
    sleep 0.5
  done
}

# stale_flags NAME: true when the running NAME lacks a flag or the GOGC that this script now
# passes (a component reads both only when it starts).
stale_flags() {
  local flag
  started_in_env "$1" "GOGC=$CONTROL_PLANE_GOGC" || return 0
  case "$1" in
    kube-apiserver) flag=--kubelet-client-certificate= ;;
    kube-controller-manager) flag=--kube-api-qps=500 ;;
    *) return 1 ;;
  esac
  started_with "$1" "$flag" && return 1
  return 0
}

# --- commands ------------------------------------------------------------------------------

up() {
  ensure_dirs
  local start
  start=$(date +%s)
  ensure_binaries
  ensure_kubectl
  mkdir -p "$K"
  make_pki
  make_kubelet_client_cert
  make_tokens
  write_kubeconfig "$KUBECONFIG_PATH" admin
  start_component etcd
  start_component kube-apiserver
  wait_apiserver
  start_component kube-controller-manager
  start_component kube-scheduler
  start_component kwok
  ensure_fake_nodes
  wait_default_service_account
  env_set KUBECONFIG "$KUBECONFIG_PATH"
  [ "${OCR_REAL_NODE:-1}" = 0 ] || "$(dirname "$0")/node.sh" up
  log "cluster up in $(( $(date +%s) - start )) s; KUBECONFIG=$KUBECONFIG_PATH"
}

down() {
  # Clients first, etcd last. kube-apiserver often hangs after it has drained and stopped
  # listening (kubernetes/kubernetes#131052); nothing is left to lose then, so a short
  # grace period before SIGKILL keeps `down` fast. The real node goes first, always (it may
  # have been started while OCR_REAL_NODE said otherwise).
  "$(dirname "$0")/node.sh" down
  stop_all 5 kwok kube-scheduler kube-controller-manager kube-apiserver
  stop_all 20 etcd
  log "cluster stopped (state kept in $K; make clean removes it)"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status)
    rc=0
    print_status "${COMPONENTS[@]}" || rc=1
    if [ "${OCR_REAL_NODE:-1}" != 0 ]; then "$(dirname "$0")/node.sh" status || rc=1; fi
    exit "$rc" ;;
  *) die "usage: $0 up|down|status" ;;
esac
