#!/usr/bin/env bash
# Builds vigil as a fully static binary and a FROM scratch image that runs it.
#
# Usage: deploy/docker/build-image.sh [TAG]        (default tag: vigil:scratch)
# Env:   PROFILE      cargo profile: release (default; optimized and stripped) or dev (quick to
#                     build, several times larger)
#        TARGET_DIR   where the static build goes (default: target/static, kept apart from the
#                     normal target dir because RUSTFLAGS differ)
#        BINARY       an already built vigil to put in the image instead of building one (the
#                     tests pass the binary they test, so that no second build of the whole
#                     program is needed): its debug info is left out, and when it is linked
#                     dynamically, the loader and the shared libraries it needs go in beside it
# Prints the image tag on stdout; progress goes to stderr.
set -euo pipefail
cd "$(dirname "$0")/../.."

TAG="${1:-vigil:scratch}"
PROFILE="${PROFILE:-release}"
TARGET_DIR="${TARGET_DIR:-$PWD/target/static}"
TRIPLE=x86_64-unknown-linux-gnu

context="$(mktemp -d /tmp/vigil-image.XXXXXX)"
trap 'rm -rf "$context"' EXIT
mkdir "$context/rootfs"
cp deploy/docker/Dockerfile "$context/"

if [ -n "${BINARY:-}" ]; then
  objcopy --strip-debug "$BINARY" "$context/vigil"
  # `ldd` lists the libraries with their paths (and the loader alone, path first); a static
  # binary has none.
  for lib in $(ldd "$BINARY" 2>/dev/null | grep -o '/[^ ]*' || true); do
    mkdir -p "$context/rootfs$(dirname "$lib")"
    cp -L "$lib" "$context/rootfs$lib"
  done
else
  # No debug info and no symbols: the image only runs the binary, and every megabyte is pulled
  # by every host that runs it.
  RUSTFLAGS='-C target-feature=+crt-static' CARGO_PROFILE_DEV_DEBUG=0 CARGO_PROFILE_RELEASE_STRIP=symbols \
    cargo build --profile "$PROFILE" --target "$TRIPLE" --target-dir "$TARGET_DIR" -p vigil --bin vigil >&2
  case "$PROFILE" in
    dev) out="$TARGET_DIR/$TRIPLE/debug/vigil" ;;
    *) out="$TARGET_DIR/$TRIPLE/$PROFILE/vigil" ;;
  esac
  cp "$out" "$context/vigil"
fi

docker build -q -t "$TAG" "$context" >&2
echo "$TAG"
