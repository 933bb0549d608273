#!/usr/bin/env bash
# with-redis.sh CMD... — run CMD with a Redis answering at $REDIS_ADDR (default 127.0.0.1:6379).
#
# When none answers there, start a private redis-server on that address (no persistence, its files
# in a temporary directory), run CMD, and stop it afterwards. When redis-server is missing and we
# are root with apt-get, install Debian's redis-server first. Under CI=true a Redis that cannot be
# had is an error; otherwise CMD runs anyway and the Redis tests skip with a message.
set -uo pipefail

addr=${REDIS_ADDR:-127.0.0.1:6379}
host=${addr%:*}
port=${addr##*:}
export REDIS_ADDR=$addr

ping() {
  local reply
  { exec 3<>"/dev/tcp/$host/$port"; } 2>/dev/null || return 1
  printf 'PING\r\n' >&3
  IFS= read -r -t 2 reply <&3 || reply=
  exec 3>&- 3<&-
  [[ $reply == +PONG* ]]
}

pid=
dir=
cleanup() {
  if [[ -n $pid ]]; then kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; fi
  [[ -n $dir ]] && rm -rf "$dir"
}
trap cleanup EXIT

if ! ping; then
  if ! command -v redis-server >/dev/null && [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    echo "with-redis: installing Debian's redis-server" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server) >&2 || true
  fi
  if command -v redis-server >/dev/null; then
    dir=$(mktemp -d)
    echo "with-redis: no Redis at $addr; starting a private redis-server there" >&2
    redis-server --bind "$host" --port "$port" --save "" --appendonly no --dir "$dir" \
      --logfile "$dir/redis.log" --daemonize no &
    pid=$!
    for _ in $(seq 50); do ping && break; sleep 0.1; done
  fi
  if ! ping; then
    if [[ ${CI:-} == true ]]; then
      echo "with-redis: no Redis at $addr and none could be started (CI=true: failing)" >&2
      exit 1
    fi
    echo "with-redis: no Redis at $addr; Redis tests will skip" >&2
  fi
fi

"$@"
