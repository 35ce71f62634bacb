from pathlib import Path

import pytest

from sigverify import DatasetError
from sigverify.cli import main
from sigverify.datasets.tobacco import Page, parse_gedi, read_tobacco800, split_pages

XML = """<?xml version="1.0" encoding="UTF-8"?>
<GEDI xmlns="http://lamp.cfar.umd.edu/GEDI" version="1.0">
 <DL_DOCUMENT src="abc12d00_2.tif" NrOfPages="1" docTag="xml">
  <DL_PAGE gedi_type="DL_PAGE" src="abc12d00_2.tif" pageID="1" width="2592" height="3300">
   <DL_ZONE gedi_type="DLSignature" id="None" col="610" row="847" width="269" height="76" Overlapped="Yes" AuthorID="Schultz, F.J."> </DL_ZONE>
   <DL_ZONE gedi_type="DLLogo" id="None" col="839" row="68" width="193" height="139"> </DL_ZONE>
  </DL_PAGE>
 </DL_DOCUMENT>
</GEDI>"""


def test_parse_gedi(tmp_path):
    path = tmp_path / "page.xml"
    path.write_text(XML)
    name, boxes = parse_gedi(path)
    assert name == "abc12d00_2.tif"
    signature, logo = boxes
    assert signature.as_list() == [610, 847, 879, 923] and signature.kind == "signature"
    assert signature.author == "Schultz, F.J." and signature.overlapped is True
    assert logo.kind == "logo" and logo.author is None
    assert Page("x", 1, 1, None, name).document == "abc12d00"
    assert Page("x", 1, 1, None, "adh36e00-page2_1.tif").document == "adh36e00"


def test_bad_xml(tmp_path):
    path = tmp_path / "bad.xml"
    path.write_text("<GEDI><oops")
    with pytest.raises(DatasetError, match="not readable GEDI XML"):
        parse_gedi(path)
    with pytest.raises(DatasetError, match="train/ and train_xml/"):
        read_tobacco800(tmp_path)


@pytest.mark.shared
def test_real_tobacco800(tobacco_root):
    pages = read_tobacco800(tobacco_root)
    assert len(pages) == 839
    assert sum(1 for p in pages if p.signatures) == 500
    assert sum(len(p.signatures) for p in pages) == 598
    assert sum(1 for p in pages for b in p.boxes if b.kind == "logo") == 265
    assert len({b.author for p in pages for b in p.signatures if b.author}) == 115
    assert sum(1 for p in pages for b in p.signatures if b.overlapped) == 539
    first = next(p for p in pages if p.path.endswith("00060f1db73c837c2b943fec640f920a_1.tif"))
    assert (first.width, first.height, first.original_name) == (1200, 1575, "fzf54f00_1.tif")
    # On zone-less pages the XML's DL_PAGE size is a 2592x3300 placeholder: the TIFF's own size is used.
    from PIL import Image

    empty = [p for p in pages if not p.boxes]
    assert len(empty) == 288
    assert all((p.width, p.height) == Image.open(p.path).size for p in empty[:20])
    assert any((p.width, p.height) != (2592, 3300) for p in empty)
    split = split_pages(pages, seed=0)
    assert sorted(split["train"] + split["dev"] + split["test"]) == sorted(p.path for p in pages)
    documents = {name: {p.document for p in pages if p.path in set(paths)} for name, paths in split.items()}
    assert not documents["train"] & documents["test"] and not documents["dev"] & documents["test"]
    assert not documents["train"] & documents["dev"]


@pytest.mark.shared
def test_inspect_pages_cli(tobacco_root, capsys):
    assert main(["data", "inspect", str(tobacco_root)]) == 0
    out = capsys.readouterr().out
    assert "839: 500 with a signature, 339 without" in out and "598 signatures" in out


def _tobacco_page(root: Path, stem: str, zones: list[tuple[str, int]], seed: int) -> None:
    """A 1-bit page ``root/train/<stem>.tif`` with one scribble per zone (author, column) and its GEDI XML."""
    import numpy as np
    from PIL import Image

    from helpers import scribble

    page = np.full((400, 600), 255, dtype=np.uint8)
    rows = []
    for k, (author, col) in enumerate(zones):
        page[200:320, col : col + 260] = scribble(seed + k)
        rows.append(f'<DL_ZONE gedi_type="DLSignature" col="{col}" row="200" width="260" height="120" Overlapped="No" AuthorID="{author}"> </DL_ZONE>')
    (root / "train").mkdir(parents=True, exist_ok=True)
    (root / "train_xml").mkdir(exist_ok=True)
    Image.fromarray(np.where(page < 128, 0, 255).astype(np.uint8)).convert("1").save(root / "train" / f"{stem}.tif", compression="group4")
    (root / "train_xml" / f"{stem}.xml").write_text(
        XML.replace("abc12d00_2.tif", f"{stem}.tif").split("<DL_ZONE")[0] + "\n".join(rows) + "\n  </DL_PAGE>\n </DL_DOCUMENT>\n</GEDI>")


def test_export_tobacco_writers(tmp_path):
    import json
    import shutil
    import subprocess
    import sys

    from conftest import REPO
    from sigverify.datasets import read_dataset

    source = tmp_path / "tobacco"
    _tobacco_page(source, "aaa00a00_1", [("Smith, J.", 20)], seed=1)
    _tobacco_page(source, "bbb00b00_1", [("Smith, J.", 300), ("Jones, K.", 20)], seed=2)
    # a byte-identical scan of the first page under another name: its crop is written once
    shutil.copy(source / "train" / "aaa00a00_1.tif", source / "train" / "aaa00a00-page2_1.tif")
    shutil.copy(source / "train_xml" / "aaa00a00_1.xml", source / "train_xml" / "aaa00a00-page2_1.xml")
    out = tmp_path / "writers"
    script = REPO / "scripts" / "export_tobacco_writers.py"
    done = subprocess.run([sys.executable, str(script), str(source), str(out), "--cleaner", "none"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "2 signatures of 1 writers" in done.stdout
    dataset = read_dataset(out)
    assert dataset.layout == "generic" and dataset.writers() == ["writers/Smith_J"]  # Jones has one signature: left out
    assert {r.label for r in dataset.records} == {"genuine"} and len(dataset.records) == 2
    assert json.loads((out / "export.json").read_text())["writers"] == 1
    again = subprocess.run([sys.executable, str(script), str(source), str(out), "--cleaner", "none"], capture_output=True, text=True)
    assert again.returncode != 0 and "exists" in again.stderr
    not_tobacco = subprocess.run([sys.executable, str(script), str(tmp_path / "writers"), str(tmp_path / "other"), "--cleaner", "none"], capture_output=True, text=True)
    assert not_tobacco.returncode != 0 and "train/ and train_xml/" in not_tobacco.stderr and "Traceback" not in not_tobacco.stderr
