"""Where uploaded files live (resources' photos and documents): a small interface, so that a
deployment can put them elsewhere than this host's disk. The database keeps what a file is;
the storage keeps its bytes under a key the platform made (never a name someone uploaded).

`LocalStorage` is the default: a directory (UPLOAD_DIR, or the instance folder's `uploads`),
which several web hosts must all mount. `S3Storage` keeps the files in a bucket of an
S3-compatible object store instead (docs/deploy.md)."""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from flask import current_app

KEY = re.compile(r"^[0-9a-f]{32}$")
# What a crash in the middle of LocalStorage.put leaves behind: the temporary, never renamed.
PARTIAL = re.compile(r"^[0-9a-f]{32}\.part$")


class Storage(Protocol):
    def put(self, data: bytes) -> str: ...
    def get(self, key: str) -> bytes | None: ...
    def delete(self, key: str) -> None: ...
    def stored(self) -> Iterator[tuple[str, datetime]]:
        """Every name in the store with when it was written (UTC): keys, and leftovers of
        interrupted writes, which `delete` also takes."""
        ...


class LocalStorage:
    """Files in a directory, two levels deep by key. A write goes to a temporary name first
    and is renamed into place, so a crash never leaves half a file under a key."""

    def __init__(self, root: Path):
        self.root = root

    def _path(self, key: str, leftover: bool = False) -> Path:
        """`leftover`: a half-written temporary's name is taken too (to delete it)."""
        if not (KEY.match(key or "") or (leftover and PARTIAL.match(key or ""))):
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
            self._path(key, leftover=True).unlink()
        except (FileNotFoundError, ValueError):
            pass

    def stored(self) -> Iterator[tuple[str, datetime]]:
        if not self.root.is_dir():
            return
        for folder in self.root.iterdir():
            if not folder.is_dir():
                continue
            for path in folder.iterdir():
                if KEY.match(path.name) or PARTIAL.match(path.name):
                    try:
                        written = path.stat().st_mtime
                    except FileNotFoundError:  # removed meanwhile
                        continue
                    yield path.name, datetime.fromtimestamp(written, UTC)


class S3Storage:
    """Files as objects in a bucket of an S3-compatible store (AWS S3, MinIO, a Chinese
    cloud's object storage), through boto3 (installed with `pip install '.[s3]'`). Keys are
    the same random names as on disk; the bucket is private and every file is served through
    the application, which checks who may see it."""

    def __init__(self, bucket: str, **client_options):
        import boto3  # noqa: PLC0415 - only deployments that choose S3 install it

        self.bucket = bucket
        self.client = boto3.client("s3", **client_options)

    def put(self, data: bytes) -> str:
        key = secrets.token_hex(16)
        self.client.put_object(Bucket=self.bucket, Key=key, Body=data)
        return key

    def get(self, key: str) -> bytes | None:
        if not KEY.match(key or ""):
            return None
        try:
            return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except self.client.exceptions.ClientError as error:
            # A missing key is 404, or 403 without the right to list the bucket: not found.
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if status in (403, 404):
                return None
            raise

    def delete(self, key: str) -> None:
        if KEY.match(key or ""):
            self.client.delete_object(Bucket=self.bucket, Key=key)  # absent: no error in S3

    def stored(self) -> Iterator[tuple[str, datetime]]:
        # An object appears whole or not at all: no leftovers of interrupted writes here.
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket):
            for item in page.get("Contents", []):
                if KEY.match(item["Key"]):
                    yield item["Key"], item["LastModified"].astimezone(UTC)


def storage() -> Storage:
    """The store the configuration names: UPLOAD_STORAGE=s3 (with S3_BUCKET, and S3_ENDPOINT_URL
    and S3_REGION for a store other than AWS; credentials as boto3 finds them), or a
    directory (UPLOAD_DIR, else the instance folder's `uploads`). Made once per app and
    setting: a boto3 client costs tens of milliseconds to make, on every photo shown."""
    config = current_app.config
    names = ("UPLOAD_STORAGE", "S3_BUCKET", "S3_ENDPOINT_URL", "S3_REGION", "UPLOAD_DIR")
    setting = tuple(config.get(name) for name in names)
    made = current_app.extensions.setdefault("booking_storage", {})
    if setting not in made:
        made[setting] = _made(config)
    return made[setting]


def _made(config) -> Storage:
    if config.get("UPLOAD_STORAGE") == "s3":
        options = {
            "endpoint_url": config.get("S3_ENDPOINT_URL") or None,
            "region_name": config.get("S3_REGION") or None,
        }
        return S3Storage(config["S3_BUCKET"], **{k: v for k, v in options.items() if v})
    root = config.get("UPLOAD_DIR") or os.path.join(current_app.instance_path, "uploads")
    return LocalStorage(Path(root))
