# shellcheck shell=bash
# The node's Kubernetes side (sourced by node.sh): kubelet, kube-proxy, CoreDNS, the
# forwarders to the host's services, and the API objects that name them. Identities are
# static tokens from cluster.sh (.local/k8s/tokens.csv): system:node:ocr-node (group
# system:nodes, authorized by the Node authorizer), system:kube-proxy (bootstrap RBAC) and
# system:coredns (read-only, bound below). The kubelet serves TLS with a certificate of the
# cluster CA and accepts the apiserver's client certificate (logs, exec, port-forward).

KUBELET_DIR="$N/kubelet"
PROXY_DIR="$N/kube-proxy"
DNS_DIR="$N/coredns"

token_of() { awk -F, -v u="$1" '$2 == u {print $1}' "$K/tokens.csv"; }

apiserver_answers() {
  [ -f "$K/tokens.csv" ] || return 1
  curl -ksf -H "Authorization: Bearer $(token_of admin)" "$SERVER/readyz" >/dev/null 2>&1
}

# node_kubeconfig PATH USER: a kubeconfig that verifies the apiserver with the cluster CA.
node_kubeconfig() {
  local path="$1" user="$2" token
  token="$(token_of "$user")"
  [ -n "$token" ] || die "no token for $user in $K/tokens.csv: restart the control plane (cluster.sh down; cluster.sh up)"
  mkdir -p "$(dirname "$path")"
  cat >"$path" <<EOF
apiVersion: v1
kind: Config
clusters:
  - name: ocr-local
    cluster: {server: "$SERVER", certificate-authority: "$K/pki/ca.crt"}
users:
  - name: $user
    user: {token: "$token"}
contexts:
  - name: ocr-local
    context: {cluster: ocr-local, user: $user}
current-context: ocr-local
EOF
  chmod 600 "$path"
}

kubelet_serving_cert() {
  local d="$KUBELET_DIR/pki"
  [ -f "$d/kubelet.crt" ] && return 0
  mkdir -p "$d"
  openssl req -newkey rsa:2048 -nodes -subj "/O=system:nodes/CN=system:node:$NODE_NAME" \
    -keyout "$d/kubelet.key" -out "$d/kubelet.csr" 2>/dev/null
  printf 'subjectAltName=IP:%s,IP:127.0.0.1,DNS:%s\nextendedKeyUsage=serverAuth\n' \
    "$GATEWAY" "$NODE_NAME" >"$d/kubelet.ext"
  openssl x509 -req -in "$d/kubelet.csr" -CA "$K/pki/ca.crt" -CAkey "$K/pki/ca.key" \
    -CAcreateserial -days 3650 -extfile "$d/kubelet.ext" -out "$d/kubelet.crt" 2>/dev/null
  chmod 600 "$d/kubelet.key"
}

write_kubelet_config() {
  mkdir -p "$KUBELET_DIR/root" "$N/pod-logs"
  # Pods get the cluster DNS only; the host's resolver stays out of the pod network.
  echo "# cluster DNS only ($DNS_IP, set per pod by the kubelet)" >"$KUBELET_DIR/resolv.conf"
  cat >"$KUBELET_DIR/config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $GATEWAY
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
tlsCertFile: $KUBELET_DIR/pki/kubelet.crt
tlsPrivateKeyFile: $KUBELET_DIR/pki/kubelet.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $K/pki/ca.crt}
authorization: {mode: Webhook}
containerRuntimeEndpoint: unix://$SOCKET
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
oomScoreAdj: 0
clusterDomain: cluster.local
clusterDNS: [$DNS_IP]
resolvConf: $KUBELET_DIR/resolv.conf
podLogsDir: $N/pod-logs
registerWithTaints:
  - {key: $TAINT_KEY, value: "true", effect: NoSchedule}
maxPods: 50
serializeImagePulls: false
# Images cannot be pulled again here: never garbage-collect them.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: 200Mi, nodefs.available: 2%, imagefs.available: 2%}
EOF
}

kubelet_up() {
  kubelet_serving_cert
  node_kubeconfig "$KUBELET_DIR/kubeconfig" "system:node:$NODE_NAME"
  write_kubelet_config
  start_bg kubelet "$BIN/kubelet" --config="$KUBELET_DIR/config.yaml" \
    --kubeconfig="$KUBELET_DIR/kubeconfig" --root-dir="$KUBELET_DIR/root" \
    --hostname-override="$NODE_NAME" --node-ip="$GATEWAY" --node-labels="$NODE_LABEL" --v=1
}

wait_node_ready() {
  local deadline=$(( $(date +%s) + 120 ))
  until [ "$(kc get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ]; do
    is_running kubelet || { tail -n 30 "$LOG_DIR/kubelet.log" >&2; die "kubelet exited (see $LOG_DIR/kubelet.log)"; }
    [ "$(date +%s)" -lt "$deadline" ] || die "node $NODE_NAME not Ready after 120 s (see $LOG_DIR/kubelet.log)"
    sleep 0.5
  done
  log "node $NODE_NAME Ready"
}

kube_proxy_up() {
  node_kubeconfig "$PROXY_DIR/kubeconfig" system:kube-proxy
  # conntrack 0 = leave the host's settings alone; no localhost NodePorts, so no
  # route_localnet; NodePorts only on the bridge address, never on the host's network.
  cat >"$PROXY_DIR/config.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $PROXY_DIR/kubeconfig}
hostnameOverride: $NODE_NAME
mode: iptables
clusterCIDR: $POD_CIDR
detectLocalMode: ClusterCIDR
nodePortAddresses: ["$GATEWAY/32"]
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
iptables: {localhostNodePorts: false, syncPeriod: 30s, minSyncPeriod: 0s}
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
EOF
  start_bg kube-proxy "$BIN/kube-proxy" --config="$PROXY_DIR/config.yaml" --v=1
  # Healthy once its first iptables sync is done; our guard chains go in front after that.
  local deadline=$(( $(date +%s) + 60 ))
  until curl -sf http://127.0.0.1:10256/healthz >/dev/null 2>&1; do
    is_running kube-proxy || { tail -n 30 "$LOG_DIR/kube-proxy.log" >&2; die "kube-proxy exited (see $LOG_DIR/kube-proxy.log)"; }
    [ "$(date +%s)" -lt "$deadline" ] || die "kube-proxy not healthy after 60 s (see $LOG_DIR/kube-proxy.log)"
    sleep 0.3
  done
}

proxy_cleanup() {
  [ -x "$BIN/kube-proxy" ] || return 0
  "$BIN/kube-proxy" --cleanup --v=0 >>"$LOG_DIR/kube-proxy.log" 2>&1 || true
}

coredns_up() {
  node_kubeconfig "$DNS_DIR/kubeconfig" system:coredns
  # Only the cluster's zones: names outside it are refused, so pods never query the
  # host's upstream resolver.
  cat >"$DNS_DIR/Corefile" <<EOF
.:53 {
    bind $GATEWAY
    errors
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        kubeconfig $DNS_DIR/kubeconfig ocr-local
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }
    cache 5
}
EOF
  start_bg coredns "$COREDNS" -conf "$DNS_DIR/Corefile"
  wait_tcp "$GATEWAY" 53 30 coredns
}

# Both legs with TCP_NODELAY: socat leaves Nagle's algorithm on, so a request it forwards in
# two writes waits for the peer's delayed ACK. Through a forwarder without it, a host stack in
# batched mode moved 375 jobs/s at a p50 of 2 s; with it, 605 jobs/s at 52 ms.
forwarders_up() {
  local spec name port target
  for spec in "${FORWARDS[@]}"; do
    read -r name port target <<<"$spec"
    if is_running "forward-$name" && ! started_with "forward-$name" nodelay; then
      stop_all 5 "forward-$name" # started by an older version of this script
    fi
    is_running "forward-$name" && continue
    start_bg "forward-$name" socat "TCP-LISTEN:$port,bind=$GATEWAY,fork,reuseaddr,nodelay" \
      "TCP:$target,nodelay"
  done
}

# service_objects NAMESPACE NAME PORTS PROTOCOL...: a selector-less Service and the
# EndpointSlice that sends it to the host side of the bridge. PORTS: one port, or several
# separated by commas (each port's name then carries its number).
service_objects() {
  local ns="$1" name="$2" port proto port_name ports="" slice_ports="" numbers
  IFS=, read -r -a numbers <<<"$3"
  shift 3
  for port in "${numbers[@]}"; do
    for proto in "$@"; do
      port_name="$name-${proto,,}"
      [ "${#numbers[@]}" -eq 1 ] || port_name="$name-$port-${proto,,}"
      ports+="    - {name: $port_name, port: $port, targetPort: $port, protocol: $proto}"$'\n'
      slice_ports+="  - {name: $port_name, port: $port, protocol: $proto}"$'\n'
    done
  done
  cat <<EOF
---
apiVersion: v1
kind: Service
metadata: {name: $name, namespace: $ns, labels: {app.kubernetes.io/managed-by: ocr-serving-node}}
spec:
  ${CLUSTER_IP:+clusterIP: $CLUSTER_IP}
  ports:
$ports---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: $name-host
  namespace: $ns
  labels: {kubernetes.io/service-name: $name, endpointslice.kubernetes.io/managed-by: ocr-serving.local-node}
addressType: IPv4
endpoints:
  - addresses: ["$GATEWAY"]
    conditions: {ready: true}
ports:
$slice_ports
EOF
}

cluster_objects() {
  cat <<EOF
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: "ocr-serving:coredns"}
rules:
  - {apiGroups: [""], resources: [endpoints, services, pods, namespaces], verbs: [list, watch]}
  - {apiGroups: [discovery.k8s.io], resources: [endpointslices], verbs: [list, watch]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: "ocr-serving:coredns"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "ocr-serving:coredns"}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: "system:coredns"}]
EOF
  local ns
  for ns in kafka ocr monitoring; do
    printf -- '---\napiVersion: v1\nkind: Namespace\nmetadata: {name: %s}\n' "$ns"
  done
  CLUSTER_IP="$DNS_IP" service_objects kube-system kube-dns 53 UDP TCP
  service_objects kafka kafka 9092,9093 TCP
  service_objects ocr mariadb 3306 TCP
  service_objects ocr redis 6379 TCP
  service_objects monitoring prometheus 9090 TCP
  apiserver_endpoints
}

# The apiserver binds 127.0.0.1 and runs without its endpoint reconciler, so the Service
# default/kubernetes (what in-cluster clients such as the operator's pod use) has no
# endpoints: send it to the forwarder on the host side of the bridge.
apiserver_endpoints() {
  cat <<EOF
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: kubernetes-host
  namespace: default
  labels: {kubernetes.io/service-name: kubernetes, endpointslice.kubernetes.io/managed-by: ocr-serving.local-node}
addressType: IPv4
endpoints:
  - addresses: ["$GATEWAY"]
    conditions: {ready: true}
ports:
  - {name: https, port: 16443, protocol: TCP}
EOF
}

kube_up() {
  cluster_objects | kc apply -f - >/dev/null || die "could not create the node's Services"
  if is_running kubelet; then log "kubelet already running"; else log "starting kubelet"; kubelet_up; fi
  wait_node_ready
  kc uncordon "$NODE_NAME" >/dev/null
  if is_running kube-proxy; then log "kube-proxy already running"; else log "starting kube-proxy"; kube_proxy_up; fi
  if is_running coredns; then log "coredns already running"; else log "starting coredns"; coredns_up; fi
  forwarders_up
  guard_first
}
