"""The README's first command: show sigverify working on the bundled sample signatures."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import cv2


def samples_dir() -> Path:
    """Folder of the bundled sample signatures (generic layout: ``<writer>/genuine|forged/*.png``)."""
    return Path(str(resources.files("sigverify") / "samples"))


def run_demo(out_dir: str = "sigverify-demo") -> int:
    """Inspect the bundled samples and write their preprocessed forms to ``out_dir``."""
    from .datasets import read_dataset
    from .datasets.inspect import inspect_dataset
    from .preprocess import preprocess

    root = samples_dir()
    print("\n".join(inspect_dataset(str(root))["lines"]))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for record in read_dataset(root).records:
        image = preprocess(record.path)
        target = out / f"{record.writer}-{record.label}-{Path(record.path).stem}.png"
        cv2.imwrite(str(target), image)
        print(f"{record.writer}\t{record.label}\t{Path(record.path).name}\t-> {target}")
    return 0
