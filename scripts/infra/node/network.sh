# shellcheck shell=bash
# The node's pod network (sourced by node.sh): the ocrbr0 bridge that CNI's bridge plugin
# attaches pods to, the CNI configuration, and the guard rules that keep pod traffic on
# this machine. Every iptables rule we add carries the comment $RULE_TAG and jumps to a
# chain named OCR-NODE-*, so that `down` removes exactly ours.

CNI_DIR="$N/cni"
SYSCTL_SAVE="$N/sysctl.saved"

# set_sysctl KEY VALUE: sets a sysctl, remembering its first value for `down`.
set_sysctl() {
  local key="$1" value="$2" path="/proc/sys/${1//.//}"
  [ "$(cat "$path")" = "$value" ] && return 0
  grep -q "^$key " "$SYSCTL_SAVE" 2>/dev/null || echo "$key $(cat "$path")" >>"$SYSCTL_SAVE"
  echo "$value" >"$path"
}

restore_sysctls() {
  [ -f "$SYSCTL_SAVE" ] || return 0
  local key value
  while read -r key value; do
    echo "$value" >"/proc/sys/${key//.//}" || log "could not restore $key=$value"
  done <"$SYSCTL_SAVE"
  rm -f "$SYSCTL_SAVE"
}

bridge_up() {
  ip link show "$BRIDGE" >/dev/null 2>&1 || ip link add "$BRIDGE" type bridge
  [[ "$(ip -4 addr show dev "$BRIDGE")" == *" $GATEWAY/"* ]] \
    || ip addr add "$GATEWAY/${POD_CIDR#*/}" dev "$BRIDGE"
  ip link set "$BRIDGE" up
}

# ipt TABLE ARGS...: iptables with the table, waiting for the xtables lock.
ipt() { local table="$1"; shift; iptables -w 5 -t "$table" "$@"; }

# ensure_chain TABLE CHAIN PARENT: our chain, jumped to first from PARENT.
ensure_chain() {
  local table="$1" chain="$2" parent="$3"
  ipt "$table" -N "$chain" 2>/dev/null || ipt "$table" -F "$chain"
  local jump=("$parent" -m comment --comment "$RULE_TAG" -j "$chain")
  while ipt "$table" -D "${jump[@]}" 2>/dev/null; do :; done
  ipt "$table" -I "${jump[@]:0:1}" 1 "${jump[@]:1}"
}

guard_rules() {
  local c=(-m comment --comment "$RULE_TAG")
  # Pods reach each other and this host, nothing else: no routing out of the bridge, and
  # nothing from elsewhere routed into it.
  ensure_chain filter OCR-NODE-FORWARD FORWARD
  ipt filter -A OCR-NODE-FORWARD -i "$BRIDGE" ! -o "$BRIDGE" "${c[@]}" -j DROP
  ipt filter -A OCR-NODE-FORWARD ! -i "$BRIDGE" -o "$BRIDGE" "${c[@]}" -j DROP
  # The host's own connections to a cluster IP: those kube-proxy sends to the node's pods go
  # through; those it would send out to the network (Services whose endpoints are kwok pods,
  # addresses that exist nowhere) are refused, and so are those to this host's forwarders
  # (masqueraded to a loopback source, they would hang: the host uses 127.0.0.1 instead).
  # Matched on the address after kube-proxy's DNAT: the output interface this chain sees
  # is the one routed before it (the default route), not the bridge.
  ensure_chain filter OCR-NODE-OUTPUT OUTPUT
  local service=(-m conntrack --ctstate DNAT --ctorigdst "$SERVICE_CIDR" "${c[@]}")
  # the refusals themselves (ICMP, related to the refused connection) go out
  ipt filter -A OCR-NODE-OUTPUT -p icmp "${c[@]}" -j RETURN
  ipt filter -A OCR-NODE-OUTPUT -d "$GATEWAY" "${service[@]}" -j REJECT
  ipt filter -A OCR-NODE-OUTPUT ! -d "$POD_CIDR" "${service[@]}" -j REJECT
}

# kube-proxy prepends its own jumps; ours must stay first.
guard_first() {
  local parent
  for parent in FORWARD OUTPUT; do
    [[ "$(ipt filter -S "$parent" | sed -n 2p)" == *"OCR-NODE-$parent"* ]] && continue
    local jump=("$parent" -m comment --comment "$RULE_TAG" -j "OCR-NODE-$parent")
    while ipt filter -D "${jump[@]}" 2>/dev/null; do :; done
    ipt filter -I "$parent" 1 "${jump[@]:1}"
  done
}

write_cni_config() {
  mkdir -p "$CNI_DIR/net.d" "$CNI_DIR/ipam"
  local conf="$CNI_DIR/net.d/10-ocr-node.conflist"
  # containerd watches the folder: a file rewritten in place is briefly half-written.
  cat >"$CNI_DIR/ocr-node.conflist.new" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "ocr-node",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$BRIDGE",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "$POD_CIDR", "gateway": "$GATEWAY"}]],
        "routes": [{"dst": "0.0.0.0/0"}],
        "dataDir": "$CNI_DIR/ipam"
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
  if cmp -s "$CNI_DIR/ocr-node.conflist.new" "$conf"; then rm -f "$CNI_DIR/ocr-node.conflist.new"
  else mv "$CNI_DIR/ocr-node.conflist.new" "$conf"; fi
}

network_up() {
  mkdir -p "$N"
  bridge_up
  # Services: a pod's connection to a ClusterIP is DNATed on the host and routed back into
  # the bridge; replies between pods on the bridge must pass through iptables to be un-NATed.
  set_sysctl net.ipv4.ip_forward 1
  set_sysctl net.bridge.bridge-nf-call-iptables 1
  guard_rules
  write_cni_config
}

# remove_tagged TABLE: deletes every rule carrying our comment, then our chains.
remove_tagged() {
  local table="$1" rule chain
  ipt "$table" -S 2>/dev/null | grep -F -- "--comment $RULE_TAG" | grep '^-A ' \
    | while read -r rule; do
        eval "ipt $table -D ${rule#-A }" || true
      done || true
  for chain in $(ipt "$table" -S 2>/dev/null | awk '$1 == "-N" && $2 ~ /^OCR-NODE-/ {print $2}'); do
    ipt "$table" -F "$chain" && ipt "$table" -X "$chain"
  done
}

# Chains the kubelet creates for its own iptables checks (it removes none of them).
remove_kubelet_chains() {
  local cmd table chain
  for cmd in iptables ip6tables; do
    for table in mangle nat filter; do
      for chain in KUBE-KUBELET-CANARY KUBE-IPTABLES-HINT KUBE-FIREWALL; do
        "$cmd" -w 5 -t "$table" -S "$chain" >/dev/null 2>&1 || continue
        "$cmd" -w 5 -t "$table" -S | grep -E "^-A [A-Z]+ .*-j $chain( |$)" | while read -r rule; do
          eval "$cmd -w 5 -t $table -D ${rule#-A }" || true
        done || true
        "$cmd" -w 5 -t "$table" -F "$chain" && "$cmd" -w 5 -t "$table" -X "$chain" || true
      done
    done
  done
}

# Every mount under our state (pod volumes, sandbox shm, rootfs, netns), deepest first.
unmount_all() {
  local target
  findmnt -rn -o TARGET | grep -F "$N/" | awk '{print length, $0}' | sort -rn | cut -d' ' -f2- \
    | while read -r target; do
        umount "$target" 2>/dev/null || umount -l "$target" || log "could not unmount $target"
      done || true
}

network_down() {
  unmount_all
  local veth
  for veth in $(ip -o link show master "$BRIDGE" 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1); do
    ip link del "$veth" 2>/dev/null || true
  done
  ip link del "$BRIDGE" 2>/dev/null || true
  command -v iptables >/dev/null 2>&1 || { restore_sysctls; return 0; }
  remove_tagged filter
  remove_tagged nat
  remove_kubelet_chains
  conntrack -D -s "$POD_CIDR" >/dev/null 2>&1 || true
  rm -rf "$CNI_DIR/ipam"
  restore_sysctls
}
