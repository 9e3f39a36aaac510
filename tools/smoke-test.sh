#!/usr/bin/env bash
# Smoke-test a built image before it is pushed (used by .github/workflows/build.yml):
#   tools/smoke-test.sh IMAGE [PORT]
# 1. run it as in production (read-only root, tmpfs runtime dir); poll its Docker
#    health until healthy (no fixed sleeps); 2. /metrics has series for both
#    workers; 3. supervisorctl inside reports every program RUNNING; 4. every log
#    line is JSON; 5. docker stop finishes in under 5 s with exit code 0.
set -euo pipefail

image=${1:?usage: tools/smoke-test.sh IMAGE [PORT]}
port=${2:-8000}
name=smoke-$$

fail() { echo "smoke test FAILED: $*" >&2; docker logs "$name" >&2 || true; exit 1; }

docker run --detach --name "$name" --read-only --tmpfs /run/app \
    --health-interval 2s --health-start-period 10s \
    --publish "127.0.0.1:$port:8000" "$image" >/dev/null
trap 'docker rm --force "$name" >/dev/null 2>&1 || true' EXIT

deadline=$((SECONDS + 90))
until [ "$(docker inspect --format '{{.State.Health.Status}}' "$name")" = healthy ]; do
    [ "$(docker inspect --format '{{.State.Running}}' "$name")" = true ] || fail "container exited"
    [ "$SECONDS" -lt "$deadline" ] || fail "not healthy after 90 s"
    sleep 1
done
echo "healthy"

metrics=$(curl --fail --silent --show-error "http://127.0.0.1:$port/metrics")
for program in sync_worker async_worker; do
    grep -q "^app_iterations_total{program=\"$program\"}" <<<"$metrics" \
        || fail "no app_iterations_total for $program in /metrics"
done
echo "/metrics has both workers"

# Healthy already while a process is STARTING (supervisord says RUNNING after
# startsecs, 2 s): wait for RUNNING, within the same deadline.
until status=$(docker exec "$name" supervisorctl -c supervisord.conf status) \
    && programs=$(wc -l <<<"$status") \
    && [ "$(grep -c ' RUNNING ' <<<"$status")" -eq "$programs" ]; do
    [ "$SECONDS" -lt "$deadline" ] || fail "supervisorctl status: $status"
    sleep 1
done
echo "supervisorctl: all $programs programs RUNNING"

started=$(date +%s%N)
docker stop "$name" >/dev/null
elapsed_ms=$((($(date +%s%N) - started) / 1000000))
[ "$elapsed_ms" -lt 5000 ] || fail "docker stop took ${elapsed_ms} ms"
code=$(docker inspect --format '{{.State.ExitCode}}' "$name")
[ "$code" -eq 0 ] || fail "exit code $code after docker stop"
echo "docker stop: ${elapsed_ms} ms, exit code 0"

docker logs "$name" 2>&1 | python3 -c '
import json, sys
lines = sys.stdin.read().splitlines()
for number, line in enumerate(lines, 1):
    try:
        json.loads(line)
    except ValueError:
        sys.exit(f"log line {number} is not JSON: {line[:200]}")
print(f"{len(lines)} log lines, all JSON")
'
echo "smoke test passed"
