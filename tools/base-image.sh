#!/usr/bin/env bash
# A Python base image made from Debian's own packages, for building the Dockerfile
# where no image registry is reachable (the project's container test does):
#   tools/base-image.sh NAME                      # needs root, debootstrap, podman
#   podman build --build-arg PYTHON_IMAGE=NAME ...
# Debian (minbase) with python3, python3-venv, python3-pip and ca-certificates:
# what the Dockerfile's build stage runs. DEBIAN_SUITE picks the release and so the
# Python: bookworm (the default) has 3.11, trixie 3.13. An image NAME already
# present is kept; remove it (`podman rmi NAME`) to rebuild. DEBIAN_MIRROR picks
# a mirror (default: debootstrap's own). About a minute and 300 MB.
set -euo pipefail

name=${1:?usage: tools/base-image.sh NAME}
engine=${CONTAINER_ENGINE:-podman}
if $engine image exists "$name" 2>/dev/null; then
    echo "base image $name: present"
    exit 0
fi
root=$(mktemp -d)
trap 'rm -rf "$root" "$root.log" "$root.import"' EXIT
# shellcheck disable=SC2086 # DEBIAN_MIRROR is one word or nothing
debootstrap --variant=minbase \
    --include=python3,python3-venv,python3-pip,python-is-python3,ca-certificates \
    "${DEBIAN_SUITE:-bookworm}" "$root" ${DEBIAN_MIRROR:-} >"$root.log" 2>&1 \
    || { tail -20 "$root.log" >&2; rm -f "$root.log"; echo "debootstrap failed" >&2; exit 1; }
rm -f "$root.log"
# The host's CA bundle, so that a TLS-inspecting proxy the host trusts is trusted
# by the build's pip too.
if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
    cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
fi
# Trim what no container needs: apt's lists and caches, documentation.
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/* "$root"/usr/share/doc/* \
    "$root"/usr/share/man/* "$root"/usr/share/locale/*
tar -C "$root" -c . | $engine import --change 'CMD ["python3"]' - "$name" >"$root.import" 2>&1 \
    || { cat "$root.import" >&2; rm -f "$root.import"; exit 1; }
rm -f "$root.import"
echo "base image $name: built"
