#!/usr/bin/env bash
# Smoke-test a built image the way the README runs it, before it is pushed:
#   tools/smoke-test.sh IMAGE [PORT]
# One script for both gates: .github/workflows/build.yml runs it with Docker,
# tests/test_image.py with Podman (a real engine on every test run).
#
# Environment:
#   CONTAINER_ENGINE   the engine's command, split on spaces (default: docker),
#                      for example "podman --runtime runc"
#   SMOKE_RUN_OPTIONS  more options for every `run`, split on spaces, for example
#                      "--ulimit nofile=4096:4096 --ulimit nproc=4096:4096"
#   SMOKE_NAME         the containers' names: NAME, NAME-config, NAME-fatal
#                      (default smoke-<pid>; removed at exit)
#
# Checks, each with a deadline (no fixed sleeps):
#  1. run as the README says (`run --read-only`, no mount: the runtime dir is in
#     the container's own /dev/shm), the image's own HEALTHCHECK turns it healthy
#     (Podman without systemd runs no health timer: `podman healthcheck run`
#     runs that same check), /readyz answers 200;
#  2. /metrics has series for both workers;
#  3. PID 1 runs as uid 10001 and the root filesystem refuses a write, in /app
#     and in /tmp (Podman's --read-only mounts a writable /tmp, /var/tmp and
#     /run unless --read-only-tmpfs=false; Docker's does not: so the script
#     passes that option to Podman, and code that writes there fails here too);
#  4. supervisorctl inside reports every program RUNNING;
#  5. SIGTERM (`stop`) stops it in under 2 s with exit code 0;
#  6. every log line is JSON;
#  7. a bad setting exits 78 with one JSON line naming its variable;
#  8. a worker that dies at every start goes FATAL and stops the container with
#     exit code 1 (fail_fast), its logs still all JSON.
set -euo pipefail

image=${1:?usage: tools/smoke-test.sh IMAGE [PORT]}
port=${2:-8000}
read -ra engine <<<"${CONTAINER_ENGINE:-docker}"
read -ra extra <<<"${SMOKE_RUN_OPTIONS:-}"
podman=false
for word in "${engine[@]}"; do
    [ "$(basename -- "$word")" = podman ] && podman=true
done
if $podman; then
    extra+=(--read-only-tmpfs=false)
fi
name=${SMOKE_NAME:-smoke-$$}
scratch=$(mktemp -d)
chmod 755 "$scratch"

cleanup() {
    for container in "$name" "$name-config" "$name-fatal"; do
        "${engine[@]}" rm --force "$container" >/dev/null 2>&1 || true
    done
    rm -rf "$scratch"
}
trap cleanup EXIT

fail() {
    echo "smoke test FAILED: $*" >&2
    "${engine[@]}" logs "${failing:-$name}" >&2 2>&1 || true
    exit 1
}

# run NAME [OPTIONS...]: start IMAGE detached as the README does; the engine's
# own chatter (Podman's "no systemd" notes) goes to a file, shown on failure.
run() {
    local container=$1
    shift
    "${engine[@]}" run --detach --name "$container" --read-only \
        ${extra[@]+"${extra[@]}"} "$@" "$image" >/dev/null 2>>"$scratch/engine.log" \
        || { cat "$scratch/engine.log" >&2; fail "$container did not start"; }
}

# all_json NAME [MIN_LINES]: every line of the container's logs parses as JSON.
all_json() {
    "${engine[@]}" logs "$1" 2>&1 | python3 -c '
import json, sys
lines = sys.stdin.read().splitlines()
for number, line in enumerate(lines, 1):
    try:
        json.loads(line)
    except ValueError:
        sys.exit(f"log line {number} is not JSON: {line[:200]}")
if len(lines) < int(sys.argv[1]):
    sys.exit(f"only {len(lines)} log lines")
print(f"{len(lines)} log lines, all JSON")
' "${2:-1}"
}

health() {
    if $podman; then
        "${engine[@]}" healthcheck run "$name" >/dev/null 2>&1 || true
    fi
    "${engine[@]}" inspect --format '{{.State.Health.Status}}' "$name" 2>/dev/null
}

# --- 1. healthy and ready ---------------------------------------------------------
run "$name" --health-interval 2s --health-start-period 10s --publish "127.0.0.1:$port:8000"
deadline=$((SECONDS + 90))
until [ "$(health)" = healthy ]; do
    [ "$("${engine[@]}" inspect --format '{{.State.Running}}' "$name")" = true ] \
        || fail "container exited"
    [ "$SECONDS" -lt "$deadline" ] || fail "not healthy after 90 s"
    sleep 1
done
curl --fail --silent --show-error --output /dev/null "http://127.0.0.1:$port/readyz" \
    || fail "/readyz is not 200 while healthy"
echo "healthy (the image's HEALTHCHECK), /readyz 200"

# --- 2. /metrics ------------------------------------------------------------------
metrics=$(curl --fail --silent --show-error "http://127.0.0.1:$port/metrics") \
    || fail "GET /metrics"
for program in sync_worker async_worker; do
    grep -q "^app_iterations_total{program=\"$program\"}" <<<"$metrics" \
        || fail "no app_iterations_total for $program in /metrics"
done
echo "/metrics has both workers"

# --- 3. non-root, read-only root --------------------------------------------------
uid=$("${engine[@]}" exec "$name" sh -c 'grep "^Uid:" /proc/1/status') \
    || fail "exec in the container"
uid=$(awk '{print $2}' <<<"$uid")
[ "$uid" = 10001 ] || fail "PID 1 runs as uid '$uid', not 10001"
for directory in /app /tmp; do
    if written=$("${engine[@]}" exec "$name" sh -c "touch $directory/smoke-write" 2>&1); then
        fail "the root filesystem took a write in $directory"
    fi
    grep -qi "read-only" <<<"$written" || fail "writing to $directory: $written"
done
echo "PID 1 is uid 10001; the root filesystem is read-only"

# --- 4. supervisorctl -------------------------------------------------------------
# Healthy already while a process is STARTING (supervisord says RUNNING after
# startsecs, 2 s): wait for RUNNING, within the same deadline.
until status=$("${engine[@]}" exec "$name" supervisorctl -c supervisord.conf status) \
    && programs=$(wc -l <<<"$status") \
    && [ "$(grep -c ' RUNNING ' <<<"$status")" -eq "$programs" ]; do
    [ "$SECONDS" -lt "$deadline" ] || fail "supervisorctl status: $status"
    sleep 1
done
echo "supervisorctl: all $programs programs RUNNING"

# --- 5. stop ----------------------------------------------------------------------
started=$(date +%s%N)
"${engine[@]}" stop "$name" >/dev/null 2>>"$scratch/engine.log" || fail "stop"
elapsed_ms=$((($(date +%s%N) - started) / 1000000)) # GNU date: nanoseconds
[ "$elapsed_ms" -lt 2000 ] || fail "stop took ${elapsed_ms} ms"
code=$("${engine[@]}" inspect --format '{{.State.ExitCode}}' "$name") || fail "inspect"
[ "$code" -eq 0 ] || fail "exit code $code after stop"
echo "stop: ${elapsed_ms} ms, exit code 0"

# --- 6. logs ----------------------------------------------------------------------
all_json "$name" 10 || fail "logs"

# --- 7. a bad setting -------------------------------------------------------------
failing=$name-config
run "$failing" --env APP_LOOP_SLEEP_SECONDS=soon
code=$(timeout 60 "${engine[@]}" wait "$failing" 2>>"$scratch/engine.log") \
    || fail "a bad setting did not stop the container within 60 s"
[ "$code" -eq 78 ] || fail "a bad setting exited $code, not 78"
"${engine[@]}" logs "$failing" 2>&1 | python3 -c '
import json, sys
lines = sys.stdin.read().splitlines()
if len(lines) != 1:
    sys.exit(f"a bad setting wrote {len(lines)} lines, not one")
record = json.loads(lines[0])
if record.get("event") != "config_invalid" or "APP_LOOP_SLEEP_SECONDS" not in lines[0]:
    sys.exit(f"the line does not name APP_LOOP_SLEEP_SECONDS: {lines[0][:300]}")
' || fail "bad setting"
echo "a bad setting: exit code 78, one JSON line naming APP_LOOP_SLEEP_SECONDS"

# --- 8. a worker that cannot start ------------------------------------------------
failing=$name-fatal
mkdir "$scratch/site"
cat >"$scratch/site/sitecustomize.py" <<'EOF'
import os
if os.environ.get("SUPERVISOR_PROCESS_NAME") == "sync_worker":
    os.write(2, b"smoke test: sync_worker dies at start\n")
    os._exit(3)
EOF
chmod -R a+rX "$scratch/site"
# z: relabelled for SELinux hosts (Fedora, RHEL), where a plain bind mount is unreadable
run "$failing" --volume "$scratch/site:/smoke:ro,z" --env PYTHONPATH=/smoke
code=$(timeout 90 "${engine[@]}" wait "$failing" 2>>"$scratch/engine.log") \
    || fail "a FATAL worker did not stop the container within 90 s"
[ "$code" -eq 1 ] || fail "a FATAL worker: exit code $code, not 1"
"${engine[@]}" logs "$failing" 2>&1 | grep -q '"event": "fail_fast"' || fail "no fail_fast line"
all_json "$failing" >/dev/null || fail "logs of the FATAL run"
echo "a FATAL worker: exit code 1 (fail_fast), every log line JSON"
echo "smoke test passed"
