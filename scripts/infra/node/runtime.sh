# shellcheck shell=bash
# The node's container runtime (sourced by node.sh): Debian's containerd 1.6 with runc,
# rooted under .local/node/containerd, and the images it runs. There is no registry: the
# sandbox image and a busybox test image are written from local files, and the project's
# images (localhost/ocr-*) are copied from podman's storage.

CTRD="$N/containerd"
IMAGES_DIR="$N/images"

ctr_k8s() { ctr --address "$SOCKET" --namespace k8s.io "$@"; }

write_containerd_config() {
  mkdir -p "$CTRD"
  # restrict_oom_score_adj: without CAP_SYS_RESOURCE no process may lower its OOM score
  # below ours. Network namespaces live under our state dir so `down` finds all of them.
  cat >"$CTRD/config.toml" <<EOF
version = 2
root = "$CTRD/root"
state = "$CTRD/state"
oom_score = 0
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "$SOCKET"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "$(command -v runc)"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$N/cni/net.d"
    max_conf_num = 1

[plugins."io.containerd.internal.v1.opt"]
  path = "$CTRD/opt"
EOF
}

containerd_up() {
  write_containerd_config
  start_bg containerd containerd --config "$CTRD/config.toml"
  local deadline=$(( $(date +%s) + 60 ))
  until ctr --address "$SOCKET" version >/dev/null 2>&1; do
    is_running containerd || { tail -n 20 "$LOG_DIR/containerd.log" >&2; die "containerd exited (see $LOG_DIR/containerd.log)"; }
    [ "$(date +%s)" -lt "$deadline" ] || die "containerd not answering on $SOCKET after 60 s"
    sleep 0.3
  done
}

has_image() { ctr_k8s images ls -q | grep -xF -- "$1" >/dev/null; } # no -q: SIGPIPE under pipefail

# import_archive REF FILE: imports a `docker save` archive unless this very archive was
# the last one imported as REF.
import_archive() {
  local stamp="$2.imported" sum
  sum="$(sha256sum "$2" | cut -d' ' -f1)"
  if has_image "$1" && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$sum" ]; then return 0; fi
  log "importing $1 into the node's containerd"
  ctr_k8s images import "$2" >/dev/null || die "ctr images import $2 failed"
  echo "$sum" >"$stamp"
}

build_pause_image() {
  mkdir -p "$IMAGES_DIR"
  [ "$IMAGES_DIR/pause" -nt "$NODE_LIB/pause.c" ] \
    || gcc -static -Os -s -Wall -Wextra -o "$IMAGES_DIR/pause" "$NODE_LIB/pause.c"
  python3 "$NODE_LIB/image_archive.py" --name "$PAUSE_IMAGE" --out "$IMAGES_DIR/pause.tar" \
    --add "$IMAGES_DIR/pause:/pause" --entrypoint /pause >/dev/null
  import_archive "$PAUSE_IMAGE" "$IMAGES_DIR/pause.tar"
}

# A busybox image for the node's own tests (DNS, Services, exec, logs, port-forward).
build_test_image() {
  mkdir -p "$IMAGES_DIR"
  local applet links=()
  for applet in sh cat cut echo env grep head hostname httpd id ls mkdir nc nslookup printf \
      ps sed seq sleep tail tee timeout tr true wc wget; do
    links+=(--link "/bin/$applet=busybox")
  done
  python3 "$NODE_LIB/image_archive.py" --name "$TEST_IMAGE" --out "$IMAGES_DIR/test.tar" \
    --add /bin/busybox:/bin/busybox "${links[@]}" --dir /tmp --dir /etc --cmd sh >/dev/null
  import_archive "$TEST_IMAGE" "$IMAGES_DIR/test.tar"
}

runtime_up() {
  if is_running containerd; then log "containerd already running"; else
    log "starting containerd"; containerd_up
  fi
  build_pause_image
  build_test_image
}

# load_images: copies every localhost/ocr-* image from podman's storage into the node.
# An image is skipped when the podman image id recorded at its last import is unchanged.
load_images() {
  is_running containerd || { log "node not running: images are loaded by its next start"; return 0; }
  command -v podman >/dev/null 2>&1 || { log "podman not installed: no images to load"; return 0; }
  mkdir -p "$IMAGES_DIR/loaded"
  local ref id stamp n=0
  while read -r ref id; do
    [ -n "$ref" ] && [ "${ref##*:}" != "<none>" ] || continue
    stamp="$IMAGES_DIR/loaded/$(printf '%s' "$ref" | tr '/:' '__')"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$id" ] && has_image "$ref"; then continue; fi
    log "loading $ref (${id:0:12}) from podman into the node"
    # Once more on failure: containerd's garbage collector may remove a parent snapshot
    # while an import unpacks onto it ("parent snapshot ... does not exist"); a second
    # import unpacks again from the content it already holds.
    podman save --format docker-archive "$ref" | ctr_k8s images import - >/dev/null \
      || podman save --format docker-archive "$ref" | ctr_k8s images import - >/dev/null \
      || die "could not load $ref into the node's containerd"
    echo "$id" >"$stamp"
    n=$((n + 1))
  done < <(podman images --no-trunc --format '{{.Repository}}:{{.Tag}} {{.ID}}' \
             --filter 'reference=localhost/ocr-*')
  log "$n image(s) loaded into the node"
}

# Kills whatever a crashed runtime left: container processes are those in the kubepods
# cgroups; shims are the ones started for our socket.
kill_leftovers() {
  local pid
  for pid in $(cat /sys/fs/cgroup/pids/kubepods/cgroup.procs \
      $(find /sys/fs/cgroup/pids/kubepods -mindepth 1 -name cgroup.procs 2>/dev/null) 2>/dev/null); do
    kill -KILL "$pid" 2>/dev/null || true
  done
  for pid in $(pgrep -f -- "containerd-shim-runc-v2 -namespace [^ ]+ -id [^ ]+ -address $SOCKET\$" || true); do
    kill -KILL "$pid" 2>/dev/null || true
  done
}

remove_cgroups() {
  local hierarchy
  for hierarchy in /sys/fs/cgroup/*/; do
    [ -d "$hierarchy/kubepods" ] || continue
    find "$hierarchy/kubepods" -depth -type d -exec rmdir {} \; 2>/dev/null || true
  done
}

runtime_down() {
  if is_running containerd; then
    # Stopping each sandbox through the CRI runs CNI DEL (veth, IP, portmap rules) and
    # removes its network namespace.
    "$CRI_STOP" "unix://$SOCKET" >/dev/null 2>&1 || log "cri-stop failed; killing leftovers"
    local id
    for id in $(ctr_k8s tasks ls -q 2>/dev/null); do ctr_k8s tasks kill -s SIGKILL "$id" >/dev/null 2>&1 || true; done
  fi
  stop_all 15 containerd
  kill_leftovers
  # Unmount before removing: a container's rootfs or a hostPath bind is still a mount here.
  unmount_all
  remove_cgroups
  rm -rf --one-file-system "$CTRD/state"
}
