#!/usr/bin/env bash
# CI: prove agent/Dockerfile (the production agent image) builds and carries a working real
# Claude Code CLI, without a registry. The only difference from real use is the base image:
# here an offline Debian bookworm (claude-runner-base:bookworm from build-agent-images.sh) plus
# Node.js and npm from Debian, passed as --build-arg BASE_IMAGE=...; in real use the Dockerfile's
# default base (node from Docker Hub).
#
#   scripts/check-production-agent-image.sh        (after scripts/build-agent-images.sh base)
#
# The build's RUN steps fetch Debian packages and the npm package, so they use the host's
# network (--network host: the project's engine has no bridge). Needs root, like the builder.
# AGENT_DIR overrides the folder with the Dockerfile (to try a change before it lands).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
AGENT_DIR="${AGENT_DIR:-$HERE/../agent}"
CLI_VERSION="${CLAUDE_CODE_VERSION:-2.1.332}"
OFFLINE_BASE="claude-runner-base:bookworm"
NODE_BASE="claude-runner-node:bookworm"
IMAGE="claude-runner-agent:production-check"
export DOCKER_BUILDKIT=0   # classic builder, as build-agent-images.sh
log() { echo "check-production-agent-image: $*" >&2; }

if [ -z "${DOCKER_HOST:-}" ]; then
  eval "$("$HERE/docker-engine.sh" env)"
  export DOCKER_HOST
fi
docker image inspect "$OFFLINE_BASE" >/dev/null 2>&1 || "$HERE/build-agent-images.sh" base

# The Dockerfile must take its base as a build argument declared before FROM.
if ! grep -Eq '^ARG BASE_IMAGE(=|$)' "$AGENT_DIR/Dockerfile" \
  || ! grep -Eq '^FROM \$\{?BASE_IMAGE\}?' "$AGENT_DIR/Dockerfile"; then
  log "agent/Dockerfile does not take a BASE_IMAGE build argument. It needs, in place of"
  log "its FROM line:  ARG BASE_IMAGE=node:20-bookworm-slim  then  FROM \${BASE_IMAGE}"
  exit 1
fi

# Node.js and npm on the offline base: what the node image gives in real use. The host's CA
# bundle goes in too, so npm inside the build trusts what the host trusts (a TLS-inspecting
# proxy on a CI machine); in real use the node image's own CAs do.
log "building $NODE_BASE from $OFFLINE_BASE (Debian's nodejs and npm)"
context="$(mktemp -d)"
trap 'rm -rf "$context"' EXIT
cp /etc/ssl/certs/ca-certificates.crt "$context/host-ca-certificates.crt"
cat >"$context/Dockerfile" <<DOCKERFILE
FROM $OFFLINE_BASE
RUN apt-get update \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nodejs npm \\
 && rm -rf /var/lib/apt/lists/*
COPY host-ca-certificates.crt /etc/ssl/certs/host-ca-certificates.crt
RUN echo cafile=/etc/ssl/certs/host-ca-certificates.crt >> /etc/npmrc
LABEL app=claude-runner
DOCKERFILE
docker build --network host -q -t "$NODE_BASE" "$context" >/dev/null

log "building $IMAGE from agent/Dockerfile with BASE_IMAGE=$NODE_BASE"
build_log="$(mktemp)"
if ! docker build --network host --build-arg "BASE_IMAGE=$NODE_BASE" \
  --build-arg "CLAUDE_CODE_VERSION=$CLI_VERSION" -t "$IMAGE" -f "$AGENT_DIR/Dockerfile" \
  "$AGENT_DIR" >"$build_log" 2>&1; then
  tail -n 40 "$build_log" >&2
  rm -f "$build_log"
  exit 1
fi
rm -f "$build_log"

# The real CLI's version check, with no network at all; then the entrypoint and user the
# runner relies on (agent/README.md).
version="$(docker run --rm --network none --entrypoint claude "$IMAGE" --version)"
case "$version" in
  "$CLI_VERSION (Claude Code)"*) log "claude --version: $version" ;;
  *)
    log "unexpected claude --version output: $version"
    exit 1
    ;;
esac
user="$(docker run --rm --network none --entrypoint id "$IMAGE" -u)"
[ "$user" = 1000 ] || { log "the image runs as uid $user, not 1000"; exit 1; }
docker run --rm --network none --entrypoint test "$IMAGE" -x /usr/local/bin/agent-entrypoint \
  || { log "no executable /usr/local/bin/agent-entrypoint in $IMAGE"; exit 1; }
log "$IMAGE: built from agent/Dockerfile, real CLI $CLI_VERSION answers"
