#!/usr/bin/env bash
# A minimal Debian bookworm root as a docker image, to install the package into: built once
# with debootstrap (minbase, plus adduser, which the package needs) and imported; an image
# already on the machine is reused.
#
# Usage: deploy/deb/debian-root.sh [TAG]     (default: vigil-debian-root:bookworm)
# Env:   DEBIAN_MIRROR   the mirror debootstrap fetches from (default http://deb.debian.org/debian)
# Needs debootstrap and docker; run as root. Prints the tag on stdout.
set -euo pipefail

tag=${1:-vigil-debian-root:bookworm}
if docker image inspect "$tag" >/dev/null 2>&1; then
  echo "$tag"
  exit 0
fi
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
root=$(mktemp -d /tmp/vigil-debian-root.XXXXXX)
trap 'rm -rf "$root"' EXIT
debootstrap --variant=minbase --include=adduser bookworm "$root" "$mirror" >&2
# What apt downloaded is of no use in the image.
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
tar -C "$root" -c . | docker import - "$tag" >&2
echo "$tag"
