"""The document path: ink-level matching, cleaned references and the document calibration."""

import dataclasses

import numpy as np
import pytest
from PIL import Image

import sigverify
from conftest import REPO
from sigverify.cleaning.document import load_document_calibration, prepare_document_references
from sigverify.cleaning.ink import QUANTILES, ink_quantiles, match_ink_levels, reference_ink_levels
from sigverify.errors import ReferencesError
from sigverify.imageio import load_gray
from sigverify.synth.pages import make_page

SAMPLES = REPO / "src" / "sigverify" / "samples"


def references(writer: str) -> list[str]:
    return sorted(str(p) for p in (SAMPLES / writer / "genuine").glob("*.png"))[:4]


def strokes(levels=(60, 120)) -> np.ndarray:
    image = np.full((60, 120), 250, dtype=np.uint8)
    image[10:50, 10:30] = levels[0]
    image[10:50, 60:80] = levels[1]
    return image


def test_matching_takes_the_target_levels_and_keeps_the_paper():
    image = strokes()
    matched = match_ink_levels(image, np.linspace(10, 90, len(QUANTILES)))
    assert (matched[:3, :] == 250).all() and (matched[:, 36:54] == 250).all()  # paper away from the strokes
    dark, light = matched[30, 20], matched[30, 70]
    # Two equally large levels near mid-ranks 0.25 and 0.75 of a 10..90 ramp (the strokes' thin
    # halo of paper takes the top ranks); darker stays darker.
    assert 20 <= dark <= 40 and 55 <= light <= 75 and dark < light
    assert len(np.unique(matched[15:45, 15:25])) == 1  # equal pixels (inside the mask) stay equal


def test_a_bilevel_crop_takes_the_median_ink_level():
    bilevel = strokes((0, 0))
    target = np.linspace(40, 140, len(QUANTILES))
    assert match_ink_levels(bilevel, target)[30, 20] == 90


def test_matching_leaves_blank_images_alone_and_checks_the_target():
    blank = np.full((40, 40), 255, dtype=np.uint8)
    assert match_ink_levels(blank, np.zeros(len(QUANTILES))) is blank
    assert (ink_quantiles(blank) == 255).all()
    with pytest.raises(ValueError, match="101 quantiles"):
        match_ink_levels(strokes(), np.zeros(5))
    with pytest.raises(ValueError):
        reference_ink_levels([])


def test_reference_levels_are_the_mean_quantiles():
    levels = reference_ink_levels([strokes((60, 60)), strokes((100, 100))])
    assert levels.shape == (101,) and np.allclose(levels, 80)


def test_shipped_calibration_matches_the_shipped_models():
    artifact = sigverify.load_model()
    calibration = load_document_calibration(artifact, "unet")
    assert calibration is not None, "weights/document-unet.json does not match the shipped verifier and U-Net: rerun scripts/calibrate_document.py"
    assert set(calibration["calibration"]) >= {"fusion-mean", "writer-threshold"}
    assert not set(calibration["dev_writers"]) & set(artifact.metadata["training"]["test_writers"])
    other = dataclasses.replace(artifact, metadata={**artifact.metadata, "version": "another-version"})
    assert load_document_calibration(other, "unet") is None


def test_document_references_clean_the_images_and_refuse_embeddings():
    artifact = sigverify.load_model()
    document = prepare_document_references(references("cedar-19"), artifact, "unet")
    assert len(document.images) == 4 and document.calibration is not None and document.warnings == []
    uncalibrated = prepare_document_references(references("cedar-19"), artifact, "none")
    assert uncalibrated.calibration is None and "no document calibration" in uncalibrated.warnings[0]
    assert document.method_warnings("fusion-mean", 4) == []
    assert "weak on cleaned crops" in document.method_warnings("wd-logreg", 4)[0]
    with pytest.raises(ValueError, match="needs their images"):
        prepare_document_references([sigverify.represent(references("cedar-19")[0])[0]], artifact, "unet")


def test_matched_document_path_prefers_the_right_writer(tmp_path):
    """Two signatures of sample writer 19 on a generated letter: against writer 19's references they
    must score higher than against writer 13's, and embeddings as references are refused."""
    signatures = [load_gray(references("cedar-19")[0])]
    page = make_page(signatures, 41, n_signatures=2, stamp_probability=0.0)
    path = tmp_path / "letter.png"
    Image.fromarray(page.image).save(path)
    right = sigverify.verify_document(path, references("cedar-19")[1:])
    wrong = sigverify.verify_document(path, references("cedar-13"))
    assert right["reference_mode"] == "matched" and right["found"] >= 1 and right["found"] == wrong["found"]
    for mine, theirs in zip(right["signatures"], wrong["signatures"]):
        assert mine["score"] > theirs["score"]
        assert not any("no document calibration" in w for w in mine["warnings"])
    plain = sigverify.verify_document(path, references("cedar-19")[1:], reference_mode="plain")
    assert plain["reference_mode"] == "plain" and plain["found"] == right["found"]
    with pytest.raises(ReferencesError):
        sigverify.verify_document(path, list(sigverify.represent(references("cedar-19"))))
    with pytest.raises(ValueError, match="reference_mode"):
        sigverify.verify_document(path, references("cedar-19"), reference_mode="fancy")


def test_store_document_path_needs_the_reference_images(tmp_path):
    from sigverify.service.store import NoReferences, Store

    page = make_page([load_gray(references("cedar-19")[0])], 41, n_signatures=1, stamp_probability=0.0)
    data = (tmp_path / "page.png")
    Image.fromarray(page.image).save(data)
    store = Store(str(tmp_path / "doc.db"), keep_images=False)
    store.create_writer("w19")
    store.add_references("w19", [(p, open(p, "rb").read()) for p in references("cedar-19")[1:]])
    with pytest.raises(NoReferences, match="no stored image"):
        store.verify_document("w19", data.read_bytes())
    plain = store.verify_document("w19", data.read_bytes(), reference_mode="plain")
    assert plain["reference_mode"] == "plain"
