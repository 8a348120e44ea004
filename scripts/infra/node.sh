#!/usr/bin/env bash
# One real Kubernetes node ("ocr-node") beside the kwok fake GPU nodes of cluster.sh:
# containerd 1.6 (Debian) with runc, CNI bridge networking on ocrbr0 (10.90.0.0/16, host
# side 10.90.0.1), a kubelet and kube-proxy (iptables) built with the control plane, and
# CoreDNS as a host process behind the kube-dns Service (10.96.0.10). The node is tainted
# ocr-serving.local/real-node=true:NoSchedule: only pods that tolerate it (and select
# ocr-serving.local/node=real) run here, so everything written for the kwok nodes keeps
# landing there. The host's Kafka, MariaDB, Redis and Prometheus are Services with
# EndpointSlices to forwarders on 10.90.0.1 (kafka.kafka.svc:9092, and :9093 for SASL_SSL,
# mariadb.ocr.svc:3306, redis.ocr.svc:6379, prometheus.monitoring.svc:9090).
# Traffic stays on this machine: pods are not routed anywhere but the bridge.
# State lives under .local/node/; tools are built once into ~/.cache/ocr-serving/.
# Usage: node.sh up|down|status|load-images|images (the node's image references)
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
LOG_TAG=node
NODE_LIB="$(dirname "$0")/node"

K8S_VERSION="${OCR_K8S_VERSION:-v1.34.4}"
BIN="$CACHE/kubernetes-$K8S_VERSION/bin"
NODE_TOOLS="$(node_tools_dir)/bin"
COREDNS="$NODE_TOOLS/coredns"
CRI_STOP="$NODE_TOOLS/cri-stop"
NODE_NAME=ocr-node
BRIDGE=ocrbr0
POD_CIDR=10.90.0.0/16
GATEWAY=10.90.0.1
SERVICE_CIDR=10.96.0.0/16
DNS_IP=10.96.0.10
TAINT_KEY=ocr-serving.local/real-node
NODE_LABEL=ocr-serving.local/node=real
RULE_TAG=ocr-serving-node # the comment on every iptables rule of ours
N="$LOCAL/node"
K="$LOCAL/k8s"
SOCKET="$N/containerd/containerd.sock"
SERVER="https://127.0.0.1:16443"
KUBECONFIG_PATH="$LOCAL/kubeconfig"
PAUSE_IMAGE=localhost/ocr-pause:local
TEST_IMAGE=localhost/ocr-node-test:busybox
# name local-port host-target: the host's services as pods reach them on $GATEWAY.
FORWARDS=(
  "kafka 9092 127.0.0.1:19094"
  "kafka-secure 9093 127.0.0.1:19096"
  "mariadb 3306 127.0.0.1:13306"
  "redis 6379 127.0.0.1:16379"
  "prometheus 9090 127.0.0.1:19090"
  "apiserver 16443 127.0.0.1:16443"
)
# The order they start in; down stops them in reverse.
COMPONENTS=(containerd kubelet kube-proxy coredns forward-kafka forward-kafka-secure forward-mariadb forward-redis forward-prometheus forward-apiserver)

# shellcheck source=node/network.sh
. "$NODE_LIB/network.sh"
# shellcheck source=node/runtime.sh
. "$NODE_LIB/runtime.sh"
# shellcheck source=node/kube.sh
. "$NODE_LIB/kube.sh"

kc() { kubectl --kubeconfig="$KUBECONFIG_PATH" "$@"; }

ensure_packages() {
  apt_ensure containerd containerd
  apt_ensure runc runc
  apt_ensure /usr/lib/cni/bridge containernetworking-plugins
  apt_ensure iptables iptables
  apt_ensure conntrack conntrack
  apt_ensure socat socat
  apt_ensure /bin/busybox busybox-static
  apt_ensure gcc gcc libc6-dev
}

ensure_tools() {
  [ -x "$BIN/kubelet" ] && [ -x "$BIN/kube-proxy" ] \
    || OCR_K8S_VERSION="$K8S_VERSION" "$(dirname "$0")/k8s-build.sh" k8s
  [ -x "$COREDNS" ] && [ -x "$CRI_STOP" ] || "$(dirname "$0")/k8s-build.sh" node
}

up() {
  ensure_dirs
  [ "$(id -u)" -eq 0 ] || die "the node needs root (network namespaces, mounts, iptables)"
  apiserver_answers || die "the control plane is not running: start it with scripts/infra/cluster.sh up"
  local start
  start=$(date +%s)
  ensure_packages
  ensure_tools
  mkdir -p "$N"
  network_up
  runtime_up
  kube_up
  load_images
  log "node $NODE_NAME Ready in $(( $(date +%s) - start )) s (taint $TAINT_KEY=true:NoSchedule, label $NODE_LABEL)"
}

down() {
  stop_all 10 forward-apiserver forward-prometheus forward-redis forward-mariadb forward-kafka-secure forward-kafka coredns kube-proxy kubelet
  proxy_cleanup
  runtime_down
  network_down
  log "node stopped (images and state kept in $N)"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) print_status "${COMPONENTS[@]}" ;;
  load-images) load_images ;;
  images) ! is_running containerd || ctr_k8s images ls -q | grep -v '^sha256:' || true ;;
  *) die "usage: $0 up|down|status|load-images|images" ;;
esac
