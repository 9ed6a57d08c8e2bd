"""Atomic checkpoints: arrays and a JSON header in one .npz, written to a temporary file and renamed into place."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

CHECKPOINT_NAME = "checkpoint.npz"
_META_KEY = "__meta_json__"


def atomic_write_bytes(path: Path, write: Any) -> None:
    """Call `write(file)` on a temporary sibling of `path`, fsync it, then rename it over `path`."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def save_checkpoint(path: Path, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
    """`arrays` by name; `meta` must be JSON-serialisable (RNG states are: their integers are plain ints)."""
    blob = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    atomic_write_bytes(Path(path), lambda f: np.savez(f, **arrays, **{_META_KEY: blob}))


def load_checkpoint(path: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files if k != _META_KEY}
            meta = json.loads(data[_META_KEY].tobytes().decode())
    except (ValueError, KeyError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not a readable dsqsim checkpoint ({exc})") from None
    return arrays, meta
