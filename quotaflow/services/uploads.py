"""File uploads: checked by size and by content, stored under random names.

A file is accepted only if its bytes are one of the allowed kinds (PNG, JPEG, PDF,
XLSX, UTF-8 CSV or text) AND its extension names that same kind, so a renamed
executable or a script posing as a picture is refused. It is written under a random
name (never the user's), with an ``Upload`` row recording who sent it and which
unit's scope may see it.
"""

from __future__ import annotations

import hashlib
import io
import os
import secrets
import unicodedata
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy.orm import Session

from quotaflow import messages
from quotaflow.errors import Forbidden, NotFound, QuotaFlowError, code_kinds
from quotaflow.messages import _l
from quotaflow.services import audit
from quotaflow.services.uow import Context, unit_of_work
from quotaflow.store.models import OrgUnit, Upload, User

DEFAULT_MAX_BYTES = 10 * 1024 * 1024
CHUNK = 64 * 1024
# Kind -> (content type sent back, file extensions naming it, family the bytes show).
KINDS: dict[str, tuple[str, tuple[str, ...], str]] = {
    "png": ("image/png", (".png",), "png"),
    "jpeg": ("image/jpeg", (".jpg", ".jpeg"), "jpeg"),
    "pdf": ("application/pdf", (".pdf",), "pdf"),
    "xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", (".xlsx",),
             "xlsx"),
    "csv": ("text/csv; charset=utf-8", (".csv",), "text"),
    "text": ("text/plain; charset=utf-8", (".txt",), "text"),
}
EXTENSIONS = {ext: kind for kind, (_t, exts, _f) in KINDS.items() for ext in exts}
ACCEPT = ",".join(sorted(EXTENSIONS))  # for <input type="file" accept=...>



class UploadError(QuotaFlowError):
    """A refused file: a stable code and params (``limit`` reads as 10 MB)."""

    domain = "upload"
    CODE_KINDS = code_kinds(not_visible="not_found")
    CODES = messages.register(domain, {
        "no_file": _l("Choose a file."),
        "empty": _l("The file is empty."),
        "too_large": _l("The file is too large: at most %(limit)s is accepted."),
        "type_not_allowed": _l("Files of type %(extension)s are not accepted. Accepted: PNG, JPEG, PDF, XLSX, CSV and text."),
        "content_not_allowed": _l("The file's content is not one of the accepted types (PNG, JPEG, PDF, XLSX, CSV, text)."),
        "mismatch": _l("The file's content (%(detected)s) does not match its extension %(extension)s."),
        "not_visible": _l("That file is not available; choose it again."),
    })

    def __init__(self, code: str, params: Mapping[str, Any] | None = None) -> None:
        super().__init__(code, "", **(params or {}))


def readable_size(size: int) -> str:
    """A byte count people read: 10 MB, 512 KB, 900 B."""
    for unit, scale in (("MB", 1024 * 1024), ("KB", 1024)):
        if size >= scale:
            return f"{round(size / scale, 1):g} {unit}"
    return f"{size} B"


def read_limited(stream: BinaryIO, max_bytes: int) -> bytes:
    """Read the whole stream, refusing it as soon as it passes ``max_bytes``."""
    buffer = io.BytesIO()
    while True:
        chunk = stream.read(CHUNK)
        if not chunk:
            break
        buffer.write(chunk)
        if buffer.tell() > max_bytes:
            raise UploadError("too_large", {"limit": readable_size(max_bytes)})
    return buffer.getvalue()


def sniff(data: bytes) -> str | None:
    """The family the bytes belong to (png, jpeg, pdf, xlsx, text) or None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data.startswith(b"%PDF-"):
        return "pdf"
    if data.startswith(b"PK\x03\x04"):
        return "xlsx" if _is_xlsx(data) else None
    if b"\x00" in data:
        return None
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return "text"


def _is_xlsx(data: bytes) -> bool:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, ValueError, OSError):
        return False
    return "[Content_Types].xml" in names and any(n.startswith("xl/") for n in names)


def check_file(filename: str, data: bytes, max_bytes: int = DEFAULT_MAX_BYTES) -> str:
    """The accepted kind of a file (a key of ``KINDS``), or :class:`UploadError`."""
    if len(data) > max_bytes:
        raise UploadError("too_large", {"limit": readable_size(max_bytes)})
    if not data:
        raise UploadError("empty")
    extension = os.path.splitext(filename)[1].lower()
    kind = EXTENSIONS.get(extension)
    if kind is None:
        raise UploadError("type_not_allowed", {"extension": extension or filename})
    detected = sniff(data)
    if detected is None:
        raise UploadError("content_not_allowed")
    if detected != KINDS[kind][2]:
        raise UploadError("mismatch", {"detected": detected, "extension": extension})
    return kind


def safe_name(filename: str) -> str:
    """The user's file name for display and downloads: no folders, no control characters."""
    base = filename.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = "".join(c for c in base if unicodedata.category(c)[0] != "C").strip()
    return (cleaned or "upload")[:255]


def store_upload(
    session: Session,
    actor: User | None,
    unit: OrgUnit,
    filename: str,
    stream: BinaryIO,
    *,
    storage_dir: Path,
    max_bytes: int = DEFAULT_MAX_BYTES,
    remote_addr: str | None = None,
) -> Upload:
    """Check, store and record a file for ``unit``'s scope; commits, or writes nothing."""
    if not filename:
        raise UploadError("no_file")
    data = read_limited(stream, max_bytes)
    kind = check_file(filename, data, max_bytes)
    storage_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    storage_name = secrets.token_hex(16)
    path = storage_dir / storage_name
    # O_EXCL: a random name that somehow exists is never overwritten.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    try:
        with unit_of_work(session):
            upload = Upload(
                storage_name=storage_name, original_name=safe_name(filename),
                content_type=KINDS[kind][0], size=len(data),
                sha256=hashlib.sha256(data).hexdigest(), unit_id=unit.id,
                uploaded_by_id=actor.id if actor else None,
            )
            session.add(upload)
            session.flush()
            audit.record(session, actor, "upload_file", "upload", str(upload.id),
                         after={"name": upload.original_name, "size": upload.size,
                                "sha256": upload.sha256, "unit": unit.code},
                         remote_addr=remote_addr)
    except Exception:
        path.unlink(missing_ok=True)
        raise
    return upload


def upload_file_path(storage_dir: Path, upload: Upload) -> Path:
    return storage_dir / upload.storage_name


def get_upload(session: Session, upload_id: int) -> Upload | None:
    return session.get(Upload, upload_id)


# -- reads for the pages: an upload is seen by whoever may read its unit ------------------


def can_see(ctx: Context, upload: Upload | None) -> bool:
    return (upload is not None and ctx.principal is not None
            and ctx.principal.can("unit.read", upload.unit.path))


def visible_upload(ctx: Context, upload_id: int) -> Upload | None:
    """The upload if the reader may read its unit; None if absent or out of scope."""
    found = get_upload(ctx.session, upload_id)
    return found if can_see(ctx, found) else None


# -- storing a file for a unit (the API; the pages check the unit themselves) -----------

UPLOADS_DIR = "uploads"


def storage_dir(instance_path: str | Path) -> Path:
    """Where uploaded files live: ``<instance>/uploads``."""
    return Path(instance_path) / UPLOADS_DIR


def max_bytes(config: Mapping[str, Any]) -> int:
    """UPLOAD_MAX_BYTES from the app config, else QUOTAFLOW_UPLOAD_MAX_BYTES, else 10 MB."""
    configured = config.get("UPLOAD_MAX_BYTES") or os.environ.get("QUOTAFLOW_UPLOAD_MAX_BYTES")
    return int(configured) if configured else DEFAULT_MAX_BYTES


def upload_for_unit(ctx: Context, unit_code: str, filename: str, stream: BinaryIO, *,
                    directory: Path, limit: int = DEFAULT_MAX_BYTES) -> Upload:
    """Store a file for the unit ``unit_code`` (unit.write over it; absent when out of read
    scope) with the pages' use case; raises UploadError for a refused file."""
    from quotaflow.services import commands
    from quotaflow.store.queries import unit_by_code

    unit = unit_by_code(ctx.session, unit_code or "")
    principal = ctx.principal
    if unit is None or (principal is not None and not principal.can("unit.read", unit.path)):
        raise NotFound("not_found", "/unit")
    if principal is not None and not principal.can("unit.write", unit.path):
        raise Forbidden("forbidden", "/unit")
    return commands.store_upload(ctx, unit, filename, stream, storage_dir=directory,
                                 max_bytes=limit)
