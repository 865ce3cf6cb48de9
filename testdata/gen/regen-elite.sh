#!/bin/sh
# Regenerates the ELITE reference data into OUT and compares it with the repository's copy.
#
#   HARMONY_ELITE_REFSRC=DIR sh testdata/gen/regen-elite.sh OUT
#
# Writes OUT/elite-tiny, OUT/elite (float32: what the repository holds), OUT/f64/elite (float64
# twin) and OUT/elite/tolerances.json, then prints IDENT / DIFF per file against testdata/.
set -eu
if [ $# -ne 1 ]; then
    echo "usage: HARMONY_ELITE_REFSRC=DIR $0 OUT" >&2
    exit 2
fi
HERE=$(cd "$(dirname "$0")" && pwd)
TD=$(dirname "$HERE")
OUT=$(mkdir -p "$1" && cd "$1" && pwd)
PY=/usr/bin/python3
$PY "$HERE/make_elite_model.py" --out "$OUT"
$PY "$HERE/make_elite_goldens.py" --out "$OUT" --model "$OUT/elite-tiny"
$PY "$HERE/make_elite_harmony.py" --out "$OUT" --model "$OUT/elite-tiny" --elite "$OUT/elite"
$PY "$HERE/make_elite_goldens.py" --out "$OUT/f64" --model "$OUT/elite-tiny" --dtype float64
$PY "$HERE/make_elite_harmony.py" --out "$OUT/f64" --model "$OUT/elite-tiny" --dtype float64
$PY "$HERE/elite_tolerances.py" "$OUT/elite" "$OUT/f64/elite" > "$OUT/elite/tolerances.json"
cd "$OUT"
find elite-tiny elite \( -type f -o -type l \) ! -name README.md | sort | while read -r f; do
    if cmp -s "$f" "$TD/$f"; then echo "IDENT $f"; else echo "DIFF  $f"; fi
done
