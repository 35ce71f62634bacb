"""The enrollment store: writers, their reference embeddings, and an append-only audit log.

SQLAlchemy over any database URL (a SQLite file by default); the schema is created and upgraded
with Alembic migrations (``sigverify/service/migrations``) when a store is opened. Every change is
one transaction: a request that fails (an unreadable upload among several, an unknown writer ...)
leaves the store exactly as it was.

References keep the model version of their embedding. When the model changes, embeddings are
recomputed from the stored reference image, or, when the image was not kept, refused with
:class:`ModelVersionMismatch` (they cannot be compared with the new model's).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import re
import threading
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
from sqlalchemy import (
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    create_engine,
    event,
    select,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship, sessionmaker

from ..errors import InputError, SigverifyError

WRITER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$")


class StoreError(SigverifyError):
    """Base of the store's errors; ``status`` is the HTTP status the API answers with."""

    status = 400


class WriterNotFound(StoreError):
    status = 404


class WriterExists(StoreError):
    status = 409


class NoReferences(StoreError):
    status = 409


class ModelVersionMismatch(StoreError):
    status = 409


class InvalidWriterId(StoreError):
    status = 422


@contextlib.contextmanager
def named(name: str):
    """Re-raise input errors about anonymous uploaded bytes under the upload's file name."""
    try:
        yield
    except InputError as exc:
        if name and exc.source.startswith("<"):
            raise type(exc)(name, exc.reason) from None
        raise


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


class Base(DeclarativeBase):
    pass


class Writer(Base):
    __tablename__ = "writers"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    name: Mapped[str] = mapped_column(String(256), default="")
    created: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    references: Mapped[list["Reference"]] = relationship(back_populates="writer", cascade="all, delete-orphan", passive_deletes=True)


class Reference(Base):
    __tablename__ = "references"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    writer_id: Mapped[str] = mapped_column(ForeignKey("writers.id", ondelete="CASCADE"), index=True)
    filename: Mapped[str] = mapped_column(String(512), default="")
    image_sha256: Mapped[str] = mapped_column(String(64))
    pixel_sha256: Mapped[str] = mapped_column(String(64))
    embedding: Mapped[bytes] = mapped_column(LargeBinary)
    embedding_dim: Mapped[int] = mapped_column(Integer)
    model_version: Mapped[str] = mapped_column(String(256))
    added: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    expires: Mapped[Optional[dt.datetime]] = mapped_column(DateTime, nullable=True)
    image: Mapped[Optional[bytes]] = mapped_column(LargeBinary, nullable=True)
    writer: Mapped[Writer] = relationship(back_populates="references")


class AuditEntry(Base):
    """One decision. No foreign key: the record outlives a deleted writer."""

    __tablename__ = "audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    time: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, index=True)
    action: Mapped[str] = mapped_column(String(32))
    writer_id: Mapped[Optional[str]] = mapped_column(String(128), nullable=True, index=True)
    query_sha256: Mapped[str] = mapped_column(String(64))
    reference_ids: Mapped[str] = mapped_column(Text, default="[]")
    model_version: Mapped[str] = mapped_column(String(256))
    method: Mapped[str] = mapped_column(String(64))
    threshold: Mapped[Optional[float]] = mapped_column(Float, nullable=True)
    score: Mapped[Optional[float]] = mapped_column(Float, nullable=True)
    decision: Mapped[str] = mapped_column(String(32))
    client: Mapped[str] = mapped_column(String(256), default="")
    details: Mapped[str] = mapped_column(Text, default="{}")


def database_url(db: Optional[str]) -> str:
    """A SQLAlchemy URL from ``--db``: a URL is kept, a file path becomes ``sqlite:///<abs path>``."""
    if not db:
        db = "sigverify.db"
    if "://" in db:
        return db
    return f"sqlite:///{Path(db).expanduser().resolve()}"


def _sqlite_pragmas(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(connection, _record) -> None:  # pragma: no cover - trivial
        cursor = connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.close()


def migrate(engine: Engine) -> None:
    """Create or upgrade the schema to the newest Alembic revision."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def _writer_dict(writer: Writer, n_references: int) -> dict[str, Any]:
    return {"id": writer.id, "name": writer.name, "created": writer.created.isoformat() + "Z", "n_references": n_references}


def _reference_dict(reference: Reference) -> dict[str, Any]:
    return {
        "id": reference.id,
        "writer_id": reference.writer_id,
        "filename": reference.filename,
        "image_sha256": reference.image_sha256,
        "model_version": reference.model_version,
        "added": reference.added.isoformat() + "Z",
        "expires": reference.expires.isoformat() + "Z" if reference.expires else None,
        "image_stored": reference.image is not None,
    }


def _stored_images(references: list[Reference], writer_id: str, needed_because: str, instead: str) -> list[bytes]:
    """The references' stored images, or :class:`NoReferences` naming those that were not kept."""
    missing = [r.id for r in references if r.image is None]
    if missing:
        raise NoReferences(f"references {missing} of {writer_id!r} have no stored image, and {needed_because}: enroll them again with images kept, or {instead}")
    return [r.image for r in references]


def _audit_dict(entry: AuditEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "time": entry.time.isoformat() + "Z",
        "action": entry.action,
        "writer_id": entry.writer_id,
        "query_sha256": entry.query_sha256,
        "reference_ids": json.loads(entry.reference_ids),
        "model_version": entry.model_version,
        "method": entry.method,
        "threshold": entry.threshold,
        "score": entry.score,
        "decision": entry.decision,
        "client": entry.client,
        "details": json.loads(entry.details),
    }


class Store:
    """Enrollment store bound to one database and one model.

    Parameters
    ----------
    db
        SQLAlchemy URL or SQLite file path (default ``sigverify.db``).
    model
        Model path or artifact (default: the shipped model), loaded once.
    keep_images
        Store reference images, so embeddings can be recomputed for a new model version.
    """

    def __init__(self, db: Optional[str] = None, *, model: Any = None, keep_images: bool = True, max_pixels: Optional[int] = None) -> None:
        from ..api import load_model
        from ..imageio import DEFAULT_MAX_PIXELS

        self.url = database_url(db)
        self.engine = create_engine(self.url, future=True)
        if self.engine.dialect.name == "sqlite":
            _sqlite_pragmas(self.engine)
        migrate(self.engine)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self.artifact = load_model(model)
        self.keep_images = keep_images
        self.max_pixels = max_pixels or DEFAULT_MAX_PIXELS
        # One inference at a time: the two cores are better used by one batched call than by
        # several threads fighting over them; SQLite writes are serialised anyway.
        self.lock = threading.RLock()
        self._documents: dict[tuple, Any] = {}  # the last writer's cleaned references (document path)

    @property
    def model_version(self) -> str:
        return self.artifact.version

    # ------------------------------------------------------------------ writers

    def create_writer(self, writer_id: str, name: str = "") -> dict[str, Any]:
        if not isinstance(writer_id, str) or not WRITER_ID.match(writer_id):
            raise InvalidWriterId(
                f"invalid writer id {writer_id!r}: 1-128 characters, letters, digits and . _ @ + - (not first)"
            )
        with self.sessions.begin() as session:
            if session.get(Writer, writer_id) is not None:
                raise WriterExists(f"writer {writer_id!r} already exists")
            writer = Writer(id=writer_id, name=name or "", created=utcnow())
            session.add(writer)
        return _writer_dict(writer, 0)

    def _writer(self, session: Session, writer_id: str) -> Writer:
        writer = session.get(Writer, writer_id)
        if writer is None:
            raise WriterNotFound(f"unknown writer {writer_id!r}")
        return writer

    def get_writer(self, writer_id: str) -> dict[str, Any]:
        with self.sessions() as session:
            writer = self._writer(session, writer_id)
            references = [_reference_dict(r) for r in writer.references]
            return {**_writer_dict(writer, len(references)), "references": references}

    def list_writers(self) -> list[dict[str, Any]]:
        with self.sessions() as session:
            writers = session.scalars(select(Writer).order_by(Writer.id)).all()
            return [_writer_dict(w, len(w.references)) for w in writers]

    def delete_writer(self, writer_id: str) -> None:
        with self.sessions.begin() as session:
            session.delete(self._writer(session, writer_id))

    # ------------------------------------------------------------------ references

    def _prepare(self, files: Sequence[tuple[str, bytes]]) -> list[dict[str, Any]]:
        """Decode, preprocess and embed every upload first; any failure rejects the whole batch."""
        from ..api import _Prepared, _vectors

        prepared = []
        for filename, data in files:
            if not data:
                raise InputError(filename or "upload", "empty file")
            with named(filename):
                item = _Prepared(data, self.artifact, self.max_pixels)
            prepared.append((filename, data, item))
        with self.lock:
            embeddings = _vectors(self.artifact, [p for _, _, p in prepared], False, True)
        return [
            {"filename": filename, "data": data, "sha": item.byte_hash or "", "pixel": item.pixel_hash, "embedding": embedding}
            for (filename, data, item), embedding in zip(prepared, embeddings)
        ]

    def add_references(
        self, writer_id: str, files: Sequence[tuple[str, bytes]], *, expires: Optional[dt.datetime] = None
    ) -> list[dict[str, Any]]:
        """Enroll reference images for an existing writer (all or nothing)."""
        if not files:
            raise InputError("files", "no reference images given")
        with self.sessions() as session:
            self._writer(session, writer_id)  # 404 before any decoding work
        items = self._prepare(files)
        with self.sessions.begin() as session:
            self._writer(session, writer_id)
            added = []
            for item in items:
                reference = Reference(
                    writer_id=writer_id,
                    filename=item["filename"][:512],
                    image_sha256=item["sha"],
                    pixel_sha256=item["pixel"],
                    embedding=item["embedding"].astype(np.float32).tobytes(),
                    embedding_dim=int(item["embedding"].shape[0]),
                    model_version=self.model_version,
                    added=utcnow(),
                    expires=expires,
                    image=item["data"] if self.keep_images else None,
                )
                session.add(reference)
                added.append(reference)
            session.flush()
            return [_reference_dict(r) for r in added]

    def _current_references(self, session: Session, writer_id: str) -> list[Reference]:
        """The writer's unexpired references, re-embedded for the current model when needed."""
        writer = self._writer(session, writer_id)
        now = utcnow()
        references = [r for r in writer.references if r.expires is None or r.expires > now]
        if not references:
            raise NoReferences(f"writer {writer_id!r} has no (unexpired) references; enroll some first")
        stale = [r for r in references if r.model_version != self.model_version]
        if stale:
            missing = [r.id for r in stale if r.image is None]
            if missing:
                raise ModelVersionMismatch(
                    f"references {missing} of {writer_id!r} were embedded by another model version and their images "
                    f"were not kept: enroll them again for model {self.model_version}"
                )
            items = self._prepare([(r.filename, r.image) for r in stale])
            for reference, item in zip(stale, items):
                reference.embedding = item["embedding"].astype(np.float32).tobytes()
                reference.embedding_dim = int(item["embedding"].shape[0])
                reference.model_version = self.model_version
        return references

    # ------------------------------------------------------------------ decisions

    def _audit(self, session: Session, action: str, writer_id: Optional[str], query_sha: str, reference_ids: list[int], result: dict[str, Any], client: str, details: dict) -> int:
        entry = AuditEntry(
            time=utcnow(),
            action=action,
            writer_id=writer_id,
            query_sha256=query_sha,
            reference_ids=json.dumps(reference_ids),
            model_version=self.model_version,
            method=result.get("method", ""),
            threshold=result.get("threshold"),
            score=result.get("score"),
            decision=result.get("decision", ""),
            client=client[:256],
            details=json.dumps(details),
        )
        session.add(entry)
        session.flush()
        return entry.id

    def verify(
        self,
        writer_id: str,
        query: bytes,
        *,
        method: str = "fusion-mean",
        threshold: Optional[float] = None,
        inconclusive_band: float = 0.1,
        tta: bool = False,
        client: str = "",
        filename: str = "query",
        document: Any = None,
    ) -> dict[str, Any]:
        """Verify a query image against an enrolled writer; the decision is written to the audit log.

        ``tta``: test-time augmentation of the query and the references (the stored reference images
        are re-embedded augmented, so they must have been kept); ``document``: the writer's
        :class:`~sigverify.cleaning.document.DocumentReferences`, for a crop from a page (see
        :meth:`verify_document`)."""
        from ..api import verify

        if not query:
            raise InputError(filename, "empty file")
        with self.sessions.begin() as session:
            references = self._current_references(session, writer_id)
            if document is not None:  # the document path: cleaned references, and their calibration
                compared, hashes, calibration = document.images, None, document.calibration
            elif tta:  # augmented vectors of the stored images; the plain stored embeddings would not match
                images = _stored_images(references, writer_id, "test-time augmentation re-embeds the references", "verify without tta")
                compared, hashes, calibration = images, None, None
            else:
                # The store keeps the vectors the methods compare; verify() takes them as represent() lays them out.
                compared = list(self.artifact.to_represented(np.stack([np.frombuffer(r.embedding, dtype=np.float32) for r in references])))
                hashes, calibration = [(r.image_sha256, r.pixel_sha256) for r in references], None
            with self.lock, named(filename):
                result = verify(
                    query,
                    compared,
                    model=self.artifact,
                    method=method,
                    threshold=threshold,
                    inconclusive_band=inconclusive_band,
                    tta=tta,
                    reference_hashes=hashes,
                    calibration=calibration,
                )
            if document is not None:
                document.add_warnings(result)
            result["writer_id"] = writer_id
            result["reference_ids"] = [r.id for r in references]
            result["audit_id"] = self._audit(
                session, "verify", writer_id, hashlib.sha256(query).hexdigest(), result["reference_ids"], result, client,
                {"warnings": result["warnings"], "flags": result["flags"]},
            )
        return result

    def verify_document(
        self,
        writer_id: str,
        page: bytes,
        *,
        cleaner: str = "unet",
        reference_mode: str = "matched",
        method: str = "fusion-mean",
        threshold: Optional[float] = None,
        inconclusive_band: float = 0.1,
        min_score: Optional[float] = None,
        client: str = "",
        filename: str = "page",
    ) -> dict[str, Any]:
        """Detect, clean and verify every signature on a page against an enrolled writer; each
        signature's decision is written to the audit log.

        ``reference_mode="matched"`` (default) cleans the writer's stored reference images with the
        same cleaner and matches each crop's ink levels to them (see
        :func:`sigverify.verify_document`); it needs the reference images, kept by default."""
        from ..api import verify_document
        from ..cleaning.document import REFERENCE_MODES, encode_png, prepare_document_references

        if not page:
            raise InputError(filename, "empty file")
        if reference_mode not in REFERENCE_MODES:
            raise InputError("reference_mode", f"choose one of {', '.join(REFERENCE_MODES)}")
        with self.sessions() as session:
            references = self._current_references(session, writer_id)  # unknown writer / no references: fail first
            document = None
            if reference_mode == "matched":
                images = _stored_images(references, writer_id, "the document path cleans the references too", "use reference_mode 'plain'")
                key = (self.model_version, cleaner, tuple(sorted(r.id for r in references)))
                with self.lock:
                    document = self._documents.get(key)
                    if document is None:
                        document = prepare_document_references(images, self.artifact, cleaner, max_pixels=self.max_pixels)
                        self._documents = {key: document}  # one writer's set at a time: memory stays flat
        counter = iter(range(1, 1000))

        def verifier(cleaned: np.ndarray, dpi: Optional[float]) -> dict[str, Any]:
            crop = encode_png(cleaned, dpi) if document is None else document.render_query(cleaned, dpi)
            return self.verify(
                writer_id, crop, method=method, threshold=threshold, inconclusive_band=inconclusive_band, client=client,
                filename=f"{filename} signature {next(counter)}", document=document,
            )

        with named(filename):
            result = verify_document(page, verifier=verifier, model=self.artifact, cleaner=cleaner, min_score=min_score)
        result["reference_mode"] = reference_mode
        return result

    def identify(self, query: bytes, *, top: int = 5, client: str = "") -> dict[str, Any]:
        """The enrolled writers nearest to a query (fusion-mean score, calibrated), best first."""
        from ..api import _Prepared, _vectors
        from ..calibration import pick_entry, to_probability
        from ..methods import raw_scores

        if not query:
            raise InputError("query", "empty file")
        with named("query"):
            prepared = _Prepared(query, self.artifact, self.max_pixels)
        with self.lock:
            query_embedding = _vectors(self.artifact, [prepared], False, True)
        candidates = []
        with self.sessions.begin() as session:
            for writer in session.scalars(select(Writer)).all():
                try:
                    references = self._current_references(session, writer.id)
                except (NoReferences, ModelVersionMismatch):
                    continue
                refs = np.stack([np.frombuffer(r.embedding, dtype=np.float32) for r in references])
                raw = raw_scores("fusion-mean", refs, query_embedding, comparator=self.artifact.comparator)
                entry = pick_entry(self.artifact.calibration, "fusion-mean", len(refs))
                candidates.append({"writer_id": writer.id, "name": writer.name, "score": float(to_probability(entry, raw)[0]), "n_references": len(refs)})
            candidates.sort(key=lambda c: -c["score"])
            result = {"candidates": candidates[:top], "method": "fusion-mean", "model": self.artifact.name, "model_version": self.model_version}
            best = candidates[0] if candidates else {}
            self._audit(
                session, "identify", best.get("writer_id"), hashlib.sha256(query).hexdigest(), [],
                {"method": "fusion-mean", "score": best.get("score"), "decision": "identified" if best else "no-candidates"},
                client, {"top": [c["writer_id"] for c in candidates[:top]]},
            )
        return result

    def audit(self, *, limit: int = 100, writer_id: Optional[str] = None) -> list[dict[str, Any]]:
        """The newest audit rows first."""
        with self.sessions() as session:
            query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(max(1, min(limit, 10_000)))
            if writer_id:
                query = query.where(AuditEntry.writer_id == writer_id)
            return [_audit_dict(e) for e in session.scalars(query).all()]

    def counts(self) -> dict[str, int]:
        from sqlalchemy import func

        with self.sessions() as session:
            return {
                "writers": session.scalar(select(func.count()).select_from(Writer)) or 0,
                "references": session.scalar(select(func.count()).select_from(Reference)) or 0,
                "audit": session.scalar(select(func.count()).select_from(AuditEntry)) or 0,
            }


_stores: dict[tuple[str, str], Store] = {}


def open_store(db: Optional[str] = None, model: Any = None) -> Store:
    """A cached store per (database, model)."""
    key = (database_url(db), str(model))
    if key not in _stores:
        _stores[key] = Store(db, model=model)
    return _stores[key]


def verify_enrolled(query_path: str, writer_id: str, *, db: Optional[str] = None, model: Any = None, method: str = "fusion-mean", threshold: Optional[float] = None, client: str = "cli") -> dict[str, Any]:
    """CLI helper: verify an image file against an enrolled writer."""
    from ..imageio import read_bytes

    data = read_bytes(query_path)
    return open_store(db, model).verify(writer_id, data, method=method, threshold=threshold, client=client, filename=str(query_path))
