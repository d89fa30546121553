"""The safetensors format as the weights code uses it: its dtype names, and a streaming writer.

One home for the table between safetensors' dtype names and torch dtypes, read by the checkpoint
reader (which refuses any name not in it, rather than guessing) and the store's converter.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from collections.abc import Callable, Iterable
from pathlib import Path

import torch

from ...api import EngineError
from ...core.files import temporary_name

#: safetensors dtype name -> torch dtype, for every dtype a weights file of these models may hold.
DTYPES = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}
NAMES = {dtype: name for name, dtype in DTYPES.items()}
#: The dtypes network weights may be stored in (the rest only appear in non-weight entries).
WEIGHT_DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64)


def torch_dtype(name: str) -> torch.dtype | None:
    """The torch dtype of a safetensors dtype name; None for names these models never use (U16, F8_*...)."""
    return DTYPES.get(name)


def write_safetensors_streaming(
    path: Path,
    entries: Iterable[tuple[str, tuple[int, ...], torch.dtype]],
    get_tensor: Callable[[str], torch.Tensor],
    metadata: dict[str, str] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> str:
    """Write a safetensors file tensor by tensor (to a temporary name beside `path`, then renamed
    into place; a crash's leftover is removed by engine.core.files.recover_interrupted).

    `entries` gives each tensor's key, shape and target dtype up front (the header needs the
    offsets); `get_tensor(key)` is called once per key, in order, and its result converted.
    Returns the sha256 of the written file (hashed while writing).
    """
    entries = list(entries)
    header: dict[str, dict] = {}
    offset = 0
    for key, shape, dtype in entries:
        nbytes = torch.Size(shape).numel() * torch.empty(0, dtype=dtype).element_size()
        header[key] = {"dtype": NAMES[dtype], "shape": list(shape), "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    if metadata:
        header["__metadata__"] = dict(metadata)
    blob = json.dumps(header, separators=(",", ":")).encode("utf-8")
    blob += b" " * (-len(blob) % 8)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_name(path)
    digest = hashlib.sha256()
    try:
        with open(tmp, "wb") as fh:
            for chunk in (struct.pack("<Q", len(blob)), blob):
                fh.write(chunk)
                digest.update(chunk)
            for done, (key, shape, dtype) in enumerate(entries, 1):
                tensor = get_tensor(key).to(dtype=dtype, device="cpu").contiguous()
                if tuple(tensor.shape) != tuple(shape):
                    raise EngineError(f"{key}: shape {tuple(tensor.shape)} changed while converting (expected {shape})")
                data = tensor.reshape(-1).view(torch.uint8).numpy().data
                fh.write(data)
                digest.update(data)
                if progress:
                    progress(done, len(entries))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return digest.hexdigest()
