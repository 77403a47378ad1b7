#!/usr/bin/env bash
# The replica test: three bpmcp replicas in --stateless HTTP mode sharing one
# Redis, behind HAProxy round-robin, against fake BetterPrompt and
# BetterWaifu APIs with their real limits (TestReplicasBehindHAProxy in
# e2e/replicas_test.go). It installs what it needs from Debian's packages
# (haproxy, redis-server) when they are missing, and prints its figures
# (lines starting with FIGURES).
#
# Usage (from anywhere):   bash e2e/run-replicas.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

missing=()
command -v haproxy >/dev/null 2>&1 || missing+=(haproxy)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo sh -c "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ${missing[*]}" >/dev/null
fi
haproxy -v | sed -n 1p # sed reads it all: head would end haproxy with SIGPIPE, failing the pipeline
redis-server --version

# REPLICAS_LOG: where go test's whole output goes (default
# e2e/results/replicas.log; .ci/run sets it elsewhere, because the Node
# clients' script empties e2e/results/ while this runs beside it).
log="${REPLICAS_LOG:-e2e/results/replicas.log}"
mkdir -p "$(dirname "$log")"
status=0
BPMCP_REPLICAS=1 BPMCP_CI=1 go test -count=1 -timeout 10m -run '^TestReplicasBehindHAProxy$' -v ./e2e/ >"$log" 2>&1 || status=$?
# The replicas' JSON logs stay in the log file (printed by the test when it
# fails); the figures and the verdict are printed here.
grep -v '^\s*{"time"' "$log" | grep -v 'pool.go' || true
exit "$status"
