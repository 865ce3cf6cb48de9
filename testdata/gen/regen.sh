#!/bin/sh
# Regenerates the whole golden folder into OUT_DIR (see README.md), then optionally compares it.
#
#   HARMONY_REFSRC=REFSRC_DIR regen.sh OUT_DIR BERT_VOCAB_TXT [REFERENCE_DIR]
#
# BERT_VOCAB_TXT: bert-base-uncased vocab.txt (md5 64800d5d8528ce344256daf115d4965e), an input.
# Steps (sequential; about 15-25 minutes on 2 CPU cores):
#   make_inputs.py   inputs/*.png
#   make_model.py    blipdiffusion-tiny/, blipdiffusion-tiny-bin/, qformer_bert_tokenizer/
#   make_goldens.py  golden/, output/, tolerances.json (5 complete pipeline runs)
#   make_harmony.py  harmony/
#   compare.py       OUT_DIR against REFERENCE_DIR, when given
set -eu
if [ $# -lt 2 ]; then
    echo "usage: HARMONY_REFSRC=... $0 OUT_DIR BERT_VOCAB_TXT [REFERENCE_DIR]" >&2
    exit 2
fi
: "${HARMONY_REFSRC:?set HARMONY_REFSRC to the folder setup.sh filled}"
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=$1
PY=/usr/bin/python3
mkdir -p "$OUT"
$PY "$HERE/make_inputs.py" --out "$OUT"
$PY "$HERE/make_model.py" --out "$OUT" --bert-vocab "$2"
$PY "$HERE/make_goldens.py" --out "$OUT"
$PY "$HERE/make_harmony.py" --out "$OUT"
if [ $# -ge 3 ]; then
    $PY "$HERE/compare.py" "$OUT" "$3"
fi
