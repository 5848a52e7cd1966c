"""Minimal safetensors reader/writer (F32, I32, I64), written from the format spec.

Layout: u64 little-endian header length N, then N bytes of UTF-8 JSON
{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}},
padded with spaces so that 8 + N is a multiple of 8, then the raw little-endian data;
offsets are relative to the start of the data section. Tensors are written in the
order given, each contiguous and C-ordered.
"""
import json
import struct

import numpy as np

_TO_NP = {"F32": np.dtype("<f4"), "I32": np.dtype("<i4"), "I64": np.dtype("<i8")}
_FROM_NP = {np.dtype("float32"): "F32", np.dtype("int32"): "I32", np.dtype("int64"): "I64"}


def _as_numpy(value):
    """Accepts numpy arrays and torch tensors (detached, moved to CPU)."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.ascontiguousarray(value)


def save(path, tensors, metadata=None):
    """Writes tensors (name -> array/tensor of float32, int32 or int64) and a str->str metadata map."""
    header = {}
    blobs = []
    offset = 0
    for name, value in tensors.items():
        arr = _as_numpy(value)
        if arr.dtype not in _FROM_NP:
            raise TypeError(f"{name}: unsupported dtype {arr.dtype} (F32, I32, I64 only)")
        data = arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes(order="C")
        header[name] = {"dtype": _FROM_NP[arr.dtype], "shape": list(arr.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    if metadata:
        for k, v in metadata.items():
            if not isinstance(k, str) or not isinstance(v, str):
                raise TypeError("metadata must map str to str")
        header["__metadata__"] = dict(metadata)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * ((8 - (8 + len(text)) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def load(path):
    """Returns (tensors: dict name -> numpy array, metadata: dict str -> str), in file order."""
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise ValueError("file shorter than the 8-byte header length")
    (n,) = struct.unpack("<Q", raw[:8])
    if 8 + n > len(raw):
        raise ValueError("header length beyond end of file")
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    data = memoryview(raw)[8 + n:]
    metadata = header.pop("__metadata__", None) or {}
    tensors = {}
    for name, info in header.items():
        dt = _TO_NP.get(info["dtype"])
        if dt is None:
            raise ValueError(f"{name}: unsupported dtype {info['dtype']}")
        begin, end = info["data_offsets"]
        shape = tuple(info["shape"])
        count = int(np.prod(shape)) if shape else 1
        if end - begin != count * dt.itemsize or end > len(data):
            raise ValueError(f"{name}: data_offsets do not match shape {shape}")
        tensors[name] = np.frombuffer(data[begin:end], dtype=dt).reshape(shape).copy()
    return tensors, metadata
