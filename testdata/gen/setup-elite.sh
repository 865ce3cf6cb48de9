#!/bin/sh
# Prepares the ELITE reference environment the ELITE generator scripts run in (makes nothing in
# the repository).
#
#   setup-elite.sh REFSRC_DIR          [--no-apt]
#
# 1. apt: Debian 12's python3-torch (1.13.1) and friends, plus torchvision, OpenCV and pandas
#    (ELITE's datasets.py imports them at module level; cv2 also makes its unused 512² resize).
# 2. Sources by tag/commit, unpacked with `git archive` into REFSRC_DIR/<name>:
#      ELITE            84b6f2f43957e883ab7a40cf2c3e4519d854a25a  (github.com/csyxwei/ELITE)
#      diffusers        v0.11.1  f7bb9cae114575b5ce2b94c122332114a0def106
#      transformers     v4.26.1  ae54e3c3b18bac0832ad62ea9b896dfd52a09850
#      huggingface_hub  v0.13.0  60df27b94101eda70a68b1c8c8fa7d5909608cbc
#    and the three libraries installed (no dependencies, no index) into REFSRC_DIR/site.
#    ELITE stays a plain folder: elite_env.py puts it on sys.path and imports its modules.
#    Each source is a git repository: by default a bare clone from GitHub into REFSRC_DIR/git/,
#    or an existing git directory given by ELITE_GIT, DIFFUSERS_GIT, TRANSFORMERS_GIT, HUB_GIT
#    (any fork that carries the tag/commit; the commit is checked). The upstream transformers
#    repository is large: a fork that carries the v4.26.1 tag (github.com/8b-is/transformers
#    was used) can be given as TRANSFORMERS_GIT.
# Then run the ELITE generators with HARMONY_ELITE_REFSRC=REFSRC_DIR (see README.md).
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
        python3-requests python3-filelock python3-tqdm python3-packaging python3-yaml python3-pip \
        python3-torchvision python3-opencv python3-pandas
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

fetch ELITE https://github.com/csyxwei/ELITE 84b6f2f43957e883ab7a40cf2c3e4519d854a25a 84b6f2f43957e883ab7a40cf2c3e4519d854a25a ELITE_GIT
fetch diffusers https://github.com/huggingface/diffusers v0.11.1 f7bb9cae114575b5ce2b94c122332114a0def106 DIFFUSERS_GIT
fetch transformers https://github.com/huggingface/transformers v4.26.1 ae54e3c3b18bac0832ad62ea9b896dfd52a09850 TRANSFORMERS_GIT
fetch huggingface_hub https://github.com/huggingface/huggingface_hub v0.13.0 60df27b94101eda70a68b1c8c8fa7d5909608cbc HUB_GIT

rm -rf "$DEST/site"
for p in huggingface_hub diffusers transformers; do
    /usr/bin/python3 -m pip install --quiet --no-deps --no-index --no-build-isolation --target "$DEST/site" "$DEST/$p"
done
grep -q '^__version__ = "0.11.1"' "$DEST/site/diffusers/__init__.py"
grep -q '^__version__ = "4.26.1"' "$DEST/site/transformers/__init__.py"
grep -q '^__version__ = "0.13.0"' "$DEST/site/huggingface_hub/__init__.py"
echo "ELITE reference environment ready: HARMONY_ELITE_REFSRC=$DEST"
