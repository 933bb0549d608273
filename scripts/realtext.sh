#!/usr/bin/env bash
# The embedded model (or --model DIR) on real people's words: the checks of
# cmd/kefu/bot/realtext.yaml on the public test splits in ../shared/data (BANKING77 and CLINC150
# intents, GoEmotions emotions, zh-reviews polarity, CLINC150 out-of-scope, handoff precision and
# recall). Exit 1 when a check misses its target.
#   bash scripts/realtext.sh [--sample N] [--model DIR] [--json FILE] [kefu eval flags…]
set -euo pipefail
cd "$(dirname "$0")/.."
make -s build
KEFU_ORT_LIB="$(scripts/ort.sh)" exec ./bin/kefu eval --realtext cmd/kefu/bot/realtext.yaml --data-dir ../shared/data "$@"
