"""CLIP text cleaning and token ids as CLIP scores compute them: transformers v4.36.2
CLIPTokenizer (slow) WITH ftfy installed, i.e. whitespace_clean(ftfy.fix_text(text)).lower(),
on the tiny model's tokenizer folder (the real CLIP BPE), padded/truncated to 77.

ftfy is v6.3.1 (github.com/rspeer/python-ftfy, `git archive v6.3.1 ftfy` into the folder named
by FTFY_SRC; its one dependency wcwidth from Debian's python3-wcwidth).

Writes --out/eval/clip_text.json (default: the repository's testdata/): a list of
  {"text": prompt, "fix_text": ftfy.fix_text(prompt), "ids77": ids (77, truncation=True),
   "needed": len(ids without truncation), "ids_no_ftfy": the ids the no-ftfy fallback gives}

Run: HARMONY_REFSRC=DIR FTFY_SRC=DIR /usr/bin/python3 testdata/gen/make_clip_text.py [--out DIR]
"""

import argparse
import json
import os
import sys

import refenv

HERE = os.path.dirname(os.path.abspath(__file__))

PROMPTS = [
    "a dog in the jungle",
    "a cube shaped teapot",
    "a photo of a dog, isn't it?!",
    "Café au lait \u2014 \u201cquoted\u201d and \u2018single\u2019 quotes, it\u2019s",
    "\uff2c\uff2f\uff35\uff24\u3000\uff2e\uff2f\uff29\uff33\uff25\uff33 \ufb01ne \ufb02ower \u0132sselmeer",
    "Tom &amp; Jerry &EACUTE;t&eacute; it&#x2019;s &notit; &ampx; &#59; &semi; &NTILDE; &nTILDE; &AMP;",
    "BUNDESSTRA&SZLIG;E &#128054;",
    "line one\r\nline two\u2028three\ttab   spaces  \u00a0 nbsp ",
    "<b>not &amp; unescaped</b>\n&amp; still not unescaped",
    "first &amp; unescaped\nthen <i>html</i> &amp;",
    "\u03a3\u039f\u03a6\u039f\u03a3 \u039f\u0394\u03a5\u03a3\u03a3\u0395\u03a5\u03a3",
    "\u0130stanbul CAF\u00c9 e\u0301",
    "\x1b[31mred\x1b[0m text\x00 with \x7f controls\ufeff",
    "price \x80 5 \x93quoted\x94 \x85",
    "emoji \U0001f436 dog 12345 <|endoftext|> after",
    " ".join(["a very long prompt about a shiny red sneaker"] * 12),
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(HERE, ".."))
    ap.add_argument("--refsrc")
    a = ap.parse_args()
    src = os.environ.get("FTFY_SRC")
    if not src:
        sys.exit("set FTFY_SRC to a folder holding ftfy 6.3.1's ftfy package")
    sys.path.insert(0, src)
    import ftfy

    assert ftfy.__version__ == "6.3.1", ftfy.__version__
    refenv.apply_tokenizer_shim()
    from transformers import CLIPTokenizer

    tokdir = os.path.join(HERE, "..", "blipdiffusion-tiny", "tokenizer")
    tok = CLIPTokenizer.from_pretrained(tokdir)
    assert tok.fix_text is ftfy.fix_text
    plain = CLIPTokenizer.from_pretrained(tokdir)
    plain.fix_text = None  # the no-ftfy fallback, for contrast
    from transformers.models.bert.tokenization_bert import BasicTokenizer

    plain.nlp = BasicTokenizer(strip_accents=False, do_split_on_punc=False)
    out = []
    for p in PROMPTS:
        out.append({
            "text": p,
            "fix_text": ftfy.fix_text(p),
            "ids77": tok(p, padding="max_length", truncation=True, max_length=77)["input_ids"],
            "needed": len(tok(p)["input_ids"]),
            "ids_no_ftfy": plain(p)["input_ids"],
        })
    edir = os.path.join(a.out, "eval")
    os.makedirs(edir, exist_ok=True)
    with open(os.path.join(edir, "clip_text.json"), "w", encoding="utf-8") as f:
        # One case per line.
        f.write("[\n" + ",\n".join(json.dumps(o, ensure_ascii=True, separators=(",", ":")) for o in out) + "\n]\n")
    for o in out:
        print(repr(o["fix_text"])[:80], o["needed"], o["ids77"][:8] != o["ids_no_ftfy"][:8])


if __name__ == "__main__":
    sys.exit(main())
