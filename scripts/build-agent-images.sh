#!/usr/bin/env bash
# Build the claude-runner agent images locally, without any container registry.
#
#   scripts/build-agent-images.sh [base|test|probe|cli|all]     (default: all)
#
#   base  claude-runner-base:bookworm   debootstrap --variant=minbase bookworm (+git,
#                                       ca-certificates, jq, socat), imported with
#                                       `docker import`
#   test  claude-runner-agent:test      base + agent/agent-entrypoint.sh + FAKE claude
#                                       (agent/test/fake-claude.sh)
#   probe claude-runner-agent:probe     test + a hostile PROBE in place of claude
#                                       (agent/test/probe.sh): hunts secrets, tries the network
#   cli   claude-runner-agent:2.1.332   base + the REAL Claude Code native binary from the
#                                       npm package @anthropic-ai/claude-code-linux-x64
#
# Idempotent and cached: the root file system tarball and the npm tarball are kept in
# ${CLAUDE_RUNNER_CACHE:-/var/cache/claude-runner}; an image is rebuilt only when its
# inputs (files under agent/, version) changed (label claude-runner.inputs).
# Uses DOCKER_HOST if set, else the private engine of scripts/docker-engine.sh (started
# if needed). Every image carries the label app=claude-runner. Needs root.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
AGENT="$REPO/agent"
CACHE="${CLAUDE_RUNNER_CACHE:-/var/cache/claude-runner}"
SUITE=bookworm
BASE_IMAGE="claude-runner-base:$SUITE"
# Other names for the test images (parallel checkouts with different agent/ on one engine).
TEST_IMAGE="${CLAUDE_RUNNER_TEST_IMAGE:-claude-runner-agent:test}"
PROBE_IMAGE="${CLAUDE_RUNNER_PROBE_IMAGE:-claude-runner-agent:probe}"
CLI_VERSION="${CLAUDE_CODE_VERSION:-2.1.332}"
CLI_IMAGE="${CLAUDE_RUNNER_CLI_IMAGE:-claude-runner-agent:$CLI_VERSION}"
# socat: the relay from 127.0.0.1:$AGENT_GATEWAY_PORT to the task's gateway socket (debootstrap
# resolves its libraries: libwrap0, libnsl2, libtirpc3, Kerberos).
INCLUDE="git,ca-certificates,jq,socat"
export DOCKER_BUILDKIT=0   # classic builder: no buildx plugin, no registry look-ups

now() { date +%s.%N; }
T0="$(now)"
took() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f s", b - a }'; }
log() { echo "build-agent-images: $*" >&2; }

ensure_engine() {
    if [ -z "${DOCKER_HOST:-}" ]; then
        eval "$("$HERE/docker-engine.sh" env)"
        export DOCKER_HOST
    fi
    if ! timeout 10 docker version >/dev/null 2>&1; then
        "$HERE/docker-engine.sh" start >/dev/null
    fi
}

# docker build, its output kept in the cache and shown only on failure.
quiet_build() {
    if ! docker build "$@" >"$CACHE/docker-build.log" 2>&1; then
        tail -n 40 "$CACHE/docker-build.log" >&2
        exit 1
    fi
}

image_exists() { docker image inspect "$1" >/dev/null 2>&1; }

image_label() {
    docker image inspect -f "{{ index .Config.Labels \"$2\" }}" "$1" 2>/dev/null || true
}

# The Debian mirror the host's apt uses (deb822 *.sources or one-line *.list files).
debian_mirror() {
    local f uri
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        uri="$(awk '
            /^[[:space:]]*$/ { if (u != "" && s ~ /(^| )'"$SUITE"'( |$)/) { print u; exit } u = ""; s = "" }
            /^URIs:/ { u = $2 }
            /^Suites:/ { $1 = ""; s = $0 " " }
            END { if (u != "" && s ~ /(^| )'"$SUITE"'( |$)/) print u }' "$f" | head -n1)"
        [ -n "$uri" ] && { echo "$uri"; return; }
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        uri="$(awk -v s="$SUITE" '$1 == "deb" && $3 == s { print $2; exit }' "$f")"
        [ -n "$uri" ] && { echo "$uri"; return; }
    done
    echo "http://deb.debian.org/debian"
}

BASE_CHECKED=""
build_base() {
    local t rootfs_tar root mirror
    t="$(now)"
    [ -n "$BASE_CHECKED" ] && return
    BASE_CHECKED=1
    if [ "$(image_label "$BASE_IMAGE" claude-runner.include)" = "$INCLUDE" ]; then
        log "base: $BASE_IMAGE exists, skipped"
        return
    fi
    rootfs_tar="$CACHE/rootfs-$SUITE-minbase-$(echo "$INCLUDE" | tr ',' '_').tar"
    if [ ! -f "$rootfs_tar" ]; then
        command -v debootstrap >/dev/null || {
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
        }
        mirror="$(debian_mirror)"
        root="$CACHE/rootfs-build"
        rm -rf "$root"
        mkdir -p "$root"
        log "base: debootstrap --variant=minbase --include=$INCLUDE $SUITE from $mirror"
        debootstrap --variant=minbase --include="$INCLUDE" "$SUITE" "$root" "$mirror" \
            >"$CACHE/debootstrap.log" 2>&1 || {
            tail -n 30 "$CACHE/debootstrap.log" >&2
            exit 1
        }
        # Slim it: no apt lists or package cache, no docs/man pages.
        rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin \
            "$root"/var/cache/apt/archives/*.deb "$root"/usr/share/doc/* \
            "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/var/log/*.log
        tar --numeric-owner -C "$root" -cf "$rootfs_tar.partial" .
        mv "$rootfs_tar.partial" "$rootfs_tar"
        rm -rf "$root"
        log "base: rootfs cached at $rootfs_tar ($(du -h "$rootfs_tar" | cut -f1))"
    fi
    docker import \
        --change 'LABEL app=claude-runner' \
        --change "LABEL claude-runner.include=$INCLUDE" \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV LANG=C.UTF-8' \
        --change 'CMD ["/bin/bash"]' \
        "$rootfs_tar" "$BASE_IMAGE" >/dev/null
    log "base: $BASE_IMAGE imported in $(took "$t")"
}

# inputs_hash FILE... : one hash over the contents of the given files + the versions.
inputs_hash() {
    { cat "$@"; echo "$CLI_VERSION"; docker image inspect -f '{{.Id}}' "$BASE_IMAGE"; } |
        sha256sum | cut -c1-16
}

build_test() {
    local t ctx h
    t="$(now)"
    build_base
    h="$(inputs_hash "$AGENT/Dockerfile.test" "$AGENT/agent-entrypoint.sh" \
        "$AGENT/setup-agent-home.sh" "$AGENT/test/fake-claude.sh")"
    if [ "$(image_label "$TEST_IMAGE" claude-runner.inputs)" = "$h" ]; then
        log "test: $TEST_IMAGE up to date, skipped"
        return
    fi
    ctx="$(mktemp -d)"
    cp "$AGENT/Dockerfile.test" "$AGENT/agent-entrypoint.sh" "$AGENT/setup-agent-home.sh" \
        "$AGENT/test/fake-claude.sh" "$ctx/"
    chmod 0755 "$ctx"/*.sh   # COPY keeps the mode; a RUN chmod would duplicate the layer
    quiet_build --label "claude-runner.inputs=$h" -t "$TEST_IMAGE" \
        -f "$ctx/Dockerfile.test" "$ctx"
    rm -rf "$ctx"
    log "test: $TEST_IMAGE built in $(took "$t")"
}

build_probe() {
    local t ctx h
    t="$(now)"
    build_test
    h="$( { cat "$AGENT/Dockerfile.probe" "$AGENT/test/probe.sh"
        docker image inspect -f '{{.Id}}' "$TEST_IMAGE"; } | sha256sum | cut -c1-16)"
    if [ "$(image_label "$PROBE_IMAGE" claude-runner.inputs)" = "$h" ]; then
        log "probe: $PROBE_IMAGE up to date, skipped"
        return
    fi
    ctx="$(mktemp -d)"
    cp "$AGENT/Dockerfile.probe" "$AGENT/test/probe.sh" "$ctx/"
    chmod 0755 "$ctx"/*.sh
    quiet_build --label "claude-runner.inputs=$h" -t "$PROBE_IMAGE" \
        --build-arg "TEST_IMAGE=$TEST_IMAGE" -f "$ctx/Dockerfile.probe" "$ctx"
    rm -rf "$ctx"
    log "probe: $PROBE_IMAGE built in $(took "$t")"
}

build_cli() {
    local t ctx h tgz bin
    t="$(now)"
    build_base
    h="$(inputs_hash "$AGENT/Dockerfile.offline" "$AGENT/agent-entrypoint.sh" \
        "$AGENT/setup-agent-home.sh")"
    if [ "$(image_label "$CLI_IMAGE" claude-runner.inputs)" = "$h" ]; then
        log "cli: $CLI_IMAGE up to date, skipped"
        return
    fi
    mkdir -p "$CACHE/npm"
    tgz="$CACHE/npm/anthropic-ai-claude-code-linux-x64-$CLI_VERSION.tgz"
    if [ ! -f "$tgz" ]; then
        log "cli: npm pack @anthropic-ai/claude-code-linux-x64@$CLI_VERSION"
        (cd "$CACHE/npm" && npm pack --silent "@anthropic-ai/claude-code-linux-x64@$CLI_VERSION" \
            >/dev/null)
    fi
    bin="$CACHE/claude-$CLI_VERSION-linux-x64"
    if [ ! -x "$bin" ]; then
        tar -xzf "$tgz" -O package/claude >"$bin.partial"
        chmod 0755 "$bin.partial"
        mv "$bin.partial" "$bin"
    fi
    # Keep the build context on the same file system as the cache (hard link, no copy).
    ctx="$CACHE/cli-context"
    rm -rf "$ctx"
    mkdir -p "$ctx"
    ln "$bin" "$ctx/claude" 2>/dev/null || cp "$bin" "$ctx/claude"
    cp "$AGENT/Dockerfile.offline" "$AGENT/agent-entrypoint.sh" "$AGENT/setup-agent-home.sh" \
        "$ctx/"
    chmod 0755 "$ctx"/*.sh   # COPY keeps the mode; a RUN chmod would duplicate the layer
    quiet_build --label "claude-runner.inputs=$h" \
        --label "claude-runner.claude-code-version=$CLI_VERSION" \
        -t "$CLI_IMAGE" -f "$ctx/Dockerfile.offline" "$ctx"
    rm -rf "$ctx"
    local v
    v="$(docker run --rm --network none --entrypoint claude "$CLI_IMAGE" --version)"
    log "cli: $CLI_IMAGE built in $(took "$t"); claude --version: $v"
    case "$v" in
        "$CLI_VERSION (Claude Code)"*) ;;
        *)
            log "cli: unexpected version output"
            exit 1
            ;;
    esac
}

# Old builds of our images left untagged by a rebuild.
prune_dangling() {
    docker image prune -f --filter "label=app=claude-runner" >/dev/null 2>&1 || true
}

mkdir -p "$CACHE"
ensure_engine
what="${1:-all}"
case "$what" in
    base) build_base ;;
    test) build_test ;;
    probe) build_probe ;;
    cli) build_cli ;;
    all)
        build_base
        build_test
        build_probe
        build_cli
        ;;
    *)
        echo "usage: $0 [base|test|probe|cli|all]" >&2
        exit 2
        ;;
esac
prune_dangling
log "$what done in $(took "$T0")"
