#!/usr/bin/env bash
# checkers.sh — make sure the third-party checkers the tests use are here:
#   promtool (Debian's prometheus package) checks a /metrics scrape;
#   Redocly CLI (npm, pinned in scripts/redocly/package-lock.json) lints /openapi.json.
#
# When promtool is missing and we are root with apt-get, install Debian's prometheus
# package; Redocly goes into scripts/redocly/node_modules with npm ci. Under CI=true a
# checker that cannot be had is an error; otherwise the tests that need it skip.
set -uo pipefail
cd "$(dirname "$0")"
fail=0
if ! command -v promtool >/dev/null && [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
  echo "checkers: installing Debian's prometheus package for promtool" >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus) >&2 || true
fi
if ! command -v promtool >/dev/null; then
  echo "checkers: no promtool (apt-get install prometheus)" >&2
  fail=1
fi
if [[ ! -x redocly/node_modules/.bin/redocly ]] && command -v npm >/dev/null; then
  echo "checkers: installing Redocly CLI (npm ci in scripts/redocly)" >&2
  (cd redocly && npm ci --no-audit --no-fund --loglevel=error) >&2 || true
fi
if [[ ! -x redocly/node_modules/.bin/redocly ]]; then
  echo "checkers: no Redocly CLI (needs npm: cd scripts/redocly && npm ci)" >&2
  fail=1
fi
if [[ $fail == 1 && ${CI:-} == true ]]; then
  echo "checkers: CI=true and a checker is missing: failing" >&2
  exit 1
fi
exit 0
