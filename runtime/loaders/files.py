"""Reading a model file whose size is checked before anything is allocated for it."""

from __future__ import annotations

import os

from edgefw.errors import ModelFormatError


def read_model_file(path: str, fmt: str, max_bytes: int, limit: str) -> bytes:
    """The bytes of ``path``; ModelFormatError when it is missing or over ``max_bytes``
    (``limit`` says what the format allows, for the message)."""
    if not os.path.isfile(path):
        raise ModelFormatError(f"{fmt} model file not found: {path}")
    size = os.path.getsize(path)
    if size > max_bytes:
        raise ModelFormatError(f"{path} has {size} bytes; {limit}")
    with open(path, "rb") as f:
        return f.read()


__all__ = ["read_model_file"]
