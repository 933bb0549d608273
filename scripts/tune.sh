#!/usr/bin/env bash
# Chooses kefu train's defaults on training data only: k-fold cross-validation (kefu eval --cv)
# on the training split of each public set, never its test split.
#   bash scripts/tune.sh NAME [TRAIN FLAGS…]       e.g. bash scripts/tune.sh epochs12 --epochs 12
# Prints one line per set: NAME, set, CV accuracy and macro-F1 (mean ± sd over the folds).
# KEFU_TUNE_SETS picks the sets (default: all five); KEFU_TUNE_K the folds (default 3).
set -euo pipefail
cd "$(dirname "$0")/.."
D=${KEFU_DATA:-../shared/data}
K=${KEFU_TUNE_K:-3}
export KEFU_ORT_LIB=${KEFU_ORT_LIB:-$(scripts/ort.sh)}
go build -o bin/kefu ./cmd/kefu
name=$1; shift
declare -A args=(
  [banking77]="--data $D/banking77/train.csv --label-col category"
  [clinc150]="--data $D/clinc150/train.csv"
  [goemotions]="--data $D/goemotions/ekman_single_train.csv --head emotion"
  [smp2019]="--data $D/smp2019-ecdt/train_80.csv"
  [smp2020]="--data $D/smp2020-ewect/virus_train.csv --head emotion"
)
for set in ${KEFU_TUNE_SETS:-banking77 clinc150 smp2019 smp2020 goemotions}; do
  s=$(date +%s)
  line=$(bin/kefu eval --cv "$K" --quiet --latency-samples 0 --show-errors 0 ${args[$set]} "$@" | grep '^cv ')
  printf '%s\t%s\t%s\t%ss\n' "$name" "$set" "$(echo "$line" | sed 's/^cv *//')" "$(( $(date +%s) - s ))"
done
