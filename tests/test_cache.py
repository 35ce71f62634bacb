import numpy as np
import pytest

from helpers import write_generic
from sigverify.cache import Cache, build_cache, cache_path, load_or_build
from sigverify.datasets import read_dataset
from sigverify.preprocess import PreprocessConfig, preprocess


def test_cache_build_reuse_and_rebuild(tmp_path):
    write_generic(tmp_path / "data", {"a": (3, 1), "b": (2, 2)})
    records = read_dataset(tmp_path / "data").records
    lines = []
    first = load_or_build(records, cache_dir=tmp_path / "c", log=lines.append)
    assert "preprocessed 8 images" in lines[-1]
    assert first.images.shape == (8, 150, 220) and first.images.dtype == np.uint8
    assert np.array_equal(first.images[0], preprocess(records[0].path))
    again = load_or_build(records, cache_dir=tmp_path / "c", log=lines.append)
    assert "reused" in lines[-1]
    assert np.array_equal(again.images, first.images)
    assert [r.writer_key for r in again.records] == [r.writer_key for r in records]
    assert again.header["preprocess_digest"] == PreprocessConfig().digest()
    small = PreprocessConfig(height=64, width=96)
    other = load_or_build(records, small, cache_dir=tmp_path / "c", log=lines.append)
    assert "preprocessed" in lines[-1] and other.images.shape == (8, 64, 96)
    assert cache_path(records, small, tmp_path / "c") != cache_path(records, PreprocessConfig(), tmp_path / "c")


def test_parallel_equals_sequential_and_failures_listed(tmp_path):
    write_generic(tmp_path / "data", {"a": (4, 0), "b": (4, 0)})
    (tmp_path / "data" / "a" / "genuine" / "zz.png").write_bytes(b"")
    records = read_dataset(tmp_path / "data").records
    parallel = build_cache(records, workers=2)
    sequential = build_cache(records, workers=1)
    assert np.array_equal(parallel.images, sequential.images)
    assert len(parallel) == 8
    assert len(parallel.header["failures"]) == 1 and "empty file" in parallel.header["failures"][0]["error"]


def test_corrupt_cache_is_rebuilt(tmp_path):
    write_generic(tmp_path / "data", {"a": (2, 0)})
    records = read_dataset(tmp_path / "data").records
    path = cache_path(records, PreprocessConfig(), tmp_path / "c")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"garbage")
    lines = []
    cache = load_or_build(records, cache_dir=tmp_path / "c", log=lines.append)
    assert "unreadable" in lines[0] and len(cache) == 2
    assert len(Cache.load(path)) == 2


@pytest.mark.shared
def test_cedar_cache_under_a_minute(cedar_root, tmp_path):
    records = read_dataset(cedar_root).records
    cache = load_or_build(records, cache_dir=tmp_path, log=None)
    assert len(cache) == 2640 and not cache.header["failures"]
    assert cache.header["seconds"] < 60
