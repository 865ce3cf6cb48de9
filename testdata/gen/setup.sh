#!/bin/sh
# Prepares the reference environment the generator scripts run in (makes nothing in the repository).
#
#   setup.sh REFSRC_DIR          [--no-apt]
#
# 1. apt: Debian 12's python3-torch (1.13.1) and friends (needs root; skip with --no-apt).
# 2. Library sources by tag, unpacked with `git archive` into REFSRC_DIR/<name> and installed
#    (no dependencies, no index) into REFSRC_DIR/site, which the scripts put first on sys.path:
#      diffusers        v0.25.1  1909952826ffb0609f5df172ac7948c46422614d
#      transformers     v4.36.2  a7cab3c283312b8d4de5df3bbe719971e24f4281
#      huggingface_hub  v0.20.3  2cff405655a58e91e68d2486a3d699e25fadc65b
#      openai/CLIP      d05afc436d78f1c48dc0dbf8e5980a9d471f35f6  (only clip/bpe_simple_vocab_16e6.txt.gz)
#    Each source is a git repository: by default a bare clone from GitHub into REFSRC_DIR/git/,
#    or an existing git directory given by DIFFUSERS_GIT, TRANSFORMERS_GIT, HUB_GIT, CLIP_GIT
#    (any fork works that carries the tag/commit; the commit is checked). The upstream
#    transformers repository is large: a fork that carries the v4.36.2 tag (for example
#    github.com/8b-is/transformers) can be given as TRANSFORMERS_GIT.
# Then run the generators with HARMONY_REFSRC=REFSRC_DIR (see README.md).
set -eu

if [ $# -lt 1 ]; then
    echo "usage: $0 REFSRC_DIR [--no-apt]" >&2
    exit 2
fi
DEST=$(mkdir -p "$1" && cd "$1" && pwd)
APT=1
[ "${2:-}" = "--no-apt" ] && APT=0

if [ $APT = 1 ]; then
    apt-get install -y python3-torch python3-numpy python3-pil python3-scipy python3-regex \
        python3-requests python3-filelock python3-tqdm python3-packaging python3-yaml python3-pip
fi

# name  url  tag-or-commit  expected-commit  env-var
fetch() {
    name=$1 url=$2 ref=$3 want=$4 var=$5
    eval "gitdir=\${$var:-}"
    if [ -z "$gitdir" ]; then
        gitdir="$DEST/git/$name.git"
        [ -d "$gitdir" ] || git clone --bare --filter=blob:none "$url" "$gitdir"
    fi
    got=$(git --git-dir="$gitdir" rev-parse "$ref^{commit}")
    if [ "$got" != "$want" ]; then
        echo "$name: $ref is $got, expected $want" >&2
        exit 1
    fi
    rm -rf "${DEST:?}/$name"
    mkdir -p "$DEST/$name"
    git --git-dir="$gitdir" archive "$ref" | tar -x -C "$DEST/$name"
    echo "$name $ref $got"
}

fetch diffusers https://github.com/huggingface/diffusers v0.25.1 1909952826ffb0609f5df172ac7948c46422614d DIFFUSERS_GIT
fetch transformers https://github.com/huggingface/transformers v4.36.2 a7cab3c283312b8d4de5df3bbe719971e24f4281 TRANSFORMERS_GIT
fetch huggingface_hub https://github.com/huggingface/huggingface_hub v0.20.3 2cff405655a58e91e68d2486a3d699e25fadc65b HUB_GIT
fetch CLIP https://github.com/openai/CLIP d05afc436d78f1c48dc0dbf8e5980a9d471f35f6 d05afc436d78f1c48dc0dbf8e5980a9d471f35f6 CLIP_GIT

rm -rf "$DEST/site"
for p in huggingface_hub diffusers transformers; do
    /usr/bin/python3 -m pip install --quiet --no-deps --no-index --no-build-isolation --target "$DEST/site" "$DEST/$p"
done
grep -q '^__version__ = "0.25.1"' "$DEST/site/diffusers/__init__.py"
grep -q '^__version__ = "4.36.2"' "$DEST/site/transformers/__init__.py"
grep -q '^__version__ = "0.20.3"' "$DEST/site/huggingface_hub/__init__.py"
echo "reference environment ready: HARMONY_REFSRC=$DEST"
