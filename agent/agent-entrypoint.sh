#!/bin/bash
# agent-entrypoint -- runs one Claude Code task inside a claude-runner agent container.
# The full contract is in agent/README.md. In short:
#   inputs  /home/agent/task/prompt.txt            the prompt (fed to claude on stdin)
#           /home/agent/.claude/.credentials.json  OAuth credentials (claudeAiOauth), optional
#           /home/agent/task/secret-env/NAME       one secret env var per file (exported, then
#                                                  the directory is deleted)
#           /home/agent/work/.git                  the repository, cloned by the runner (else
#                                                  cloned here from REPO_URL)
#           env REPO_URL, REPO_BRANCH, CLAUDE_MODEL, CLAUDE_MAX_BUDGET_USD, ANTHROPIC_BASE_URL, ...
#   outputs /home/agent/out/{stream.jsonl,result.json,diff.patch,changed_files.txt,exit_code,
#           changes.bundle}
#   exit    the agent's exit code; 2 = bad input (before the agent ran); 3 = clone failed
#   SIGTERM (docker stop) is passed on to the agent; outputs are still written.
#   gateway /run/claude-runner-gateway/gateway.sock, when mounted: the only way out of the
#           container (model API and egress proxy); relayed to 127.0.0.1:$AGENT_GATEWAY_PORT.
set -uo pipefail

H=/home/agent
TASK="$H/task"
OUT="$H/out"
WORK="$H/work"
SECRETS="$TASK/secret-env"
CREDS="${CLAUDE_CONFIG_DIR:-$H/.claude}/.credentials.json"
EMPTY_TREE=4b825dc642cb6eb9a060e54bf8d69288fbee4904

GATEWAY_SOCKET=/run/claude-runner-gateway/gateway.sock
GATEWAY_PORT="${AGENT_GATEWAY_PORT:-8080}"

say() { echo "agent-entrypoint: $*" >&2; }

finish() {
    echo "$1" >"$OUT/exit_code"
    exit "$1"
}

# An error before the agent ran: stderr, a result line (stdout + result.json), exit code.
fail_early() {
    local code="$1" msg="$2"
    say "$msg"
    jq -cn --arg m "$msg" --argjson c "$code" \
        '{type: "result", subtype: "entrypoint_error", is_error: true, result: $m,
          entrypoint_exit_code: $c}' | tee "$OUT/result.json"
    finish "$code"
}

# 0. The gateway relay, before anything else runs: the task's only way out is the Unix socket
#    its runner mounted; socat makes it a local HTTP endpoint for the CLI (ANTHROPIC_BASE_URL)
#    and an HTTP proxy for everything else (git, npm, pip honour *_proxy).
gateway_listening() {
    # LISTEN (0A) on 127.0.0.1:port in /proc/net/tcp; asking by connecting would open a
    # connection to the gateway.
    local hex
    hex="$(printf '0100007F:%04X' "$GATEWAY_PORT")"
    awk -v a="$hex" '$2 == a && $4 == "0A" { found = 1 } END { exit !found }' /proc/net/tcp
}
gateway_env() {
    local url="http://127.0.0.1:$GATEWAY_PORT"
    export ANTHROPIC_BASE_URL="$url"
    export HTTPS_PROXY="$url" HTTP_PROXY="$url" https_proxy="$url" http_proxy="$url"
    export NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost
    export CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1
}
gateway=""
mkdir -p "$OUT"
if [ -S "$GATEWAY_SOCKET" ]; then
    if ! [[ "$GATEWAY_PORT" =~ ^[0-9]+$ ]] || [ "$GATEWAY_PORT" -lt 1 ] ||
        [ "$GATEWAY_PORT" -gt 65535 ]; then
        fail_early 4 "AGENT_GATEWAY_PORT is not a port number: $GATEWAY_PORT"
    fi
    socat "TCP-LISTEN:$GATEWAY_PORT,bind=127.0.0.1,fork,reuseaddr,backlog=128" \
        "UNIX-CONNECT:$GATEWAY_SOCKET" </dev/null >/dev/null 2>/tmp/gateway-relay.log &
    relay_pid=$!
    for ((tries = 0; tries < 200; tries++)); do   # up to about 2 s
        gateway_listening && break
        kill -0 "$relay_pid" 2>/dev/null || break
        sleep 0.01
    done
    if ! gateway_listening; then
        cat /tmp/gateway-relay.log >&2 2>/dev/null
        fail_early 4 "the gateway relay did not start on 127.0.0.1:$GATEWAY_PORT"
    fi
    gateway=1
    gateway_env
elif [ "${AGENT_GATEWAY_REQUIRED:-}" = 1 ]; then
    # The runner started a gateway but its socket is not here: e.g. a remote Docker engine,
    # where the bind mount names a folder on the engine's host, not the worker's.
    fail_early 4 "the gateway socket $GATEWAY_SOCKET is not there; the socket folder must be on the Docker engine's host"
fi

# URL without user:password@ (for messages).
redact_url() { printf '%s' "$1" | sed -E 's#://[^/@]*@#://***@#'; }

# 1. Secret environment: one file per variable, exact content; then remove the files.
if [ -d "$SECRETS" ]; then
    for f in "$SECRETS"/* "$SECRETS"/.[!.]*; do
        [ -f "$f" ] || continue
        name="${f##*/}"
        if [[ "$name" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]]; then
            value="$(cat -- "$f"; printf x)"   # keep trailing newlines exactly
            export "$name=${value%x}"
        else
            say "ignoring secret-env file with invalid variable name: $name"
        fi
    done
    rm -rf -- "$SECRETS" 2>/dev/null || true
    if [ -e "$SECRETS" ]; then
        # Not removable (e.g. put there owned by root): at least empty what we can.
        find "$SECRETS" -type f -exec rm -f {} + 2>/dev/null || true
        say "warning: could not remove $SECRETS (owner must be uid 1000)"
    fi
    unset f name value
fi
# The gateway's addresses win over anything the inputs set.
[ -n "$gateway" ] && gateway_env

# 2. Inputs.
[ -r "$TASK/prompt.txt" ] || fail_early 2 "missing $TASK/prompt.txt"
# An API key silently beats OAuth in the CLI: refuse the mix instead of guessing.
if { [ -e "$CREDS" ] || [ -n "${CLAUDE_CODE_OAUTH_TOKEN:-}" ]; } &&
    [ -n "${ANTHROPIC_API_KEY:-}${ANTHROPIC_AUTH_TOKEN:-}" ]; then
    fail_early 2 "both API key and OAuth given"
fi

# 3. The repository. The runner clones it on the worker and puts the working tree (with its
#    .git) in $WORK before start, so the container needs no network or token for git;
#    without one (the image on its own, older runners) it is cloned here from REPO_URL.
if [ -d "$WORK/.git" ]; then
    say "using the repository the runner put in $WORK"
    # The runner copies .git only: check the files out (there are none yet to lose).
    if git -C "$WORK" rev-parse -q --verify HEAD >/dev/null &&
        [ -z "$(git -C "$WORK" ls-files 2>/dev/null | head -c 1)" ]; then
        git -C "$WORK" reset --quiet --hard || fail_early 3 "could not check out the repository"
    fi
else
    [ -n "${REPO_URL:-}" ] || fail_early 2 "REPO_URL is not set and no repository was given"
    clone_args=()
    case "$REPO_URL" in
        https://* | http://*) clone_args+=(--depth 1) ;;
    esac
    [ -n "${REPO_BRANCH:-}" ] && clone_args+=(--branch "$REPO_BRANCH")
    rm -rf "$WORK"
    if ! git clone --quiet "${clone_args[@]}" -- "$REPO_URL" "$WORK" 2>"$OUT/clone.log"; then
        sed -E 's#://[^/@]*@#://***@#g' "$OUT/clone.log" >&2
        rm -f "$OUT/clone.log"
        fail_early 3 "git clone failed: $(redact_url "$REPO_URL")${REPO_BRANCH:+ (branch $REPO_BRANCH)}"
    fi
    rm -f "$OUT/clone.log"
fi
cd "$WORK" || fail_early 3 "clone produced no $WORK"
base_rev="$(git rev-parse --verify -q HEAD || echo "$EMPTY_TREE")"

# 4. Run the agent: prompt on stdin, stream-json to stdout and stream.jsonl.
args=(-p --output-format stream-json --verbose --dangerously-skip-permissions)
[ -n "${CLAUDE_MODEL:-}" ] && args+=(--model "$CLAUDE_MODEL")
[ -n "${CLAUDE_MAX_BUDGET_USD:-}" ] && args+=(--max-budget-usd "$CLAUDE_MAX_BUDGET_USD")
#    SIGTERM/SIGINT (docker stop, a runner's timeout) are passed on to the agent's whole
#    process group; the results below are still written, so a stopped run has its diff.
fifo="$(mktemp -u /tmp/agent-stream.XXXXXX)"
mkfifo -m 0600 "$fifo"
tee "$OUT/stream.jsonl" <"$fifo" &
tee_pid=$!
setsid claude "${args[@]}" <"$TASK/prompt.txt" >"$fifo" &
agent_pid=$!
stopping=""
# shellcheck disable=SC2317  # called by the trap
on_signal() {
    stopping=1
    say "got a stop signal; stopping the agent"
    kill -TERM -- "-$agent_pid" 2>/dev/null || kill -TERM "$agent_pid" 2>/dev/null || true
}
trap on_signal TERM INT
while :; do
    wait "$agent_pid"
    rc=$?
    kill -0 "$agent_pid" 2>/dev/null || break   # a trap interrupted wait: wait again
done
trap - TERM INT
# Leftover children of the agent keep the fifo open: end them so tee sees EOF.
kill -TERM -- "-$agent_pid" 2>/dev/null || true
for _ in $(seq 1 50); do kill -0 "$tee_pid" 2>/dev/null || break; sleep 0.1; done
kill -KILL -- "-$agent_pid" 2>/dev/null || true
wait "$tee_pid" 2>/dev/null || true
rm -f "$fifo"
[ -n "$stopping" ] && say "agent stopped (exit $rc)"

# 5. Results: last result line, the diff against the cloned revision (also covers commits
#    the agent made), changed files.
jq -R -c 'fromjson? | select(type == "object" and .type == "result")' "$OUT/stream.jsonl" \
    2>/dev/null | tail -n 1 >"$OUT/result.json.tmp"
if [ -s "$OUT/result.json.tmp" ]; then
    mv "$OUT/result.json.tmp" "$OUT/result.json"
else
    rm -f "$OUT/result.json.tmp"
fi
git add -A >/dev/null 2>&1 || say "git add -A failed"
git diff --cached --binary "$base_rev" >"$OUT/diff.patch" || say "git diff failed"
git diff --cached --name-status "$base_rev" >"$OUT/changed_files.txt" || true
# 6. The agent's commits as a git bundle (the runner pushes them for a pull request): what it
#    changed and did not commit is committed first, with the prompt's first line as subject.
#    No hooks run: the repository's files are the agent's, the commit is ours.
if [ "$base_rev" != "$EMPTY_TREE" ]; then
    if ! git diff --cached --quiet 2>/dev/null; then
        subject="$(grep -m 1 -v '^[[:space:]]*$' "$TASK/prompt.txt" | cut -c 1-72)"
        git -c core.hooksPath=/dev/null commit --quiet --no-verify \
            -m "${subject:-Changes made by Claude Runner}" -m "Made by Claude Runner." \
            >/dev/null 2>&1 || say "git commit failed"
    fi
    if [ "$(git rev-parse HEAD 2>/dev/null)" != "$base_rev" ]; then
        git bundle create --quiet "$OUT/changes.bundle" "$base_rev..HEAD" 2>/dev/null ||
            say "git bundle failed"
    fi
fi
finish "$rc"
