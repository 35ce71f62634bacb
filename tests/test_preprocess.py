import dataclasses

import numpy as np
import pytest
from PIL import Image

from conftest import FIXTURES, FORMATS, REPO
from sigverify.imageio import load_gray
from sigverify.preprocess import PreprocessConfig, preprocess, preprocess_gray, transform, tta_variants

GOLDEN = FIXTURES / "golden"
CEDAR_SAMPLE = REPO / "src" / "sigverify" / "samples" / "cedar-2" / "genuine" / "original_2_1.png"


@pytest.mark.parametrize(
    "source, golden",
    [
        (FORMATS / "gray.png", "gray.png"),
        (FORMATS / "bilevel_g4.tif", "bilevel_g4.png"),
        (CEDAR_SAMPLE, "cedar_original_2_1.png"),
    ],
)
def test_golden_output_bytes(source, golden):
    """The default recipe is part of the shipped model's contract: any change must be deliberate."""
    expected = np.asarray(Image.open(GOLDEN / golden))
    output = preprocess(source)
    assert output.dtype == np.uint8 and output.shape == (150, 220)
    assert output.tobytes() == expected.tobytes()


def test_output_is_inverted_centred_and_fits():
    output = preprocess(FORMATS / "gray.png")
    assert output[0].max() == 0 and output[-1].max() == 0  # margin: no ink on the border rows
    assert (output > 0).mean() < 0.3  # ink is bright, background black
    rows, cols = np.nonzero(output)
    weights = output[rows, cols].astype(float)
    centre = (np.average(rows, weights=weights), np.average(cols, weights=weights))
    assert abs(centre[0] - 75) < 3 and abs(centre[1] - 110) < 3


def test_background_tone_never_reaches_the_model():
    gray = load_gray(FORMATS / "gray.png").astype(np.int16)
    paper = gray > 200
    lighter = gray.copy()
    lighter[paper] = np.minimum(255, lighter[paper] + 20)  # a whiter scanner, same ink
    out_a, out_b = preprocess(gray.astype(np.uint8)), preprocess(lighter.astype(np.uint8))
    # Paper is exactly 0 in both; only the ink's own edge pixels may move a little.
    assert (out_a == 0).mean() > 0.7 and (out_b == 0).mean() > 0.7
    assert ((out_a > 0) != (out_b > 0)).mean() < 0.01
    assert np.abs(out_a.astype(int) - out_b).mean() < 1.0


def test_aspect_ratio_preserved():
    wide = np.full((100, 800), 255, dtype=np.uint8)
    wide[40:60, 50:750] = 0  # a 20 x 700 bar
    output = preprocess(wide, PreprocessConfig(margin=0.0))
    rows, cols = np.nonzero(output)
    height, width = np.ptp(rows) + 1, np.ptp(cols) + 1
    assert width == 220
    assert abs(height - 20 * 220 / 700) <= 2


def test_speckle_cleanup_and_denoise():
    gray = load_gray(FORMATS / "gray.png").copy()
    gray[2:5, 2:5] = 0  # a 3 x 3 speck far from the signature
    plain = preprocess(gray, PreprocessConfig(blur_sigma=0))
    cleaned = preprocess(gray, PreprocessConfig(blur_sigma=0, min_component_area=20))
    reference = preprocess(load_gray(FORMATS / "gray.png"), PreprocessConfig(blur_sigma=0))
    assert not np.array_equal(plain, reference)  # the speck moved the crop box
    assert np.array_equal(cleaned, reference)
    for method in ("median", "nlmeans"):
        assert preprocess(gray, PreprocessConfig(denoise=method)).shape == (150, 220)


def test_binarize_option():
    output = preprocess(FORMATS / "gray.png", PreprocessConfig(binarize=True))
    assert set(np.unique(output)) <= {0, 255}


def test_normalize_ink_makes_pen_darkness_and_paper_tone_irrelevant():
    gray = load_gray(FORMATS / "gray.png").astype(np.float32)
    darker = gray.copy()
    darker[gray < 200] *= 0.4  # a blacker pen, same strokes
    toned = np.clip(gray - 25, 0, 255)  # a greyer paper, same pen
    config = PreprocessConfig(normalize_ink=True)

    def ink_level(image: np.ndarray, preprocess_config: PreprocessConfig) -> float:
        out = preprocess(image.astype(np.uint8), preprocess_config).astype(float)
        return float(np.percentile(out[out > 0], 90))

    plain_ratio = ink_level(darker, PreprocessConfig()) / ink_level(gray, PreprocessConfig())
    assert plain_ratio > 1.1  # without it the network sees a darker pen as different strokes
    assert abs(ink_level(darker, config) / ink_level(gray, config) - 1) < 0.03
    # A paper-tone shift cancels exactly: ink is measured from the paper's own grey level.
    assert np.array_equal(preprocess(toned.astype(np.uint8), config), preprocess(gray.astype(np.uint8), config))
    assert not np.array_equal(preprocess(toned.astype(np.uint8)), preprocess(gray.astype(np.uint8)))
    # Off by default: the shipped model's contract (and the golden bytes above) do not move.
    assert not PreprocessConfig().normalize_ink


def test_config_round_trip_and_digest():
    config = PreprocessConfig(height=100, width=160, denoise="median")
    assert PreprocessConfig.from_dict(config.to_dict()) == config
    assert config.digest() != PreprocessConfig().digest()
    assert PreprocessConfig().digest() == PreprocessConfig().digest()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.height = 3  # type: ignore[misc]
    with pytest.raises(ValueError, match="unknown preprocessing parameters"):
        PreprocessConfig.from_dict({"height": 100, "colour": "red"})
    with pytest.raises(ValueError, match="denoise"):
        PreprocessConfig(denoise="magic")
    assert preprocess(FORMATS / "gray.png", config).shape == (100, 160)


def test_tta_variants():
    image = preprocess(FORMATS / "gray.png")
    variants = tta_variants(image)
    assert variants.shape == (9, 150, 220) and variants.dtype == np.uint8
    assert any(np.array_equal(v, image) for v in variants)
    rotated = transform(image, angle=5)
    assert not np.array_equal(rotated, image)
    assert abs(int(rotated.astype(int).sum()) - int(image.astype(int).sum())) / image.sum() < 0.05


def test_preprocess_gray_name_in_error():
    from sigverify import NoSignatureFound

    with pytest.raises(NoSignatureFound, match="page-7"):
        preprocess_gray(np.full((50, 50), 240, dtype=np.uint8), name="page-7")
