#!/usr/bin/env bash
# Builds the bpmcp image from deploy/container/Containerfile with no network
# access: a static linux binary built here (or BPMCP_BIN), this machine's CA
# bundle, and an empty base. Uses podman, else docker.
#
#   bash deploy/container/build.sh [TAG]      (default tag: bpmcp:dev)
#
# Environment: BPMCP_BIN (a prebuilt linux binary), VERSION (what --version
# says, default dev), GOARCH (the image's architecture, default this
# machine's), CA_BUNDLE (default /etc/ssl/certs/ca-certificates.crt),
# CONTAINER_TOOL (podman or docker).
set -euo pipefail
tag=${1:-bpmcp:dev}
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
tool=${CONTAINER_TOOL:-$(command -v podman || command -v docker || true)}
[[ -n "$tool" ]] || { echo "build.sh: needs podman or docker (apt-get install podman)" >&2; exit 1; }
ca=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
[[ -s "$ca" ]] || { echo "build.sh: no CA bundle at $ca (apt-get install ca-certificates, or set CA_BUNDLE)" >&2; exit 1; }

ctx="$(mktemp -d "${TMPDIR:-/tmp}/bpmcp-image.XXXXXX")"
trap 'rm -rf "$ctx"' EXIT
if [[ -n "${BPMCP_BIN:-}" ]]; then
  cp "$BPMCP_BIN" "$ctx/bpmcp"
else
  (cd "$repo" && CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags "-s -w -X main.version=${VERSION:-dev}" -o "$ctx/bpmcp" .)
fi
cp "$ca" "$ctx/ca-certificates.crt"
cp "$here/Containerfile" "$ctx/Containerfile"
"$tool" build --quiet -t "$tag" -f "$ctx/Containerfile" "$ctx" >/dev/null
echo "build.sh: built $tag with $(basename "$tool")"
