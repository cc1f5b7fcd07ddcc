"""Atomic file writes: every artifact edgefw writes (checkpoints, models, reports, datasets)
goes to a temporary file in the same folder and is renamed into place, so a crash never
leaves half a file.

>>> with atomic_write("/tmp/example.bin") as f:
...     _ = f.write(b"all or nothing")

This module imports only the standard library, so the runtime can use it on a device.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file next to ``path``; on success it replaces ``path`` (fsynced,
    permissions 0644), on any exception it is removed and ``path`` is untouched."""
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_write supports modes 'wb' and 'w', got {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide the file from other users
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_report(folder: str | os.PathLike, *, markdown: tuple[str, str],
                 json_data: tuple[str, object], chart: tuple[str, bytes | None]
                 ) -> dict[str, str]:
    """Write a report's Markdown, JSON and (when rendered) PNG chart into ``folder``, each
    atomically; each argument is ``(file name, content)``. Returns ``{kind: path}`` for the
    files written (no ``"chart"`` when its content is None)."""
    import json

    folder = Path(folder)
    files: dict[str, str] = {}
    name, png = chart
    if png is not None:
        with atomic_write(folder / name) as f:
            f.write(png)
        files["chart"] = str(folder / name)
    name, text = markdown
    with atomic_write(folder / name, "w") as f:
        f.write(text)
    files["markdown"] = str(folder / name)
    name, data = json_data
    with atomic_write(folder / name, "w") as f:
        f.write(json.dumps(data, indent=2) + "\n")
    files["json"] = str(folder / name)
    return files
