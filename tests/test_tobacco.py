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
