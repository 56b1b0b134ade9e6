#!/usr/bin/env bash
# CI: prove the production agent images build from their Dockerfiles and carry a working real
# Claude Code CLI, without a container registry. The only difference from real use is the base
# image, passed as --build-arg BASE_IMAGE=...:
#
#   minimal    agent/Dockerfile on the offline Debian bookworm (claude-runner-base:bookworm)
#              plus Node.js and npm from Debian; in real use node from Docker Hub.
#   universal  agent/Dockerfile.universal on the offline Debian trixie (claude-runner-base:trixie,
#              what debian:trixie-slim is); every toolchain answers its version check.
#
#   scripts/check-production-agent-image.sh [minimal|universal|all]     (default: minimal)
#
# The builds' RUN steps fetch Debian packages and the npm package, so they use the host's
# network (--network host: the project's engine has no bridge). Needs root, like the builder.
# AGENT_DIR overrides the folder with the Dockerfiles (to try a change before it lands).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
AGENT_DIR="${AGENT_DIR:-$HERE/../agent}"
CLI_VERSION="${CLAUDE_CODE_VERSION:-2.1.332}"
export DOCKER_BUILDKIT=0   # classic builder, as build-agent-images.sh
log() { echo "check-production-agent-image: $*" >&2; }

if [ -z "${DOCKER_HOST:-}" ]; then
  eval "$("$HERE/docker-engine.sh" env)"
  export DOCKER_HOST
fi

context="$(mktemp -d)"
trap 'rm -rf "$context"' EXIT

# The Dockerfile must take its base as a build argument declared before FROM.
require_base_arg() {
  local dockerfile="$1" default="$2"
  if ! grep -Eq '^ARG BASE_IMAGE(=|$)' "$dockerfile" \
    || ! grep -Eq '^FROM \$\{?BASE_IMAGE\}?' "$dockerfile"; then
    log "$dockerfile does not take a BASE_IMAGE build argument. It needs, in place of"
    log "its FROM line:  ARG BASE_IMAGE=$default  then  FROM \${BASE_IMAGE}"
    exit 1
  fi
}

# with_host_ca BASE IMAGE [APT_PACKAGES...]: IMAGE = BASE + the packages + the host's CA bundle
# for npm, so npm inside the build trusts what the host trusts (a TLS-inspecting proxy on a CI
# machine); in real use the base's own CAs do.
with_host_ca() {
  local base="$1" image="$2"
  shift 2
  rm -rf "${context:?}"/*
  cp /etc/ssl/certs/ca-certificates.crt "$context/host-ca-certificates.crt"
  {
    echo "FROM $base"
    if [ $# -gt 0 ]; then
      echo "RUN apt-get update \\"
      echo " && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $* \\"
      echo " && rm -rf /var/lib/apt/lists/*"
    fi
    echo "COPY host-ca-certificates.crt /etc/ssl/certs/host-ca-certificates.crt"
    echo "RUN echo cafile=/etc/ssl/certs/host-ca-certificates.crt >> /etc/npmrc"
    echo "LABEL app=claude-runner"
  } >"$context/Dockerfile"
  docker build --force-rm --network host -q -t "$image" "$context" >/dev/null
}

# build IMAGE DOCKERFILE BASE: the Dockerfile as in real use, but on BASE.
build() {
  local image="$1" dockerfile="$2" base="$3" build_log
  log "building $image from ${dockerfile#"$AGENT_DIR"/} with BASE_IMAGE=$base"
  build_log="$(mktemp)"
  if ! docker build --force-rm --network host --build-arg "BASE_IMAGE=$base" \
    --build-arg "CLAUDE_CODE_VERSION=$CLI_VERSION" -t "$image" -f "$dockerfile" \
    "$AGENT_DIR" >"$build_log" 2>&1; then
    tail -n 40 "$build_log" >&2
    rm -f "$build_log"
    exit 1
  fi
  rm -f "$build_log"
}

# The real CLI's version check, with no network at all; then the entrypoint and user the
# runner relies on (agent/README.md).
check_contract() {
  local image="$1" version user
  version="$(docker run --rm --network none --entrypoint claude "$image" --version)"
  case "$version" in
    "$CLI_VERSION (Claude Code)"*) log "claude --version: $version" ;;
    *)
      log "unexpected claude --version output: $version"
      exit 1
      ;;
  esac
  user="$(docker run --rm --network none --entrypoint id "$image" -u)"
  [ "$user" = 1000 ] || { log "the image runs as uid $user, not 1000"; exit 1; }
  docker run --rm --network none --entrypoint test "$image" -x /usr/local/bin/agent-entrypoint \
    || { log "no executable /usr/local/bin/agent-entrypoint in $image"; exit 1; }
}

check_minimal() {
  local offline_base="claude-runner-base:bookworm" node_base="claude-runner-node:bookworm"
  local image="claude-runner-agent:production-check"
  docker image inspect "$offline_base" >/dev/null 2>&1 || "$HERE/build-agent-images.sh" base
  require_base_arg "$AGENT_DIR/Dockerfile" node:20-bookworm-slim
  # Node.js and npm on the offline base: what the node image gives in real use.
  log "building $node_base from $offline_base (Debian's nodejs and npm)"
  with_host_ca "$offline_base" "$node_base" nodejs npm
  build "$image" "$AGENT_DIR/Dockerfile" "$node_base"
  check_contract "$image"
  log "$image: built from agent/Dockerfile, real CLI $CLI_VERSION answers"
}

# One command a tool of the universal image; each must succeed with no network at all.
UNIVERSAL_TOOLS=(
  "python3 --version" "python3 -m pip --version" "python3 -m venv --help"
  "node --version" "npm --version"
  "gcc --version" "g++ --version" "make --version" "pkg-config --version"
  "go version" "java -version" "javac -version"
  "rg --version" "curl --version" "jq --version" "zip -v" "unzip -v" "sqlite3 --version"
  "git --version" "socat -V"
)

check_universal() {
  local trixie="claude-runner-base:trixie" base="claude-runner-base:trixie-hostca"
  local image="claude-runner-agent:production-check-universal" script tool
  docker image inspect "$trixie" >/dev/null 2>&1 || "$HERE/build-agent-images.sh" trixie
  require_base_arg "$AGENT_DIR/Dockerfile.universal" debian:trixie-slim
  with_host_ca "$trixie" "$base"
  build "$image" "$AGENT_DIR/Dockerfile.universal" "$base"
  check_contract "$image"
  script='failed=0
for tool in "$@"; do
  if out="$($tool 2>&1 </dev/null)"; then
    printf "  %-26s %s\n" "$tool" "$(printf "%s\n" "$out" | grep -m 1 .)"
  else
    printf "  %-26s FAILED: %s\n" "$tool" "$(printf "%s\n" "$out" | tail -n 1)"
    failed=1
  fi
done
exit "$failed"'
  if ! docker run --rm --network none --read-only --tmpfs /tmp --entrypoint bash "$image" \
    -c "$script" tools "${UNIVERSAL_TOOLS[@]}" >&2; then
    log "$image: a toolchain does not answer (above)"
    exit 1
  fi
  log "$image: built from agent/Dockerfile.universal, every toolchain and real CLI" \
    "$CLI_VERSION answer; $(docker image inspect -f '{{.Size}}' "$image" |
      awk '{ printf "%.2f GB", $1 / 1e9 }')"
}

# Old builds of the checked images left untagged by this one; an hour old at least, because the
# intermediate images of a build running beside this one are untagged too.
prune_dangling() {
  docker image prune -f --filter "label=app=claude-runner" --filter until=1h >/dev/null 2>&1 \
    || true
}

case "${1:-minimal}" in
  minimal) check_minimal ;;
  universal) check_universal ;;
  all)
    check_minimal
    check_universal
    ;;
  *)
    echo "usage: $0 [minimal|universal|all]" >&2
    exit 2
    ;;
esac
prune_dangling
