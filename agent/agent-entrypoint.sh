#!/bin/bash
# agent-entrypoint -- runs one Claude Code task inside a claude-runner agent container.
# The full contract is in agent/README.md. In short:
#   inputs  /home/agent/task/prompt.txt            the prompt (fed to claude on stdin)
#           /home/agent/.claude/.credentials.json  OAuth credentials (claudeAiOauth), optional
#           /home/agent/task/secret-env/NAME       one secret env var per file (exported, then
#                                                  the directory is deleted)
#           /home/agent/work/.git                  the repository, cloned by the runner (else
#                                                  cloned here from REPO_URL)
#           /home/agent/task/resume/{session-id,transcript.jsonl}  an earlier session to resume
#                                                  (checked and cleaned first; else a fresh one)
#           env REPO_URL, REPO_BRANCH, CLAUDE_MODEL, CLAUDE_MAX_BUDGET_USD, ANTHROPIC_BASE_URL,
#               AGENT_TRANSCRIPT_MAX_BYTES, AGENT_RESUME_CLEANED, AGENT_MESSAGES, ...
#   outputs /home/agent/out/{stream.jsonl,result.json,diff.patch,changed_files.txt,exit_code,
#           changes.bundle}, /home/agent/out/session/{status.json,id,transcript.jsonl}
#   messages AGENT_MESSAGES=1: further user messages, asked of the gateway while the agent runs,
#           go to the CLI's stdin (stream-json); the run ends once the last one is answered.
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

# Sessions: where the CLI keeps the transcript of a run in $WORK, and what we take back in and
# hand out (docs/claude-cli-contract.md#session-transcripts).
CLAUDE_HOME="$H/.claude"
PROJECT_DIR="$CLAUDE_HOME/projects/-home-agent-work"
RESUME_IN="$TASK/resume"
SESSION_OUT="$OUT/session"
TRANSCRIPT_MAX="${AGENT_TRANSCRIPT_MAX_BYTES:-16777216}"
# 1: the runner cleaned the transcript by the rules below before it put it in (its word, not
# the file's: the earlier agent could write the file, never this container's environment).
RESUME_CLEANED="${AGENT_RESUME_CLEANED:-0}"
UUID_RE='^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'

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

# Resume. The runner put an earlier session's transcript in $RESUME_IN. The file was written
# in an earlier container, so it is data from an agent: bounded, parsed line by line, and only
# the conversation is kept (docs/claude-cli-contract.md#resuming-a-session). Anything off: a
# fresh session, and out/session/status.json says why. The checks run while the relay starts,
# the cleaning then in the background while the repository is checked out; it is finished
# after step 3.
# One jq run, each line parsed once (jq's start and its parse are most of the time it takes):
# each line is checked; kept are user and assistant turns, the attachments the CLI renders as
# user text, and messages queued mid-turn (as user text). Everything else goes: the system
# prompt and tool snapshot, attachments rendered as system turns, bookkeeping. A dropped line
# that had a uuid is remembered as {"__drop": uuid, "p": parent}, so each kept line can be
# linked to its nearest kept ancestor and the chain the CLI walks back from the last turn stays
# whole. At least one user turn, or nothing is kept.
# shellcheck disable=SC2016  # a jq program, not shell
RESUME_CLEAN='
def refuse(why): error("line \(input_line_number): \(why)");
def id: type == "string" and . != "";
def line_kept:
  if . == "" then empty else
  [fromjson?] as $a | if ($a | length) == 0 then refuse("not JSON") else $a[0] end | . as $l
  | if ($l | type) != "object" then refuse("not a JSON object")
    elif ($l | has("__drop")) then refuse("an unknown field __drop")
    elif ($l | has("sessionId")) and $l.sessionId != $sid then refuse("another session id")
    elif ($l | has("cwd")) and $l.cwd != $cwd then refuse("a working directory other than \($cwd)")
    elif ($l | has("uuid")) and ($l.uuid | id | not) then refuse("a uuid that is no string")
    elif $l.parentUuid != null and ($l.parentUuid | id | not) then
      refuse("a parentUuid that is no string")
    elif $l.type == "user" or $l.type == "assistant" then
      if ($l.message | type) != "object" or $l.message.role != $l.type then
        refuse("a \($l.type) turn with another role")
      else $l | del(.rendered, .renderedRole, .attachment) end
    elif $l.type == "attachment" and ($l.attachment | type) == "object"
         and $l.attachment.type == "queued_command" then $l | .renderedRole = "user"
    elif $l.type == "attachment" and $l.renderedRole == "user" then $l
    elif $l | has("uuid") then {__drop: $l.uuid, p: $l.parentUuid}
    else empty end
  end;
[inputs | line_kept] as $lines
| (reduce ($lines[] | select(has("__drop"))) as $x ({}; .[$x.__drop] = $x.p)) as $m
| if any($lines[]; .type == "user") then $lines[] | select(has("__drop") | not)
  else error("holds no user turn to resume") end
| if has("parentUuid") | not then . else
    . as $l
    | [$l.parentUuid, 0]
    | until(.[0] as $p | $p == null or ($m | has($p) | not) or .[1] > 100000;
            [$m[.[0]], .[1] + 1])
    | if .[1] > 100000 then error("a loop in the parent chain") else $l + {parentUuid: .[0]} end
  end'
resume_state=none resume_reason="" resume_id="" resume_kept=0 resume_dropped=0 resume_job=""
resume_refuse() {
    resume_state=refused resume_reason="$1"
    say "resume refused: $1; starting a fresh session"
}
# A regular file (no link) of at most $2 bytes, else a refusal naming it ($3) and the limit ($4).
resume_file_ok() {
    if [ -L "$1" ] || [ ! -f "$1" ]; then
        resume_refuse "$3 is missing or not a regular file"
        return 1
    fi
    local size
    size="$(stat -c %s -- "$1")"
    if [ "$size" -gt "$2" ]; then
        resume_refuse "$3 is $size bytes, over the limit of $2${4:+ ($4)}"
        return 1
    fi
}
# The cleaning, in the background, in folder $1: the cleaned file goes where the CLI looks
# ($2, under a name built from the checked id, nothing there yet), and $1/ok then holds the
# lines kept and left out; else $1/err has the first complaint. jq goes on after an error only
# when it reads line by line (-R without -n): here the first error ends it, and any message
# counts. A transcript the runner cleaned goes there as it is.
resume_clean() {
    local cleaned="$1/linked" kept
    if [ "$RESUME_CLEANED" = 1 ]; then
        cleaned="$RESUME_IN/transcript.jsonl"
    else
        jq -n -R -c --arg sid "$resume_id" --arg cwd "$WORK" "$RESUME_CLEAN" \
            "$RESUME_IN/transcript.jsonl" >"$cleaned" 2>"$1/err" && [ ! -s "$1/err" ] || return
    fi
    if ! { mkdir -p -m 0700 "$PROJECT_DIR" &&
        (set -C && umask 077 && cat "$cleaned" >"$2"); }; then
        echo "could not write $2" >"$1/unwritten"
        return
    fi
    kept="$(wc -l <"$cleaned")"
    if [ "$RESUME_CLEANED" = 1 ]; then
        echo "$kept 0" >"$1/ok"
    else
        echo "$kept $(($(grep -c '' "$RESUME_IN/transcript.jsonl") - kept))" >"$1/ok"
    fi
}
# The checks that need no parsing; then the cleaning starts in the background.
resume_start() {
    [ -e "$RESUME_IN" ] || [ -L "$RESUME_IN" ] || return 0
    if [ -L "$RESUME_IN" ] || [ ! -d "$RESUME_IN" ]; then
        resume_refuse "$RESUME_IN is not a folder"
        return
    fi
    if [ -n "${CLAUDE_CONFIG_DIR:-}" ] && [ "$CLAUDE_CONFIG_DIR" != "$CLAUDE_HOME" ]; then
        resume_refuse "CLAUDE_CONFIG_DIR moves the CLI's sessions away from $CLAUDE_HOME"
        return
    fi
    resume_file_ok "$RESUME_IN/session-id" 64 session-id || return
    resume_id="$(cat -- "$RESUME_IN/session-id")"
    if ! [[ "$resume_id" =~ $UUID_RE ]]; then
        resume_id=""
        resume_refuse "session-id is not a UUID (lower case, 8-4-4-4-12)"
        return
    fi
    resume_file_ok "$RESUME_IN/transcript.jsonl" "$TRANSCRIPT_MAX" transcript.jsonl \
        AGENT_TRANSCRIPT_MAX_BYTES || return
    if [ -L "$CLAUDE_HOME/projects" ] || [ -L "$PROJECT_DIR" ] ||
        [ -e "$PROJECT_DIR/$resume_id.jsonl" ] || [ -L "$PROJECT_DIR/$resume_id.jsonl" ]; then
        resume_refuse "$PROJECT_DIR is not the CLI's own, fresh folder"
        return
    fi
    resume_tmp="$(mktemp -d /tmp/agent-resume.XXXXXX)"
    resume_clean "$resume_tmp" "$PROJECT_DIR/$resume_id.jsonl" &
    resume_job=$!
}
# The cleaning's outcome: resumed, or refused (and nothing left where the CLI looks).
resume_finish() {
    [ -n "$resume_job" ] || return 0
    wait "$resume_job"
    local why
    if [ -f "$resume_tmp/ok" ] && read -r resume_kept resume_dropped <"$resume_tmp/ok"; then
        resume_state=resumed
        say "resuming session $resume_id ($resume_kept lines kept, $resume_dropped left out)"
    elif [ -f "$resume_tmp/unwritten" ]; then
        resume_refuse "$(cat "$resume_tmp/unwritten")"
    else
        why="$(sed -n '1s/^jq: error ([^)]*): //p' "$resume_tmp/err" 2>/dev/null | cut -c 1-200)"
        resume_refuse "transcript.jsonl ${why:-could not be read}"
    fi
    if [ "$resume_state" != resumed ]; then
        rm -f -- "$PROJECT_DIR/$resume_id.jsonl"
        resume_id="" resume_kept=0 resume_dropped=0
    fi
    rm -rf -- "$resume_tmp"
}

mkdir -p "$OUT"
[[ "$TRANSCRIPT_MAX" =~ ^[0-9]{1,15}$ ]] ||
    fail_early 2 "AGENT_TRANSCRIPT_MAX_BYTES is not a number of bytes: $TRANSCRIPT_MAX"
[[ "$RESUME_CLEANED" =~ ^[01]$ ]] ||
    fail_early 2 "AGENT_RESUME_CLEANED is neither 0 nor 1: $RESUME_CLEANED"

# 0. The gateway relay, before anything that could reach out: the task's only way out is the
#    Unix socket its runner mounted; socat makes it a local HTTP endpoint for the CLI
#    (ANTHROPIC_BASE_URL) and an HTTP proxy for everything else (git, npm, pip honour *_proxy).
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
if [ -S "$GATEWAY_SOCKET" ]; then
    if ! [[ "$GATEWAY_PORT" =~ ^[0-9]+$ ]] || [ "$GATEWAY_PORT" -lt 1 ] ||
        [ "$GATEWAY_PORT" -gt 65535 ]; then
        fail_early 4 "AGENT_GATEWAY_PORT is not a port number: $GATEWAY_PORT"
    fi
    socat "TCP-LISTEN:$GATEWAY_PORT,bind=127.0.0.1,fork,reuseaddr,backlog=128,nodelay" \
        "UNIX-CONNECT:$GATEWAY_SOCKET" </dev/null >/dev/null 2>/tmp/gateway-relay.log &
    relay_pid=$!
    resume_start   # its checks while socat starts
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
else
    resume_start
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

export_state=not_reached export_reason="" export_bytes=null
MESSAGES_STATUS=/tmp/agent-messages.json
# out/session/status.json: what became of the resume, the transcript's export and the messages.
session_status_write() {
    local messages='{"state": "off"}'
    [ -s "$MESSAGES_STATUS" ] && messages="$(cat "$MESSAGES_STATUS")"
    mkdir -p "$SESSION_OUT" &&
        jq -n --arg rs "$resume_state" --arg rr "$resume_reason" --arg ri "$resume_id" \
            --argjson rk "$resume_kept" --argjson rd "$resume_dropped" \
            --arg es "$export_state" --arg er "$export_reason" --argjson eb "$export_bytes" \
            --argjson emax "$TRANSCRIPT_MAX" --argjson m "$messages" '
            def opt: if . == "" then null else . end;
            {resume: {state: $rs, reason: ($rr | opt), session_id: ($ri | opt),
                      kept_lines: $rk, dropped_lines: $rd},
             export: {state: $es, reason: ($er | opt), bytes: $eb, max_bytes: $emax},
             messages: $m}' >"$SESSION_OUT/status.json.tmp" &&
        mv -f "$SESSION_OUT/status.json.tmp" "$SESSION_OUT/status.json" ||
        say "could not write $SESSION_OUT/status.json"
}
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
resume_finish
session_status_write

# 3b. Messages while the agent runs (AGENT_MESSAGES=1; agent/README.md, "Messages while
#     running"). The CLI takes user turns on stdin as stream-json lines
#     (docs/claude-cli-contract.md#stream-json-input); a reader writes the prompt as the first
#     line, then asks the task's gateway, through the relay, for the messages after the last it
#     has (a long poll). The run ends when the CLI has answered every line it was given and the
#     gateway, asked once more with final=1, has nothing new: the reader then ends, which
#     closes the CLI's stdin, and the CLI exits after its answer.
MESSAGES_PATH=/_runner/messages
MESSAGES_POLL="${AGENT_MESSAGES_POLL_SECONDS:-25}"
MESSAGES_MAX="${AGENT_MESSAGES_MAX_BYTES:-1048576}"
# One answer line -> "M<TAB>seq<TAB>stream-json user line", "E" (no more messages) or
# "X<TAB>why". Only the text is taken from the gateway: the line itself is built here.
# shellcheck disable=SC2016  # a jq program
MESSAGES_LINE='
if . == "" then empty else
[fromjson?] as $a
| if ($a | length) == 0 or ($a[0] | type) != "object" then "X\tan answer line is not a JSON object"
  else $a[0] as $m
  | if $m.type == "end" then "E"
    elif $m.type != "message" then empty
    elif ($m.seq | type) != "number" or $m.seq != ($m.seq | floor) or $m.seq < 1
         or $m.seq > 9007199254740991 then "X\ta message seq is not a whole number from 1"
    elif ($m.text | type) != "string" or $m.text == "" then "X\ta message text is empty"
    else "M\t\($m.seq)\t\({type: "user", message: {role: "user",
                             content: [{type: "text", text: $m.text}]}} | tojson)"
    end
  end
end'
# The placeholder credential the CLI itself presents (same precedence), for the gateway.
messages_credential() {
    local c="${ANTHROPIC_AUTH_TOKEN:-${ANTHROPIC_API_KEY:-${CLAUDE_CODE_OAUTH_TOKEN:-}}}"
    [ -z "$c" ] && [ -f "$CREDS" ] && c="$(jq -r '.claudeAiOauth.accessToken // empty' "$CREDS")"
    [[ "$c" =~ ^[[:graph:]]+$ ]] && printf '%s' "$c"
}
# One GET through the relay, its whole answer (head and body) into $2. Connection: close, so
# the answer ends where the connection does. Runs as its own process (killed when no longer
# wanted); the credential goes on the socket, never on a command line.
messages_get() {
    exec 3<>"/dev/tcp/127.0.0.1/$GATEWAY_PORT" || exit 1
    printf '%s\r\n' "GET $MESSAGES_PATH?$1 HTTP/1.1" "Host: gateway" \
        "Authorization: Bearer $messages_token" "Accept: application/x-ndjson" \
        "Connection: close" "" >&3 || exit 1
    exec head -c "$((MESSAGES_MAX + 65536))" <&3 >"$2"
}
# The answer in $1: sets answer_status; the body goes to $1.body. 0 = a well-framed answer.
messages_answer() {
    local head length
    answer_status=0
    head="$(sed -n '1,/^\r\{0,1\}$/p' "$1" | tr -d '\r')"
    [[ "$head" =~ ^HTTP/1\.[01]\ ([0-9]{3}) ]] || return 1
    answer_status="${BASH_REMATCH[1]}"
    sed '1,/^\r\{0,1\}$/d' "$1" >"$1.body"
    printf '%s\n' "$head" | grep -qi '^transfer-encoding:' && return 1
    length="$(printf '%s\n' "$head" | sed -n 's/^[Cc]ontent-[Ll]ength: *\([0-9]\{1,12\}\) *$/\1/p')"
    if [ -n "$length" ]; then
        [ "$length" -le "$MESSAGES_MAX" ] && [ "$(stat -c %s "$1.body")" -eq "$length" ]
    else
        [ "$(stat -c %s "$1.body")" -le "$MESSAGES_MAX" ]
    fi
}
# The CLI has answered every line it was given: as many replays of them (--replay-user-messages)
# as lines written, and a result after the last replay. Builtins only: it runs 5 times a second.
messages_answered() {
    local events replays=0 event
    mapfile -t events <"$turns"
    # Counted first: bash 5.2 says "bad array subscript" for the last of no events.
    ((${#events[@]})) && [ "${events[-1]}" = D ] || return 1
    for event in "${events[@]}"; do [ "$event" = R ] && replays=$((replays + 1)); done
    [ "$replays" -ge "$lines_written" ]
}
messages_status() { # state, reason
    jq -n --arg s "$1" --arg r "$2" --argjson d "$((lines_written - 1))" --argjson a "$after" \
        '{state: $s, reason: (if $r == "" then null else $r end), delivered: $d, after: $a}' \
        >"$MESSAGES_STATUS"
}
# stdout: the CLI's stdin. Ends (closing it) when the conversation is over or the channel fails.
messages_reader() {
    local answer final wait pid kind seq line answered t fresh failures=0
    answer="$(mktemp /tmp/agent-messages.XXXXXX)"
    after=0 lines_written=1
    jq -Rs -c '{type: "user", message: {role: "user", content: [{type: "text", text: .}]}}' \
        "$TASK/prompt.txt" || { messages_status error "the prompt could not be sent"; return; }
    while :; do
        final="" wait="$MESSAGES_POLL"
        messages_answered && final=1 wait=0
        : >"$answer"
        messages_get "after=$after&wait=$wait${final:+&final=1}" "$answer" >/dev/null 2>&1 &
        pid=$!
        answered=""
        for ((t = 0; t < (wait + 15) * 5; t++)); do
            kill -0 "$pid" 2>/dev/null || break
            [ -z "$final" ] && messages_answered && answered=1 && break
            sleep 0.2
        done
        if kill "$pid" 2>/dev/null; then
            wait "$pid"
            # Everything was answered while we waited: ask again at once, with final=1.
            [ -n "$answered" ] && continue
            answer_status="no answer within $((wait + 15)) s"
        else
            wait "$pid"
            messages_answer "$answer" || answer_status="a malformed answer (HTTP $answer_status)"
        fi
        case "$answer_status" in
            200)
                fresh=0
                while IFS=$'\t' read -r kind seq line; do
                    case "$kind" in
                        M) if ((seq > after)); then
                               printf '%s\n' "$line" || break 2
                               after="$seq" lines_written=$((lines_written + 1)) fresh=1
                           fi ;;
                        E) messages_status ended "the gateway said no more messages"; break 2 ;;
                        X) messages_status error "gateway answer: $seq"; break 2 ;;
                    esac
                done < <(jq -R -r "$MESSAGES_LINE" "$answer.body")
                # A 200 with nothing new is a gateway out of step: as a failure, not a spin.
                if ((fresh)); then
                    failures=0
                elif (((failures += 1) >= 5)); then
                    messages_status error "the gateway answered 200 with nothing new"
                    break
                else
                    sleep 1
                fi
                ;;
            204) failures=0
                 [ -n "$final" ] && { messages_status closed ""; break; } ;;
            401 | 403 | 404 | 405)
                messages_status unavailable "the gateway answered $answer_status"
                break ;;
            *)  failures=$((failures + 1))
                if ((failures >= 5)); then
                    messages_status error "no answer from the gateway (last: $answer_status)"
                    break
                fi
                sleep 1 ;;
        esac
    done
    rm -f -- "$answer" "$answer.body"
}
messages=""
if [ "${AGENT_MESSAGES:-}" = 1 ]; then
    if [ -z "$gateway" ]; then
        say "AGENT_MESSAGES=1 without the gateway socket: no messages while running"
        jq -n '{state: "unavailable", reason: "no gateway socket", delivered: 0, after: 0}' \
            >"$MESSAGES_STATUS"
    elif ! messages_token="$(messages_credential)"; then
        say "AGENT_MESSAGES=1 without a credential to show the gateway: no messages"
        jq -n '{state: "unavailable", reason: "no credential", delivered: 0, after: 0}' \
            >"$MESSAGES_STATUS"
    elif ! [[ "$MESSAGES_POLL" =~ ^[0-9]{1,4}$ && "$MESSAGES_MAX" =~ ^[0-9]{1,10}$ ]]; then
        fail_early 2 "AGENT_MESSAGES_POLL_SECONDS / AGENT_MESSAGES_MAX_BYTES are not numbers"
    else
        messages=1
    fi
fi

# 4. Run the agent: prompt on stdin, stream-json to stdout and stream.jsonl.
#    With messages: stream-json on stdin too, from the reader, and each line echoed back.
args=(-p --output-format stream-json --verbose --dangerously-skip-permissions)
[ -n "${CLAUDE_MODEL:-}" ] && args+=(--model "$CLAUDE_MODEL")
[ -n "${CLAUDE_MAX_BUDGET_USD:-}" ] && args+=(--max-budget-usd "$CLAUDE_MAX_BUDGET_USD")
[ "$resume_state" = resumed ] && args+=(--resume "$resume_id")
[ -n "$messages" ] && args+=(--input-format stream-json --replay-user-messages)
#    SIGTERM/SIGINT (docker stop, a runner's timeout) are passed on to the agent's whole
#    process group; the results below are still written, so a stopped run has its diff.
fifo="$(mktemp -u /tmp/agent-stream.XXXXXX)"
mkfifo -m 0600 "$fifo"
reader_pid=""
if [ -n "$messages" ]; then
    # The stream also feeds a watcher that notes each replayed input line (R) and each
    # result (D) in $turns, which tells the reader when the CLI has answered everything.
    turns="$(mktemp /tmp/agent-turns.XXXXXX)"
    events="$(mktemp -u /tmp/agent-events.XXXXXX)"
    input="$(mktemp -u /tmp/agent-input.XXXXXX)"
    mkfifo -m 0600 "$events" "$input"
    jq --unbuffered -R -r '[fromjson?] | .[0] | select(type == "object")
        | if .type == "result" then "D" elif .type == "user" and .isReplay == true then "R"
          else empty end' <"$events" >>"$turns" &
    tee -p "$OUT/stream.jsonl" "$events" <"$fifo" &
    tee_pid=$!
    messages_reader >"$input" &
    reader_pid=$!
    setsid claude "${args[@]}" <"$input" >"$fifo" &
else
    tee "$OUT/stream.jsonl" <"$fifo" &
    tee_pid=$!
    setsid claude "${args[@]}" <"$TASK/prompt.txt" >"$fifo" &
fi
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
# The CLI is gone: a reader still asking the gateway has no one to give messages to.
if [ -n "$reader_pid" ] && kill "$reader_pid" 2>/dev/null; then
    wait "$reader_pid" 2>/dev/null
    [ -s "$MESSAGES_STATUS" ] ||
        jq -n --arg r "the agent ended first (exit $rc)" \
            '{state: "agent_ended", reason: $r, delivered: null, after: null}' >"$MESSAGES_STATUS"
fi
# Leftover children of the agent keep the fifo open: end them so tee sees EOF.
kill -TERM -- "-$agent_pid" 2>/dev/null || true
for _ in $(seq 1 50); do kill -0 "$tee_pid" 2>/dev/null || break; sleep 0.1; done
kill -KILL -- "-$agent_pid" 2>/dev/null || true
wait "$tee_pid" 2>/dev/null || true
rm -f "$fifo" ${messages:+"$events" "$input" "$turns"}
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
# 7. The session for the runner, which may resume it in a follow-up: the id of the first
#    session the CLI announced, and its transcript when that is a regular file within
#    AGENT_TRANSCRIPT_MAX_BYTES (docs/claude-cli-contract.md#session-transcripts).
session_export() {
    local id file
    id="$(jq -R -r '[fromjson?] | .[0] | select(type == "object" and .type == "system"
            and .subtype == "init") | .session_id // empty' "$OUT/stream.jsonl" 2>/dev/null |
        head -n 1)"
    if ! [[ "$id" =~ $UUID_RE ]]; then
        export_state=missing export_reason="the agent announced no session id"
        return
    fi
    printf '%s\n' "$id" >"$SESSION_OUT/id"
    file="$PROJECT_DIR/$id.jsonl"
    if [ -n "${CLAUDE_CONFIG_DIR:-}" ] && [ "$CLAUDE_CONFIG_DIR" != "$CLAUDE_HOME" ]; then
        export_state=missing export_reason="CLAUDE_CONFIG_DIR moved the CLI's sessions"
    elif [ -L "$CLAUDE_HOME/projects" ] || [ -L "$PROJECT_DIR" ] || [ -L "$file" ] ||
        [ ! -f "$file" ]; then
        export_state=missing export_reason="no transcript file for session $id"
    elif [ "$(stat -c %s -- "$file")" -gt "$TRANSCRIPT_MAX" ]; then
        export_bytes="$(stat -c %s -- "$file")"
        export_state=too_large
        export_reason="the transcript is $export_bytes bytes, over AGENT_TRANSCRIPT_MAX_BYTES"
        say "transcript not exported: $export_reason ($TRANSCRIPT_MAX)"
    else
        head -c "$TRANSCRIPT_MAX" -- "$file" >"$SESSION_OUT/transcript.jsonl"
        export_bytes="$(stat -c %s "$SESSION_OUT/transcript.jsonl")"
        export_state=exported
    fi
}
mkdir -p "$SESSION_OUT"
session_export
session_status_write
finish "$rc"
