#!/usr/bin/env bash
# Packs one Claude Desktop bundle (.mcpb) from a built binary and
# mcpb/manifest.json, validated with the mcpb CLI (npm: @anthropic-ai/mcpb).
# GoReleaser runs it after each build (.goreleaser.yaml); e2e/run-release.sh
# checks what it makes.
#
#   bash mcpb/pack.sh BINARY GOOS GOARCH VERSION OUTDIR
#
# Writes OUTDIR/bpmcp_VERSION_GOOS_GOARCH.mcpb. Uses `mcpb` from PATH, else
# e2e/node_modules/.bin/mcpb, else npx (which downloads it).
set -euo pipefail
[[ $# -eq 5 ]] || { echo "usage: $0 BINARY GOOS GOARCH VERSION OUTDIR" >&2; exit 2; }
binary=$1 goos=$2 goarch=$3 version=${4#v} outdir=$5
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

if command -v mcpb >/dev/null 2>&1; then
  mcpb=(mcpb)
elif [[ -x "$repo/e2e/node_modules/.bin/mcpb" ]]; then
  mcpb=("$repo/e2e/node_modules/.bin/mcpb")
else
  mcpb=(npx --yes @anthropic-ai/mcpb@2.1.2) # the version e2e/package.json pins
fi

exe=bpmcp platform=$goos
case $goos in
  windows) exe=bpmcp.exe platform=win32 ;;
  darwin | linux) ;;
  *) echo "mcpb/pack.sh: Claude Desktop runs on darwin, windows and linux, not $goos" >&2; exit 2 ;;
esac

stage="$(mktemp -d "${TMPDIR:-/tmp}/bpmcp-mcpb.XXXXXX")"
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/server" "$outdir"
cp "$binary" "$stage/server/$exe"
cp "$repo/README.md" "$stage/"
# This platform's entry point, the release's version.
node -e '
  const fs = require("fs");
  const [src, dst, exe, platform, version] = process.argv.slice(1);
  const m = JSON.parse(fs.readFileSync(src, "utf8"));
  m.version = version;
  m.server.entry_point = "server/" + exe;
  m.server.mcp_config.command = "${__dirname}/server/" + exe;
  delete m.server.mcp_config.platform_overrides;
  m.compatibility.platforms = [platform];
  fs.writeFileSync(dst, JSON.stringify(m, null, 2) + "\n");
' "$repo/mcpb/manifest.json" "$stage/manifest.json" "$exe" "$platform" "$version"

out="$outdir/bpmcp_${version}_${goos}_${goarch}.mcpb"
"${mcpb[@]}" validate "$stage/manifest.json"
"${mcpb[@]}" pack "$stage" "$out" >/dev/null
echo "mcpb/pack.sh: $out"
