#!/usr/bin/env bash
# Make sure podman has docker.io/library/python:3.12-slim (the base of both service images).
#
# This machine has no container registry (only Debian/PyPI/npm mirrors). So: if the image is already in
# podman's storage, exit at once; else try a real pull (fails in well under a second without a registry);
# else build a local stand-in from Debian with debootstrap and `podman import` it under the official name,
# so `FROM python:3.12-slim` in the Dockerfiles resolves to it unchanged.
#
# The stand-in behaves like the official slim image where our Dockerfiles care:
#   python, python3, pip, pip3 on PATH in /usr/local/bin; `pip install` as root goes into the system site
#   (/usr/local/lib/python3.X/dist-packages, console scripts in /usr/local/bin) with no PEP 668 error;
#   ENV PATH and LANG=C.UTF-8; no /app; valid /etc/apt sources so `apt-get update && apt-get install` works.
# It is NOT Python 3.12: Debian bookworm ships Python 3.11, which is acceptable for a stand-in because
# Django 5.2 supports Python 3.10-3.13. The label io.task03.standin=true marks it.
#
# Usage: testbed/standin-base-image.sh [--force]     (--force rebuilds even if the image exists)
# Env:   STANDIN_MIRROR (default http://deb.debian.org/debian), STANDIN_SECURITY_MIRROR,
#        STANDIN_SUITE (default bookworm), STANDIN_NO_PULL=1 (skip the pull attempt),
#        STANDIN_CACHE_DIR (default /var/cache/standin-debootstrap; .debs kept for faster rebuilds).
set -euo pipefail

IMAGE=docker.io/library/python:3.12-slim
MIRROR=${STANDIN_MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${STANDIN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
SUITE=${STANDIN_SUITE:-bookworm}
CACHE_DIR=${STANDIN_CACHE_DIR:-/var/cache/standin-debootstrap}
# Everything the e2e tests need from apt on a fresh machine; CI installs exactly this list.
APT_PACKAGES="podman runc debootstrap netavark aardvark-dns iptables ca-certificates"

log() { printf 'standin-base-image [%ss]: %s\n' "$((SECONDS - ${start:-$SECONDS}))" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

force=0
case "${1:-}" in
  --force) force=1 ;;
  "") ;;
  *) die "unknown argument: $1 (usage: $0 [--force])" ;;
esac

require_tools() {
  local missing=() tool pkg
  for pair in podman:podman runc:runc debootstrap:debootstrap netavark:netavark aardvark-dns:aardvark-dns \
              iptables:iptables; do
    tool=${pair%%:*} pkg=${pair#*:}
    # netavark/aardvark-dns live in /usr/lib/podman, not on PATH.
    if ! command -v "$tool" >/dev/null 2>&1 && [[ ! -x /usr/lib/podman/$tool ]]; then
      missing+=("$pkg")
    fi
  done
  if ((${#missing[@]})); then
    die "missing packages: ${missing[*]}
  install with: apt-get update && apt-get install -y --no-install-recommends $APT_PACKAGES"
  fi
}

image_exists() { podman image exists "$IMAGE"; }

# Fast path: no lock, no tool checks beyond podman.
command -v podman >/dev/null 2>&1 || { require_tools; }
if ((!force)) && image_exists; then
  exit 0
fi

require_tools
[[ $(id -u) -eq 0 ]] || die "must run as root (debootstrap, chroot and rootful podman)"

# Two test sessions starting at once must not both build.
exec 9>/run/lock/standin-base-image.lock
flock 9
if ((!force)) && image_exists; then
  exit 0
fi

start=$SECONDS

if ((!force)) && [[ -z ${STANDIN_NO_PULL:-} ]]; then
  if podman pull --quiet "$IMAGE" >/dev/null 2>&1; then
    log "pulled the real $IMAGE"
    exit 0
  fi
  log "cannot pull $IMAGE (no registry?); building a Debian $SUITE stand-in"
fi

workdir=$(mktemp -d /var/tmp/standin-base-image.XXXXXX)
rootfs=$workdir/rootfs
cleanup() {
  # Unmount anything left mounted inside the chroot before deleting it.
  if [[ -d $rootfs ]]; then
    for m in "$rootfs/proc" "$rootfs/dev/pts" "$rootfs/dev"; do
      mountpoint -q "$m" 2>/dev/null && umount -l "$m"
    done
  fi
  rm -rf "$workdir"
  [[ -n ${tmp_tag:-} ]] && podman image exists "$tmp_tag" && podman rmi --force "$tmp_tag" >/dev/null 2>&1
  return 0
}
trap cleanup EXIT

mkdir -p "$CACHE_DIR"
log "debootstrap $SUITE from $MIRROR"
debootstrap --variant=minbase --components=main --cache-dir="$CACHE_DIR" \
  --include=python3,python3-pip,python3-venv,ca-certificates,netbase \
  "$SUITE" "$rootfs" "$MIRROR" >"$workdir/debootstrap.log" 2>&1 \
  || { tail -n 30 "$workdir/debootstrap.log" >&2; die "debootstrap failed (log above)"; }

# Same apt layout as the host and as debian:*-slim: deb822 sources incl. updates + security, so that
# `apt-get update && apt-get install -y curl` in later Dockerfiles works; no docs/man/locales from later installs.
rm -f "$rootfs/etc/apt/sources.list"
cat >"$rootfs/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $MIRROR
Suites: $SUITE $SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $SECURITY_MIRROR
Suites: $SUITE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
cat >"$rootfs/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
echo 'Acquire::Languages "none";' >"$rootfs/etc/apt/apt.conf.d/docker-no-languages"
cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker-slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF

mount -t proc proc "$rootfs/proc"
in_root() { chroot "$rootfs" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
  DEBIAN_FRONTEND=noninteractive "$@"; }
log "applying $SUITE-updates/-security and configuring python"
{
  in_root apt-get update
  in_root apt-get -y --no-install-recommends dist-upgrade
  # PEP 668: the official image's pip installs into the system site as root; divert (not just delete) the
  # marker so a later libpython3.X-stdlib upgrade inside a Dockerfile cannot bring it back.
  for marker in "$rootfs"/usr/lib/python3*/EXTERNALLY-MANAGED; do
    [[ -e $marker ]] || continue
    marker=${marker#"$rootfs"}
    in_root dpkg-divert --local --rename --divert "$marker.orig" --add "$marker"
  done
  in_root apt-get clean
} >"$workdir/configure.log" 2>&1 || { tail -n 30 "$workdir/configure.log" >&2; die "configuring the rootfs failed"; }
umount "$rootfs/proc"

# python/python3/pip/pip3 in /usr/local/bin, as in the official image.
for name in python python3; do ln -sf /usr/bin/python3 "$rootfs/usr/local/bin/$name"; done
for name in pip pip3; do ln -sf /usr/bin/pip3 "$rootfs/usr/local/bin/$name"; done
# Slim it down and leave nothing host-specific behind (podman provides resolv.conf, hosts, hostname).
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/* "$rootfs"/var/cache/debconf/*-old \
  "$rootfs"/var/log/* "$rootfs"/tmp/* "$rootfs"/var/tmp/* \
  "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/usr/share/locale/*
find "$rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
: >"$rootfs/etc/resolv.conf"
: >"$rootfs/etc/hostname"

py_version=$(chroot "$rootfs" /usr/bin/python3 -c 'import platform; print(platform.python_version())')
tmp_tag=localhost/standin-python:building-$$
log "importing rootfs as $IMAGE (Python $py_version)"
tar -C "$rootfs" --numeric-owner -c . | podman import --quiet \
  --change 'ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change "ENV PYTHON_VERSION=$py_version" \
  --change 'LABEL io.task03.standin=true' \
  --change "LABEL org.opencontainers.image.description=Stand-in for python:3.12-slim: Debian $SUITE + Python $py_version" \
  --change 'CMD ["python3"]' \
  --message "stand-in for $IMAGE built by testbed/standin-base-image.sh" \
  - "$tmp_tag" >/dev/null

# Smoke test before giving it the official name: the image must do what our Dockerfiles rely on.
# The explicit ulimits are needed here: root in this VM lacks CAP_SYS_RESOURCE and podman's default
# nofile=1048576 exceeds the hard limit, so runc fails with "error setting rlimit type 7".
podman --runtime runc run --rm --network none --ulimit nofile=16384:16384 --ulimit nproc=4096:4096 "$tmp_tag" sh -euc '
  [ "$(command -v python)" = /usr/local/bin/python ]
  [ "$(command -v pip)" = /usr/local/bin/pip ]
  python -c "import ssl, json, sqlite3, ensurepip, sys; assert sys.version_info >= (3, 10)"
  pip --version >/dev/null
  ! ls /usr/lib/python3*/EXTERNALLY-MANAGED 2>/dev/null   # PEP 668 marker diverted away
  [ ! -e /app ]
' || die "smoke test of the stand-in image failed"

old_id=$(podman image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null || true)
podman tag "$tmp_tag" "$IMAGE"
podman untag "$tmp_tag" "$tmp_tag"   # without the 2nd arg, untag removes ALL names
tmp_tag=
# On --force, drop the previous stand-in unless a container or another tag still uses it.
if [[ -n $old_id ]]; then podman rmi "$old_id" >/dev/null 2>&1 || true; fi
log "built $IMAGE stand-in ($(podman image inspect --format '{{.Size}}' "$IMAGE") bytes)"
