#!/usr/bin/env bash
# ort.sh — find or provision the ONNX Runtime shared library for kefu.
#
# Order: $KEFU_ORT_LIB, then third_party/onnxruntime/libonnxruntime.so.1, otherwise
# `npm pack onnxruntime-node@1.24.1` (a tarball download only: no install scripts run),
# extract the Linux library for this machine's architecture, check its sha256 and
# place it in third_party/onnxruntime/. Prints the library's absolute path on stdout.
#
# Without npm: download onnxruntime-linux-x64-1.24.1.tgz (or -aarch64-) from
# https://github.com/microsoft/onnxruntime/releases/tag/v1.24.1, extract
# lib/libonnxruntime.so.1.24.1 and point KEFU_ORT_LIB at it.
set -euo pipefail

version=1.24.1
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dest="$root/third_party/onnxruntime"
lib="$dest/libonnxruntime.so.1"

if [[ -n "${KEFU_ORT_LIB:-}" ]]; then
  if [[ -f "$KEFU_ORT_LIB" ]]; then
    echo "$(cd "$(dirname "$KEFU_ORT_LIB")" && pwd)/$(basename "$KEFU_ORT_LIB")"
    exit 0
  fi
  echo "ort.sh: KEFU_ORT_LIB=$KEFU_ORT_LIB does not exist" >&2
  exit 1
fi
if [[ -f "$lib" ]]; then
  echo "$lib"
  exit 0
fi

case "$(uname -m)" in
  x86_64 | amd64)
    arch=x64
    sum=53ef1ac028dd1b05554b8da28d9159eb3876f99868193d2aaa6e67f0243c23d4
    ;;
  aarch64 | arm64)
    arch=arm64
    sum=7954e8bdedb497f830c6a679e818d98399b7f4d81ade1126c3e0be74d28111ab
    ;;
  *)
    echo "ort.sh: no ONNX Runtime build for $(uname -m); set KEFU_ORT_LIB to a libonnxruntime.so >= 1.24" >&2
    exit 1
    ;;
esac

if ! command -v npm >/dev/null; then
  echo "ort.sh: npm not found. Install npm, or download onnxruntime-linux-$arch-$version.tgz from" >&2
  echo "  https://github.com/microsoft/onnxruntime/releases/tag/v$version and set KEFU_ORT_LIB=/path/to/libonnxruntime.so.$version" >&2
  exit 1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "ort.sh: fetching onnxruntime-node@$version with npm pack (about 86 MB, once)" >&2
(cd "$tmp" && npm pack --silent "onnxruntime-node@$version" >/dev/null)
member="package/bin/napi-v6/linux/$arch/libonnxruntime.so.1"
tar -xzf "$tmp/onnxruntime-node-$version.tgz" -C "$tmp" "$member"
got=$(sha256sum "$tmp/$member" | cut -d' ' -f1)
if [[ "$got" != "$sum" ]]; then
  echo "ort.sh: sha256 mismatch for $member: got $got, want $sum" >&2
  exit 1
fi
mkdir -p "$dest"
install -m 0644 "$tmp/$member" "$lib.tmp"
mv "$lib.tmp" "$lib"
echo "ort.sh: installed ONNX Runtime $version at $lib" >&2
echo "$lib"
