"""Writes the two reference input images (numpy + PIL only; no reference libraries needed).

Makes, under OUT/inputs/:
  reference_96x64.png           RGB 96x64: red gradient along x (x*255//95), green gradient along
                                y (y*255//63), blue 8-px checkerboard (60/150), yellow disc,
                                blue rectangle with a white outline, black diagonal line (width 3),
                                magenta triangle, drawn in that order with PIL.ImageDraw
  reference2_300x200_rgba.png   RGBA 300x200: R = 127.5+127.5 sin(x/9), G = 127.5+127.5 cos(x/23+y/7),
                                B = (x+y)*255/498, alpha ramp 255 -> 55 down the rows (all truncated
                                to uint8), plus an opaque green rectangle
Both saved with PIL's default PNG settings (Pillow 9.4, zlib level 6).

Usage: /usr/bin/python3 make_inputs.py --out OUT
"""

import argparse
import os

import numpy as np
from PIL import Image, ImageDraw


def reference_96x64():
    h, w = 64, 96
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack(
        [x * 255 // 95, y * 255 // 63, np.where(((x // 8 + y // 8) % 2) == 1, 150, 60)], axis=-1
    ).astype(np.uint8)
    im = Image.fromarray(base, "RGB")
    d = ImageDraw.Draw(im)
    d.ellipse((10, 8, 42, 40), fill=(250, 240, 20))
    d.rectangle((55, 30, 88, 58), fill=(20, 30, 200), outline=(255, 255, 255))
    d.line(((0, 63), (95, 0)), fill=(0, 0, 0), width=3)
    d.polygon(((60, 5), (90, 12), (70, 25)), fill=(200, 20, 120))
    return im


def reference2_300x200_rgba():
    h, w = 200, 300
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    arr = np.stack(
        [
            127.5 + 127.5 * np.sin(x / 9),
            127.5 + 127.5 * np.cos(x / 23 + y / 7),
            (x + y) * 255 / 498,
            255 - 200 * y / 199,
        ],
        axis=-1,
    )
    im = Image.fromarray(arr.astype(np.uint8), "RGBA")
    ImageDraw.Draw(im).rectangle((100, 60, 180, 150), fill=(10, 200, 60, 255))
    return im


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    d = os.path.join(args.out, "inputs")
    os.makedirs(d, exist_ok=True)
    reference_96x64().save(os.path.join(d, "reference_96x64.png"))
    reference2_300x200_rgba().save(os.path.join(d, "reference2_300x200_rgba.png"))
    print("wrote", d)


if __name__ == "__main__":
    main()
