from collections import Counter

import pytest

from helpers import touch_image, write_generic
from sigverify import DatasetError
from sigverify.cli import main
from sigverify.datasets import FORGED, GENUINE, read_dataset


@pytest.mark.shared
def test_cedar_shared(cedar_root):
    dataset = read_dataset(cedar_root)
    assert dataset.layout == "cedar" and dataset.name == "cedar"
    counts = dataset.counts()
    assert len(counts) == 55
    assert all(c == {GENUINE: 24, FORGED: 24} for c in counts.values())
    assert not dataset.unrecognised and not dataset.conflicts


@pytest.mark.shared
def test_sigcomp2009_shared(sigcomp_root):
    dataset = read_dataset(sigcomp_root)
    assert dataset.layout == "sigcomp2009"
    records = dataset.records
    labels = Counter(r.label for r in records)
    assert labels == {GENUINE: 950, FORGED: 932}  # SOURCE.md: NFI 940 + 624, NISDCC 10 + 308
    writers = {r.writer for r in records}
    assert len(writers) == 81
    assert sum(w.startswith("nfi-") for w in writers) == 79
    nfi_with_forgeries = {r.writer for r in records if r.label == FORGED and r.writer.startswith("nfi-")}
    assert len(nfi_with_forgeries) == 19
    example = next(r for r in records if r.path.endswith("002/forgery/NFI-00301002.png"))
    assert (example.writer, example.label, example.forger) == ("nfi-002", FORGED, "nfi-003")
    nisdcc = next(r for r in records if r.path.endswith("NISDCC-011_011_001_6g.PNG"))
    assert (nisdcc.writer, nisdcc.label, nisdcc.forger) == ("nisdcc-011", GENUINE, None)
    assert not dataset.conflicts


@pytest.mark.shared
def test_inspect_cli_on_shared(cedar_root, sigcomp_root, capsys):
    assert main(["data", "inspect", str(cedar_root)]) == 0
    out = capsys.readouterr().out
    assert "writers  55" in out and "24/24 -> 55" in out and "1320 genuine, 1320 forged" in out
    assert main(["data", "inspect", str(sigcomp_root)]) == 0
    out = capsys.readouterr().out
    assert "writers  81" in out and "950 genuine, 932 forged" in out and "60 of 81 writers have no skilled forgery" in out


@pytest.mark.parametrize(
    "files, layout, expected",
    [
        (["full_org/original_3_1.png", "full_forg/forgeries_3_2.png", "Readme.png"], "cedar", [("3", GENUINE), ("3", FORGED)]),
        (["CEDAR/7/original_7_1.png", "CEDAR/7/forgeries_7_1.png"], "cedar", [("7", FORGED), ("7", GENUINE)]),
        (["049/01_049.png", "049_forg/02_0114049.png", "050/01_050.png"], "kaggle", [("49", GENUINE), ("49", FORGED), ("50", GENUINE)]),
        (["Bengali/1/B-S-1-G-01.tif", "Bengali/1/B-S-1-F-03.tif", "Hindi/2/H-S-2-G-05.tif"], "bhsig", [("B-1", FORGED), ("B-1", GENUINE), ("H-2", GENUINE)]),
        (["alice/genuine/a.png", "alice/forged/b.png", "bob/genuine/c.jpg"], "generic", [("alice", FORGED), ("alice", GENUINE), ("bob", GENUINE)]),
        (["003/genuine/NFI-00301003.png", "003/forgery/NFI-00702003.png"], "sigcomp2009", [("nfi-003", FORGED), ("nfi-003", GENUINE)]),
    ],
)
def test_layouts(tmp_path, files, layout, expected):
    for name in files:
        touch_image(tmp_path / name)
    dataset = read_dataset(tmp_path)
    assert dataset.layout == layout
    assert sorted((r.writer, r.label) for r in dataset.records) == sorted(expected)


def test_bhsig_dataset_names(tmp_path):
    touch_image(tmp_path / "B-S-1-G-01.tif")
    touch_image(tmp_path / "H-S-1-G-01.tif")
    assert sorted(r.dataset for r in read_dataset(tmp_path).records) == ["bhsig-bengali", "bhsig-hindi"]


def test_unrecognised_and_conflicts_reported(tmp_path, capsys):
    touch_image(tmp_path / "full_forg" / "original_1_1.png")  # genuine name in the forgery folder
    touch_image(tmp_path / "full_org" / "original_1_2.png")
    touch_image(tmp_path / "full_org" / "scan0001.png")
    dataset = read_dataset(tmp_path)
    assert dataset.unrecognised == ["full_org/scan0001.png"]
    assert len(dataset.conflicts) == 1
    assert main(["data", "inspect", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "label conflict" in out and "scan0001.png" in out


def test_generic_writer_names_and_counts(tmp_path):
    write_generic(tmp_path, {"w1": (3, 2), "w2": (4, 0)})
    dataset = read_dataset(tmp_path, name="mine")
    assert dataset.counts() == {"mine/w1": {GENUINE: 3, FORGED: 2}, "mine/w2": {GENUINE: 4, FORGED: 0}}


def test_bad_dataset_folders(tmp_path, capsys):
    with pytest.raises(DatasetError, match="not a folder"):
        read_dataset(tmp_path / "missing")
    with pytest.raises(DatasetError, match="no image files"):
        read_dataset(tmp_path)
    touch_image(tmp_path / "random.png")
    with pytest.raises(DatasetError, match="matches a known layout"):
        read_dataset(tmp_path)
    assert main(["data", "inspect", str(tmp_path)]) == 3
    assert "matches a known layout" in capsys.readouterr().err
    with pytest.raises(DatasetError, match="unknown layout"):
        read_dataset(tmp_path, layout="nonsense")
