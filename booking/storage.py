"""Where uploaded files live (resources' photos and documents): a small interface, so that a
deployment can put them elsewhere than this host's disk. The database keeps what a file is;
the storage keeps its bytes under a key the platform made (never a name someone uploaded).

`LocalStorage` is the default and the only one built: a directory (UPLOAD_DIR, or the
instance folder's `uploads`). Several web hosts need a directory they all mount, or another
class with the same three methods over an object store (docs/deploy.md)."""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path
from typing import Protocol

from flask import current_app

KEY = re.compile(r"^[0-9a-f]{32}$")


class Storage(Protocol):
    def put(self, data: bytes) -> str: ...
    def get(self, key: str) -> bytes | None: ...
    def delete(self, key: str) -> None: ...


class LocalStorage:
    """Files in a directory, two levels deep by key. A write goes to a temporary name first
    and is renamed into place, so a crash never leaves half a file under a key."""

    def __init__(self, root: Path):
        self.root = root

    def _path(self, key: str) -> Path:
        if not KEY.match(key or ""):
            raise ValueError("not a storage key")
        return self.root / key[:2] / key

    def put(self, data: bytes) -> str:
        key = secrets.token_hex(16)
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".part")
        with open(temporary, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
        return key

    def get(self, key: str) -> bytes | None:
        try:
            return self._path(key).read_bytes()
        except (FileNotFoundError, ValueError):
            return None

    def delete(self, key: str) -> None:
        try:
            self._path(key).unlink()
        except (FileNotFoundError, ValueError):
            pass


def storage() -> Storage:
    root = current_app.config.get("UPLOAD_DIR") or os.path.join(
        current_app.instance_path, "uploads"
    )
    return LocalStorage(Path(root))
