#!/usr/bin/env bash
# `make build`: builds the image with compose and fails, naming the fix, when the build failed or
# left no image. podman-compose 1.0.3 exits 0 when the build fails; it prints the exit code of each
# podman command it runs ("exit code: 125"), so that line counts too.
# Environment (the Makefile sets it): COMPOSE, ENGINE (docker|podman), IMAGE, BASE (may be empty), LOCAL_BASE.
set -uo pipefail
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# Always passed: podman-compose 1.0.3 turns compose.yaml's ${BASE:-...} into an empty value when
# BASE is set but empty. The default is the Dockerfile's.
BASE=${BASE:-node:24-bookworm-slim}
args=(build --build-arg "BASE=$BASE")
echo "+ $COMPOSE ${args[*]}"
# shellcheck disable=SC2086 # COMPOSE is a command with arguments ("docker compose", "podman-compose -p x").
$COMPOSE "${args[@]}" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
if [ "$status" = 0 ] && ! grep -qE '^exit code: [1-9]' "$log" && $ENGINE image inspect "$IMAGE" >/dev/null 2>&1; then
  echo "make build: built $IMAGE (base $BASE)"
  exit 0
fi
{
  echo
  if $ENGINE image inspect "$IMAGE" >/dev/null 2>&1; then
    echo "make build: FAILED: the build failed (the output above says why); $IMAGE is still an earlier build"
  else
    echo "make build: FAILED: there is no image $IMAGE (the output above says why)"
  fi
  if grep -qiE 'pinging container registry|no such host|dial tcp|TLS handshake|i/o timeout|manifest unknown|pull access denied|failed to resolve source metadata|initializing source' "$log"; then
    echo "  the base image $BASE could not be pulled. No registry access? Build a local"
    echo "  base once (as root, with debootstrap, and Node 24 on PATH): make base; then make build uses $LOCAL_BASE."
  elif grep -qiE 'rlimit|crun|cgroup' "$log"; then
    echo "  the container runtime failed: see \"podman on a host without systemd\" in docs/deployment.md."
  else
    echo "  fix what the build output names, then make build again."
  fi
} >&2
exit 1
