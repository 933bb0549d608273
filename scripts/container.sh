#!/usr/bin/env bash
# container.sh — build kefu's image with no registry, run compose.yaml (Redis, two kefu
# nodes, the handoff sink) and send a conversation through it; then stop it.
#
#   scripts/container.sh          # needs root, docker (a running engine), debootstrap,
#                                 # docker-compose (Debian: apt-get install docker.io
#                                 # debootstrap docker-compose)
#
# No image can be pulled here, so the base image is Debian bookworm made with debootstrap
# from Debian's mirror (ca-certificates, libstdc++6 and redis-server for the Redis service),
# imported as kefu-base:bookworm; kefu's binary is built on this machine (make build) and
# copied in (the Dockerfile's prebuilt target). With registry access `docker build .`
# builds from source instead.
set -euo pipefail
cd "$(dirname "$0")/.."
BASE=kefu-base:bookworm
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
compose() { docker-compose -f compose.yaml -p kefu "$@"; }

if ! docker image inspect "$BASE" >/dev/null 2>&1; then
  root=$(mktemp -d)
  trap 'rm -rf "$root"' EXIT
  echo "container: debootstrap bookworm into $root (about a minute)" >&2
  debootstrap --variant=minbase --include=ca-certificates,libstdc++6,redis-server bookworm "$root" "$MIRROR" >/dev/null
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin
  chmod 755 "$root" # mktemp made it 0700: the image's / must be readable by uid 10001
  tar -C "$root" -c . | docker import - "$BASE" >/dev/null
fi
make build >/dev/null
scripts/ort.sh >/dev/null
DOCKER_BUILDKIT=0 docker build -q --target prebuilt --build-arg BASE_IMAGE="$BASE" -t kefu . >/dev/null
echo "container: image kefu built ($(docker image inspect kefu --format '{{.Size}}' | awk '{printf "%.0f MB", $1/1e6}'))" >&2

export KEFU_HANDOFF_SECRET=${KEFU_HANDOFF_SECRET:-$(head -c 32 /dev/urandom | base64)}
export KEFU_REDIS_IMAGE=$BASE
compose down -v >/dev/null 2>&1 || true
compose up -d
trap 'compose logs --no-color > /tmp/kefu-compose.log 2>&1; compose down -v >/dev/null 2>&1' EXIT

key="Authorization: Bearer demo-client-key-change-me"
for port in 8080 8082; do
  for i in $(seq 60); do
    curl -sf "localhost:$port/readyz" >/dev/null && break
    sleep 1
  done
  curl -sf "localhost:$port/readyz" >/dev/null || { compose logs; echo "container: node on $port not ready" >&2; exit 1; }
done
say() { curl -sf -H "$key" -H 'Content-Type: application/json' "localhost:$1/v1/conversations/$2/messages" -d "{\"text\": \"$3\", \"customer\": {\"id\": \"c42\"}}"; echo; }
echo "--- node 1: 我的订单到哪了"; say 8080 compose-zh "我的订单到哪了"
echo "--- node 2: KF20261122";     say 8082 compose-zh "KF20261122"
echo "--- node 2: I want to talk to a human"; say 8082 compose-en "I want to talk to a human"
echo "--- without a key:"; curl -s -o /dev/null -w "%{http_code}\n" localhost:8080/v1/conversations/x/messages -d '{"text":"hi"}'
for i in $(seq 20); do
  compose logs sink 2>/dev/null | grep -q "=== handoff" && break
  sleep 0.5
done
echo "--- the sink received:"; compose logs --no-color sink | grep -A3 "=== handoff" || { echo "container: no handoff reached the sink" >&2; exit 1; }
echo "container: OK" >&2
