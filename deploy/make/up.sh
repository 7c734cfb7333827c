#!/usr/bin/env bash
# `make up`: starts the container with compose, then waits at most HEALTH_TIMEOUT seconds for it to
# run and pass its health check, and fails (naming the fix) when it does not: podman-compose 1.0.3
# exits 0 when the container cannot be created or started.
# Environment (the Makefile sets it): COMPOSE, ENGINE (docker|podman), HEALTH_TIMEOUT (seconds).
set -uo pipefail
timeout=${HEALTH_TIMEOUT:-90}
log=$(mktemp)
trap 'rm -f "$log"' EXIT

fail() {
  {
    echo
    echo "make up: FAILED: $1"
    shift
    for line in "$@"; do echo "  $line"; done
  } >&2
  exit 1
}

# The fix for what a start-up output says (compose's, or the container's log).
advice() {
  if grep -qiE 'rlimit' "$1"; then
    echo "the runtime cannot set podman's default open-files limit here: set default_ulimits (see \"podman on a host without systemd\" in docs/deployment.md)"
  elif grep -qiE 'crun|cgroup' "$1"; then
    echo "the container runtime failed: see \"podman on a host without systemd\" in docs/deployment.md (runtime = \"runc\")"
  elif grep -qiE 'short-name|did not resolve|image not known|No such image|pull access denied|manifest unknown' "$1"; then
    echo "there is no image to start: make build first"
  elif grep -qiE 'address already in use|port is already allocated' "$1"; then
    echo "the published port is taken: stop what uses it, or set ARTIFACTS_PUBLISH=127.0.0.1:<port>"
  elif grep -qiE 'invalid configuration|artifacts server:' "$1"; then
    echo "the server refused its configuration (above): fix .env (docs/configuration.md), then make up again"
  else
    echo "read the output above and make logs"
  fi
}

echo "+ $COMPOSE up -d"
# shellcheck disable=SC2086 # COMPOSE is a command with arguments.
$COMPOSE up -d 2>&1 | tee "$log"

# The artifacts service's container, running or not (docker compose lists stopped ones with -a;
# podman-compose lists all without it, and prints its own command lines too: keep the ids).
container=""
all=""
[ "$ENGINE" = docker ] && all="-a"
# shellcheck disable=SC2086
for id in $($COMPOSE ps $all -q 2>/dev/null | grep -Ex '[0-9a-f]{12,64}'); do
  service=$($ENGINE inspect --format '{{index .Config.Labels "com.docker.compose.service"}}' "$id" 2>/dev/null)
  [ "$service" = artifacts ] && container=$id
done
[ -n "$container" ] || fail "compose started no artifacts container" "fix: $(advice "$log")"

started=$SECONDS
while :; do
  state=$($ENGINE inspect --format '{{.State.Status}}' "$container" 2>/dev/null)
  if [ "$state" = running ]; then
    if [ "$ENGINE" = podman ]; then
      # Without systemd podman runs no health timers: run the image's check once.
      podman healthcheck run "$container" >/dev/null 2>&1 && break
    else
      [ "$($ENGINE inspect --format '{{.State.Health.Status}}' "$container")" = healthy ] && break
    fi
  fi
  if [ $((SECONDS - started)) -ge "$timeout" ] || [ "$state" = exited ] || [ "$state" = dead ] || [ -z "$state" ]; then
    $ENGINE logs --tail 20 "$container" >"$log" 2>&1
    cat "$log" >&2
    if [ "$state" = running ]; then
      fail "the container runs but is not healthy after ${timeout} s (its last log lines are above)" \
        "fix: $(advice "$log"); to wait longer: make up HEALTH_TIMEOUT=<seconds>"
    fi
    fail "the container is ${state:-gone}, not running (its last log lines are above)" "fix: $(advice "$log")"
  fi
  sleep 1
done
echo "make up: healthy after $((SECONDS - started)) s (container $($ENGINE inspect --format '{{.Name}}' "$container"))"
