"""A typed, data-only wire format for values crossing the grader's process boundary.

When an exercise is graded, the case inputs go to a sandboxed process and the
learner's results come back. Both travel as a JSON description plus an ``.npz``
of raw buffers, read without pickle, so a hostile process can send wrong data
but never code.

What travels, and comes back as the same type:

* ``None``, ``bool``, ``int``, ``float`` (``nan`` and ``inf`` included), ``str``;
* tuples, lists, and dicts whose keys are any of these scalars or tuples of them
  (``{1: "a"}`` keeps its ``int`` key);
* NumPy arrays of numbers or booleans (dtype and shape kept);
* torch tensors of any dense dtype, ``bfloat16`` included, with their shape and
  ``requires_grad`` flag (values are detached and moved to the CPU; torch is only
  imported when a tensor is present);
* :class:`Fixture` placeholders, which each side replaces by the object the
  exercise builds under that name (a backbone, a batch).

Examples
--------
>>> import numpy as np, tempfile, os
>>> value = {1: np.arange(3), "t": (2.5, None, float("nan"))}
>>> with tempfile.TemporaryDirectory() as d:
...     dump(value, os.path.join(d, "v.json"), os.path.join(d, "v.npz"))
...     back = load(os.path.join(d, "v.json"), os.path.join(d, "v.npz"))
>>> sorted(back, key=str), back[1].tolist(), back["t"][:2]
([1, 't'], [0, 1, 2], (2.5, None))
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
import zipfile

import numpy as np

__all__ = ["Fixture", "WireError", "decode_value", "dump", "encode_value", "load"]

#: Largest JSON description and largest total of decoded arrays that :func:`load` accepts.
MAX_JSON_BYTES = 16 * 2**20
MAX_ARRAY_BYTES = 512 * 2**20
#: Deepest nesting of tuples/lists/dicts accepted.
MAX_DEPTH = 64

_SCALARS = (bool, int, float, str, type(None))

# Dense torch dtypes that may cross the wire (by name, checked when decoding).
_TORCH_DTYPES = (
    "float64", "float32", "float16", "bfloat16", "complex64", "complex128",
    "int64", "int32", "int16", "int8", "uint8", "uint16", "uint32", "uint64", "bool",
)


class WireError(TypeError, ValueError):
    """A value cannot be sent, or what was received is not a well-formed value."""


@dataclasses.dataclass(frozen=True)
class Fixture:
    """A named object the exercise builds on each side (see ``Exercise.fixtures``)."""

    name: str


def _is_tensor(value) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.Tensor)


def _encode_tensor(value, arrays: dict, prefix: str) -> dict:
    torch = sys.modules["torch"]
    if value.layout != torch.strided:
        raise WireError(f"a {value.layout} tensor cannot be checked; return a dense tensor (tensor.to_dense())")
    if value.is_quantized:
        raise WireError("a quantized tensor cannot be checked; return tensor.dequantize()")
    dtype = str(value.dtype).replace("torch.", "")
    if dtype not in _TORCH_DTYPES:
        raise WireError(f"tensors of dtype torch.{dtype} cannot be checked; use one of {', '.join(_TORCH_DTYPES)}")
    data = value.detach().to("cpu").contiguous()
    key = f"{prefix}{len(arrays)}"
    # Raw bytes: every dtype, bfloat16 included, round-trips bit for bit.
    arrays[key] = data.reshape(-1).view(torch.uint8).numpy().copy() if data.numel() else np.zeros(0, np.uint8)
    return {"tensor": key, "dtype": dtype, "shape": list(data.shape), "requires_grad": bool(value.requires_grad)}


def _encode_key(key):
    if isinstance(key, _SCALARS):
        return encode_value(key, {}, "k")
    if isinstance(key, tuple) and all(isinstance(k, _SCALARS) for k in key):
        return {"tuple": [encode_value(k, {}, "k") for k in key]}
    raise WireError(f"a dict key of type {type(key).__name__} cannot be checked; use numbers or strings")


def encode_value(value, arrays: dict, prefix: str = "a"):
    """Turn ``value`` into a JSON-able description; buffers go into ``arrays``."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, _SCALARS):
        if isinstance(value, float) and not math.isfinite(value):
            return {"float": repr(value)}
        return value
    if isinstance(value, Fixture):
        return {"fixture": value.name}
    if _is_tensor(value):
        return _encode_tensor(value, arrays, prefix)
    if isinstance(value, np.ndarray) or (hasattr(value, "__array__") and not isinstance(value, (dict, str))):
        if isinstance(value, np.ma.MaskedArray):
            raise WireError("a masked array cannot be checked; return a plain array (np.ma.filled)")
        array = np.asarray(value)
        if array.dtype.kind not in "biufc":
            raise WireError(f"arrays of dtype {array.dtype} cannot be checked; return numbers")
        key = f"{prefix}{len(arrays)}"
        arrays[key] = array
        return {"array": key}
    if isinstance(value, (tuple, list)):
        kind = "tuple" if isinstance(value, tuple) else "list"
        return {kind: [encode_value(v, arrays, prefix) for v in value]}
    if isinstance(value, dict):
        return {"dict": [[_encode_key(k), encode_value(v, arrays, prefix)] for k, v in value.items()]}
    raise WireError(f"a value of type {type(value).__name__} cannot be checked; return numbers, arrays or tensors")


def _decode_tensor(desc: dict, arrays):
    import torch

    dtype = desc.get("dtype")
    if dtype not in _TORCH_DTYPES:
        raise WireError(f"unknown tensor dtype {dtype!r}")
    shape = [int(n) for n in desc.get("shape", [])]
    raw = np.ascontiguousarray(arrays[desc["tensor"]])
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise WireError("a tensor's buffer must be raw bytes")
    out = torch.from_numpy(raw.copy()).view(getattr(torch, dtype)) if raw.size else \
        torch.empty(0, dtype=getattr(torch, dtype))
    if out.numel() != math.prod(shape):
        raise WireError(f"a tensor's buffer does not hold shape {tuple(shape)}")
    out = out.reshape(shape)
    if desc.get("requires_grad") and out.is_floating_point():
        out.requires_grad_(True)
    return out


def decode_value(desc, arrays, _depth: int = 0):
    """Inverse of :func:`encode_value`."""
    if _depth > MAX_DEPTH:
        raise WireError(f"the value is nested deeper than {MAX_DEPTH} levels")
    if isinstance(desc, dict):
        if "array" in desc:
            return np.asarray(arrays[desc["array"]])
        if "tensor" in desc:
            return _decode_tensor(desc, arrays)
        if "float" in desc:
            return float(desc["float"])
        if "fixture" in desc:
            return Fixture(str(desc["fixture"]))
        if "tuple" in desc:
            return tuple(decode_value(v, arrays, _depth + 1) for v in desc["tuple"])
        if "list" in desc:
            return [decode_value(v, arrays, _depth + 1) for v in desc["list"]]
        if "dict" in desc:
            return {decode_value(k, arrays, _depth + 1): decode_value(v, arrays, _depth + 1) for k, v in desc["dict"]}
        raise WireError(f"malformed value description: {sorted(desc)}")
    if isinstance(desc, list):
        raise WireError("malformed value description: a bare list")
    return desc


def dump(value, json_path, npz_path) -> None:
    """Write a value as ``json_path`` + ``npz_path`` (no pickle)."""
    arrays: dict = {}
    desc = encode_value(value, arrays)
    np.savez(npz_path, **arrays)
    with open(json_path, "w") as fh:
        json.dump(desc, fh)


def _open_regular(path, max_bytes: int):
    """Open a file left by untrusted code: no links, no FIFOs, bounded size."""
    import stat

    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise WireError(f"{os.path.basename(path)} cannot be opened ({exc.strerror})") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise WireError(f"{os.path.basename(path)} is not a regular file")
    if st.st_size > max_bytes:
        os.close(fd)
        raise WireError(f"{os.path.basename(path)} is larger than {max_bytes} bytes")
    return os.fdopen(fd, "rb")


def _check_npz(fh, budget: int) -> None:
    """Refuse compressed members and arrays whose headers promise more than ``budget`` bytes."""
    with zipfile.ZipFile(fh) as archive:
        total = 0
        for info in archive.infolist():
            if info.compress_type != zipfile.ZIP_STORED:
                raise WireError(f"{info.filename}: compressed members are not accepted")
            total += info.file_size
            with archive.open(info) as member:
                version = np.lib.format.read_magic(member)
                if version == (1, 0):
                    shape, _fortran, dtype = np.lib.format.read_array_header_1_0(member)
                elif version == (2, 0):
                    shape, _fortran, dtype = np.lib.format.read_array_header_2_0(member)
                else:
                    raise WireError(f"{info.filename}: unsupported array format {version}")
                if dtype.hasobject:
                    raise WireError(f"{info.filename}: arrays of Python objects are not accepted")
                if math.prod(shape) * dtype.itemsize > info.file_size:
                    raise WireError(f"{info.filename}: the header promises more data than the file holds")
        if total > budget:
            raise WireError(f"the arrays hold more than {budget} bytes")


def load(json_path, npz_path, max_bytes: int = MAX_ARRAY_BYTES):
    """Read a value written by :func:`dump`, refusing pickles, links, FIFOs and oversize data."""
    with _open_regular(json_path, MAX_JSON_BYTES) as fh:
        text = fh.read()
    try:
        desc = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise WireError(f"{os.path.basename(json_path)} is not valid JSON ({type(exc).__name__})") from None
    with _open_regular(npz_path, max_bytes) as fh:
        _check_npz(fh, max_bytes)
        fh.seek(0)
        with np.load(fh, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    try:
        return decode_value(desc, arrays)
    except RecursionError:
        raise WireError("the value is nested too deeply") from None
    except KeyError as exc:
        raise WireError(f"the value refers to a missing buffer {exc}") from None
