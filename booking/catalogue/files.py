"""Operators add photos and documents to their resources; anyone who may see a resource may
see its files (#16). Images are decoded and written again by Pillow, which checks that they
are images (and not too many pixels) and drops their metadata (a phone photo's location);
documents are PDF files."""

from __future__ import annotations

import io
import re
import unicodedata
from datetime import datetime, timedelta

from flask_babel import lazy_gettext as _l
from PIL import Image
from sqlalchemy import func, select

from booking.accounts.models import User
from booking.audit import service as audit
from booking.carriers.models import Carrier
from booking.catalogue.models import DOCUMENT, PHOTO, Resource, ResourceFile
from booking.catalogue.service import may_see
from booking.extensions import db
from booking.locking import lock_row
from booking.permissions import is_staff_of, require_staff
from booking.problems import NotFound, Problem, ServiceError
from booking.queries import by_id
from booking.storage import storage
from booking.text_rules import plain_text_problems

MAX_PHOTO_BYTES = 5 * 1024 * 1024
MAX_DOCUMENT_BYTES = 15 * 1024 * 1024
MAX_PHOTOS, MAX_DOCUMENTS = 8, 20
# A file no row names is removed only once it is this old: an upload writes its file first
# and its row a moment later, so a younger one may still be on its way.
UNREFERENCED_GRACE = timedelta(days=1)
MAX_PIXELS = 40_000_000  # a decompression bomb is refused, not decoded
IMAGE_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}


def _own_resource(carrier: Carrier, actor: User, resource_id) -> Resource:
    require_staff(actor, carrier.id)
    resource = by_id(Resource, resource_id)
    if resource is None or resource.carrier_id != carrier.id:
        raise NotFound()
    return resource


def safe_filename(name: str, fallback: str) -> str:
    """A name to offer when the file is downloaded: letters (any script), digits, dot, dash
    and underscore, at most 100 characters; never a path."""
    name = unicodedata.normalize("NFC", (name or "").replace("\\", "/").rsplit("/", 1)[-1])
    name = re.sub(r"[^\w.\-]+", "_", name).strip("._")[:100]
    return name or fallback


def _cleaned_image(data: bytes) -> tuple[bytes, str]:
    """The image written again without its metadata, and its content type; a problem if it is
    not a JPEG, PNG or WebP image of a sensible size. A phone's JPEG with extra frames (MPO,
    e.g. a gain map) is written as a plain JPEG of its first frame."""
    refused = Problem("invalid_image", _l("Upload a JPEG, PNG or WebP image."), "file")
    too_large = Problem("image_too_large", _l("The image has too many pixels."), "file")
    try:
        with Image.open(io.BytesIO(data)) as probe:
            kind = "JPEG" if probe.format == "MPO" else probe.format
            if kind not in IMAGE_TYPES:
                raise ServiceError(refused, 422)
            if probe.width * probe.height > MAX_PIXELS:
                raise ServiceError(too_large, 422)
            probe.load()
            image = probe.copy()
        if kind == "JPEG" and image.mode not in ("RGB", "L"):
            image = image.convert("RGB")
        out = io.BytesIO()
        image.save(out, format=kind)
    except ServiceError:
        raise
    except Image.DecompressionBombError:  # Pillow's own limit, met before ours
        raise ServiceError(too_large, 422) from None
    except Exception:  # noqa: BLE001 - Pillow raises many kinds on a damaged file: all refused
        raise ServiceError(refused, 422) from None
    return out.getvalue(), IMAGE_TYPES[kind]


def add_file(
    carrier: Carrier,
    actor: User,
    resource_id,
    kind: str,
    filename: str,
    data: bytes,
    title: str = "",
) -> ResourceFile:
    resource = _own_resource(carrier, actor, resource_id)
    title = (title or "").strip()
    problems = plain_text_problems(title, "title", 200, required=False)
    if kind not in (PHOTO, DOCUMENT):
        problems.append(Problem("invalid_kind", _l("Unknown kind of file."), "kind"))
    if not data:
        problems.append(Problem("required", _l("Choose a file."), "file"))
    if problems:
        raise ServiceError(problems, 422)
    limit = MAX_PHOTO_BYTES if kind == PHOTO else MAX_DOCUMENT_BYTES
    if len(data) > limit:
        raise ServiceError(
            Problem(
                "file_too_large",
                _l("The file is larger than %(mb)d MB.", mb=limit // (1024 * 1024)),
                "file",
            ),
            422,
        )
    if kind == PHOTO:
        data, content_type = _cleaned_image(data)
        fallback = f"photo-{resource.id}"
    else:
        if not data.startswith(b"%PDF-"):
            raise ServiceError(Problem("invalid_document", _l("Upload a PDF file."), "file"), 422)
        content_type, fallback = "application/pdf", f"document-{resource.id}.pdf"
    name = safe_filename(filename, fallback)
    if kind == DOCUMENT and not name.lower().endswith(".pdf"):
        name += ".pdf"
    # Stored before the lock is taken: a slow upload (to S3) must not hold the resource's
    # row, which bookings of it wait for. The file goes again if no row comes to name it
    # (and sweep_unreferenced_files finds what a killed process left).
    key = storage().put(data)
    try:
        lock_row(Resource, resource.id)  # two uploads at once cannot both take the last place
        count = db.session.scalar(
            select(func.count(ResourceFile.id)).where(
                ResourceFile.resource_id == resource.id, ResourceFile.kind == kind
            )
        )
        if count >= (MAX_PHOTOS if kind == PHOTO else MAX_DOCUMENTS):
            raise ServiceError(
                Problem(
                    "too_many_files",
                    _l("This resource has as many files of this kind as it may."),
                    "file",
                ),
                422,
            )
        found = ResourceFile(
            resource_id=resource.id, kind=kind, title=title, filename=name,
            content_type=content_type, size=len(data), storage_key=key, uploaded_by_id=actor.id,
        )  # fmt: skip
        db.session.add(found)
        db.session.flush()
        audit.record(
            actor, "resource_file_added", "resource_file", found.id, carrier_id=carrier.id,
            after={"resource": resource.name_zh, "file_kind": kind, "filename": name, "title": title},
        )  # fmt: skip
        db.session.commit()
    except BaseException:
        db.session.rollback()  # and let go of the lock
        storage().delete(key)  # no row, no file
        raise
    return found


def _carriers_file(carrier: Carrier, file_id) -> ResourceFile:
    """A file of this carrier's resources; not found for anyone else's."""
    found = by_id(ResourceFile, file_id)
    if found is None or found.resource.carrier_id != carrier.id:
        raise NotFound()
    return found


def resource_of_file(carrier: Carrier, file_id) -> int:
    return _carriers_file(carrier, file_id).resource_id


def remove_file(carrier: Carrier, actor: User, file_id) -> None:
    require_staff(actor, carrier.id)
    found = _carriers_file(carrier, file_id)
    key = found.storage_key
    audit.record(
        actor, "resource_file_removed", "resource_file", found.id, carrier_id=carrier.id,
        before={"resource": found.resource.name_zh, "file_kind": found.kind,
                "filename": found.filename},
    )  # fmt: skip
    db.session.delete(found)
    db.session.commit()
    storage().delete(key)  # after the row: a crash in between leaves an unreachable file only


def files_of(resource: Resource, kind: str | None = None) -> list[ResourceFile]:
    stmt = select(ResourceFile).where(ResourceFile.resource_id == resource.id)
    if kind:
        stmt = stmt.where(ResourceFile.kind == kind)
    return list(db.session.scalars(stmt.order_by(ResourceFile.created_at, ResourceFile.id)))


def file_for(user: User | None, file_id) -> tuple[ResourceFile, bytes]:
    """A file and its bytes, for someone who may see its resource; otherwise not found."""
    found = by_id(ResourceFile, file_id)
    if found is None:
        raise NotFound()
    if not (may_see(user, found.resource) or is_staff_of(user, found.resource.carrier_id)):
        raise NotFound()  # the carrier's staff see the files of a retired resource too
    data = storage().get(found.storage_key)
    if data is None:
        raise NotFound()
    return found, data


def sweep_unreferenced_files(now: datetime) -> int:
    """Remove stored files that no row names and that are older than a day. They are left by
    an upload whose transaction never committed (a crash, `kill -9`, a lost database), by a
    removal that stopped between its commit and the file's deletion, and by a write cut off
    half way. Returns how many were removed."""
    named = set(db.session.scalars(select(ResourceFile.storage_key)))
    db.session.rollback()  # no transaction held open while the store is listed
    store = storage()
    removed = 0
    for key, written in list(store.stored()):
        if key not in named and written < now - UNREFERENCED_GRACE:
            store.delete(key)
            removed += 1
    return removed
