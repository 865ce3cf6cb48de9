"""Stand-in for the `safetensors` package (the Rust wheel is not installable here).

Only what diffusers v0.25.1 and transformers v4.36.2 use: `safe_open` and
`safetensors.torch.{save_file, load_file, storage_ptr, storage_size}`. The file format is
implemented by ../../safetensors_io.py, which writes byte-for-byte what the official library
writes. The sibling `safetensors-0.4.1.dist-info` lets transformers' import-time version check
(`safetensors>=0.3.1`) find it.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import safetensors_io  # noqa: E402

__version__ = "0.4.1"


class SafetensorError(Exception):
    pass


def safe_open(filename, framework="pt", device="cpu"):
    return safetensors_io.SafeOpen(str(filename), framework=framework, device=device)
