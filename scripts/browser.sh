#!/usr/bin/env bash
# browser.sh — make sure Chromium and ChromeDriver are here for the HTML report and console
# tests, with a Chinese font (the console's screenshots in Chinese).
#
# When chromium or chromedriver is missing and we are root with apt-get, install Debian's
# chromium and chromium-driver; with no CJK font, Debian's fonts-wqy-microhei (1.6 MB). Under CI=true a browser that cannot be had is an error;
# otherwise the browser tests skip with a message.
set -uo pipefail

have() { command -v chromium >/dev/null && command -v chromedriver >/dev/null; }
if ! have && [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
  echo "browser: installing Debian's chromium and chromium-driver" >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver) >&2 || true
fi
if ! fc-list :lang=zh 2>/dev/null | grep -q . && [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
  echo "browser: installing a Chinese font (fonts-wqy-microhei)" >&2
  (DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-wqy-microhei || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-wqy-microhei; }) >&2 || true
fi
if ! have; then
  if [[ ${CI:-} == true ]]; then
    echo "browser: chromium and chromedriver are needed (CI=true: failing); apt-get install chromium chromium-driver" >&2
    exit 1
  fi
  echo "browser: no chromium/chromedriver; the HTML report browser test will skip" >&2
fi
exit 0
