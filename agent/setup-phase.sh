#!/bin/bash
# setup-phase -- the setup phase of a task with an environment (README "Environments"). The
# runner puts this file in /home/agent/task/ and runs it instead of the image's entrypoint, in a
# container hardened like the agent's, before the agent's own container:
#   inputs  /home/agent/task/setup.sh          the environment's setup or maintenance script
#           /home/agent/task/secret-env/NAME   one setup secret per file (exported, then deleted);
#                                              none on a checkout holding an agent's commits
#           /home/agent/work/.git              a fresh clone (setup), or
#           /home/agent/next/.git              the task's clone, to check out onto the snapshot
#                                              already in /home/agent (maintenance)
#   gateway /run/claude-runner-gateway/gateway.sock, the setup's own gateway (its egress rules;
#           no model API credential), relayed to 127.0.0.1:$AGENT_GATEWAY_PORT as the proxy.
#   exit    the script's exit code; 4 = no gateway; 3 = the checkout failed.
# The runner keeps /home/agent (but task/ and out/) as the snapshot the agent starts from.
set -uo pipefail

H=/home/agent
TASK="$H/task"
WORK="$H/work"
NEXT="$H/next"
SECRETS="$TASK/secret-env"
GATEWAY_SOCKET=/run/claude-runner-gateway/gateway.sock
GATEWAY_PORT="${AGENT_GATEWAY_PORT:-8080}"

say() { echo "[setup] $*" >&2; }

if [ ! -S "$GATEWAY_SOCKET" ]; then
    say "the gateway socket $GATEWAY_SOCKET is not there"
    exit 4
fi
socat "TCP-LISTEN:$GATEWAY_PORT,bind=127.0.0.1,fork,reuseaddr,backlog=128,nodelay" \
    "UNIX-CONNECT:$GATEWAY_SOCKET" </dev/null >/dev/null 2>/tmp/gateway-relay.log &
hex="$(printf '0100007F:%04X' "$GATEWAY_PORT")"
for ((tries = 0; tries < 200; tries++)); do
    awk -v a="$hex" '$2 == a && $4 == "0A" { f = 1 } END { exit !f }' /proc/net/tcp && break
    sleep 0.01
done
url="http://127.0.0.1:$GATEWAY_PORT"
export HTTPS_PROXY="$url" HTTP_PROXY="$url" https_proxy="$url" http_proxy="$url"
export NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost

# Setup secrets: into this shell's environment only; the files go first.
if [ -d "$SECRETS" ]; then
    for f in "$SECRETS"/*; do
        [ -f "$f" ] || continue
        name="${f##*/}"
        [[ "$name" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || continue
        value="$(cat -- "$f"; printf x)"
        export "$name=${value%x}"
    done
    unset f name value
fi
cp -- "$TASK/setup.sh" /tmp/setup.sh || exit 2
rm -rf -- "$TASK"

# The checkout: a fresh clone's files, or the task's commit onto the snapshot's tree (files
# the repository ignores, such as installed dependencies, stay).
if [ -d "$NEXT/.git" ]; then
    if [ -f "$WORK/.git/index" ]; then
        mv -f -- "$WORK/.git/index" "$NEXT/.git/index"
    fi
    rm -rf -- "$WORK/.git" && mkdir -p -- "$WORK" && mv -- "$NEXT/.git" "$WORK/.git" &&
        rmdir -- "$NEXT" && git -C "$WORK" reset --quiet --hard ||
        { say "could not check the task's commit out onto the snapshot"; exit 3; }
    say "checked out $(git -C "$WORK" rev-parse --short HEAD) onto the cached environment"
elif [ -d "$WORK/.git" ] && [ -z "$(git -C "$WORK" ls-files 2>/dev/null | head -c 1)" ]; then
    git -C "$WORK" reset --quiet --hard || { say "could not check out the repository"; exit 3; }
fi
cd "$WORK" || exit 3
# The output, bounded here (a flood costs the worker nothing): the first MAX bytes as they
# come (dd writes each byte at once: head would hold them in its stdio buffer, and dd with
# larger blocks counts each short read from the pipe as a block), then only the
# last MAX bytes, after a note.
MAX="${AGENT_SETUP_LOG_MAX_BYTES:-262144}"
[[ "$MAX" =~ ^[0-9]{1,12}$ ]] || MAX=262144
{ bash /tmp/setup.sh </dev/null 2>&1; echo "$?" >/tmp/setup.code; } |
    { dd count="$MAX" bs=1 status=none; tail -c "$MAX" >/tmp/setup.tail; }
code="$(cat /tmp/setup.code 2>/dev/null || echo 1)"
if [ -s /tmp/setup.tail ]; then
    echo
    say "the output was over $MAX bytes: what came between its first and its last $MAX bytes was left out"
    cat /tmp/setup.tail
fi
rm -f /tmp/setup.sh /tmp/setup.tail /tmp/setup.code
say "the script exited with code $code"
exit "$code"
