"""From page to decision with the shipped detector, cleaners and verifier."""

import io
import json

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

import sigverify
from conftest import REPO
from sigverify.cli import main
from sigverify.datasets import read_dataset
from sigverify.imageio import load_gray
from sigverify.synth.pages import make_page

SAMPLES = REPO / "src" / "sigverify" / "samples"


@pytest.fixture(scope="module")
def two_signature_page(tmp_path_factory):
    """A generated letter with two signatures of sample writer 19 (pasted from its genuine scans).

    No stamp, and both signatures at least 0.6 inch wide: this tests the pipeline, not the detector's
    hard cases (``sigverify evaluate-detector`` measures those).
    """
    signatures = [load_gray(p) for p in sorted((SAMPLES / "cedar-19" / "genuine").glob("*.png"))[4:5]]
    for seed in range(40, 120):  # the first seed whose page carries both signatures in full
        page = make_page(signatures, seed, n_signatures=2, stamp_probability=0.0)
        widths = page.boxes[:, 2] - page.boxes[:, 0]
        if len(page.boxes) == 2 and (widths >= 0.6 * page.dpi).all():
            break
    else:
        pytest.fail("no seed in 40-119 gives a page with two full-size signatures")
    path = tmp_path_factory.mktemp("pages") / "letter.png"
    Image.fromarray(page.image).save(path)
    return path, page


def references(writer="cedar-19"):
    return sorted(str(p) for p in (SAMPLES / writer / "genuine").glob("*.png"))[:4]


def test_page_with_two_signatures(two_signature_page):
    path, page = two_signature_page
    found = sigverify.detect(path)
    assert len(found) >= 2
    from sigverify.detection.boxes import iou_matrix

    overlaps = iou_matrix(np.array([f["box"] for f in found]), page.boxes)
    assert (overlaps.max(axis=0) > 0.5).all(), overlaps
    result = sigverify.verify_document(path, references(), cleaner="classical")
    assert result["found"] >= 2 and result["message"].startswith(f"{result['found']} signature(s) found")
    for item in result["signatures"]:
        assert set(item) >= {"page", "box", "detection_score", "cleaned", "decision", "score"}
        assert item["cleaned"].ndim == 2
    assert result["decision"] in ("genuine", "forged", "inconclusive")


def test_page_without_signature(tmp_path):
    blank = np.full((1650, 1275), 255, dtype=np.uint8)
    blank[200:230, 150:1100] = 0  # a printed rule, no signature
    path = tmp_path / "blank.png"
    Image.fromarray(blank).save(path)
    result = sigverify.verify_document(path, references())
    assert result["found"] == 0 and result["signatures"] == []
    assert result["decision"] == "inconclusive" and "no signature found" in result["message"]
    assert main(["verify-document", str(path), *references()]) == 2


def test_cli_json(two_signature_page, capsys, tmp_path):
    path, _ = two_signature_page
    code = main(["verify-document", str(path), *references(), "--json", "--cleaner", "classical", "--crops", str(tmp_path)])
    result = json.loads(capsys.readouterr().out)
    assert code in (0, 1, 2) and result["found"] >= 2
    assert all(len(item["box"]) == 4 for item in result["signatures"])
    assert len(list(tmp_path.glob("*-cleaned.png"))) == result["found"]


def test_api_route(tmp_path, two_signature_page):
    from sigverify.service.app import create_app
    from sigverify.service.store import Store

    path, _ = two_signature_page
    store = Store(str(tmp_path / "doc.db"))
    store.create_writer("w19")
    store.add_references("w19", [(p, open(p, "rb").read()) for p in references()])
    client = TestClient(create_app(store, ui=False))
    response = client.post("/v1/verify-document", files={"page": ("letter.png", path.read_bytes(), "image/png")}, data={"writer_id": "w19", "cleaner": "classical"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["found"] >= 2 and body["signatures"][0]["cleaned_png"]
    assert len(client.get("/v1/audit").json()) == body["found"]  # every signature's decision is audited
    bad = client.post("/v1/verify-document", files={"page": ("notes.pdf", b"%PDF-1.4 not really", "application/pdf")}, data={"writer_id": "w19"})
    assert bad.status_code == 422 and "notes.pdf" in bad.json()["detail"]
    assert client.post("/v1/verify-document", files={"page": ("letter.png", path.read_bytes(), "image/png")}).status_code == 422


def test_generated_cheque_is_deterministic_and_boxed():
    from sigverify.synth.cheque import make_cheque

    signatures = [load_gray(p) for p in references("cedar-13")]
    first, again = make_cheque(signatures, 5), make_cheque(signatures, 5)
    assert np.array_equal(first.image, again.image) and np.array_equal(first.boxes, again.boxes)
    assert first.image.shape == (int(2.75 * first.dpi), int(6.0 * first.dpi)) and len(first.boxes) == 1
    x0, y0, x1, y1 = first.boxes[0].astype(int)
    assert first.image[y0:y1, x0:x1].min() < 100  # the box holds the signature's ink


def test_cheque_to_decision(tmp_path, capsys):
    """A generated cheque through detection, cleaning and verification (CLI and API).

    The shipped detector never saw a cheque in training and finds the signature on only about a third
    of generated cheques (figure in the issue note); this seed is one it finds, so the test pins the
    cheque path end to end and fails if that regresses.
    """
    from sigverify.detection.boxes import iou_matrix
    from sigverify.synth.cheque import make_cheque

    cheque = make_cheque([load_gray(p) for p in references("cedar-13")], 5)
    path = tmp_path / "cheque.png"
    Image.fromarray(cheque.image).save(path)
    result = sigverify.verify_document(path, references("cedar-13"), cleaner="classical")
    assert result["found"] >= 1
    boxes = np.array([item["box"] for item in result["signatures"]])
    assert iou_matrix(boxes, cheque.boxes).max() > 0.5
    code = main(["verify-document", str(path), *references("cedar-13"), "--json"])
    assert code in (0, 1, 2) and json.loads(capsys.readouterr().out)["found"] >= 1


@pytest.fixture
def tobacco_page(tobacco_root):
    from sigverify.datasets.tobacco import read_tobacco800

    pages = [p for p in read_tobacco800(tobacco_root) if len(p.signatures) == 1]
    return sorted(pages, key=lambda p: p.path)[0]


def test_tobacco_page_to_decision(tobacco_page):
    """A real Tobacco-800 page (the first, by name, with one annotated signature) from page to decision."""
    from sigverify.detection.boxes import iou_matrix

    result = sigverify.verify_document(tobacco_page.path, references(), cleaner="unet")
    assert result["found"] >= 1 and result["decision"] in ("genuine", "forged", "inconclusive")
    boxes = np.array([item["box"] for item in result["signatures"]])
    assert iou_matrix(boxes, np.array([b.as_list() for b in tobacco_page.signatures])).max() > 0.5
