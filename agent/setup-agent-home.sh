#!/bin/sh
# Image build step shared by agent/Dockerfile, agent/Dockerfile.offline and
# agent/Dockerfile.test (run as root during `docker build`).
# Creates the non-root user `agent` (uid 1000, gid 1000, HOME=/home/agent) -- renaming an
# existing uid-1000 user such as node's `node` -- and the home layout of the container
# contract (see agent/README.md).
set -eu

if getent passwd 1000 >/dev/null; then
    old="$(getent passwd 1000 | cut -d: -f1)"
    if [ "$old" != agent ]; then
        oldgroup="$(getent group 1000 | cut -d: -f1 || true)"
        [ -n "$oldgroup" ] && [ "$oldgroup" != agent ] && groupmod -n agent "$oldgroup"
        usermod -l agent -d /home/agent -m -s /bin/bash "$old"
    fi
else
    getent group 1000 >/dev/null || groupadd -g 1000 agent
    useradd -u 1000 -g 1000 -m -d /home/agent -s /bin/bash agent
fi

H=/home/agent
install -d -o 1000 -g 1000 -m 0755 "$H"
install -d -o 1000 -g 1000 -m 0700 "$H/.claude" "$H/task" "$H/task/secret-env"
install -d -o 1000 -g 1000 -m 0755 "$H/out" "$H/work"
rmdir "$H/work"   # created by the clone; the parent must be writable, the target absent
# Mount point of the task's gateway socket directory (bind-mounted by the runner); made here
# so the read-only root file system needs no new directory at start.
install -d -m 0755 /run/claude-runner-gateway

# git: identity for commits the agent may make; any owner of the cloned repo is fine.
cat >"$H/.gitconfig" <<'CFG'
[user]
	name = Claude Runner Agent
	email = agent@claude-runner.invalid
[safe]
	directory = *
[init]
	defaultBranch = main
[advice]
	detachedHead = false
CFG

# Claude Code's per-user state: onboarding done, no auto-updater, no trust prompt for
# the work dir. (Headless -p runs skip these prompts anyway; this keeps them quiet.)
cat >"$H/.claude.json" <<'CFG'
{
  "hasCompletedOnboarding": true,
  "autoUpdates": false,
  "projects": {
    "/home/agent/work": {
      "hasTrustDialogAccepted": true,
      "hasCompletedProjectOnboarding": true
    }
  }
}
CFG
chown 1000:1000 "$H/.gitconfig" "$H/.claude.json"
chmod 0600 "$H/.claude.json"
