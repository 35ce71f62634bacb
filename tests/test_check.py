import io
import json
import shutil

import pytest
from PIL import Image

from helpers import write_generic
from sigverify.cache import load_or_build
from sigverify.cli import main
from sigverify.datasets import read_dataset
from sigverify.splits import make_pairs, make_triplets


def test_clean_dataset_passes(tmp_path, capsys):
    write_generic(tmp_path, {"a": (3, 1), "b": (3, 1)})
    assert main(["data", "check", str(tmp_path)]) == 0
    assert "OK:" in capsys.readouterr().out


def test_genuine_filed_as_another_writers_forgery_fails(tmp_path, capsys):
    write_generic(tmp_path, {"a": (3, 1), "b": (3, 1)})
    shutil.copy(tmp_path / "a" / "genuine" / "01.png", tmp_path / "b" / "forged" / "09.png")
    assert main(["data", "check", str(tmp_path), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert not report["ok"]
    assert any("byte-identical images under different writers/labels" in e and "b/forged/09.png" in e for e in report["errors"])


def test_pixel_identical_reencoded_copy_fails(tmp_path, capsys):
    write_generic(tmp_path, {"a": (3, 0), "b": (3, 0)})
    image = Image.open(tmp_path / "a" / "genuine" / "02.png")
    image.save(tmp_path / "b" / "genuine" / "09.bmp")  # same pixels, different bytes
    assert main(["data", "check", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "pixel-identical images under different writers/labels" in out


def test_within_writer_duplicates_and_near_duplicates_warn(tmp_path, capsys):
    write_generic(tmp_path, {"a": (3, 0), "b": (3, 0)})
    shutil.copy(tmp_path / "a" / "genuine" / "01.png", tmp_path / "a" / "genuine" / "07.png")
    buffer = io.BytesIO()
    Image.open(tmp_path / "b" / "genuine" / "01.png").save(buffer, "JPEG", quality=80)
    (tmp_path / "b" / "genuine" / "08.jpg").write_bytes(buffer.getvalue())
    assert main(["data", "check", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "WARNING byte-identical duplicates within" in out and "a/genuine/07.png" in out
    assert "WARNING near-duplicates" in out and "b/genuine/08.jpg" in out


def test_unreadable_file_is_an_error(tmp_path, capsys):
    write_generic(tmp_path, {"a": (3, 0)})
    (tmp_path / "a" / "genuine" / "bad.png").write_bytes(b"not a png")
    assert main(["data", "check", str(tmp_path)]) == 1
    assert "unusable image" in capsys.readouterr().out


def test_pairs_and_triplets_never_compare_a_file_with_itself(tmp_path):
    write_generic(tmp_path, {"a": (4, 2), "b": (4, 2)})
    shutil.copy(tmp_path / "a" / "genuine" / "01.png", tmp_path / "a" / "genuine" / "05.png")
    cache = load_or_build(read_dataset(tmp_path).records, log=None)
    ids = cache.content_ids()
    pairs = make_pairs(cache.records, hashes=ids, seed=1)
    assert pairs and all(ids[p.a] != ids[p.b] for p in pairs)
    triplets = make_triplets(cache.records, hashes=ids, per_writer=40, seed=1)
    assert triplets and all(ids[t.anchor] != ids[t.positive] and ids[t.anchor] != ids[t.negative] for t in triplets)
