#!/bin/sh
# FAKE `claude` for the claude-runner-agent:test image (sh + jq). NOT Claude Code.
# Called like the real CLI: claude -p [flags...] [PROMPT]; without a PROMPT argument the
# prompt is read from stdin. Runs in the repository (cwd). What it does, in order:
#  1. Checks auth exactly as given to it; on a problem prints an is_error result and exits 1:
#     - OAuth: $HOME/.claude/.credentials.json ($CLAUDE_CONFIG_DIR if set) must be
#       {"claudeAiOauth": {...}} with a non-empty accessToken, scopes containing
#       user:inference, and refreshToken empty or absent.  (CLAUDE_CODE_OAUTH_TOKEN also
#       counts as OAuth, source "env".)
#     - API key: ANTHROPIC_API_KEY set and no credentials file.
#     - both an API key and OAuth: error "both API key and OAuth given"; neither: "Not logged in".
#  2. Writes /home/agent/out/auth-report.json: {"method": "oauth"|"api_key", "source",
#     "token_sha256", "refresh_token_present", "expires_at", "scopes", "env_names"}
#     (never the token itself; env_names = names of all env vars, no values).
#  3. One turn per prompt: SLEEP:<n> first (sleep n seconds); prints stream-json lines
#     system/init, assistant, result.
#  4. Changes the repo: AGENT_NOTES.md = the prompt (later turns append theirs); DELETE:<path>
#     removes <path>; MODIFY:<path> appends a line to <path>. PRINT_SECRET prints the token /
#     API key in an assistant message (to test log redaction). FAIL: result is_error true, exit 1
#     (after making the changes). REPORT_AUTH: the result text is the auth report (JSON).
#     REPORT_SESSION: the result text is {"session_id", "resumed", "earlier_user_turns"}.
#     LIMIT_WORDING:<n>: stop as an older CLI did at a usage limit, with wording n (1-5:
#     "Claude AI usage limit reached|<epoch>" as a short success, "5-hour limit reached ∙ resets
#     2am", "Weekly limit reached · resets ...", "You've hit your session limit · resets ...",
#     "You've hit your monthly spend limit"), text only: no rate_limit_event.
#  PROMPT AS SCRIPT: a prompt whose first line is "#!/bin/sh" runs, after the auth report, as a
#     shell script in the repository with the agent's environment: its output is the agent's
#     output and its exit code the agent's. The hostile agent of the tests: what a prompt, or a
#     repository's files, could talk a real agent into doing.
#  Sessions, like the real CLI: each turn appends a user and an assistant line to
#  ~/.claude/projects/<cwd, / as ->/<session id>.jsonl. The id is fake-<time>-<pid>, or a UUID
#  when the prompt says SESSION_UUID; --resume <id> continues that session (its file must be
#  there, else "No conversation found", exit 1) and reports how many user turns it had.
#  --input-format stream-json: user turns come as stream-json lines on stdin, one turn each
#  ("You said: <text>" is echoed in an assistant line), until stdin closes;
#  --replay-user-messages echoes each input line first, with "isReplay": true.
set -u

OUTDIR="${FAKE_CLAUDE_OUT:-/home/agent/out}"
CONFIG="${CLAUDE_CONFIG_DIR:-$HOME/.claude}"
CREDS="$CONFIG/.credentials.json"
START_MS="$(date +%s%3N)"

prompt=""
resume=""
input_format=text
replay=""
while [ $# -gt 0 ]; do
    case "$1" in
        -p | --print | --verbose | --dangerously-skip-permissions) ;;
        --version) echo "0.0.0-fake (Fake Claude Code)"; exit 0 ;;
        --replay-user-messages) replay=1 ;;
        --resume) shift; resume="${1:-}" ;;
        --input-format) shift; input_format="${1:-}" ;;
        --output-format | --model | --max-budget-usd) shift ;;
        -*) ;;
        *) prompt="$1" ;;
    esac
    shift
done
# The first user turn: the argument, the whole of stdin, or the first stream-json user line.
first_line=""
if [ -z "$prompt" ] && [ "$input_format" = stream-json ]; then
    while IFS= read -r first_line; do
        [ "$(printf '%s' "$first_line" | jq -r '.type? // empty' 2>/dev/null)" = user ] && break
    done
    prompt="$(printf '%s' "$first_line" | jq -r '.message.content |
        if type == "string" then . else map(select(.type == "text") | .text) | join("\n") end')"
elif [ -z "$prompt" ]; then
    prompt="$(cat)"
fi

if [ -n "$resume" ]; then
    SESSION="$resume"
elif printf '%s' "$prompt" | grep -q SESSION_UUID; then
    SESSION="$(cat /proc/sys/kernel/random/uuid)"
else
    SESSION="fake-$(date +%s)-$$"
fi
TRANSCRIPT="$CONFIG/projects/$(pwd | sed 's#[^A-Za-z0-9]#-#g')/$SESSION.jsonl"

emit_result() { # $1 = is_error (true|false), $2 = text
    jq -cn --argjson e "$1" --arg r "$2" --arg s "$SESSION" \
        --argjson d "$(($(date +%s%3N) - START_MS))" \
        '{type: "result", subtype: "success", is_error: $e, result: $r, session_id: $s,
          num_turns: 1, duration_ms: $d, total_cost_usd: 0,
          usage: {input_tokens: 1, output_tokens: 1}}'
}
die() { emit_result true "$1"; echo "fake-claude: $1" >&2; exit 1; }
has() { printf '%s' "$prompt" | grep -q -- "$1"; }
args_of() { printf '%s' "$prompt" | grep -o -- "$1:[^[:space:]]*" | cut -d: -f2-; }

# 1. auth
api_key="${ANTHROPIC_API_KEY:-}"
if [ -n "$api_key" ] && { [ -e "$CREDS" ] || [ -n "${CLAUDE_CODE_OAUTH_TOKEN:-}" ]; }; then
    die "both API key and OAuth given"
fi
refresh_present=false
expires_at=null
scopes='[]'
if [ -e "$CREDS" ]; then
    method=oauth
    source="credentials_file"
    jq -e '.claudeAiOauth | type == "object"' "$CREDS" >/dev/null 2>&1 ||
        die "credentials file is not in the claudeAiOauth format"
    token="$(jq -r '.claudeAiOauth.accessToken // ""' "$CREDS")"
    [ -n "$token" ] || die "credentials file has no accessToken"
    scopes="$(jq -c '.claudeAiOauth.scopes // []' "$CREDS")"
    printf '%s' "$scopes" | jq -e 'index("user:inference") != null' >/dev/null ||
        die "scopes do not include user:inference"
    if [ -n "$(jq -r '.claudeAiOauth.refreshToken // ""' "$CREDS")" ]; then
        refresh_present=true
        die "refreshToken is present (the container must not be able to refresh)"
    fi
    expires_at="$(jq -c '.claudeAiOauth.expiresAt // null' "$CREDS")"
elif [ -n "${CLAUDE_CODE_OAUTH_TOKEN:-}" ]; then
    method=oauth
    source="env"
    token="$CLAUDE_CODE_OAUTH_TOKEN"
    scopes='["user:inference"]'
elif [ -n "$api_key" ]; then
    method=api_key
    source="env"
    token="$api_key"
else
    die "Not logged in · Please run /login"
fi

# 2. auth report
mkdir -p "$OUTDIR"
jq -n --arg m "$method" --arg src "$source" \
    --arg h "$(printf '%s' "$token" | sha256sum | cut -d' ' -f1)" \
    --argjson r "$refresh_present" --argjson x "$expires_at" --argjson s "$scopes" \
    '{method: $m, source: $src, token_sha256: $h, refresh_token_present: $r,
      expires_at: $x, scopes: $s, env_names: (env | keys | sort)}' \
    >"$OUTDIR/auth-report.json"

# The prompt as the exploit: the hostile agent.
case "$prompt" in
    '#!/bin/sh'*) exec sh -c "$prompt" prompt-as-script ;;
esac

# The session so far.
earlier=0
if [ -n "$resume" ]; then
    [ -f "$TRANSCRIPT" ] || die "No conversation found with session ID: $resume"
    earlier="$(grep -c '"type":"user"' "$TRANSCRIPT")"
fi
mkdir -p "$(dirname "$TRANSCRIPT")"
parent="$(tail -n 1 "$TRANSCRIPT" 2>/dev/null | jq -r '.uuid // empty' 2>/dev/null)"
remember() { # $1 = user|assistant, $2 = text
    u="$(cat /proc/sys/kernel/random/uuid)"
    jq -cn --arg t "$1" --arg x "$2" --arg s "$SESSION" --arg c "$(pwd)" --arg u "$u" \
        --arg p "$parent" '{type: $t, message: {role: $t, content: [{type: "text", text: $x}]},
          sessionId: $s, cwd: $c, uuid: $u, parentUuid: (if $p == "" then null else $p end)}' \
        >>"$TRANSCRIPT"
    parent="$u"
}

assistant() {
    jq -cn --arg t "$1" --arg s "$SESSION" \
        '{type: "assistant", session_id: $s, message: {id: "msg_fake", type: "message",
          role: "assistant", model: "fake-claude", content: [{type: "text", text: $t}],
          stop_reason: null, usage: {input_tokens: 1, output_tokens: 1}}}'
}

replay_line() { # $1 = the input line as given
    [ -n "$replay" ] && [ -n "$1" ] || return 0
    printf '%s' "$1" | jq -c --arg s "$SESSION" '. + {session_id: $s, isReplay: true}'
}

# 3.-4. One turn for $prompt ($1: its stream-json input line, replayed after the init line);
# returns the result's exit code (LIMIT_WORDING exits at once).
turns=0
turn() {
    turns=$((turns + 1))
    for n in $(args_of SLEEP); do sleep "$n"; done
    jq -cn --arg s "$SESSION" --arg c "$(pwd)" \
        --arg k "$([ "$method" = api_key ] && echo ANTHROPIC_API_KEY || echo none)" \
        '{type: "system", subtype: "init", session_id: $s, cwd: $c, model: "fake-claude",
          apiKeySource: $k, claude_code_version: "0.0.0-fake", tools: [], permissionMode:
          "bypassPermissions"}'
    replay_line "${1:-}"
    assistant "Working on it (fake, $method)."
    [ -n "$resume" ] && [ "$turns" = 1 ] &&
        assistant "Resumed session $SESSION with $earlier earlier user turns."
    [ "$input_format" = stream-json ] && assistant "You said: $prompt"
    has PRINT_SECRET && assistant "secret: $token"
    remember user "$prompt"
    remember assistant "You said: $prompt"

    if [ "$turns" = 1 ]; then
        printf '%s\n' "$prompt" >AGENT_NOTES.md
    else
        printf '%s\n' "$prompt" >>AGENT_NOTES.md
    fi
    for p in $(args_of DELETE); do rm -f -- "$p"; done
    for p in $(args_of MODIFY); do echo "modified by fake-claude" >>"$p"; done

    # LIMIT_WORDING: older CLIs reported a usage limit only in the result text.
    for n in $(args_of LIMIT_WORDING); do
        case "$n" in
            1) emit_result false "Claude AI usage limit reached|$(($(date +%s) + 3600))"; exit 0 ;;
            2) emit_result true "5-hour limit reached ∙ resets 2am" ;;
            3) emit_result true "Weekly limit reached · resets Mon 9am" ;;
            4) emit_result true "You've hit your session limit · resets 11pm" ;;
            *) emit_result true "You've hit your monthly spend limit" ;;
        esac
        exit 1
    done

    if has FAIL; then
        emit_result true "fake failure requested (FAIL)"
        return 1
    fi
    # REPORT_AUTH / REPORT_SESSION: the result text is a report a runner's test can read back.
    if has REPORT_AUTH; then
        emit_result false "$(jq -c . "$OUTDIR/auth-report.json")"
    elif has REPORT_SESSION; then
        emit_result false "$(jq -cn --arg s "$SESSION" --argjson r "$([ -n "$resume" ] &&
            echo true || echo false)" --argjson e "$earlier" \
            '{session_id: $s, resumed: $r, earlier_user_turns: $e}')"
    else
        emit_result false "done (fake)"
    fi
}

if [ "$input_format" != stream-json ]; then
    turn
    exit $?
fi
[ -n "$first_line" ] || exit 0
turn "$first_line"
rc=$?
while IFS= read -r line; do
    [ "$(printf '%s' "$line" | jq -r '.type? // empty' 2>/dev/null)" = user ] || continue
    prompt="$(printf '%s' "$line" | jq -r '.message.content |
        if type == "string" then . else map(select(.type == "text") | .text) | join("\n") end')"
    turn "$line"
    rc=$?
done
exit "$rc"
