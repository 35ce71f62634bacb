"""The REST API (FastAPI) and the web page (Gradio) in one ASGI app.

Routes (JSON answers use the keys of :func:`sigverify.verify`)::

    GET    /healthz                      liveness, model, counts (never needs the key)
    POST   /v1/writers                   {"id": ..., "name": ...}
    GET    /v1/writers                   list
    GET    /v1/writers/{id}              one writer and its references
    DELETE /v1/writers/{id}
    POST   /v1/writers/{id}/references   multipart, files in "files"
    POST   /v1/verify                    multipart: "query" + "writer_id", or "query" + "references" files
    POST   /v1/identify                  multipart: "query" (+ "top")
    GET    /v1/audit                     newest decisions first (read-only: no route changes it)
    /docs, /openapi.json                 API documentation (public: it holds no data)
    /                                    the web page

Bad input gets a 4xx JSON ``{"error": <kind>, "detail": <what and why>}``, never a 500.
"""

from __future__ import annotations

import hmac
import os
from typing import Any, Optional

from fastapi import Depends, FastAPI, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from pydantic import BaseModel, Field

from ..errors import ImageTooLarge, InputError, ModelError, SigverifyError
from .store import Store, StoreError

DEFAULT_MAX_UPLOAD_BYTES = 20 * 1024 * 1024
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


class WriterIn(BaseModel):
    id: str = Field(..., description="writer id: letters, digits and . _ @ + -")
    name: str = Field("", description="display name")


class ApiError(Exception):
    def __init__(self, status: int, error: str, detail: Any) -> None:
        self.status, self.error, self.detail = status, error, detail


def _status_for(exc: Exception) -> int:
    if isinstance(exc, StoreError):
        return exc.status
    if isinstance(exc, ImageTooLarge):
        return 413
    return 422


def create_app(
    store: Store,
    *,
    api_key: Optional[str] = None,
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
    ui: bool = True,
) -> FastAPI:
    """Build the app around one store (and so one model, loaded once per process)."""
    from .. import __version__

    app = FastAPI(
        title="sigverify",
        version=__version__,
        description="Offline handwritten-signature verification: enroll writers, verify questioned signatures, audit every decision.",
    )
    app.state.store = store

    def require_key(request: Request) -> None:
        if not api_key:
            return
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), api_key.encode()):
            raise ApiError(401, "unauthorized", "send the API key as 'Authorization: Bearer <key>'")

    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return JSONResponse({"error": exc.error, "detail": exc.detail}, status_code=exc.status, headers=headers)

    @app.exception_handler(SigverifyError)
    async def _sigverify_error(_request: Request, exc: SigverifyError) -> JSONResponse:
        return JSONResponse({"error": type(exc).__name__, "detail": str(exc)}, status_code=_status_for(exc))

    @app.exception_handler(ValueError)
    async def _value_error(_request: Request, exc: ValueError) -> JSONResponse:
        return JSONResponse({"error": type(exc).__name__, "detail": str(exc)}, status_code=422)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [f"{'.'.join(str(p) for p in e.get('loc', []))}: {e.get('msg')}" for e in exc.errors()]
        return JSONResponse({"error": "invalid request", "detail": "; ".join(problems)}, status_code=422)

    async def read_upload(upload: UploadFile, field: str) -> tuple[str, bytes]:
        name = upload.filename or field
        data = await upload.read(max_upload_bytes + 1)
        if len(data) > max_upload_bytes:
            raise ApiError(413, "ImageTooLarge", f"{name}: upload over the limit of {max_upload_bytes} bytes")
        if not data:
            raise ApiError(422, "InvalidImage", f"{name}: empty file")
        return name, data

    def client_of(request: Request) -> str:
        return f"{request.client.host if request.client else '?'} {request.headers.get('user-agent', '')}"[:256]

    auth = [Depends(require_key)]

    @app.get("/healthz", tags=["service"])
    def healthz() -> dict[str, Any]:
        return {"status": "ok", "model": store.artifact.name, "model_version": store.model_version, **store.counts()}

    @app.post("/v1/writers", status_code=201, dependencies=auth, tags=["writers"])
    def create_writer(writer: WriterIn) -> dict[str, Any]:
        return store.create_writer(writer.id, writer.name)

    @app.get("/v1/writers", dependencies=auth, tags=["writers"])
    def list_writers() -> list[dict[str, Any]]:
        return store.list_writers()

    @app.get("/v1/writers/{writer_id}", dependencies=auth, tags=["writers"])
    def get_writer(writer_id: str) -> dict[str, Any]:
        return store.get_writer(writer_id)

    @app.delete("/v1/writers/{writer_id}", dependencies=auth, tags=["writers"])
    def delete_writer(writer_id: str) -> dict[str, Any]:
        store.delete_writer(writer_id)
        return {"deleted": writer_id}

    @app.post("/v1/writers/{writer_id}/references", status_code=201, dependencies=auth, tags=["writers"])
    async def add_references(writer_id: str, files: list[UploadFile] = File(..., description="one or more reference images")) -> dict[str, Any]:
        uploads = [await read_upload(f, "files") for f in files]
        references = store.add_references(writer_id, uploads)
        return {"writer_id": writer_id, "references": references}

    @app.post("/v1/verify", dependencies=auth, tags=["verification"])
    async def verify_route(
        request: Request,
        query: UploadFile = File(..., description="the questioned signature"),
        writer_id: Optional[str] = Form(None, description="an enrolled writer"),
        references: Optional[list[UploadFile]] = File(None, description="reference images (instead of writer_id)"),
        method: str = Form("fusion-mean"),
        threshold: Optional[float] = Form(None),
        inconclusive_band: float = Form(0.1),
        tta: bool = Form(False, description="test-time augmentation (slower; the model's augmented calibration)"),
    ) -> dict[str, Any]:
        name, data = await read_upload(query, "query")
        if writer_id and references:
            raise ApiError(422, "invalid request", "give writer_id or references, not both")
        if writer_id:
            return store.verify(writer_id, data, method=method, threshold=threshold, inconclusive_band=inconclusive_band, tta=tta, client=client_of(request), filename=name)
        if not references:
            raise ApiError(422, "invalid request", "give writer_id (an enrolled writer) or reference files in 'references'")
        from ..api import verify

        reference_data = [(await read_upload(f, "references"))[1] for f in references]
        with store.lock:
            return verify(data, reference_data, model=store.artifact, method=method, threshold=threshold, inconclusive_band=inconclusive_band, tta=tta)

    @app.post("/v1/verify-document", dependencies=auth, tags=["verification"])
    async def verify_document_route(
        request: Request,
        page: UploadFile = File(..., description="a scanned page: image, multi-page TIFF or PDF"),
        writer_id: Optional[str] = Form(None, description="an enrolled writer"),
        references: Optional[list[UploadFile]] = File(None, description="reference images (instead of writer_id)"),
        cleaner: str = Form("unet", description="unet, cyclegan, classical or none"),
        reference_mode: str = Form("matched", description="matched (references cleaned too, ink levels matched, document calibration) or plain"),
        method: str = Form("fusion-mean"),
        threshold: Optional[float] = Form(None),
        min_score: Optional[float] = Form(None, description="detector score (default: the detector's)"),
    ) -> dict[str, Any]:
        name, data = await read_upload(page, "page")
        if writer_id and references:
            raise ApiError(422, "invalid request", "give writer_id or references, not both")
        if writer_id:
            result = store.verify_document(writer_id, data, cleaner=cleaner, reference_mode=reference_mode, method=method, threshold=threshold, min_score=min_score, client=client_of(request), filename=name)
        elif references:
            from ..api import verify_document

            reference_data = [(await read_upload(f, "references"))[1] for f in references]
            with store.lock:
                result = verify_document(data, reference_data, model=store.artifact, cleaner=cleaner, reference_mode=reference_mode, method=method, threshold=threshold, min_score=min_score)
        else:
            raise ApiError(422, "invalid request", "give writer_id (an enrolled writer) or reference files in 'references'")
        return document_json(result)

    @app.post("/v1/identify", dependencies=auth, tags=["verification"])
    async def identify_route(request: Request, query: UploadFile = File(...), top: int = Form(5)) -> dict[str, Any]:
        _, data = await read_upload(query, "query")
        if not 1 <= top <= 100:
            raise ApiError(422, "invalid request", "top must be between 1 and 100")
        return store.identify(data, top=top, client=client_of(request))

    @app.get("/v1/audit", dependencies=auth, tags=["audit"])
    def audit(limit: int = 100, writer_id: Optional[str] = None) -> list[dict[str, Any]]:
        return store.audit(limit=limit, writer_id=writer_id)

    if ui:
        # Offline by design: no usage analytics or version checks leave the machine.
        os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
        import gradio as gr

        from .ui import build_ui

        blocks = build_ui(store)
        app = gr.mount_gradio_app(app, blocks, path="/ui", auth=("api", api_key) if api_key else None)

        @app.get("/", include_in_schema=False)
        def root() -> RedirectResponse:
            return RedirectResponse("/ui/")

    return app


def document_json(result: dict[str, Any]) -> dict[str, Any]:
    """A verify-document answer for JSON: each cleaned crop becomes a base64 PNG."""
    import base64

    import cv2

    signatures = []
    for item in result["signatures"]:
        item = dict(item)
        ok, encoded = cv2.imencode(".png", item.pop("cleaned"))
        item["cleaned_png"] = base64.b64encode(encoded.tobytes()).decode() if ok else None
        signatures.append(item)
    return {**result, "signatures": signatures}


def is_loopback(host: str) -> bool:
    return host in LOOPBACK or host.startswith("127.")


def serve(
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    db: Optional[str] = None,
    model: Optional[str] = None,
    api_key: Optional[str] = None,
    ui: bool = True,
    seed_samples: bool = False,
    log=print,
) -> None:
    """Start the service with uvicorn (blocking)."""
    import uvicorn

    api_key = api_key or os.environ.get("SIGVERIFY_API_KEY") or None
    if not is_loopback(host) and not api_key:
        raise SigverifyError(
            f"refusing to listen on {host} without an API key: set --api-key or SIGVERIFY_API_KEY "
            "(without a key the service only binds to 127.0.0.1)"
        )
    store = Store(db, model=model)
    if seed_samples:
        enrolled = enroll_samples(store)
        if enrolled:
            log(f"enrolled sample writers {', '.join(enrolled)} from the bundled sample signatures")
    app = create_app(store, api_key=api_key, ui=ui)
    log(f"sigverify service: model {store.artifact.name}, store {store.url}")
    log(f"web page: http://{host if host != '0.0.0.0' else '127.0.0.1'}:{port}/   API docs: http://{host}:{port}/docs")
    uvicorn.run(app, host=host, port=port, log_level="info")


def enroll_samples(store: Store, count: int = 4) -> list[str]:
    """Enroll the bundled sample writers (first ``count`` genuine each) into an empty store."""
    from ..datasets import read_dataset
    from ..demo import samples_dir

    if store.counts()["writers"]:
        return []
    enrolled = []
    by_writer: dict[str, list] = {}
    for record in read_dataset(samples_dir()).records:
        if record.is_genuine:
            by_writer.setdefault(f"cedar-{record.writer}", []).append(record)
    for writer_id, records in sorted(by_writer.items()):
        records = sorted(records, key=lambda r: int(r.sample or 0))[:count]
        store.create_writer(writer_id, f"CEDAR sample writer {writer_id.split('-')[1]}")
        store.add_references(writer_id, [(os.path.basename(r.path), open(r.path, "rb").read()) for r in records])
        enrolled.append(writer_id)
    return enrolled
