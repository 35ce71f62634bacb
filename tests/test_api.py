import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import sigverify
from helpers import toy_signature
from sigverify import InputError, InvalidImage, NoSignatureFound, ReferencesError
from sigverify.cli import main
from sigverify.methods import METHODS


def _write(tmp_path, name, image):
    path = tmp_path / name
    Image.fromarray(image).save(path)
    return path


@pytest.fixture
def writer_images(tmp_path):
    """Five genuine signatures of toy writer 3 and one of writer 9."""
    refs = [_write(tmp_path, f"ref{i}.png", toy_signature(3, 900 + i)) for i in range(4)]
    genuine = _write(tmp_path, "genuine.png", toy_signature(3, 999))
    other = _write(tmp_path, "other.png", toy_signature(9, 998))
    return refs, genuine, other


def test_represent_shapes_and_inputs(tiny_model, writer_images):
    refs, genuine, _ = writer_images
    dim = sigverify.load_model(tiny_model).represent_dim
    assert dim in (16, 22)  # the embedding, plus the weighted size on three circles when the model uses it
    one = sigverify.represent(genuine, model=tiny_model)
    assert one.shape == (1, dim) and one.dtype == np.float32
    assert np.allclose(np.linalg.norm(one[:, :16], axis=1), 1, atol=1e-4)
    data = genuine.read_bytes()
    as_array = np.asarray(Image.open(genuine))
    many = sigverify.represent([genuine, data, as_array, Image.open(io.BytesIO(data))], model=tiny_model, bf16=False)
    assert many.shape == (4, dim)
    assert np.allclose(many, many[0], atol=1e-6)
    assert sigverify.represent([], model=tiny_model).shape == (0, dim)
    tta = sigverify.represent(genuine, model=tiny_model, tta=True)
    assert tta.shape == (1, dim) and not np.allclose(tta, one)


def test_model_is_cached(tiny_model):
    assert sigverify.load_model(tiny_model) is sigverify.load_model(str(tiny_model))


@pytest.mark.parametrize("method", METHODS)
def test_every_method_runs(tiny_model, writer_images, method):
    refs, genuine, other = writer_images
    result = sigverify.verify(genuine, refs, model=tiny_model, method=method)
    assert set(result) >= {"verified", "decision", "score", "threshold", "method", "model", "n_references", "per_reference", "time_ms"}
    assert result["method"] == method and result["n_references"] == 4 and result["model"] == "tiny"
    assert 0 <= result["score"] <= 1 and 0 <= result["threshold"] <= 1
    assert result["decision"] in ("genuine", "forged", "inconclusive")
    assert result["verified"] == (result["decision"] == "genuine")
    assert len(result["per_reference"]) == 4


def test_genuine_scores_above_other_writer(tiny_model, writer_images):
    refs, genuine, other = writer_images
    same = sigverify.verify(genuine, refs, model=tiny_model)
    different = sigverify.verify(other, refs, model=tiny_model)
    assert same["score"] > different["score"]


def test_precomputed_reference_embeddings(tiny_model, writer_images):
    refs, genuine, _ = writer_images
    from_images = sigverify.verify(genuine, refs, model=tiny_model, bf16=False)
    embeddings = sigverify.represent(refs, model=tiny_model, bf16=False)
    from_embeddings = sigverify.verify(genuine, list(embeddings), model=tiny_model, bf16=False)
    from_matrix = sigverify.verify(genuine, embeddings, model=tiny_model, bf16=False)
    assert from_embeddings["score"] == pytest.approx(from_images["score"], abs=1e-5)
    assert from_matrix["score"] == pytest.approx(from_images["score"], abs=1e-5)


def test_distances_between_represented_vectors(tiny_model, writer_images):
    refs, genuine, _ = writer_images
    vectors = sigverify.represent([genuine, *refs], model=tiny_model, bf16=False)
    got = sigverify.distances(vectors[0], vectors[1:], model=tiny_model)  # a 1-D vector is one row
    assert got.shape == (1, len(refs)) and got.dtype == np.float32
    # A plain model: the Euclidean distance of its internal vectors, which represent() re-lays out.
    artifact = sigverify.load_model(tiny_model)
    internal = artifact.from_represented(vectors)
    np.testing.assert_allclose(got[0], np.linalg.norm(internal[1:] - internal[0], axis=1), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(artifact.to_represented(internal), vectors, rtol=1e-5, atol=1e-5)
    assert sigverify.distances(vectors[:0], vectors, model=tiny_model).shape == (0, len(vectors))
    dim = vectors.shape[1]
    with pytest.raises(InputError, match=rf"first: expected vectors from represent\(\) of size {dim}"):
        sigverify.distances(vectors[:, :-1], vectors, model=tiny_model)
    with pytest.raises(InputError, match="second: expected"):
        sigverify.distances(vectors, vectors[None], model=tiny_model)
    with pytest.raises(InputError, match="second: expected"):
        sigverify.distances(vectors, np.array([["a"] * dim]), model=tiny_model)
    broken = vectors.copy()
    broken[1, 0] = np.nan
    with pytest.raises(InputError, match="first: vectors hold NaN"):
        sigverify.distances(broken, vectors, model=tiny_model)


def test_threshold_and_inconclusive_band(tiny_model, writer_images):
    refs, genuine, _ = writer_images
    base = sigverify.verify(genuine, refs, model=tiny_model, inconclusive_band=0)
    assert base["decision"] != "inconclusive"
    around = sigverify.verify(genuine, refs, model=tiny_model, threshold=base["score"], inconclusive_band=0.2)
    assert around["decision"] == "inconclusive" and not around["verified"]
    low = sigverify.verify(genuine, refs, model=tiny_model, threshold=0.0, inconclusive_band=0)
    assert low["decision"] == "genuine"
    high = sigverify.verify(genuine, refs, model=tiny_model, threshold=1.0, inconclusive_band=0)
    assert high["decision"] == "forged"


def test_reference_quality_warnings_and_copy_flag(tiny_model, writer_images, tmp_path):
    refs, genuine, other = writer_images
    few = sigverify.verify(genuine, refs[:2], model=tiny_model)
    assert any("only 2 reference" in w for w in few["warnings"])
    duplicate = sigverify.verify(genuine, [refs[0], refs[0], refs[1]], model=tiny_model)
    assert any("identical" in w for w in duplicate["warnings"])
    copy = sigverify.verify(refs[0], refs, model=tiny_model)
    assert copy["flags"] == ["query_identical_to_reference"] and copy["decision"] == "inconclusive"
    reencoded = _write(tmp_path, "reencoded.bmp", np.asarray(Image.open(refs[1])))
    assert sigverify.verify(reencoded, refs, model=tiny_model)["flags"] == ["query_identical_to_reference"]


def test_reference_consistency_limit_is_fitted_and_used(tiny_model, writer_images, tmp_path):
    from sigverify.models.artifact import read_artifact, write_artifact

    refs, genuine, _ = writer_images
    metadata, tensors = read_artifact(tiny_model)
    assert metadata["thresholds"]["reference_consistency"] > 0  # fitted on dev writers by training

    def with_thresholds(name: str, thresholds: dict) -> Path:
        path = tmp_path / f"{name}.safetensors"
        write_artifact(path, tensors, {**metadata, "version": name, "thresholds": thresholds})
        return path

    strict = with_thresholds("strict", {**metadata["thresholds"], "reference_consistency": 0.0})
    warned = [w for w in sigverify.verify(genuine, refs, model=strict)["warnings"] if "inconsistent" in w]
    assert len(warned) == 1 and "[0, 1, 2, 3]" in warned[0] and "dev-fitted consistency limit" in warned[0]
    lenient = with_thresholds("lenient", {**metadata["thresholds"], "reference_consistency": 1e9})
    assert not any("inconsistent" in w for w in sigverify.verify(genuine, refs, model=lenient)["warnings"])
    # A model calibrated before the limit existed keeps the one-reference threshold, and says so.
    older = with_thresholds("older", {"distance": 0.0})
    assert any("recalibrate" in w for w in sigverify.verify(genuine, refs, model=older)["warnings"] if "inconsistent" in w)


def test_embedded_references_with_tta_are_named(tiny_model, writer_images):
    refs, genuine, _ = writer_images
    embedded = sigverify.represent(refs, model=tiny_model, tta=True)
    result = sigverify.verify(genuine, embedded, model=tiny_model, tta=True)
    assert any("represent(..., tta=True)" in w for w in result["warnings"])
    assert result["score"] == pytest.approx(sigverify.verify(genuine, refs, model=tiny_model, tta=True)["score"], abs=1e-4)


def test_bad_inputs(tiny_model, writer_images, tmp_path):
    refs, genuine, _ = writer_images
    with pytest.raises(ReferencesError, match="no references"):
        sigverify.verify(genuine, [], model=tiny_model)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(InvalidImage, match="broken.png"):
        sigverify.verify(broken, refs, model=tiny_model)
    with pytest.raises(InvalidImage, match="missing.png: no such file"):
        sigverify.verify(genuine, [refs[0], tmp_path / "missing.png"], model=tiny_model)
    blank = _write(tmp_path, "blank.png", np.full((80, 120), 250, dtype=np.uint8))
    with pytest.raises(NoSignatureFound, match="blank.png"):
        sigverify.verify(blank, refs, model=tiny_model)
    with pytest.raises(ReferencesError, match="embedding of size (16|22)"):
        sigverify.verify(genuine, [np.zeros(7, dtype=np.float32)], model=tiny_model)
    for method in ("writer-threshold", "cohort-threshold"):
        with pytest.raises(ReferencesError, match="at least 2 references"):
            sigverify.verify(genuine, refs[:1], model=tiny_model, method=method)
    with pytest.raises(ValueError, match="unknown method"):
        sigverify.verify(genuine, refs, model=tiny_model, method="magic")
    with pytest.raises(ValueError, match="threshold"):
        sigverify.verify(genuine, refs, model=tiny_model, threshold=3)
    with pytest.raises(sigverify.ModelError, match="no such model"):
        sigverify.verify(genuine, refs, model=tmp_path / "nope.safetensors")


def test_cli_verify_exit_codes_and_json(tiny_model, writer_images, capsys, tmp_path):
    import json

    refs, genuine, other = writer_images
    folder = tmp_path / "refs"
    folder.mkdir()
    for ref in refs:
        (folder / ref.name).write_bytes(ref.read_bytes())
    code = main(["verify", str(genuine), str(folder), "--model", str(tiny_model), "--json", "--threshold", "0.0", "--band", "0"])
    result = json.loads(capsys.readouterr().out)
    assert code == 0 and result["decision"] == "genuine" and result["n_references"] == 4
    assert main(["verify", str(genuine), *map(str, refs), "--model", str(tiny_model), "--threshold", "1.0", "--band", "0"]) == 1
    line = capsys.readouterr().out
    assert line.startswith(f"{genuine}: forged (score ")
    assert main(["verify", str(genuine), *map(str, refs), "--model", str(tiny_model), "--threshold", "0.5", "--band", "0.99"]) == 2
    capsys.readouterr()
    assert main(["verify", str(tmp_path / "nothing.png"), *map(str, refs), "--model", str(tiny_model)]) == 3
    assert "no such file" in capsys.readouterr().err
    assert main(["verify", str(genuine), "--model", str(tiny_model)]) == 3


def test_cohort_threshold_against_brute_force():
    from sigverify.methods import Cohort, raw_scores

    rng = np.random.default_rng(0)
    references, queries, cohort_vectors = rng.normal(size=(5, 6)), rng.normal(size=(3, 6)), rng.normal(size=(10, 6))
    cohort = Cohort(cohort_vectors)
    assert cohort.nearest == 2  # a fifth of 10
    # the references' own scale: each one's mean distance to its 3 nearest other references
    among = np.mean([np.mean(sorted(np.linalg.norm(references[i] - np.delete(references, i, axis=0), axis=1))[:3]) for i in range(5)])
    # their scale against strangers: each one's mean distance to its 2 nearest cohort signatures
    to_cohort = np.mean([np.mean(sorted(np.linalg.norm(cohort_vectors - ref, axis=1))[:2]) for ref in references])
    expected = [-np.mean(sorted(np.linalg.norm(references - query, axis=1))[:3]) / np.sqrt(among * to_cohort) for query in queries]
    got = raw_scores("cohort-threshold", references, queries, cohort=cohort)
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    # the remembered reference scales give the same answer, references in any order
    np.testing.assert_allclose(raw_scores("cohort-threshold", references[::-1], queries, cohort=cohort), expected, rtol=1e-5)
    # two references: each one's only neighbour is the other
    pair = references[:2]
    pair_scale = np.mean([np.mean(sorted(np.linalg.norm(cohort_vectors - ref, axis=1))[:2]) for ref in pair])
    expected_pair = [-np.mean(np.linalg.norm(pair - query, axis=1)) / np.sqrt(np.linalg.norm(pair[0] - pair[1]) * pair_scale) for query in queries]
    np.testing.assert_allclose(raw_scores("cohort-threshold", pair, queries, cohort=cohort), expected_pair, rtol=1e-5)
    with pytest.raises(ValueError, match="needs a cohort"):
        raw_scores("cohort-threshold", references, queries)
    with pytest.raises(ValueError, match="at least 2 references"):
        raw_scores("cohort-threshold", references[:1], queries, cohort=cohort)
    with pytest.raises(ValueError, match="non-empty"):
        Cohort(np.zeros((0, 6)))


def test_cohort_multi_k_against_brute_force():
    from sigverify.methods import Cohort, raw_scores

    rng = np.random.default_rng(1)
    references, queries, cohort_vectors = rng.normal(size=(4, 6)), rng.normal(size=(3, 6)), rng.normal(size=(10, 6))
    cohort = Cohort(cohort_vectors)
    to_cohort = np.mean([np.mean(sorted(np.linalg.norm(cohort_vectors - ref, axis=1))[:2]) for ref in references])

    def statistic(query, k):
        # k nearest references of the query; each reference's k nearest others (at most R - 1 = 3 of them)
        among = np.mean([np.mean(sorted(np.linalg.norm(references[i] - np.delete(references, i, axis=0), axis=1))[:k]) for i in range(4)])
        return -np.mean(sorted(np.linalg.norm(references - query, axis=1))[:k]) / np.sqrt(among * to_cohort)

    expected = [np.mean([statistic(query, k) for k in (1, 3, 5)]) for query in queries]
    np.testing.assert_allclose(raw_scores("cohort-multi-k", references, queries, cohort=cohort), expected, rtol=1e-5)
    # with k = 3 alone it is cohort-threshold
    np.testing.assert_allclose(raw_scores("cohort-threshold", references, queries, cohort=cohort), [statistic(q, 3) for q in queries], rtol=1e-5)
    with pytest.raises(ValueError, match="at least 2 references"):
        raw_scores("cohort-multi-k", references[:1], queries, cohort=cohort)


def test_test_time_augmentation_has_its_own_calibration(tiny_model, writer_images, tmp_path):
    from sigverify.calibration import pick_entry
    from sigverify.models.artifact import load_artifact, read_artifact, write_artifact

    refs, genuine, _ = writer_images
    artifact = load_artifact(tiny_model)
    assert artifact.has_tta_calibration()
    plain, augmented = artifact.calibration_for(False), artifact.calibration_for(True)
    assert "cohort-multi-k" in augmented and "wd-svm" not in augmented  # WD classifiers: plain only
    assert augmented["single"] != plain["single"]  # fitted on augmented vectors, not copied
    assert artifact.cohort_for(True).vectors.shape == artifact.cohort_for(False).vectors.shape
    result = sigverify.verify(genuine, refs, model=tiny_model, method="cohort-multi-k", tta=True)
    assert not any("test-time" in w for w in result["warnings"])
    assert result["threshold"] == pytest.approx(pick_entry(augmented, "cohort-multi-k", len(refs))["threshold"])
    # A method with no augmented calibration, or a model from before it: scored, and said so.
    result = sigverify.verify(genuine, refs, model=tiny_model, method="wd-logreg", tta=True)
    assert any("no test-time-augmentation calibration for wd-logreg" in w for w in result["warnings"])
    metadata, tensors = read_artifact(tiny_model)
    older = tmp_path / "no-tta.safetensors"
    write_artifact(
        older, {k: v for k, v in tensors.items() if k != "extra.cohort_tta"},
        {**{k: v for k, v in metadata.items() if k != "calibration_tta"}, "extras": [e for e in metadata["extras"] if e != "cohort_tta"]},
    )
    assert any("test-time" in w for w in sigverify.verify(genuine, refs, model=older, tta=True)["warnings"])
    with pytest.raises(sigverify.ModelError, match="no calibration for test-time augmentation"):
        load_artifact(older).calibration_for(True)


def test_represent_lays_vectors_out_with_the_weights_the_model_records(tiny_model, writer_images, tmp_path):
    from sigverify.models.artifact import read_artifact, write_artifact
    from sigverify.models.layout import LOCAL_WEIGHT

    refs, _, _ = writer_images
    metadata, tensors = read_artifact(tiny_model)
    layouts = {}
    for name, weights in (("defaults", None), ("chosen", {"local_weight": 0.5, "size_scale": 2.0})):
        path = tmp_path / f"{name}.safetensors"
        write_artifact(path, tensors, {**{k: v for k, v in metadata.items() if k != "represent"}, **({"represent": weights} if weights else {})})
        layouts[name] = (sigverify.load_model(path).represent_layout, sigverify.represent(refs, model=path, bf16=False), path)
    assert (layouts["defaults"][0].local_weight, layouts["defaults"][0].size_scale) == (LOCAL_WEIGHT, 1.0)
    assert (layouts["chosen"][0].local_weight, layouts["chosen"][0].size_scale) == (0.5, 2.0)
    assert not np.allclose(layouts["defaults"][1], layouts["chosen"][1])
    # The layout is for outside scorers only: the model's own distances are the same either way.
    np.testing.assert_allclose(
        sigverify.distances(layouts["defaults"][1][:1], layouts["defaults"][1], model=layouts["defaults"][2]),
        sigverify.distances(layouts["chosen"][1][:1], layouts["chosen"][1], model=layouts["chosen"][2]), rtol=1e-4, atol=1e-5,
    )


def test_a_model_without_a_cohort_says_so(tiny_model, writer_images, tmp_path):
    from sigverify.models.artifact import read_artifact, write_artifact

    refs, genuine, _ = writer_images
    metadata, tensors = read_artifact(tiny_model)
    assert "cohort" in metadata["extras"]
    older = tmp_path / "no-cohort.safetensors"
    write_artifact(older, {k: v for k, v in tensors.items() if k != "extra.cohort"}, {**metadata, "extras": [e for e in metadata["extras"] if e != "cohort"]})
    with pytest.raises(sigverify.ModelError, match="no cohort for cohort-threshold"):
        sigverify.verify(genuine, refs, model=older, method="cohort-threshold")
    assert sigverify.verify(genuine, refs, model=older, method="writer-threshold")["method"] == "writer-threshold"
    # With no cohort there is nothing to fit represent()'s layout on: vectors come out as compared.
    assert sigverify.load_model(older).represent_layout is None
    plain = sigverify.represent(refs, model=older, bf16=False)
    assert plain.shape[1] == sigverify.load_model(older).vector_dim
    np.testing.assert_allclose(sigverify.distances(plain[:1], plain, model=older)[0], np.linalg.norm(plain - plain[0], axis=1), rtol=1e-5, atol=1e-6)
