"""Photos and documents of resources (#16): operators upload them, they are checked (images
decoded and written again without metadata, documents PDF), stored through the storage
interface, shown to whoever may see the resource, and removed with their bytes."""

from __future__ import annotations

import base64
import io
import os
import struct
import uuid
import zlib
from datetime import timedelta
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import func, select

from booking.catalogue.files import safe_filename, sweep_unreferenced_files
from booking.catalogue.models import ResourceFile
from booking.extensions import db
from booking.jobs.service import run_job
from booking.storage import LocalStorage
from booking.types import utcnow
from tests.conftest import login, post_form
from tests.factories import make_carrier, make_resource, make_user

EN = {"Accept-Language": "en"}
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


# A PNG with a damaged data chunk: Pillow raises SyntaxError ("broken PNG file") on it,
# which is not one of the OSError kinds the upload used to catch (it answered 500).
BROKEN_PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAEAAAABACAIAAAAlC+aJAAAAYElEQVR4nO3PQQ0AIBDAMA78e0YEj4Zk"
    "VbDN7LN+tnXAqwa0BrQGtAa0BrQGtAa0BrQGtAa0BrQGtMy0BuYGtAa0BrQGtAa0BrQGtAa0BrQGtAa0"
    "BrQGtAa0BrQGtAa0C2J1AIYg73b4AAAAAEmcTkSuQmCC"
)


def png_header(width: int, height: int) -> bytes:
    """A PNG that says it is this large (a decompression bomb: the pixels are never there)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b""))
        + chunk(b"IEND", b"")
    )


def png_with_location() -> bytes:
    image = Image.new("RGB", (40, 30), (200, 30, 30))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # camera make: metadata the upload must not keep
    out = io.BytesIO()
    image.save(out, format="JPEG", exif=exif.tobytes())
    return out.getvalue()


@pytest.fixture
def site(app):
    op = make_user("op@example.com")
    carrier = make_carrier("CQ01", admin=op)
    make_carrier("CQ02", admin=make_user("op2@example.com"))
    sem = make_resource(carrier, "SEM")
    hidden = make_resource(carrier, "Probe", visibility="residents")
    make_user("visitor@example.com")
    return {"sem": sem, "hidden": hidden, "app": app}


def upload(client, resource_id, kind, name, data, title="", code="CQ01"):
    path = f"/operate/{code}/resources/{resource_id}/files"
    return post_form(
        client, path, {"kind": kind, "title": title, "file": (io.BytesIO(data), name)},
        token_from=path, headers=EN, content_type="multipart/form-data",
    )  # fmt: skip


def test_upload_show_and_remove(client, site):
    sem = site["sem"]
    login(client, "op@example.com")
    assert (
        upload(
            client, sem.id, "photo", "../../etc/SEM 正面.jpg", png_with_location(), "Front"
        ).status_code
        == 302
    )
    assert upload(client, sem.id, "document", "manual.pdf", PDF, "Manual").status_code == 302
    photo = db.session.scalar(select(ResourceFile).where(ResourceFile.kind == "photo"))
    assert photo.filename == "SEM_正面.jpg" and photo.content_type == "image/jpeg"
    stored = LocalStorage(Path(site["app"].config["UPLOAD_DIR"])).get(photo.storage_key)
    assert stored is not None and b"PhoneMaker" not in stored  # written again, metadata gone
    # Anyone who may see the resource sees them; the page shows the photo and lists the manual.
    client.get("/account/logout")
    anonymous = client.application.test_client()
    page = anonymous.get(f"/resources/{sem.id}", headers=EN).get_data(as_text=True)
    assert f"/files/{photo.id}/" in page and "Manual" in page
    shown = anonymous.get(f"/files/{photo.id}/whatever.jpg")
    assert shown.status_code == 200 and shown.content_type == "image/jpeg"
    assert shown.headers["Content-Disposition"].startswith("inline")
    assert shown.headers["X-Content-Type-Options"] == "nosniff"
    document = db.session.scalar(select(ResourceFile).where(ResourceFile.kind == "document"))
    got = anonymous.get(f"/files/{document.id}/manual.pdf")
    assert got.data == PDF and got.headers["Content-Disposition"].startswith("attachment")
    # Removing takes the row and the bytes.
    key, photo_id = photo.storage_key, photo.id
    login(client, "op@example.com")
    post_form(
        client,
        f"/operate/CQ01/resources/files/{photo_id}/remove",
        {},
        token_from=f"/operate/CQ01/resources/{sem.id}/files",
    )
    db.session.expire_all()
    assert db.session.get(ResourceFile, photo_id) is None
    path = os.path.join(site["app"].config["UPLOAD_DIR"], key[:2], key)
    assert not os.path.exists(path)
    assert anonymous.get(f"/files/{photo_id}/x.jpg").status_code == 404


@pytest.mark.parametrize(
    "kind, name, data, message",
    [
        ("photo", "evil.png", b"<script>alert(1)</script>", "JPEG, PNG or WebP"),
        ("photo", "x.gif", b"GIF89a" + b"\x00" * 20, "JPEG, PNG or WebP"),
        ("photo", "broken.png", BROKEN_PNG, "JPEG, PNG or WebP"),  # Pillow: SyntaxError
        ("photo", "bomb.png", png_header(60_000, 60_000), "too many pixels"),  # Pillow's limit
        ("photo", "big.png", png_header(8_000, 6_000), "too many pixels"),  # ours
        ("document", "x.pdf", b"MZ\x90\x00 not a pdf", "PDF"),
        ("document", "x.pdf", b"", "Choose a file"),
        ("spreadsheet", "x.pdf", PDF, "Unknown kind"),
        ("document", "big.pdf", b"%PDF-" + b"0" * (15 * 1024 * 1024), "larger than 15 MB"),
    ],
)
def test_bad_files_are_refused_and_change_nothing(client, site, kind, name, data, message):
    login(client, "op@example.com")
    before = stored_files(site["app"])
    refused = upload(client, site["sem"].id, kind, name, data)
    assert refused.status_code == 422 and message in refused.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(ResourceFile)) == 0
    assert stored_files(site["app"]) == before


def stored_files(app) -> set[str]:
    root = app.config["UPLOAD_DIR"]
    return {name for _dir, _subdirs, names in os.walk(root) for name in names}


def test_other_tenants_and_hidden_resources(client, site):
    login(client, "op@example.com")
    upload(client, site["hidden"].id, "document", "sop.pdf", PDF)
    hidden_file = db.session.scalar(select(ResourceFile))
    login(client, "op2@example.com")  # another carrier's operator
    assert upload(client, site["sem"].id, "document", "x.pdf", PDF, code="CQ02").status_code == 404
    assert post_form(client, f"/operate/CQ02/resources/files/{hidden_file.id}/remove", {},
                     token_from="/operate/CQ02/resources/").status_code == 404  # fmt: skip
    login(client, "visitor@example.com")  # not resident: the residents-only file is not there
    assert client.get(f"/files/{hidden_file.id}/sop.pdf").status_code == 404
    # A retired resource's files: its carrier's staff still see them, nobody else does.
    hidden = site["hidden"]
    hidden.status = "retired"
    db.session.commit()
    login(client, "op@example.com")
    assert client.get(f"/files/{hidden_file.id}/sop.pdf").status_code == 200
    login(client, "visitor@example.com")
    assert client.get(f"/files/{hidden_file.id}/sop.pdf").status_code == 404
    # A cross-site form (no CSRF token) uploads nothing.
    client.post(f"/operate/CQ01/resources/{site['sem'].id}/files",
                data={"kind": "document", "file": (io.BytesIO(PDF), "x.pdf")},
                content_type="multipart/form-data")  # fmt: skip
    assert db.session.scalar(select(func.count()).select_from(ResourceFile)) == 1


def test_file_names_are_never_paths():
    assert safe_filename("../../etc/passwd", "f") == "passwd"
    assert safe_filename("C:\\Users\\x\\手册 v2.pdf", "f") == "手册_v2.pdf"
    assert safe_filename("...", "fallback.pdf") == "fallback.pdf"
    assert safe_filename("a" * 300 + ".pdf", "f").__len__() == 100
    with pytest.raises(ValueError):
        LocalStorage(Path("/tmp"))._path("../../etc/passwd")


@pytest.fixture
def s3_store(app, monkeypatch):
    """A local server speaking the S3 protocol over HTTP (moto's), a bucket on it, and the
    app configured to keep uploads there."""
    import boto3
    from moto.server import ThreadedMotoServer

    from tests.conftest import free_port

    for name, value in (
        ("AWS_ACCESS_KEY_ID", "test-key"),
        ("AWS_SECRET_ACCESS_KEY", "test-secret"),
        ("AWS_DEFAULT_REGION", "cn-southwest-2"),
    ):
        monkeypatch.setenv(name, value)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    client = boto3.client("s3", endpoint_url=endpoint, region_name="cn-southwest-2")
    # A bucket of this test's own: moto keeps its buckets per process, not per server.
    bucket = f"booking-files-{uuid.uuid4().hex[:12]}"
    client.create_bucket(
        Bucket=bucket,
        CreateBucketConfiguration={"LocationConstraint": "cn-southwest-2"},
    )
    app.config.update(
        UPLOAD_STORAGE="s3",
        S3_BUCKET=bucket,
        S3_ENDPOINT_URL=endpoint,
        S3_REGION="cn-southwest-2",
    )
    yield client, bucket
    server.stop()


def test_files_in_an_s3_compatible_store(client, site, s3_store):
    s3, bucket = s3_store
    sem = site["sem"]
    login(client, "op@example.com")
    assert upload(client, sem.id, "document", "manual.pdf", PDF, "Manual").status_code == 302
    document = db.session.scalar(select(ResourceFile))
    stored = s3.get_object(Bucket=bucket, Key=document.storage_key)["Body"].read()
    assert stored == PDF
    assert client.get(f"/files/{document.id}/manual.pdf").data == PDF
    document_id = document.id
    post_form(client, f"/operate/CQ01/resources/files/{document_id}/remove", {},
              token_from=f"/operate/CQ01/resources/{sem.id}/files")  # fmt: skip
    listed = s3.list_objects_v2(Bucket=bucket).get("Contents", [])
    assert listed == []
    assert client.get(f"/files/{document_id}/manual.pdf").status_code == 404


def _aged(path: Path, days: float) -> None:
    then = (utcnow() - timedelta(days=days)).timestamp()
    os.utime(path, (then, then))


def test_files_no_row_names_are_swept_after_a_day(client, site, tmp_path):
    """What a crash leaves in the store (an upload whose row never committed, a write cut off
    half way) is removed by the daily job once a day old; files rows name, and young files
    that may belong to an upload in flight, stay."""
    site["app"].config["UPLOAD_DIR"] = str(tmp_path)  # this test's own store
    login(client, "op@example.com")
    assert upload(client, site["sem"].id, "document", "manual.pdf", PDF).status_code == 302
    kept = db.session.scalar(select(ResourceFile))
    root = Path(site["app"].config["UPLOAD_DIR"])
    store = LocalStorage(root)
    orphan, young = store.put(b"no row"), store.put(b"an upload on its way")
    cut_off = uuid.uuid4().hex  # LocalStorage.put writes <key>.part, then renames it
    partial = root / cut_off[:2] / f"{cut_off}.part"
    partial.parent.mkdir(exist_ok=True)
    partial.write_bytes(b"half")
    for key in (kept.storage_key, orphan):
        _aged(root / key[:2] / key, days=2)
    _aged(partial, days=2)
    (root / "README").write_text("not ours")  # names the store did not make are left alone

    assert run_job("file_sweep") == "2 unreferenced files removed"
    assert stored_files(site["app"]) == {kept.storage_key, young, "README"}
    assert client.get(f"/files/{kept.id}/manual.pdf").data == PDF
    assert run_job("file_sweep", now=utcnow() + timedelta(days=2)) == (
        "1 unreferenced files removed"  # the young one, a day later
    )
    assert stored_files(site["app"]) == {kept.storage_key, "README"}


def test_the_sweep_in_an_s3_compatible_store(client, site, s3_store):
    s3, bucket = s3_store
    login(client, "op@example.com")
    assert upload(client, site["sem"].id, "document", "manual.pdf", PDF).status_code == 302
    kept = db.session.scalar(select(ResourceFile)).storage_key
    orphan = uuid.uuid4().hex
    for key in (orphan, "exports/report.csv"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    assert sweep_unreferenced_files(utcnow()) == 0  # all written just now
    assert sweep_unreferenced_files(utcnow() + timedelta(days=2)) == 1
    listed = {item["Key"] for item in s3.list_objects_v2(Bucket=bucket)["Contents"]}
    assert listed == {kept, "exports/report.csv"}


def test_a_half_written_file_is_never_read():
    store = LocalStorage(Path("/tmp"))
    assert store.get("0" * 32 + ".part") is None
    with pytest.raises(ValueError):
        store._path("0" * 32 + ".part")


def test_a_resource_holds_at_most_eight_photos(client, site, tmp_path):
    site["app"].config["UPLOAD_DIR"] = str(tmp_path)
    login(client, "op@example.com")
    photo = png_with_location()
    for i in range(8):
        assert upload(client, site["sem"].id, "photo", f"p{i}.jpg", photo).status_code == 302
    stored = stored_files(site["app"])
    refused = upload(client, site["sem"].id, "photo", "ninth.jpg", photo)
    assert refused.status_code == 422
    assert "as many files of this kind as it may" in refused.get_data(as_text=True)
    assert db.session.scalar(select(func.count(ResourceFile.id))) == 8
    assert stored_files(site["app"]) == stored  # nothing left in the store either
