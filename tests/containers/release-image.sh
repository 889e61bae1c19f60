#!/usr/bin/env bash
# Builds the release image from the project's Dockerfile (both stages) and
# prints its size. Where no registry is reachable, the build stage's
# rust:1.95-slim-bookworm is made locally first: the local
# debian:bookworm-slim (see ../shared/reference/containers.md: debootstrap and
# podman import) plus this machine's Rust toolchain, and the CA certificates
# this machine trusts (so cargo reaches crates.io through an intercepting
# proxy). Not run by CI: a cold release build takes about 8 minutes on 2 cores.
#
#   bash tests/containers/release-image.sh [TAG]
set -euo pipefail
tag=${1:-healthimaging-mcp:release}
top=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)

if ! podman image exists rust:1.95-slim-bookworm; then
  podman image exists debian:bookworm-slim \
    || { echo "no debian:bookworm-slim image: make one with debootstrap first" >&2; exit 2; }
  toolchain=$(rustc --print sysroot)
  case "$(rustc --version)" in
    "rustc 1.95."*) ;;
    *) echo "the local toolchain is not Rust 1.95: $(rustc --version)" >&2; exit 2 ;;
  esac
  context=$(mktemp -d)
  trap 'rm -rf "$context"' EXIT
  mkdir "$context/rust"
  cp -al "$toolchain/." "$context/rust/" 2>/dev/null || cp -a "$toolchain/." "$context/rust/"
  rm -rf "$context/rust/share/doc"
  mkdir "$context/ca"
  cp /usr/local/share/ca-certificates/*.crt "$context/ca/" 2>/dev/null || true
  cat > "$context/Containerfile" <<'CONTAINERFILE'
FROM debian:bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends gcc libc6-dev ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY ca/ /usr/local/share/ca-certificates/
RUN update-ca-certificates
COPY rust /usr/local/rust
ENV PATH=/usr/local/rust/bin:/usr/local/cargo/bin:$PATH CARGO_HOME=/usr/local/cargo
RUN cargo --version
CONTAINERFILE
  podman build --format docker -t rust:1.95-slim-bookworm "$context"
fi

# From a clean copy of the committed tree, as a user's build would see it.
source=$(mktemp -d)
git clone -q "$top" "$source/src"
podman build --format docker -t "$tag" "$source/src"
rm -rf "$source"
podman history "$tag" --format '{{.Size}}\t{{.CreatedBy}}' | cut -c1-100
podman image inspect "$tag" --format 'image size: {{.Size}} bytes'
