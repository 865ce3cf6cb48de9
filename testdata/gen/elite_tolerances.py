"""Tolerances of the ELITE goldens from a float64 twin run.

    /usr/bin/python3 testdata/gen/elite_tolerances.py DIR32 DIR64 > tolerances.json

DIR32 / DIR64: the `elite/` folders written by make_elite_goldens.py (and make_elite_harmony.py)
with --dtype float32 and --dtype float64 from the same inputs. For every float tensor of every
*.safetensors file present in both: max|a32 − a64|, max|a64| and their ratio (in float64), and
the largest ratio per file. A parity test that meets `ratio` (the float32-vs-float64 difference
of the reference itself) is as close as float32 arithmetic can honestly be asked to be.
"""

import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import safetensors_io  # noqa: E402


def main():
    d32, d64 = sys.argv[1], sys.argv[2]
    out = {"note": "max|float32 - float64| / max|float64| per tensor (float32 = the goldens)", "files": {}}
    for dirpath, _, files in sorted(os.walk(d32)):
        for f in sorted(files):
            if not f.endswith(".safetensors"):
                continue
            rel = os.path.relpath(os.path.join(dirpath, f), d32)
            p64 = os.path.join(d64, rel)
            if not os.path.exists(p64):
                continue
            a, b = safetensors_io.load(os.path.join(d32, rel)), safetensors_io.load(p64)
            per = {}
            for k in sorted(a):
                if k not in b or not a[k].is_floating_point() or a[k].numel() == 0:
                    continue
                x, y = a[k].double(), b[k].double()
                diff = float((x - y).abs().max())
                ref = float(y.abs().max())
                per[k] = {"max_abs_diff": diff, "max_abs_ref": ref, "ratio": diff / ref if ref else diff}
            out["files"][rel] = {"max_ratio": max((v["ratio"] for v in per.values()), default=0.0), "tensors": per}
    json.dump(out, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
