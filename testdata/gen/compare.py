"""Compares a regenerated golden folder with a reference copy, file by file (makes nothing).

For every file of the reference folder: IDENT when the bytes are equal; otherwise, for
.safetensors files, the tensors that differ with their max |a - b| (and missing/extra names, and
whether only the header differs); for .npy the max |a - b|; for .json the top-level keys that
differ; else DIFF. Exit status 1 when any file is missing or differs.

Usage: /usr/bin/python3 compare.py REGEN_DIR REFERENCE_DIR [--skip README.md ...]
"""

import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402


def cmp_safetensors(a, b):
    A, B = safetensors_io.load(a, "np"), safetensors_io.load(b, "np")
    out = []
    if set(A) != set(B):
        out.append("names: missing %s extra %s" % (sorted(set(B) - set(A)), sorted(set(A) - set(B))))
    worst = 0.0
    for k in sorted(set(A) & set(B)):
        x, y = A[k], B[k]
        if x.shape != y.shape or x.dtype != y.dtype:
            out.append(f"{k}: shape/dtype {x.shape} {x.dtype} vs {y.shape} {y.dtype}")
            continue
        if not np.array_equal(x, y):
            d = float(np.max(np.abs(x.astype(np.float64) - y.astype(np.float64))))
            worst = max(worst, d)
            out.append(f"{k}: max|diff| {d:.3g}")
    if not out:
        return "tensors identical (header/metadata differs)"
    return "max|diff| %.3g; " % worst + "; ".join(out)


def cmp_json(a, b):
    A, B = json.load(open(a)), json.load(open(b))
    if A == B:
        return "same content, formatting differs"
    if isinstance(A, dict) and isinstance(B, dict):
        keys = sorted(k for k in set(A) | set(B) if A.get(k) != B.get(k))
        return "differs in top-level keys " + ", ".join(keys)
    return "content differs"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("regen")
    ap.add_argument("reference")
    ap.add_argument("--skip", nargs="*", default=["README.md"], help="file names not compared")
    args = ap.parse_args()
    bad = 0
    for root, _, files in sorted(os.walk(args.reference)):
        for f in sorted(files):
            if f in args.skip:
                continue
            ref = os.path.join(root, f)
            rel = os.path.relpath(ref, args.reference)
            new = os.path.join(args.regen, rel)
            if not os.path.exists(new):
                print(f"MISSING {rel}")
                bad += 1
                continue
            if open(new, "rb").read() == open(ref, "rb").read():
                print(f"IDENT   {rel}")
                continue
            bad += 1
            if f.endswith(".safetensors"):
                why = cmp_safetensors(new, ref)
            elif f.endswith(".npy"):
                why = "max|diff| %.3g" % float(np.max(np.abs(np.load(new).astype(np.float64) - np.load(ref))))
            elif f.endswith(".json"):
                why = cmp_json(new, ref)
            else:
                why = "bytes differ"
            print(f"DIFF    {rel}: {why}")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
