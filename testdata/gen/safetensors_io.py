"""Pure-Python reader/writer for the safetensors file format (no Rust wheel needed).

Layout written (identical to the official `safetensors` library, v0.4):
  * u64 little-endian header length N;
  * N bytes of compact JSON (no spaces) `{"__metadata__": {...}, name: {"dtype", "shape",
    "data_offsets": [begin, end]}, ...}`, right-padded with spaces to a multiple of 8;
  * the raw little-endian tensor bytes, back to back.
Tensors are laid out like the official writer does: sorted by dtype (largest alignment
first: U64, I64, F64, F32, ..., U8, BOOL), then by name. `__metadata__` keeps the insertion
order of the dict it is given.

Used by every generator script here, and by the `safetensors` stand-in package in
`shims/` through which diffusers and transformers save and load their weight files.

API:
  save(tensors, path, metadata=None)      tensors: {name: torch.Tensor | numpy.ndarray}
  save_bytes(tensors, metadata=None) -> bytes
  load(path, framework="pt") -> {name: tensor}   ("pt": torch tensors, "np": numpy arrays)
  read_header(path) -> (header dict without __metadata__, metadata dict, data offset)
"""

import json
import struct

import numpy as np

# dtype name -> (numpy dtype, rank used for the official ordering; higher = first)
_DTYPES = {
    "BOOL": (np.bool_, 0),
    "U8": (np.uint8, 1),
    "I8": (np.int8, 2),
    "I16": (np.int16, 5),
    "U16": (np.uint16, 6),
    "F16": (np.float16, 7),
    "BF16": (None, 8),
    "I32": (np.int32, 9),
    "U32": (np.uint32, 10),
    "F32": (np.float32, 11),
    "F64": (np.float64, 12),
    "I64": (np.int64, 13),
    "U64": (np.uint64, 14),
}
_NP_TO_NAME = {np.dtype(v[0]): k for k, v in _DTYPES.items() if v[0] is not None}


def _torch():
    import torch  # imported lazily: the reader also works without torch

    return torch


def _to_numpy(t):
    """Return (dtype name, shape, little-endian bytes) of a torch tensor or numpy array."""
    if isinstance(t, np.ndarray):
        a = np.ascontiguousarray(t)
        name = _NP_TO_NAME[a.dtype.newbyteorder("=")]
        return name, list(a.shape), a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes()
    torch = _torch()
    t = t.detach().cpu().contiguous()
    if t.dtype == torch.bfloat16:
        return "BF16", list(t.shape), t.view(torch.int16).numpy().astype("<i2").tobytes()
    a = t.numpy()
    name = _NP_TO_NAME[a.dtype.newbyteorder("=")]
    return name, list(t.shape), a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes()


def save_bytes(tensors, metadata=None):
    """Serialize {name: tensor} to safetensors bytes (see the module docstring)."""
    entries = []
    for name, t in tensors.items():
        dtype, shape, data = _to_numpy(t)
        entries.append((name, dtype, shape, data))
    entries.sort(key=lambda e: (-_DTYPES[e[1]][1], e[0]))
    header = {}
    if metadata is not None:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    offset = 0
    for name, dtype, shape, data in entries:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
    hjson = json.dumps(header, separators=(",", ":"), ensure_ascii=True).encode("utf-8")
    hjson += b" " * ((8 - len(hjson) % 8) % 8)
    return b"".join([struct.pack("<Q", len(hjson)), hjson] + [e[3] for e in entries])


def save(tensors, path, metadata=None):
    """Write {name: tensor} to `path` in safetensors format."""
    with open(path, "wb") as f:
        f.write(save_bytes(tensors, metadata))


def read_header(path):
    """Return (tensor entries, metadata or None, byte offset of the data section)."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n).decode("utf-8"))
    meta = header.pop("__metadata__", None)
    return header, meta, 8 + n


def _decode(entry, buf, framework):
    dtype, shape = entry["dtype"], entry["shape"]
    b, e = entry["data_offsets"]
    raw = buf[b:e]
    if dtype == "BF16":
        torch = _torch()
        a = np.frombuffer(raw, dtype="<i2").copy().reshape(shape)
        t = torch.from_numpy(a).view(torch.bfloat16)
        return t if framework == "pt" else t.float().numpy()
    a = np.frombuffer(raw, dtype=np.dtype(_DTYPES[dtype][0]).newbyteorder("<")).reshape(shape)
    a = a.astype(a.dtype.newbyteorder("="))  # native order, writable copy
    if framework == "np":
        return a
    return _torch().from_numpy(a)


def load(path, framework="pt"):
    """Read every tensor of a safetensors file, in file order."""
    header, _, start = read_header(path)
    with open(path, "rb") as f:
        f.seek(start)
        buf = f.read()
    return {k: _decode(v, buf, framework) for k, v in header.items()}


class SafeOpen:
    """Minimal stand-in for `safetensors.safe_open` (keys, metadata, get_tensor)."""

    def __init__(self, path, framework="pt", device="cpu"):
        self._path = path
        self._framework = "np" if framework in ("np", "numpy") else "pt"
        self._header, self._meta, self._start = read_header(path)
        with open(path, "rb") as f:
            f.seek(self._start)
            self._buf = f.read()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._buf = None
        return False

    def keys(self):
        return list(self._header.keys())

    def metadata(self):
        return self._meta

    def get_tensor(self, name):
        return _decode(self._header[name], self._buf, self._framework)
