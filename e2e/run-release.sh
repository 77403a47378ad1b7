#!/usr/bin/env bash
# Checks every way bpmcp is installed, as a release would make them:
#   1. `go install ./...` then `bpmcp --version` (the module's version information);
#   2. GoReleaser: `goreleaser check`, then a snapshot release (every target, archives,
#      checksums, the Homebrew cask; nothing published), its archives and checksums checked;
#   3. the Claude Desktop bundles the build hook packed (mcpb/pack.sh): `mcpb info`, and the
#      native one unpacked and run;
#   4. the MCP Registry entry stamped with those bundles' hashes (mcpb/stamp-server-json.mjs),
#      validated against the registry's schema (registry_test.go);
#   5. the container image built offline with podman (deploy/container/build.sh) from the
#      snapshot's linux binary, run, and probed on /healthz and with one MCP call.
#
# Usage: bash e2e/run-release.sh      (after e2e/run-node-clients.sh has installed e2e/node_modules)
#        bash e2e/run-release.sh --install-goreleaser   only install GoReleaser (.ci/run does it early,
#                                                       in the background)
# Needs: go, node, the mcpb CLI (e2e/node_modules), podman (Debian's; .ci/run installs it).
# GoReleaser is installed with `go install` at the version pinned below when absent.
# Results (logs, the stamped server.json, checksums) go to e2e/results/release/.
# Exit status: 0 when every check passed, 1 otherwise.
set -euo pipefail

E2E_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$E2E_DIR/.." && pwd)"
GORELEASER_VERSION=v2.15.1 # newer ones need a newer Go than go.mod's
RESULTS="$E2E_DIR/results/release"
export PATH="$E2E_DIR/node_modules/.bin:$(go env GOPATH)/bin:$PATH"

install_goreleaser() {
  goreleaser --version 2>/dev/null | grep -q "GitVersion:.*${GORELEASER_VERSION#v}" && return 0
  echo "installing goreleaser $GORELEASER_VERSION with go install (minutes on a clean machine)"
  (cd "${TMPDIR:-/tmp}" && go install "github.com/goreleaser/goreleaser/v2@$GORELEASER_VERSION")
}
if [[ "${1:-}" == --install-goreleaser ]]; then
  install_goreleaser
  exit
fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/bpmcp-release.XXXXXX")"
CONTAINER=""
cleanup() {
  [[ -z "$CONTAINER" ]] || podman rm -f "$CONTAINER" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
rm -rf "$RESULTS"
mkdir -p "$RESULTS"
cd "$REPO_DIR"

PASSED=() FAILED=()
pass() { PASSED+=("$1"); echo "  ok   $1${2:+ — $2}"; }
fail() { FAILED+=("$1"); echo "  FAIL $1${2:+ — $2}"; }
step() { echo; echo "== $*"; }

# ---- 1. go install, --version -----------------------------------------------------------
step "go install ./... ; bpmcp --version"
# -buildvcs=true: some machines set -buildvcs=false in GOFLAGS, and then
# a build records no commit and says only "dev".
if GOFLAGS=-buildvcs=true GOBIN="$WORK/gobin" go install ./... 2>"$RESULTS/go-install.txt" &&
  v=$("$WORK/gobin/bpmcp" --version 2>&1) && [[ "$v" =~ ^bpmcp\ v0\.0\.0-[0-9]{14}-[0-9a-f]{12}(\+dirty)?$ ]]; then
  # From a clone, Go stamps the module with a pseudo-version naming the
  # commit (v0.0.0-<time>-<12 hex>); a module download (go install
  # …@v1.2.3) reports v1.2.3 (main_test.go covers the cases).
  pass "go install ./... && bpmcp --version" "$v"
else
  fail "go install ./... && bpmcp --version" "$(tail -3 "$RESULTS/go-install.txt" | tr '\n' ' ') ${v:-}"
fi

# ---- 2. GoReleaser ------------------------------------------------------------------------
step "GoReleaser $GORELEASER_VERSION: check, snapshot release"
install_goreleaser
if goreleaser check >"$RESULTS/goreleaser-check.txt" 2>&1; then
  pass "goreleaser check"
else
  fail "goreleaser check" "$(tail -3 "$RESULTS/goreleaser-check.txt" | tr '\n' ' ')"
fi
DIST="$REPO_DIR/dist"
export MCPB_OUT=dist/mcpb # GoReleaser's globs are relative to the repository

if goreleaser release --snapshot --clean --parallelism 2 >"$RESULTS/goreleaser-snapshot.txt" 2>&1; then
  version=$(node -p 'require(process.argv[1]).version' "$DIST/metadata.json")
  archives=$(ls "$DIST"/bpmcp_*.tar.gz "$DIST"/bpmcp_*.zip 2>/dev/null | wc -l)
  pass "goreleaser release --snapshot" "version $version, $archives archives"
else
  fail "goreleaser release --snapshot" "$(grep -E 'error|⨯' "$RESULTS/goreleaser-snapshot.txt" | tail -3 | tr '\n' ' ')"
  version=""
fi

if [[ -n "$version" ]]; then
  # Every target, each archive with its binary and the README; the checksums
  # cover the archives and the bundles.
  missing=""
  for target in linux_amd64 linux_arm64 darwin_amd64 darwin_arm64 windows_amd64 windows_arm64; do
    exe=bpmcp; [[ $target == windows_* ]] && exe=bpmcp.exe
    archive=$(ls "$DIST/bpmcp_${version}_${target}".* 2>/dev/null | head -1)
    if [[ -z "$archive" ]]; then
      missing+=" $target(no archive)"
    elif [[ $archive == *.zip ]]; then
      list=$(unzip -Z1 "$archive")
    else
      list=$(tar -tzf "$archive")
    fi
    [[ -z "$archive" ]] || grep -qx "$exe" <<<"$list" || missing+=" $target(no $exe)"
    [[ -z "$archive" ]] || grep -qx "README.md" <<<"$list" || missing+=" $target(no README.md)"
  done
  [[ -z "$missing" ]] && pass "archives of 6 targets, each with its binary and README.md" || fail "archives" "$missing"

  cp "$DIST/checksums.txt" "$RESULTS/"
  if (cd "$DIST" && cp mcpb/*.mcpb . && sha256sum --quiet -c checksums.txt) >"$RESULTS/checksums-verify.txt" 2>&1 &&
    [[ $(grep -c '\.mcpb$' "$DIST/checksums.txt") -eq 6 ]]; then
    pass "checksums.txt" "$(wc -l <"$DIST/checksums.txt") files (archives and bundles) verified"
  else
    fail "checksums.txt" "$(head -3 "$RESULTS/checksums-verify.txt" | tr '\n' ' ')"
  fi

  cask="$DIST/homebrew/Casks/bpmcp.rb"
  if [[ -f "$cask" ]] && grep -q "version \"$version\"" "$cask" && grep -q 'binary "bpmcp"' "$cask"; then
    cp "$cask" "$RESULTS/"
    pass "Homebrew cask" "$(grep -c 'url "' "$cask") download URLs"
  else
    fail "Homebrew cask" "no $cask with version $version and binary bpmcp"
  fi

  # ---- 3. the bundles --------------------------------------------------------------------
  step "Claude Desktop bundles (mcpb/pack.sh, run by the build hook)"
  bundles=0
  for b in "$MCPB_OUT"/*.mcpb; do
    if mcpb info "$b" >"$RESULTS/$(basename "$b").info.txt" 2>&1; then bundles=$((bundles + 1)); else fail "mcpb info $(basename "$b")"; fi
  done
  native="$MCPB_OUT/bpmcp_${version}_$(go env GOOS)_$(go env GOARCH).mcpb"
  if [[ $bundles -eq 6 ]] && mcpb unpack "$native" "$WORK/unpacked" >/dev/null 2>&1 &&
    got=$("$WORK/unpacked/server/bpmcp" --version 2>&1) && [[ "$got" == "bpmcp $version" ]] &&
    node -e 'const m = require(process.argv[1]); if (m.version !== process.argv[2] || m.compatibility.platforms.length !== 1) process.exit(1)' \
      "$WORK/unpacked/manifest.json" "$version"; then
    pass "6 bundles; the native one unpacked and run" "$got"
  else
    fail "bundles" "$bundles of 6 read; native: ${got:-did not run}"
  fi

  # ---- 4. the registry entry -------------------------------------------------------------
  step "MCP Registry entry (server.json stamped with the bundles' hashes)"
  if node mcpb/stamp-server-json.mjs "$version" "$MCPB_OUT" >"$RESULTS/server.json" 2>"$RESULTS/stamp.txt" &&
    BPMCP_SERVER_JSON="$RESULTS/server.json" go test -count=1 -run 'TestServerJSON' . >"$RESULTS/server-json-test.txt" 2>&1; then
    pass "server.json (repository's and stamped) valid against the registry schema 2025-12-11"
  else
    fail "server.json" "$(cat "$RESULTS/stamp.txt"; grep -E 'FAIL|Error|error' "$RESULTS/server-json-test.txt" | head -3 | tr '\n' ' ')"
  fi
fi

# ---- 5. the container image ---------------------------------------------------------------
step "container image (podman, offline, from the snapshot's linux binary)"
image_bin="$DIST/bpmcp_linux_$(go env GOARCH)_v1/bpmcp"
[[ "$(go env GOARCH)" == amd64 ]] || image_bin="$(ls -d "$DIST"/bpmcp_linux_"$(go env GOARCH)"*/bpmcp | head -1)"
[[ -x "$image_bin" ]] || image_bin="" # no snapshot: build.sh builds one
if ! command -v podman >/dev/null 2>&1; then
  fail "container image" "podman is not installed (apt-get install podman runc)"
elif BPMCP_BIN="$image_bin" bash deploy/container/build.sh bpmcp:ci >"$RESULTS/image-build.txt" 2>&1; then
  pass "podman build (FROM scratch, deploy/container/Containerfile)" "$(podman image inspect bpmcp:ci --format '{{.Size}}' | awk '{printf "%.1f MB", $1/1e6}')"
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  run_image() {
    podman run -d --name bpmcp-ci-$$ -p "127.0.0.1:$port:8080" -e BPMCP_SANDBOX=true -e BPMCP_AUTH_TOKEN=ci-token "$@" bpmcp:ci
  }
  # crun (podman's default runtime) cannot start containers where cgroups v1
  # and v2 are mounted together, as on some CI hosts, nor raise rlimits
  # without CAP_SYS_RESOURCE; runc with rlimits at or below the host's can.
  if CONTAINER=$(run_image 2>"$RESULTS/image-run.txt"); then
    runtime=default
  else
    podman rm -f "bpmcp-ci-$$" >/dev/null 2>&1 || true
    CONTAINER=$(run_image --runtime runc --ulimit nofile=4096:4096 --ulimit nproc=4096:4096 2>>"$RESULTS/image-run.txt") && runtime=runc || CONTAINER=""
  fi
  if [[ -n "$CONTAINER" ]]; then
    health=""
    for _ in $(seq 50); do health=$(curl -fsS "http://127.0.0.1:$port/healthz" 2>/dev/null) && break; sleep 0.1; done
    call=$(curl -fsS "http://127.0.0.1:$port/mcp" -H 'Authorization: Bearer ci-token' -H 'Content-Type: application/json' \
      -H 'Accept: application/json, text/event-stream' -H 'MCP-Protocol-Version: 2025-06-18' \
      -d '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search_prompts","arguments":{"query":"email"}}}' 2>&1 || true)
    echo "$call" >"$RESULTS/image-mcp-call.txt"
    podman logs "$CONTAINER" >"$RESULTS/image-log.txt" 2>&1 || true
    if [[ "$health" == *'"ok"'* ]] && ! grep -q '"isError":true' <<<"$call" && grep -q 'Cold Email' <<<"$call"; then
      pass "the image runs (runtime: $runtime): /healthz ok, search_prompts over HTTP answered" "$(podman exec "$CONTAINER" /bpmcp --version 2>/dev/null || true)"
    else
      fail "the image runs" "healthz: ${health:-no answer}; call: $(head -c 200 <<<"$call")"
    fi
  else
    fail "podman run" "$(tail -3 "$RESULTS/image-run.txt" | tr '\n' ' ')"
  fi
else
  fail "podman build" "$(tail -3 "$RESULTS/image-build.txt" | tr '\n' ' ')"
fi
rm -rf "$DIST"

echo
echo "release checks: ${#PASSED[@]} passed, ${#FAILED[@]} failed"
[[ ${#FAILED[@]} -eq 0 ]]
