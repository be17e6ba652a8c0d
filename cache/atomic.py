"""Write a file so readers see the old content or the new, never a mix: unique temp, then rename.

The temp is ``<name>.tmp-<host>-<pid>-<uuid>`` beside the target (same filesystem, so `os.replace`
is atomic), unique per writer: two processes writing the same file never share a temp, and the last
rename wins. Any failure removes the temp; a killed writer's temp is swept by
`xares_llm.cache.writer.remove_stale_temps`, which reads the pid from the name.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from xares_llm.cache.format import TMP_MARKER


def owner_token() -> str:
    """``<host>-<pid>`` of this process, as temp names carry it."""
    return f"{socket.gethostname()}-{os.getpid()}"


def temp_path(path: Path) -> Path:
    """A fresh, unique temp name beside `path`."""
    path = Path(path)
    return path.with_name(f"{path.name}{TMP_MARKER}{owner_token()}-{uuid.uuid4().hex[:8]}")


@contextlib.contextmanager
def atomic_file(path: Path, mode: str = "wb", encoding: str | None = None) -> Iterator[IO]:
    """Open a temp for writing; on a clean exit it is synced and renamed onto `path`, else removed."""
    path = Path(path)
    tmp = temp_path(path)
    try:
        with tmp.open(mode, encoding=encoding) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_text(path: Path, text: str) -> None:
    with atomic_file(path, "w", encoding="utf-8") as f:
        f.write(text)


def remove_path(path: Path) -> None:
    """Remove a temp left behind, a folder or a file; a link is removed itself, never followed."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
