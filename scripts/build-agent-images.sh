#!/usr/bin/env bash
# Build the claude-runner agent images locally, without any container registry.
#
#   scripts/build-agent-images.sh [base|test|probe|cli|trixie|universal|all]  (default: all)
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
#   trixie claude-runner-base:trixie    debootstrap --variant=minbase trixie (what debian:trixie-slim
#                                       is; the base CI builds agent/Dockerfile.universal on)
#   universal claude-runner-agent:universal-2.1.332
#                                       trixie + apt-get install of agent/universal-packages.txt
#                                       (Python, Node.js, C/C++, Go, a JDK, ripgrep, ...) + the
#                                       real CLI; prints its size. Not part of `all`: a cold
#                                       build downloads about 500 MB of packages.
#
# Idempotent and cached: the root file system tarballs and the npm tarball are kept in
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
# The universal image: Debian's current stable release (the newest the mirror serves as one).
UNIVERSAL_SUITE=trixie
TRIXIE_IMAGE="claude-runner-base:$UNIVERSAL_SUITE"
UNIVERSAL_BASE="claude-runner-base:$UNIVERSAL_SUITE-universal"
UNIVERSAL_IMAGE="${CLAUDE_RUNNER_UNIVERSAL_IMAGE:-claude-runner-agent:universal-$CLI_VERSION}"
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
    if ! docker build --force-rm "$@" >"$CACHE/docker-build.log" 2>&1; then
        tail -n 40 "$CACHE/docker-build.log" >&2
        exit 1
    fi
}

image_exists() { docker image inspect "$1" >/dev/null 2>&1; }

image_label() {
    docker image inspect -f "{{ index .Config.Labels \"$2\" }}" "$1" 2>/dev/null || true
}

# apt_uri DEFAULT SUITE...: the URI of the host's first apt entry (deb822 *.sources or one-line
# *.list files) that serves one of the suites; DEFAULT when none does.
apt_uri() {
    local default="$1" f uri suite
    shift
    for suite in "$@"; do
        for f in /etc/apt/sources.list.d/*.sources; do
            [ -f "$f" ] || continue
            uri="$(awk -v want="$suite" '
                function hit() { n = split(s, a, " "); for (i = 1; i <= n; i++) if (a[i] == want) return 1; return 0 }
                /^[[:space:]]*$/ { if (u != "" && hit()) { print u; exit } u = ""; s = "" }
                /^URIs:/ { u = $2 }
                /^Suites:/ { $1 = ""; s = $0 }
                END { if (u != "" && hit()) print u }' "$f" | head -n1)"
            [ -n "$uri" ] && { echo "$uri"; return; }
        done
        for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
            [ -f "$f" ] || continue
            uri="$(awk -v s="$suite" '$1 == "deb" && $3 == s { print $2; exit }' "$f")"
            [ -n "$uri" ] && { echo "$uri"; return; }
        done
    done
    echo "$default"
}

# debootstrap_into ROOT SUITE [INCLUDE]: a minbase Debian SUITE in ROOT, from the host's mirror
# (the one it uses for SUITE, else the one it uses for $SUITE).
debootstrap_into() {
    local root="$1" suite="$2" include="${3:-}" mirror
    command -v debootstrap >/dev/null || {
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
    }
    mirror="$(apt_uri http://deb.debian.org/debian "$suite" "$SUITE")"
    log "debootstrap --variant=minbase${include:+ --include=$include} $suite from $mirror"
    debootstrap --variant=minbase ${include:+"--include=$include"} "$suite" "$root" "$mirror" \
        >"$CACHE/debootstrap-$suite.log" 2>&1 || {
        tail -n 30 "$CACHE/debootstrap-$suite.log" >&2
        rm -rf "$root"
        exit 1
    }
}

# root_to_tar ROOT TAR: slim ROOT (no apt lists or package cache, no docs/man pages), pack it
# as TAR (written whole or not at all), remove ROOT.
root_to_tar() {
    local root="$1" tar="$2"
    rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin \
        "$root"/var/cache/apt/archives/*.deb "$root"/usr/share/doc/* \
        "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/var/log/*.log
    tar --numeric-owner -C "$root" -cf "$tar.partial" .
    mv "$tar.partial" "$tar"
    rm -rf "$root"
    log "rootfs cached at $tar ($(du -h "$tar" | cut -f1))"
}

# import_rootfs TAR IMAGE INCLUDE: `docker import` with the settings every base image has.
import_rootfs() {
    docker import \
        --change 'LABEL app=claude-runner' \
        --change "LABEL claude-runner.include=$3" \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV LANG=C.UTF-8' \
        --change 'CMD ["/bin/bash"]' \
        "$1" "$2" >/dev/null
}

BASE_CHECKED=""
build_base() {
    local t rootfs_tar root
    t="$(now)"
    [ -n "$BASE_CHECKED" ] && return
    BASE_CHECKED=1
    if [ "$(image_label "$BASE_IMAGE" claude-runner.include)" = "$INCLUDE" ]; then
        log "base: $BASE_IMAGE exists, skipped"
        return
    fi
    rootfs_tar="$CACHE/rootfs-$SUITE-minbase-$(echo "$INCLUDE" | tr ',' '_').tar"
    if [ ! -f "$rootfs_tar" ]; then
        root="$(mktemp -d "$CACHE/rootfs-build.XXXXXX")"
        debootstrap_into "$root" "$SUITE" "$INCLUDE"
        root_to_tar "$root" "$rootfs_tar"
    fi
    import_rootfs "$rootfs_tar" "$BASE_IMAGE" "$INCLUDE"
    log "base: $BASE_IMAGE imported in $(took "$t")"
}

# The packages of the universal image (agent/universal-packages.txt without comments), one a line.
universal_packages() {
    sed -e 's/#.*//' -e 's/[[:space:]]//g' "$AGENT/universal-packages.txt" | awk 'NF'
}

# The plain trixie root, with the apt sources a Debian image has (release, updates, security).
TRIXIE_TAR="$CACHE/rootfs-$UNIVERSAL_SUITE-minbase.tar"
rootfs_trixie() {
    local root mirror security t
    [ -f "$TRIXIE_TAR" ] && return
    t="$(now)"
    root="$(mktemp -d "$CACHE/rootfs-build.XXXXXX")"
    debootstrap_into "$root" "$UNIVERSAL_SUITE"
    mirror="$(apt_uri http://deb.debian.org/debian "$UNIVERSAL_SUITE" "$SUITE")"
    security="$(apt_uri http://deb.debian.org/debian-security \
        "$UNIVERSAL_SUITE-security" "$SUITE-security")"
    rm -f "$root/etc/apt/sources.list"
    cat >"$root/etc/apt/sources.list.d/debian.sources" <<SOURCES
Types: deb
URIs: $mirror
Suites: $UNIVERSAL_SUITE $UNIVERSAL_SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $security
Suites: $UNIVERSAL_SUITE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
    : >"$root/etc/resolv.conf"   # the engine provides one in each container
    root_to_tar "$root" "$TRIXIE_TAR"
    log "trixie: root file system made in $(took "$t")"
}

build_trixie() {
    local t
    t="$(now)"
    if [ "$(image_label "$TRIXIE_IMAGE" claude-runner.include)" = minbase ]; then
        log "trixie: $TRIXIE_IMAGE exists, skipped"
        return
    fi
    rootfs_trixie
    import_rootfs "$TRIXIE_TAR" "$TRIXIE_IMAGE" minbase
    log "trixie: $TRIXIE_IMAGE imported in $(took "$t")"
}

# The universal root: the trixie root + apt-get install of the package list, in a chroot. apt
# runs in a mount namespace of its own: the /proc it needs (the JDK's setup runs java) goes
# away with it, whatever happens.
rootfs_universal() {
    local tar="$1" root t
    [ -f "$tar" ] && return
    rootfs_trixie
    t="$(now)"
    root="$(mktemp -d "$CACHE/rootfs-build.XXXXXX")"
    tar -C "$root" -xf "$TRIXIE_TAR"
    cp -L /etc/resolv.conf "$root/etc/resolv.conf"
    log "universal: apt-get install $(universal_packages | wc -l) packages into $UNIVERSAL_SUITE"
    # shellcheck disable=SC2016,SC2046  # the inner script's own variables; one word a package
    if ! unshare --mount --propagation private sh -euc '
        root="$1"
        shift
        mount -t proc proc "$root/proc"
        chroot "$root" /usr/bin/env DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8 sh -euc \
            "apt-get update -qq && apt-get install -y -qq --no-install-recommends \"\$@\"" \
            apt "$@"' sh "$root" $(universal_packages) >"$CACHE/apt-universal.log" 2>&1; then
        tail -n 30 "$CACHE/apt-universal.log" >&2
        rm -rf "$root"
        exit 1
    fi
    : >"$root/etc/resolv.conf"
    rm -f "$CACHE"/rootfs-"$UNIVERSAL_SUITE"-universal-*.tar   # an older package list
    root_to_tar "$root" "$tar"
    log "universal: packages installed in $(took "$t")"
}

build_universal_base() {
    local t h tar
    t="$(now)"
    h="$( { echo "$UNIVERSAL_SUITE"; universal_packages; } | sha256sum | cut -c1-16)"
    if [ "$(image_label "$UNIVERSAL_BASE" claude-runner.include)" = "$h" ]; then
        log "universal: $UNIVERSAL_BASE exists, skipped"
        return
    fi
    tar="$CACHE/rootfs-$UNIVERSAL_SUITE-universal-$h.tar"
    rootfs_universal "$tar"
    t="$(now)"
    import_rootfs "$tar" "$UNIVERSAL_BASE" "$h"
    log "universal: $UNIVERSAL_BASE imported in $(took "$t")"
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

# The real CLI's native binary (from the npm package, both cached); prints its path.
cli_binary() {
    local tgz bin
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
    echo "$bin"
}

# build_with_cli IMAGE HASH DOCKERFILE FILE...: IMAGE from DOCKERFILE, its context the real CLI
# as `claude` and the given files of agent/; then the CLI's version check in it.
build_with_cli() {
    local image="$1" h="$2" dockerfile="$3" ctx bin v
    shift 3
    bin="$(cli_binary)"
    # Keep the build context on the same file system as the cache (hard link, no copy).
    ctx="$(mktemp -d "$CACHE/cli-context.XXXXXX")"
    ln "$bin" "$ctx/claude" 2>/dev/null || cp "$bin" "$ctx/claude"
    cp "$dockerfile" "$@" "$ctx/"
    chmod 0755 "$ctx"/*.sh   # COPY keeps the mode; a RUN chmod would duplicate the layer
    quiet_build --label "claude-runner.inputs=$h" \
        --label "claude-runner.claude-code-version=$CLI_VERSION" \
        -t "$image" -f "$ctx/$(basename "$dockerfile")" "$ctx"
    rm -rf "$ctx"
    v="$(docker run --rm --network none --entrypoint claude "$image" --version)"
    log "$image: claude --version: $v"
    case "$v" in
        "$CLI_VERSION (Claude Code)"*) ;;
        *)
            log "unexpected version output from $image"
            exit 1
            ;;
    esac
}

build_cli() {
    local t h
    t="$(now)"
    build_base
    h="$(inputs_hash "$AGENT/Dockerfile.offline" "$AGENT/agent-entrypoint.sh" \
        "$AGENT/setup-agent-home.sh")"
    if [ "$(image_label "$CLI_IMAGE" claude-runner.inputs)" = "$h" ]; then
        log "cli: $CLI_IMAGE up to date, skipped"
        return
    fi
    build_with_cli "$CLI_IMAGE" "$h" "$AGENT/Dockerfile.offline" "$AGENT/agent-entrypoint.sh" \
        "$AGENT/setup-agent-home.sh"
    log "cli: $CLI_IMAGE built in $(took "$t")"
}

UNIVERSAL_FILES=(Dockerfile.universal-offline agent-entrypoint.sh setup-agent-home.sh
    universal-bash-env.sh)
build_universal() {
    local t h
    t="$(now)"
    build_universal_base
    h="$( { cat "${UNIVERSAL_FILES[@]/#/$AGENT/}"; echo "$CLI_VERSION"
        docker image inspect -f '{{.Id}}' "$UNIVERSAL_BASE"; } | sha256sum | cut -c1-16)"
    if [ "$(image_label "$UNIVERSAL_IMAGE" claude-runner.inputs)" = "$h" ]; then
        log "universal: $UNIVERSAL_IMAGE up to date, skipped"
    else
        build_with_cli "$UNIVERSAL_IMAGE" "$h" "${UNIVERSAL_FILES[@]/#/$AGENT/}"
        log "universal: $UNIVERSAL_IMAGE built in $(took "$t")"
    fi
    log "universal: $UNIVERSAL_IMAGE is $(docker image inspect -f '{{.Size}}' "$UNIVERSAL_IMAGE" |
        awk '{ printf "%.2f GB (%d bytes)", $1 / 1e9, $1 }')"
}

# Old builds of our images left untagged by a rebuild; an hour old at least, because the
# intermediate images of a build running beside this one are untagged too.
prune_dangling() {
    docker image prune -f --filter "label=app=claude-runner" --filter until=1h >/dev/null 2>&1 ||
        true
}

mkdir -p "$CACHE"
ensure_engine   # before the lock: an engine started here must not inherit it
# One build at a time on this machine (test workers ask for the same images at once): the
# next one waits, then finds the images up to date.
exec 9>"$CACHE/build.lock"
if ! flock -n 9; then
    log "waiting for another build of the agent images to finish"
    flock 9
fi
# Temporary roots and build contexts: a killed build's are removed by the next one (the lock
# says none is in use), this one's on exit, however it ends.
rm -rf "$CACHE"/rootfs-build.* "$CACHE"/cli-context.*
trap 'rm -rf "$CACHE"/rootfs-build.* "$CACHE"/cli-context.*' EXIT
what="${1:-all}"
case "$what" in
    base) build_base ;;
    test) build_test ;;
    probe) build_probe ;;
    cli) build_cli ;;
    trixie) build_trixie ;;
    universal) build_universal ;;
    all)
        build_base
        build_test
        build_probe
        build_cli
        ;;
    *)
        echo "usage: $0 [base|test|probe|cli|trixie|universal|all]" >&2
        exit 2
        ;;
esac
prune_dangling
log "$what done in $(took "$T0")"
