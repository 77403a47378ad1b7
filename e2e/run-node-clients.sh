#!/usr/bin/env bash
# Drives bpmcp (sandbox mode) with real Node MCP clients and fails on any problem:
#   1. the MCP conformance suite (@modelcontextprotocol/conformance) over Streamable HTTP;
#   2. the MCP Inspector CLI (@modelcontextprotocol/inspector): tools/list --strict and a
#      tools/call of every tool, over stdio and HTTP, in the legacy and modern protocol eras;
#   3. the TypeScript SDK client (@modelcontextprotocol/sdk), over stdio and HTTP
#      (sdk-client.mjs: outputSchema validation with ajv, progress, tool errors, Origin);
#   4. the run viewer, an MCP App, in headless Debian Chromium driven by playwright-core
#      (viewer-test.mjs: a minimal host page, real sandbox results, screenshots);
#   5. an agent framework's MCP adapter, LangChain's @langchain/mcp-adapters (framework-check.mjs):
#      the tools loaded over stdio and two of them invoked in the sandbox.
# (The Claude Desktop bundles, packed with @anthropic-ai/mcpb from e2e/node_modules, are checked
# by e2e/run-release.sh with the rest of the release.)
#
# Usage (from anywhere):   bash e2e/run-node-clients.sh
# Needs: bash >= 4, go (unless BPMCP_BIN is given), npm with any Node (Node 22 itself comes
# from the npm package `node`), the npm registry. Outside e2e/ only a temp dir (removed at
# exit) and Go's build cache are written; HOME and npm's cache are e2e/home/.
#
# Environment:
#   BPMCP_BIN=/path/bpmcp  test this prebuilt binary instead of building the repo
#   E2E_TIME_SCALE=0.2     --sandbox-time-scale of every server started (0.2: runs 5x faster)
#   E2E_TIMEOUT=900        seconds before the whole run is stopped (exit 124)
#   E2E_PARTS="conformance inspector sdk framework viewer"   the parts to run
#   CHROMIUM=/usr/bin/chromium  the browser of the viewer part (default: chromium on PATH, installed from Debian if absent)
#   E2E_REINSTALL=1        run npm ci even when node_modules matches the lockfile
#
# Results (logs, conformance checks.json, SDK client results) go to e2e/results/.
# Exit status: 0 when every check passed, 1 when any failed, 124 on timeout.
set -euo pipefail

E2E_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$E2E_DIR/.." && pwd)"

# Bounded run time: run the whole script once more under timeout(1). On expiry
# timeout signals its whole process group: this script, the clients, the servers.
E2E_TIMEOUT="${E2E_TIMEOUT:-900}"
if [[ -z "${BPMCP_E2E_UNDER_WATCHDOG:-}" ]] && command -v timeout >/dev/null 2>&1; then
  export BPMCP_E2E_UNDER_WATCHDOG=1
  rc=0
  timeout --kill-after=20s "$E2E_TIMEOUT" bash "${BASH_SOURCE[0]}" "$@" || rc=$?
  if [[ $rc -eq 124 || $rc -eq 137 ]]; then
    echo "run-node-clients: stopped after E2E_TIMEOUT=${E2E_TIMEOUT}s" >&2
    rc=124
  fi
  exit "$rc"
fi

if ! command -v timeout >/dev/null 2>&1; then
  timeout() { shift; "$@"; } # no coreutils timeout (macOS): run unbounded
fi

TIME_SCALE="${E2E_TIME_SCALE:-0.2}"
PARTS=" ${E2E_PARTS:-conformance inspector sdk framework viewer} "
RESULTS="$E2E_DIR/results"
BROWSER_ORIGIN="http://localhost:6274" # the Inspector web UI's origin: allowed, to check allow-listing works
EXPECTED_TOOLS="search_prompts,get_prompt,run_prompt,get_run,get_credits,list_models,betterwaifu_generate,betterwaifu_get_generation,betterwaifu_list_models,betterwaifu_get_account"
START=$SECONDS

# Sandbox fixtures (testdata/catalogue/INDEX.md).
COLD_EMAIL_PROMPT=2d4e6f80-1a3b-4c5d-8e9f-0a1b2c3d4e01
COLD_EMAIL_VERSION=6f1c2a9e-3b7d-4c1e-9a52-0d8e4f6b7a11
FAILING_PROMPT=415be72d-145a-4112-9883-dffddb2efd29
IMAGE_VERSION=3b4c5d6e-7f80-4192-a3b4-c5d6e7f8a999

PASSED=()
FAILED=()
TIMINGS=()
pass() { PASSED+=("$1"); echo "  ok   $1${2:+ — $2}"; }
fail() { FAILED+=("$1"); echo "  FAIL $1${2:+ — $2}"; }
step() { echo; echo "== $*"; }
timed() { TIMINGS+=("$1 $(( SECONDS - $2 ))s"); }

WORK="$(mktemp -d "${TMPDIR:-/tmp}/bpmcp-e2e.XXXXXX")"
SERVER_PID=""
stop_server() {
  local pid="$SERVER_PID"
  SERVER_PID=""
  [[ -n "$pid" ]] || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  local rc=$?
  stop_server
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'echo "run-node-clients: interrupted" >&2; exit 130' INT
trap 'echo "run-node-clients: terminated (timeout?)" >&2; exit 124' TERM

rm -rf "$RESULTS"
mkdir -p "$RESULTS"

# ---- the server binary -------------------------------------------------------------
step "server binary"
t0=$SECONDS
if [[ -n "${BPMCP_BIN:-}" ]]; then
  [[ -x "$BPMCP_BIN" ]] || { echo "BPMCP_BIN=$BPMCP_BIN is not an executable file" >&2; exit 1; }
  BIN="$(cd "$(dirname "$BPMCP_BIN")" && pwd)/$(basename "$BPMCP_BIN")"
  echo "using prebuilt $BIN"
else
  BIN="$WORK/bpmcp"
  (cd "$REPO_DIR" && go build -o "$BIN" .)
  echo "built $BIN"
fi
timed build "$t0"

# ---- Node 22 and the clients, into e2e/node_modules ------------------------------------
step "npm ci (Node 22, Inspector 2.12.0, conformance 0.1.16, SDK 1.32.2, ajv, LangChain MCP adapters 1.1.4)"
t0=$SECONDS
# Go keeps its module and build caches where they were (parts build Go
# programs), not under the HOME set for npm below.
if command -v go >/dev/null 2>&1; then
  GOPATH="$(go env GOPATH)" GOMODCACHE="$(go env GOMODCACHE)" GOCACHE="$(go env GOCACHE)"
  export GOPATH GOMODCACHE GOCACHE
fi
export HOME="$E2E_DIR/home" # the Inspector writes ~/.mcp-inspector
mkdir -p "$HOME"
export npm_config_cache="$HOME/.npm" npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false
cd "$E2E_DIR"
stamp="node_modules/.bpmcp-e2e-installed"
want_stamp="$(cat package.json package-lock.json 2>/dev/null | cksum)"
if [[ -z "${E2E_REINSTALL:-}" && -f "$stamp" && "$(cat "$stamp")" == "$want_stamp" ]]; then
  echo "node_modules matches package-lock.json; skipping npm ci (E2E_REINSTALL=1 forces it)"
else
  command -v npm >/dev/null 2>&1 || { echo "npm is needed to install the clients" >&2; exit 1; }
  if [[ -f package-lock.json ]]; then
    npm ci --no-fund --no-audit --loglevel=error
  else
    npm install --no-fund --no-audit --loglevel=error
  fi
  echo "$want_stamp" >"$stamp"
fi
export PATH="$E2E_DIR/node_modules/.bin:$PATH"
node_version="$(node --version)"
IFS=. read -r major minor _ <<<"${node_version#v}"
if (( major < 22 || (major == 22 && minor < 19) )); then
  echo "node $node_version from $(command -v node) is older than 22.19 (the Inspector and the conformance suite need it)" >&2
  exit 1
fi
echo "node $node_version ($(command -v node)); inspector $(mcp-inspector --cli --version 2>/dev/null | tail -1)"
timed install "$t0"

# ---- the HTTP server ------------------------------------------------------------------
# The conformance scenario dns-rebinding-protection sends Host and Origin
# http://127.0.0.1:PORT and requires a 2xx: bpmcp allows its own loopback origin by
# itself, so only the Inspector's browser origin is configured here. The
# page-from-another-site case (Origin http://evil.example) is refused, which
# sdk-client.mjs checks.
free_port() {
  node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}
healthy() {
  node -e 'fetch(process.argv[1]).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))' "$1"
}
start_http_server() {
  local attempt
  for attempt in 1 2 3; do
    PORT="$(free_port)"
    URL="http://127.0.0.1:$PORT/mcp"
    "$BIN" --sandbox --transport http --addr "127.0.0.1:$PORT" --sandbox-time-scale "$TIME_SCALE" \
      --log-format json --allowed-origins "$BROWSER_ORIGIN" --prompts cold-email-opener=cold_email \
      </dev/null >"$RESULTS/server-http.stdout" 2>>"$RESULTS/server-http.log" &
    SERVER_PID=$!
    for _ in $(seq 100); do
      if ! kill -0 "$SERVER_PID" 2>/dev/null; then break; fi
      if healthy "http://127.0.0.1:$PORT/healthz"; then
        echo "serving $URL (pid $SERVER_PID)"
        return 0
      fi
      sleep 0.1
    done
    echo "attempt $attempt: the server did not become healthy on port $PORT" >&2
    stop_server
  done
  tail -20 "$RESULTS/server-http.log" >&2
  return 1
}

step "start bpmcp --sandbox --transport http"
if start_http_server; then
  pass "http server: /healthz answers"
else
  fail "http server: /healthz answers" "see $RESULTS/server-http.log"
  PARTS=" " # nothing else can run
fi

# ---- 1. conformance suite -------------------------------------------------------------
# Server scenarios that apply to a server without the reference fixture tools:
CONFORMANCE_SCENARIOS=(
  server-initialize           # initialize handshake
  ping                        # ping answers {}
  tools-list                  # every tool has name, description, inputSchema
  resources-list              # the run viewer's resource has a uri and a name
  prompts-list                # the chosen prompt (--prompts) has a name and a description
  server-sse-multiple-streams # concurrent POSTs in one session (generic: uses tools/list)
  dns-rebinding-protection    # non-localhost Host/Origin -> 4xx, localhost -> 2xx
)
# Why every other server scenario of `conformance list` (0.1.16) does not apply.
# A scenario missing from both lists fails the run, so a new one gets decided on.
declare -A CONFORMANCE_EXCLUDED=(
  [logging-set-level]="bpmcp does not declare the logging capability (logs go to stderr)"
  [completion-complete]="bpmcp declares no completions capability (its prompt arguments and resource template variables are free text or ids)"
  [tools-call-simple-text]="needs the fixture tool test_simple_text"
  [tools-call-image]="needs the fixture tool test_image_content"
  [tools-call-audio]="needs the fixture tool test_audio_content"
  [tools-call-embedded-resource]="needs the fixture tool test_embedded_resource"
  [tools-call-mixed-content]="needs the fixture tool test_multiple_content_types"
  [tools-call-with-logging]="needs the fixture tool test_tool_with_logging, and logging"
  [tools-call-error]="needs the fixture tool test_error_handling (sdk-client.mjs checks isError on real tools)"
  [tools-call-with-progress]="needs the fixture tool test_tool_with_progress (sdk-client.mjs checks progress on run_prompt)"
  [tools-call-sampling]="needs the fixture tool test_sampling; bpmcp never asks the client to sample"
  [tools-call-elicitation]="needs the fixture tool test_elicitation; bpmcp never elicits"
  [json-schema-2020-12]="needs the fixture tool json_schema_2020_12_tool (sdk-client.mjs compiles every schema as 2020-12)"
  [elicitation-sep1034-defaults]="needs an elicitation fixture tool; bpmcp never elicits"
  [elicitation-sep1330-enums]="needs an elicitation fixture tool; bpmcp never elicits"
  [server-sse-polling]="needs the fixture tool test_reconnection; without it the scenario checks nothing"
  [resources-read-text]="needs the fixture resource test://static-text (viewer-test.mjs reads ui://bpmcp/run-viewer; the Go e2e reads betterprompt://prompts/…)"
  [resources-read-binary]="needs the fixture resource test://static-binary; bpmcp has no binary resource"
  [resources-templates-read]="needs a fixture template (the Go e2e reads betterprompt://prompts/{prompt_id})"
  [resources-subscribe]="bpmcp offers no resource subscriptions (its resources do not change)"
  [resources-unsubscribe]="bpmcp offers no resource subscriptions (its resources do not change)"
  [prompts-get-simple]="needs the fixture prompt test_simple_prompt (tools/betterprompt tests prompts/get of chosen prompts)"
  [prompts-get-with-args]="needs the fixture prompt test_prompt_with_arguments (tools/betterprompt tests prompts/get with arguments)"
  [prompts-get-embedded-resource]="needs a fixture prompt with an embedded resource; bpmcp's prompts are text"
  [prompts-get-with-image]="needs a fixture prompt with an image; bpmcp's prompts are text"
)

if [[ "$PARTS" == *" conformance "* ]]; then
  step "conformance suite $(conformance --version 2>/dev/null || true) against $URL"
  t0=$SECONDS
  listed="$(conformance list 2>&1 | sed -n '/^Server scenarios/,/^Client scenarios/p' | sed -n 's/^ *- \([^ ]*\).*/\1/p')"
  unknown=()
  for s in $listed; do
    if [[ " ${CONFORMANCE_SCENARIOS[*]} " != *" $s "* && -z "${CONFORMANCE_EXCLUDED[$s]:-}" ]]; then unknown+=("$s"); fi
  done
  for s in "${CONFORMANCE_SCENARIOS[@]}"; do
    if ! grep -qx -- "$s" <<<"$listed"; then unknown+=("$s (chosen here, missing from conformance list)"); fi
  done
  if [[ -z "$listed" ]]; then
    fail "conformance list" "no server scenarios listed"
  elif (( ${#unknown[@]} )); then
    fail "conformance list: every server scenario is run or excluded with a reason" "undecided: ${unknown[*]}"
  else
    pass "conformance list: every server scenario is run or excluded with a reason" \
      "$(wc -w <<<"$listed") listed, ${#CONFORMANCE_SCENARIOS[@]} run"
  fi
  for s in "${CONFORMANCE_SCENARIOS[@]}"; do
    rc=0
    timeout 120 conformance server --url "$URL" --scenario "$s" -o "$RESULTS/conformance" \
      >"$RESULTS/conformance-$s.txt" 2>&1 || rc=$?
    # shellcheck disable=SC2012 # the names are ours: server-<scenario>-<timestamp>
    checks_file="$(ls -t "$RESULTS"/conformance/server-"$s"-2*/checks.json 2>/dev/null | head -1 || true)"
    verdict=""
    vrc=0
    if [[ -n "$checks_file" ]]; then
      verdict="$(node "$E2E_DIR/conformance-checks.mjs" "$s" "$checks_file")" || vrc=$?
    else
      verdict="no checks.json written"
      vrc=1
    fi
    if [[ $rc -eq 0 && $vrc -eq 0 ]]; then
      pass "conformance $s" "$(head -1 <<<"$verdict")"
    else
      fail "conformance $s (exit $rc)" "$(tr '\n' ' ' <<<"$verdict")"
      tail -5 "$RESULTS/conformance-$s.txt" | sed 's/^/    | /'
    fi
    if [[ $(wc -l <<<"$verdict") -gt 1 ]]; then tail -n +2 <<<"$verdict" | sed 's/^/  /'; fi
  done
  timed conformance "$t0"
fi

# ---- 2. Inspector CLI -----------------------------------------------------------------
# Exit codes (mcp-inspector 2.12.0): 0 ok, 1 usage, 3 auth required, 4 unreachable,
# 5 the tool returned isError (or is unknown), 6 --strict schema findings.
inspector_notes() { # stderr lines that are not the stdio server's JSON log lines
  grep -v -e '^{"time":' -e '^[[:space:]]*$' -e '"code":"tool_is_error"' "$1" | head -20 | sed 's/^/    inspector stderr: /' || true
}
# inspect LABEL WANT_EXIT "CHECK [ARG]" INSPECTOR_ARGS...: one Inspector CLI run against
# the current $transport/$era/$target; passes when the exit code is WANT_EXIT and
# inspector-output.mjs CHECK accepts what it printed.
inspect() {
  local label="$1" want="$2" check="$3" rc=0 why=""
  shift 3
  n=$((n + 1))
  local out="$RESULTS/inspector-$n.out" err="$RESULTS/inspector-$n.err"
  if [[ $transport == stdio ]]; then # the spawned command must come last, after --
    timeout 90 mcp-inspector --cli --protocol-era "$era" --format json "$@" "${target[@]}" >"$out" 2>"$err" || rc=$?
  else
    timeout 90 mcp-inspector --cli "${target[@]}" --protocol-era "$era" --format json "$@" >"$out" 2>"$err" || rc=$?
  fi
  local ok=0
  # shellcheck disable=SC2086 # $check is "MODE [ARG]", split on purpose
  why="$(node "$E2E_DIR/inspector-output.mjs" "$out" $check)" || ok=$?
  if [[ $rc -ne $want ]]; then
    fail "$tag $label" "exit $rc, want $want: $(grep -v '^{"time":' "$err" | tail -3 | tr '\n' ' ') (see $out)"
  elif [[ $ok -eq 0 ]]; then
    pass "$tag $label -> exit $want" "$why"
  else
    fail "$tag $label" "exit $rc as expected, but $why (see $out)"
  fi
  inspector_notes "$err"
}
if [[ "$PARTS" == *" inspector "* ]]; then
  step "MCP Inspector CLI: stdio and HTTP, legacy and modern protocol eras"
  t0=$SECONDS
  n=0
  for transport in stdio http; do
    if [[ $transport == stdio ]]; then
      target=(-- "$BIN" --sandbox --sandbox-time-scale "$TIME_SCALE" --log-format json)
    else
      target=("$URL" --transport http)
    fi
    for era in legacy modern; do
      tag="inspector[$transport,$era]"
      inspect "tools/list --strict" 0 "tools-list $EXPECTED_TOOLS" --method tools/list --strict
      inspect "tools/call search_prompts" 0 ok --method tools/call --tool-name search_prompts \
        --tool-args-json '{"query":"cold email"}'
      inspect "tools/call get_prompt" 0 ok --method tools/call --tool-name get_prompt \
        --tool-args-json "{\"prompt_id\":\"$COLD_EMAIL_PROMPT\"}"
      inspect "tools/call get_credits" 0 ok --method tools/call --tool-name get_credits --tool-args-json '{}'
      inspect "tools/call run_prompt (text prompt)" 0 ok --method tools/call --tool-name run_prompt \
        --tool-args-json "{\"prompt_version_id\":\"$COLD_EMAIL_VERSION\",\"inputs\":{\"textInputs\":{\"company_name\":\"Acme\",\"recipient_role\":\"CTO\",\"value_proposition\":\"Builds twice as fast.\"}},\"wait_seconds\":30}"
      run_id="$(node "$E2E_DIR/inspector-output.mjs" "$RESULTS/inspector-$n.out" field run_id)" ||
        run_id=00000000-0000-4000-8000-000000000000 # get_run then fails, as it should
      if [[ $transport == http ]]; then
        inspect "tools/call get_run (the run above)" 0 ok --method tools/call --tool-name get_run \
          --tool-args-json "{\"run_id\":\"$run_id\",\"wait_seconds\":0}"
      else
        # Each stdio invocation spawns a new server with a new sandbox, so the run
        # above is unknown here: expect the "no such run" tool error. (sdk-client.mjs
        # calls get_run on a real run over stdio, within one session.)
        inspect "tools/call get_run (run of another server process)" 5 "is-error No.run.with.id" \
          --method tools/call --tool-name get_run --tool-args-json "{\"run_id\":\"$run_id\",\"wait_seconds\":0}"
      fi
      inspect "tools/call run_prompt (image prompt)" 0 ok --method tools/call --tool-name run_prompt \
        --tool-args-json "{\"prompt_version_id\":\"$IMAGE_VERSION\",\"inputs\":{\"textInputs\":{\"app_concept\":\"a tea timer\",\"style\":\"clay\"}},\"wait_seconds\":60}"
      inspect "tools/call run_prompt (failing prompt)" 5 "is-error fail" --method tools/call --tool-name run_prompt \
        --tool-args-json "{\"prompt_id\":\"$FAILING_PROMPT\",\"inputs\":{\"textInputs\":{\"ticker\":\"ACME\"}},\"wait_seconds\":30}"
    done
  done
  timed inspector "$t0"
fi

# ---- 3. TypeScript SDK client ---------------------------------------------------------
sdk_failures() { # the names of the failed checks in a results file
  node -e 'try{const r=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8"));console.log(r.checks.filter(c=>!c.ok).map(c=>c.name).join("; "))}catch{}' "$1"
}
if [[ "$PARTS" == *" sdk "* ]]; then
  step "TypeScript SDK 1.32.2 client (sdk-client.mjs)"
  t0=$SECONDS
  rc=0
  timeout 240 node "$E2E_DIR/sdk-client.mjs" --transport stdio --bin "$BIN" --time-scale "$TIME_SCALE" \
    --results "$RESULTS/sdk-stdio.json" --server-log "$RESULTS/server-sdk-stdio.log" || rc=$?
  if [[ $rc -eq 0 ]]; then pass "sdk-client stdio"; else fail "sdk-client stdio (exit $rc)" "$(sdk_failures "$RESULTS/sdk-stdio.json")"; fi
  rc=0
  timeout 240 node "$E2E_DIR/sdk-client.mjs" --transport http --url "$URL" --allowed-origin "$BROWSER_ORIGIN" \
    --results "$RESULTS/sdk-http.json" || rc=$?
  if [[ $rc -eq 0 ]]; then pass "sdk-client http"; else fail "sdk-client http (exit $rc)" "$(sdk_failures "$RESULTS/sdk-http.json")"; fi
  timed sdk "$t0"
fi

# ---- 4. confirmation before spending, TypeScript SDK over HTTP --------------------------
# A server of its own: --confirm-above 30 makes every run of the 40-credit cold email ask.
if [[ "$PARTS" == *" sdk "* ]]; then
  step "TypeScript SDK client answers the confirmation (confirm-client.mjs)"
  CPORT="$(free_port)"
  "$BIN" --sandbox --transport http --addr "127.0.0.1:$CPORT" --sandbox-time-scale "$TIME_SCALE" \
    --log-format json --confirm-above 30 </dev/null >/dev/null 2>"$RESULTS/server-confirm.log" &
  CPID=$!
  for _ in $(seq 100); do healthy "http://127.0.0.1:$CPORT/healthz" && break; sleep 0.1; done
  if timeout 120 node "$E2E_DIR/confirm-client.mjs" --url "http://127.0.0.1:$CPORT/mcp" >"$RESULTS/confirm-client.txt" 2>&1; then
    pass "confirm-client http (accept and decline)"
  else
    fail "confirm-client http" "$(grep FAIL "$RESULTS/confirm-client.txt" | head -2)"
  fi
  sed 's/^/    /' "$RESULTS/confirm-client.txt"
  kill "$CPID" 2>/dev/null || true
  wait "$CPID" 2>/dev/null || true
fi

# ---- an agent framework's MCP adapter -----------------------------------------------------
# LangChain's @langchain/mcp-adapters loads the tools over stdio and calls two in the sandbox.
if [[ "$PARTS" == *" framework "* ]]; then
  step "agent framework: LangChain @langchain/mcp-adapters (framework-check.mjs)"
  t0=$SECONDS
  if timeout 120 node "$E2E_DIR/framework-check.mjs" --bin "$BIN" >"$RESULTS/framework.txt" 2>"$RESULTS/framework-server.log"; then
    pass "LangChain MCP adapters: getTools(), search_prompts and run_prompt invoked in the sandbox"
  else
    fail "LangChain MCP adapters" "$(grep -E 'FAIL' "$RESULTS/framework.txt" | head -2 | tr '\n' ' ')"
  fi
  sed 's/^/    /' "$RESULTS/framework.txt"
  timed framework "$t0"
fi

# ---- the run viewer (an MCP App) in headless Chromium ---------------------------------
if [[ "$PARTS" == *" viewer "* ]]; then
  step "run viewer in headless Chromium (viewer-test.mjs, playwright-core)"
  t0=$SECONDS
  CHROMIUM="${CHROMIUM:-$(command -v chromium || true)}"
  if [[ -z "$CHROMIUM" ]]; then
    # Debian's chromium (.ci/run installs it before the tests start).
    sudo=""; [[ "$(id -u)" == 0 ]] || sudo="sudo"
    $sudo sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium' >/dev/null
    CHROMIUM="$(command -v chromium)"
  fi
  if timeout 300 node "$E2E_DIR/viewer-test.mjs" --bin "$BIN" --chromium "$CHROMIUM" --results "$RESULTS/" >"$RESULTS/viewer.txt" 2>&1; then
    pass "run viewer in Chromium (text, image, video, running, injection; screenshots viewer-*.png)"
  else
    fail "run viewer in Chromium" "$(grep -E 'FAIL|viewer:' "$RESULTS/viewer.txt" | head -3)"
  fi
  sed 's/^/    /' "$RESULTS/viewer.txt"
  timed viewer "$t0"
fi

# ---- the HTTP server must still be up and must not have logged errors -----------------
if [[ -n "$SERVER_PID" ]]; then
  if kill -0 "$SERVER_PID" 2>/dev/null; then
    pass "http server still running after all clients"
  else
    fail "http server still running after all clients" "it exited; see $RESULTS/server-http.log"
  fi
  stop_server
  errors="$(grep -c '"level":"ERROR"' "$RESULTS/server-http.log" || true)"
  if [[ "$errors" == 0 ]]; then
    pass "http server logged no ERROR lines"
  else
    fail "http server logged no ERROR lines" "$errors ERROR line(s) in $RESULTS/server-http.log"
    grep '"level":"ERROR"' "$RESULTS/server-http.log" | head -5 | sed 's/^/    | /'
  fi
fi

# ---- summary --------------------------------------------------------------------------
step "summary: ${#PASSED[@]} passed, ${#FAILED[@]} failed in $(( SECONDS - START ))s (${TIMINGS[*]:-})"
echo "results and logs: $RESULTS"
if (( ${#FAILED[@]} )); then
  for f in "${FAILED[@]}"; do echo "  FAIL $f"; done
  echo "node-clients: ${#PASSED[@]} passed, ${#FAILED[@]} failed"
  exit 1
fi
echo "all Node client checks passed"
# The plain closing line CI tools read as a test count.
echo "node-clients: ${#PASSED[@]} passed, ${#FAILED[@]} failed"
