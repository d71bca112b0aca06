#!/usr/bin/env bash
# Makes a minimal local base image (Debian bookworm + Python 3.11 + CA certificates) with
# debootstrap and imports it as $LOCAL_BASE_IMAGE, for building and testing the images on a
# machine that reaches no container registry. Skipped when the image already exists;
# `docker/base-local.sh --force` rebuilds it. Needs root and debootstrap.
set -euo pipefail

CONTAINER=${CONTAINER:-podman}
IMAGE=${LOCAL_BASE_IMAGE:-localhost/sagetext-base:bookworm}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

if [[ ${1:-} != --force ]] && $CONTAINER image inspect "$IMAGE" >/dev/null 2>&1; then
    echo "base-local: $IMAGE exists (--force to rebuild)"
    exit 0
fi
command -v debootstrap >/dev/null || { echo "base-local: needs debootstrap (apt-get install debootstrap)" >&2; exit 1; }

root=$(mktemp -d /var/tmp/sagetext-base.XXXXXX)
trap 'rm -rf "$root"' EXIT
echo "base-local: debootstrap bookworm into $root"
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    bookworm "$root" "$MIRROR" >"$root.log" 2>&1 || { tail -30 "$root.log" >&2; exit 1; }
rm -f "$root.log"
# Lean: no package caches, lists, docs or man pages in the image.
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* \
       "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/*
tar -C "$root" --numeric-owner -c . | $CONTAINER import \
    --change 'ENV LANG=C.UTF-8' --change 'CMD ["/bin/bash"]' - "$IMAGE"
echo "base-local: imported $IMAGE"
