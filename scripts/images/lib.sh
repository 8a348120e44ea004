# shellcheck shell=bash
# Helpers for scripts/images.sh (sourced after scripts/infra/lib.sh).
#
# Local base images, made from Debian's own packages and cached under $CACHE by version:
#   localhost/debian:bookworm-minbase-rN   debootstrap --variant=minbase, imported as is
#   localhost/ocr-python:3.11-bookworm-rN  that plus Debian's python3.11 (the interpreter)
#   localhost/uv:X.Y.Z                     the uv binary from its PyPI wheel, FROM scratch
# N is BASE_REVISION: bump it when the recipe below changes, and every base is made again.

DEBIAN_SUITE=bookworm
BASE_REVISION=2
PYTHON_VERSION=3.11
# The uv the Dockerfiles name (ARG UV_IMAGE=...:X.Y.Z) is the one built here.
UV_VERSION="$(sed -n 's/^ARG UV_IMAGE=.*:\([0-9.]*\)$/\1/p' "$REPO_ROOT/Dockerfile.runtime")"
DEBIAN_IMAGE="localhost/debian:$DEBIAN_SUITE-minbase-r$BASE_REVISION"
PYTHON_IMAGE="localhost/ocr-python:$PYTHON_VERSION-$DEBIAN_SUITE-r$BASE_REVISION"
UV_IMAGE="localhost/uv:$UV_VERSION"
CONTAINERS_CONF=/etc/containers/containers.conf.d/50-ocr-serving.conf

# podman, buildah and runc from Debian. crun fails on machines without CAP_SYS_RESOURCE (it
# raises rlimits) or with hybrid cgroups, so podman is pointed at runc and told to set no
# ulimits of its own. A drop-in file leaves any containers.conf of the machine alone.
ensure_podman() {
  apt_ensure podman podman buildah runc
  apt_ensure buildah buildah
  apt_ensure runc runc
  # The build's RUN steps reach PyPI and the Debian mirror through podman's CNI bridge.
  apt_ensure /usr/lib/cni/bridge containernetworking-plugins
  apt_ensure iptables iptables
  apt_ensure debootstrap debootstrap
  local want
  want="$(printf '%s\n' '# Written by scripts/images.sh: runc, and no ulimits (raising one fails here).' \
    '[containers]' 'default_ulimits = []' '' '[engine]' 'runtime = "runc"')"
  if [ "$(cat "$CONTAINERS_CONF" 2>/dev/null)" != "$want" ]; then
    log "writing $CONTAINERS_CONF"
    as_root mkdir -p "$(dirname "$CONTAINERS_CONF")"
    printf '%s\n' "$want" | as_root tee "$CONTAINERS_CONF" >/dev/null
  fi
}

# The Debian mirror apt already uses on this machine (deb822 or one-line sources).
debian_mirror() {
  local mirror
  mirror="$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null \
    | sed -n -e 's/^URIs:[[:space:]]*\([^[:space:]]*\/debian\)\/*$/\1/p' \
             -e 's/^deb[[:space:]]\+\(\[[^]]*\][[:space:]]\+\)\?\([^[:space:]]*\/debian\)\/*[[:space:]].*/\2/p' \
    | head -n 1)"
  echo "${mirror:-http://deb.debian.org/debian}"
}

# Root filesystem tarball, made once per revision: $CACHE/debian-bookworm-minbase-rN/rootfs.tar.
debian_rootfs() {
  local dir="$CACHE/debian-$DEBIAN_SUITE-minbase-r$BASE_REVISION" mirror started
  if [ -s "$dir/rootfs.tar" ]; then echo "$dir/rootfs.tar"; return 0; fi
  mirror="$(debian_mirror)"
  log "debootstrap --variant=minbase $DEBIAN_SUITE from $mirror (a few minutes, once)"
  started=$(date +%s)
  as_root rm -rf "$dir/rootfs.tmp"
  mkdir -p "$dir"
  as_root debootstrap --variant=minbase "$DEBIAN_SUITE" "$dir/rootfs.tmp" "$mirror" \
    >"$LOG_DIR/debootstrap.log" 2>&1 || die "debootstrap failed (see $LOG_DIR/debootstrap.log)"
  # Security and point-release updates too, as Debian's own images have them.
  printf 'deb %s %s main\ndeb %s %s-updates main\ndeb %s-security %s-security main\n' \
    "$mirror" "$DEBIAN_SUITE" "$mirror" "$DEBIAN_SUITE" "$mirror" "$DEBIAN_SUITE" \
    | as_root tee "$dir/rootfs.tmp/etc/apt/sources.list" >/dev/null
  slim_rootfs "$dir/rootfs.tmp"
  as_root tar --numeric-owner -C "$dir/rootfs.tmp" -cf "$dir/rootfs.tar.tmp" .
  as_root mv "$dir/rootfs.tar.tmp" "$dir/rootfs.tar"
  as_root rm -rf "$dir/rootfs.tmp"
  log "debian rootfs ready in $(( $(date +%s) - started )) s"
  echo "$dir/rootfs.tar"
}

# What Debian's own *-slim images do: apt keeps no downloaded packages or caches, dpkg installs
# no documentation, manuals or translations (for the packages installed later too).
slim_rootfs() {
  local root="$1" slim="$REPO_ROOT/scripts/images/slim"
  as_root install -m 0644 "$slim/apt-docker-clean" "$root/etc/apt/apt.conf.d/docker-clean"
  as_root install -m 0644 "$slim/dpkg-docker" "$root/etc/dpkg/dpkg.cfg.d/docker"
  as_root find "$root/var/cache/apt" "$root/var/lib/apt/lists" -type f -delete
  as_root find "$root/usr/share/doc" -mindepth 2 ! -name copyright ! -type d -delete
  as_root find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
  as_root rm -rf "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/locale/*
}

ensure_debian_image() {
  podman image exists "$DEBIAN_IMAGE" && return 0
  local tar
  tar="$(debian_rootfs)"
  log "importing $tar as $DEBIAN_IMAGE"
  podman import -q --change 'CMD ["/bin/bash"]' "$tar" "$DEBIAN_IMAGE" >/dev/null
}

# The uv binary from its PyPI wheel (the machine reaches PyPI, not ghcr.io), cached in
# $CACHE/uv-X.Y.Z/, as an image holding only /uv: what the Dockerfiles copy from UV_IMAGE.
ensure_uv_image() {
  podman image exists "$UV_IMAGE" && return 0
  [ -n "$UV_VERSION" ] || die "no ARG UV_IMAGE=...:X.Y.Z in Dockerfile.runtime"
  local dir="$CACHE/uv-$UV_VERSION"
  if [ ! -x "$dir/image/uv" ]; then
    log "fetching the uv $UV_VERSION wheel from PyPI"
    rm -rf "$dir/wheel" && mkdir -p "$dir/wheel" "$dir/image"
    python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$dir/wheel" \
      "uv==$UV_VERSION" || die "pip download uv==$UV_VERSION failed"
    python3 - "$dir/wheel" "$dir/image/uv" <<'PY'
import pathlib, sys, zipfile
wheel = next(pathlib.Path(sys.argv[1]).glob("uv-*.whl"))
with zipfile.ZipFile(wheel) as z:
    name = next(n for n in z.namelist() if n.endswith(".data/scripts/uv"))
    pathlib.Path(sys.argv[2]).write_bytes(z.read(name))
PY
    chmod 0755 "$dir/image/uv"
    rm -rf "$dir/wheel"
  fi
  log "importing uv $UV_VERSION as $UV_IMAGE"
  tar --numeric-owner --owner=0 --group=0 -C "$dir/image" -cf - uv \
    | podman import -q --change 'ENTRYPOINT ["/uv"]' - "$UV_IMAGE" >/dev/null
}

ensure_python_image() {
  podman image exists "$PYTHON_IMAGE" && return 0
  log "building $PYTHON_IMAGE (Debian's python$PYTHON_VERSION)"
  # shellcheck disable=SC2046  # build_network prints zero or one word
  podman build --layers $(build_network) -f "$REPO_ROOT/scripts/images/python.Containerfile" \
    --build-arg DEBIAN_IMAGE="$DEBIAN_IMAGE" --build-arg PYTHON_VERSION="$PYTHON_VERSION" \
    -t "$PYTHON_IMAGE" "$REPO_ROOT/scripts/images" >"$LOG_DIR/image-python.log" 2>&1 \
    || { tail -n 30 "$LOG_DIR/image-python.log" >&2; die "building $PYTHON_IMAGE failed"; }
}

# The network RUN steps get while building (they reach PyPI and the Debian mirror). Empty:
# podman's default (a CNI bridge); IMAGES_BUILD_NETWORK=host overrides it.
build_network() {
  if [ -n "${IMAGES_BUILD_NETWORK:-}" ]; then echo "--network=$IMAGES_BUILD_NETWORK"; fi
}

# The machine's CA bundle, as the build's `ca-bundle` secret: uv in the build stage trusts it,
# which a TLS-inspecting proxy on the way to PyPI needs. Secrets stay out of every layer.
ca_secret() {
  local bundle="${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}"
  if [ -f "$bundle" ]; then echo "--secret=id=ca-bundle,src=$bundle"; fi
}

# build_image DOCKERFILE TAG [podman build args...]: the repository is the context.
build_image() {
  local file="$1" tag="$2" started log
  shift 2
  log="$LOG_DIR/image-$(basename "${tag%%:*}")-${tag##*:}.log"
  log "building $tag from $file (log: $log)"
  started=$(date +%s)
  # shellcheck disable=SC2046  # build_network and ca_secret print zero or one word
  if ! podman build --layers $(build_network) -f "$REPO_ROOT/$file" -t "$tag" \
      --build-arg UV_IMAGE="$UV_IMAGE" --build-arg PYTHON_VERSION="$PYTHON_VERSION" \
      --build-arg PYTHON_PREFERENCE=only-system $(ca_secret) "$@" "$REPO_ROOT" >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    die "building $tag failed (log: $log)"
  fi
  log "$tag built in $(( $(date +%s) - started )) s, $(image_size_mb "$tag") MB"
}

image_size_mb() {
  echo $(( $(podman image inspect --format '{{.Size}}' "$1") / 1000000 ))
}

# One build at a time per machine (podman's store is shared; builds compete for two cores).
with_lock() {
  (
    flock 9
    "$@"
  ) 9>"$LOCAL/images.lock"
}
