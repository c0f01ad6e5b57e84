"""Reads a PyTorch ``state_dict`` file into NumPy arrays without PyTorch.

Only what the bundled pretrained-weight files need: a dict of float32/int64 tensors saved by
``torch.save`` in the legacy (pre-1.6, non-zip) format. The unpickler
accepts only the classes such a file holds (``collections.OrderedDict``, torch storages,
``torch._utils._rebuild_tensor_v2``), so a file that would run other code is refused.
"""

from __future__ import annotations

import collections
import os
import pickle
import struct
import zipfile
from pathlib import Path

import numpy as np

__all__ = ["read_state_dict"]

_STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "LongStorage": np.int64, "IntStorage": np.int32, "ByteStorage": np.uint8,
}
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


class _Tensor:
    """A tensor reference from the pickle: storage key, offset, size and strides."""

    def __init__(self, storage, offset, size, stride, *_):
        self.storage, self.offset = storage, int(offset)
        self.size, self.stride = tuple(size), tuple(stride)


class _Unpickler(pickle.Unpickler):
    def __init__(self, handle, storages: dict):
        super().__init__(handle)
        self._storages = storages

    def find_class(self, module, name):
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _Tensor
        if module == "torch" and name in _STORAGE_DTYPES:
            return _STORAGE_DTYPES[name]
        raise pickle.UnpicklingError(f"a state_dict file holds no {module}.{name}")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")
        _, dtype, key, _location, _numel = pid[:5]
        self._storages[str(key)] = np.dtype(dtype)
        return str(key)


def _materialise(tensors: dict, buffers: dict) -> dict[str, np.ndarray]:
    out = {}
    for name, t in tensors.items():
        if not isinstance(t, _Tensor):
            raise ValueError(f"entry {name!r} is not a tensor")
        flat = buffers[t.storage]
        item = flat.dtype.itemsize
        view = np.lib.stride_tricks.as_strided(
            flat[t.offset:], shape=t.size, strides=tuple(s * item for s in t.stride)
        )
        out[name] = np.array(view)  # a copy: the buffer is not kept alive
    return out


def _read_legacy(path: Path) -> dict[str, np.ndarray]:
    storages: dict[str, np.dtype] = {}
    with open(path, "rb") as handle:
        if _Unpickler(handle, storages).load() != _LEGACY_MAGIC:
            raise ValueError("not a PyTorch file (no magic number)")
        _Unpickler(handle, storages).load()  # protocol version
        _Unpickler(handle, storages).load()  # system info (endianness, type sizes)
        tensors = _Unpickler(handle, storages).load()
        keys = _Unpickler(handle, storages).load()
        buffers = {}
        for key in keys:
            count = struct.unpack("<q", handle.read(8))[0]
            dtype = storages[str(key)]
            data = handle.read(count * dtype.itemsize)
            if len(data) != count * dtype.itemsize:
                raise ValueError("the file ends inside a tensor (truncated)")
            buffers[str(key)] = np.frombuffer(data, dtype)
    return _materialise(tensors, buffers)


def read_state_dict(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The tensors of a ``torch.save``-d ``state_dict`` as ``{name: ndarray}``.

    Raises:
        FileNotFoundError: No such file.
        ValueError: Not a legacy-format state_dict file of plain tensors (the message names
            the file).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No such PyTorch weights file: {str(path)!r}")
    if zipfile.is_zipfile(path):
        raise ValueError(f"{str(path)!r} is a zip-format PyTorch file (torch >= 1.6); only the "
                         "legacy format of the bundled weights is read")
    try:
        return _read_legacy(path)
    except (pickle.UnpicklingError, EOFError, KeyError, ValueError, struct.error) as err:
        raise ValueError(f"{str(path)!r} is not a PyTorch state_dict of tensors: {err}") from None
