"""The web page (Gradio): compare two signatures, verify against an enrolled writer, enroll a
writer, browse recent decisions."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import numpy as np

from ..errors import SigverifyError
from .store import Store, StoreError


def overlay(reference: np.ndarray, query: np.ndarray) -> np.ndarray:
    """RGB picture of two preprocessed signatures on white paper: strokes present in both are black,
    reference-only blue, query-only red."""
    ref = reference.astype(np.float32) / 255.0
    qry = query.astype(np.float32) / 255.0
    both = np.minimum(ref, qry)
    red_only = np.clip(qry - both, 0, 1)
    blue_only = np.clip(ref - both, 0, 1)
    image = np.ones(reference.shape + (3,), dtype=np.float32)
    image -= both[..., None]  # agreement: dark
    image[..., 1] -= red_only + blue_only  # remove green where only one has ink
    image[..., 0] -= blue_only  # blue: reference only
    image[..., 2] -= red_only  # red: query only
    return (np.clip(image, 0, 1) * 255).astype(np.uint8)


def _paper(image: np.ndarray) -> np.ndarray:
    """A preprocessed image (ink bright on 0) shown as dark ink on white paper."""
    return 255 - image


def _read(path: Optional[str], what: str) -> bytes:
    if not path:
        raise SigverifyError(f"please upload the {what}")
    return Path(path).read_bytes()


def _decision_markdown(result: dict[str, Any]) -> str:
    lines = [
        f"## Decision: {result['decision'].upper()}",
        f"**Score: {result['score'] * 100:.1f} %** (threshold {result['threshold'] * 100:.1f} %, method {result['method']}, "
        f"{result['n_references']} reference{'s' if result['n_references'] != 1 else ''}"
        f"{', test-time augmentation' if result.get('tta') else ''}, model {result['model']})",
    ]
    lines += [f"- warning: {w}" for w in result.get("warnings", [])]
    return "\n\n".join(lines)


def build_ui(store: Store):
    import gradio as gr

    from ..api import _Prepared, verify

    artifact = store.artifact
    default_threshold = float(artifact.calibration.get("single", {}).get("1", {}).get("threshold", 0.5))

    def compare(reference_path, query_path, threshold):
        try:
            reference = _read(reference_path, "reference signature")
            query = _read(query_path, "questioned signature")
            with store.lock:
                result = verify(query, [reference], model=artifact, method="single", threshold=float(threshold), inconclusive_band=0.0)
            ref_image = _Prepared(reference, artifact, store.max_pixels).image
            query_image = _Prepared(query, artifact, store.max_pixels).image
        except (SigverifyError, ValueError) as exc:
            return f"## Cannot compare\n\n{exc}", None, None, None
        return _decision_markdown(result), _paper(ref_image), _paper(query_image), overlay(ref_image, query_image)

    def writer_choices():
        return gr.update(choices=[w["id"] for w in store.list_writers()])

    def verify_enrolled(writer_id, query_path, method, tta):
        try:
            if not writer_id:
                raise SigverifyError("please choose an enrolled writer")
            result = store.verify(writer_id, _read(query_path, "questioned signature"), method=method, tta=bool(tta), client="web page")
        except (SigverifyError, ValueError) as exc:
            return f"## Cannot verify\n\n{exc}", None
        return _decision_markdown(result), result

    def enroll(writer_id, name, files):
        try:
            if not files:
                raise SigverifyError("please upload one or more reference signatures")
            writer_id = (writer_id or "").strip()
            try:
                store.get_writer(writer_id)
            except StoreError:
                store.create_writer(writer_id, name or "")
            uploads = [(Path(f).name, Path(f).read_bytes()) for f in files]
            added = store.add_references(writer_id, uploads)
        except (SigverifyError, ValueError, OSError) as exc:
            return f"Enrollment failed, nothing was stored: {exc}"
        total = store.get_writer(writer_id)["n_references"]
        return f"Enrolled {len(added)} reference(s) for **{writer_id}** ({total} in all)"

    def check_document(page_path, writer_id, reference_paths, cleaner):
        from ..api import verify_document
        from ..detection.detector import load_detector  # noqa: F401 - fails early without a detector

        try:
            if not page_path:
                raise SigverifyError("please upload a scanned page (image, TIFF or PDF)")
            data = Path(page_path).read_bytes()
            if writer_id:
                result = store.verify_document(writer_id, data, cleaner=cleaner, client="web page", filename=Path(page_path).name)
            elif reference_paths:
                references = [Path(p).read_bytes() for p in reference_paths]
                with store.lock:
                    result = verify_document(data, references, model=artifact, cleaner=cleaner)
            else:
                raise SigverifyError("choose an enrolled writer or upload reference signatures")
            from ..documents import load_pages

            first = load_pages(data)[0].image
        except (SigverifyError, ValueError, OSError) as exc:
            return f"## Cannot check the document\n\n{exc}", None, []
        picture = np.stack([first] * 3, axis=-1).copy()
        import cv2

        gallery = []
        for number, item in enumerate(result["signatures"], 1):
            x0, y0, x1, y1 = (int(round(v)) for v in item["box"])
            colour = {"genuine": (0, 150, 0), "forged": (200, 0, 0), "inconclusive": (220, 140, 0)}[item["decision"]]
            if item["page"] == 0:
                cv2.rectangle(picture, (x0, y0), (x1, y1), colour, max(2, first.shape[1] // 300))
                cv2.putText(picture, str(number), (x0, max(20, y0 - 8)), cv2.FONT_HERSHEY_SIMPLEX, max(0.8, first.shape[1] / 1200), colour, 2)
            score = "n/a" if item.get("score") is None else f"{item['score'] * 100:.1f} %"
            gallery.append((item["cleaned"], f"{number}: {item['decision']} ({score}), page {item['page'] + 1}"))
        lines = [f"## Document: {result['decision'].upper()}", result["message"] + "."]
        for number, item in enumerate(result["signatures"], 1):
            score = "n/a" if item.get("score") is None else f"{item['score'] * 100:.1f} %"
            lines.append(f"- signature {number} on page {item['page'] + 1}, box {[round(v) for v in item['box']]}: **{item['decision']}** (score {score})")
        return "\n".join(lines), picture, gallery

    def recent(limit):
        rows = store.audit(limit=int(limit))
        return [[r["id"], r["time"], r["action"], r["writer_id"], r["decision"], None if r["score"] is None else round(r["score"], 4), r["method"], r["client"]] for r in rows]

    with gr.Blocks(title="sigverify") as blocks:
        gr.Markdown("# sigverify\nOffline handwritten-signature verification. "
                    f"Model **{artifact.name}**. Scores are calibrated probabilities that the questioned signature is genuine.")
        with gr.Tab("Compare two signatures"):
            with gr.Row():
                reference_in = gr.Image(type="filepath", label="Reference signature", elem_id="compare-reference")
                query_in = gr.Image(type="filepath", label="Questioned signature", elem_id="compare-query")
            threshold_in = gr.Slider(0, 1, value=round(default_threshold, 3), step=0.01, label="Decision threshold", elem_id="compare-threshold")
            compare_button = gr.Button("Compare", variant="primary", elem_id="compare-button")
            compare_result = gr.Markdown(elem_id="compare-result")
            with gr.Row():
                ref_view = gr.Image(label="Reference, preprocessed", interactive=False, height=220)
                query_view = gr.Image(label="Questioned, preprocessed", interactive=False, height=220)
                overlay_view = gr.Image(label="Overlay: black both, blue reference only, red questioned only", interactive=False, height=220)
            compare_button.click(compare, [reference_in, query_in, threshold_in], [compare_result, ref_view, query_view, overlay_view])

        with gr.Tab("Verify against an enrolled writer"):
            with gr.Row():
                writer_in = gr.Dropdown(choices=[w["id"] for w in store.list_writers()], label="Enrolled writer", elem_id="verify-writer")
                refresh = gr.Button("Refresh writers", size="sm")
            from ..methods import METHODS

            # only what the served model is calibrated for (a model older than a method lacks it)
            method_in = gr.Dropdown(choices=[m for m in METHODS if m in artifact.calibration], value="fusion-mean", label="Method")
            tta_in = gr.Checkbox(value=False, label="Test-time augmentation (slower; rotated and rescaled copies averaged)", elem_id="verify-tta")
            verify_query = gr.Image(type="filepath", label="Questioned signature", elem_id="verify-query")
            verify_button = gr.Button("Verify", variant="primary", elem_id="verify-button")
            verify_result = gr.Markdown(elem_id="verify-result")
            verify_json = gr.JSON(label="Full answer")
            refresh.click(writer_choices, None, writer_in)
            verify_button.click(verify_enrolled, [writer_in, verify_query, method_in, tta_in], [verify_result, verify_json])

        with gr.Tab("Enroll a writer"):
            enroll_id = gr.Textbox(label="Writer id", elem_id="enroll-id")
            enroll_name = gr.Textbox(label="Display name")
            enroll_files = gr.File(file_count="multiple", type="filepath", label="Reference signatures", elem_id="enroll-files")
            enroll_button = gr.Button("Enroll", variant="primary", elem_id="enroll-button")
            enroll_result = gr.Markdown(elem_id="enroll-result")
            enroll_button.click(enroll, [enroll_id, enroll_name, enroll_files], enroll_result)

        with gr.Tab("Document"):
            gr.Markdown("Upload a scanned page: every signature on it is found, cleaned of stamps and printed lines, and verified.")
            document_in = gr.File(type="filepath", label="Scanned page (PNG, JPEG, TIFF or PDF)", elem_id="document-page")
            with gr.Row():
                document_writer = gr.Dropdown(choices=[w["id"] for w in store.list_writers()], label="Enrolled writer", elem_id="document-writer")
                document_refs = gr.File(file_count="multiple", type="filepath", label="... or reference signatures")
            document_cleaner = gr.Dropdown(choices=["unet", "cyclegan", "classical", "none"], value="unet", label="Cleaner")
            document_button = gr.Button("Check the document", variant="primary", elem_id="document-button")
            document_result = gr.Markdown(elem_id="document-result")
            with gr.Row():
                document_view = gr.Image(label="Signatures found", interactive=False, height=500)
                document_gallery = gr.Gallery(label="Cleaned signatures", height=500)
            document_button.click(check_document, [document_in, document_writer, document_refs, document_cleaner], [document_result, document_view, document_gallery])

        with gr.Tab("Recent decisions"):
            limit_in = gr.Slider(5, 200, value=20, step=5, label="Rows")
            audit_button = gr.Button("Refresh")
            audit_table = gr.Dataframe(headers=["id", "time", "action", "writer", "decision", "score", "method", "client"], interactive=False)
            audit_button.click(recent, limit_in, audit_table)
            blocks.load(recent, limit_in, audit_table)
    return blocks
