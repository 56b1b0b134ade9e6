#!/usr/bin/env bash
# Start/stop a private Docker engine for claude-runner (tests and local development).
#
#   scripts/docker-engine.sh start   # install docker.io if missing, start dockerd, print the socket
#   scripts/docker-engine.sh stop    # stop it (pidfile)
#   scripts/docker-engine.sh status  # exit 0 iff the engine answers
#   scripts/docker-engine.sh env     # print: export DOCKER_HOST=unix://.../docker.sock
#
# The engine runs without iptables and without the default bridge (no 172.17.x
# addresses); containers use network_mode "none" or "host". State lives under
# ${CLAUDE_RUNNER_DOCKER_STATE:-/var/tmp/claude-runner-docker} (keep it short: unix
# socket paths are limited to 108 bytes). Must run as root for `start`/`stop`.
set -euo pipefail

STATE="${CLAUDE_RUNNER_DOCKER_STATE:-/var/tmp/claude-runner-docker}"
SOCK="$STATE/docker.sock"
PIDFILE="$STATE/dockerd.pid"
LOG="$STATE/dockerd.log"
HOST="unix://$SOCK"

answers() {
    [ -S "$SOCK" ] && timeout 10 docker -H "$HOST" version >/dev/null 2>&1
}

install_engine() {
    echo "docker-engine: installing docker.io, busybox-static, debootstrap, socat (apt)" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    # socat: the engine-outage test relays its own Docker socket to this engine.
    apt-get install -y -qq --no-install-recommends docker.io busybox-static debootstrap socat \
        >/dev/null
}

cmd_start() {
    if ! command -v dockerd >/dev/null 2>&1 || ! command -v debootstrap >/dev/null 2>&1 ||
        ! command -v socat >/dev/null 2>&1; then
        install_engine
    fi
    if ! command -v docker >/dev/null 2>&1; then
        echo "docker-engine: no docker client on PATH" >&2
        exit 1
    fi
    if answers; then
        echo "$HOST"
        return 0
    fi
    mkdir -p "$STATE/data" "$STATE/exec"
    # A stale pidfile/socket from a killed engine would make dockerd refuse to start.
    if [ -f "$PIDFILE" ]; then
        old="$(cat "$PIDFILE" 2>/dev/null || true)"
        if [ -n "$old" ] && kill -0 "$old" 2>/dev/null; then
            kill -TERM "$old" 2>/dev/null || true
            for _ in $(seq 1 50); do kill -0 "$old" 2>/dev/null || break; sleep 0.2; done
        fi
        rm -f "$PIDFILE"
    fi
    rm -f "$SOCK"
    setsid nohup dockerd --iptables=false --ip6tables=false --bridge=none \
        --data-root "$STATE/data" --exec-root "$STATE/exec" --pidfile "$PIDFILE" \
        --host "$HOST" </dev/null >"$LOG" 2>&1 &
    for _ in $(seq 1 150); do
        if answers; then
            echo "$HOST"
            return 0
        fi
        sleep 0.2
    done
    echo "docker-engine: dockerd did not answer within 30 s; last log lines:" >&2
    tail -n 30 "$LOG" >&2 || true
    exit 1
}

cmd_stop() {
    if [ ! -f "$PIDFILE" ]; then
        echo "docker-engine: not running (no pidfile)" >&2
        return 0
    fi
    pid="$(cat "$PIDFILE")"
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid"
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        if kill -0 "$pid" 2>/dev/null; then
            echo "docker-engine: dockerd $pid still alive after 20 s, sending KILL" >&2
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    rm -f "$PIDFILE"
}

case "${1:-}" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) answers ;;
    env) echo "export DOCKER_HOST=$HOST" ;;
    *)
        echo "usage: $0 {start|stop|status|env}" >&2
        exit 2
        ;;
esac
