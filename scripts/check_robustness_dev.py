#!/usr/bin/env python
"""Development-writer check of a verifier's sensitivity to how a signature is rendered.

Usage: python scripts/check_robustness_dev.py [--both] [MODEL.safetensors ...]   (none given: the shipped one)

On the verifier split's 14 dev writers (never the test writers), clean references (the signature on
white paper, ``synth.noise.clean_twin``) and queries that are the *same* signatures rendered
differently: a bilevel scan (Otsu), a blacker pen (ink x 0.4), a greyer paper (-20), a slight blur,
and a round trip through a lower resolution (what a cleaner working at that height gives back at
best). EER of genuine vs skilled queries, 5 references, writer-threshold; 1 reference, fusion-mean, on
the clean images. A robust verifier keeps every column near the clean one. With ``--both`` the
references are rendered the same way as the queries (an archive scanned that way end to end).
"""

from __future__ import annotations

import argparse

import cv2
import numpy as np

from sigverify.api import load_model
from sigverify.cleaning.evaluate import _eer_noisy_queries, _vectors, dev_clean_twins

DATA = ["../shared/data/cedar", "../shared/data/sigcomp2009"]


def bilevel(gray: np.ndarray) -> np.ndarray:
    threshold, _ = cv2.threshold(gray, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return np.where(gray > threshold, 255, 0).astype(np.uint8)


def darker_pen(gray: np.ndarray) -> np.ndarray:
    out = gray.astype(np.float32)
    out[gray < 255] *= 0.4
    return out.astype(np.uint8)


def greyer_paper(gray: np.ndarray) -> np.ndarray:
    return np.clip(gray.astype(np.float32) - 20, 0, 255).astype(np.uint8)


def blur(gray: np.ndarray) -> np.ndarray:
    return cv2.GaussianBlur(gray, (0, 0), 0.8)


def round_trip(height: int):
    def render(gray: np.ndarray) -> np.ndarray:
        scale = height / gray.shape[0]
        small = cv2.resize(gray, (max(16, round(gray.shape[1] * scale)), height), interpolation=cv2.INTER_AREA)
        return cv2.resize(small, (gray.shape[1], gray.shape[0]), interpolation=cv2.INTER_LINEAR)

    render.__name__ = f"height_{height}"
    return render


RENDERINGS = (bilevel, darker_pen, greyer_paper, blur, round_trip(96), round_trip(144), round_trip(192))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", help="verifier files (default: the shipped one)")
    parser.add_argument("--both", action="store_true", help="render the references like the queries")
    args = parser.parse_args()
    chosen, clean = dev_clean_twins(DATA)
    print(f"{len(chosen)} images of {len({r.writer_key for r in chosen})} dev writers; EER in % (genuine vs skilled)", flush=True)
    for path in args.models or [None]:
        artifact = load_model(path)
        references = _vectors(artifact, clean)

        def eer(queries, n_refs: int = 5, method: str = "writer-threshold", refs=references) -> float:
            return round(100 * _eer_noisy_queries(artifact, refs, _vectors(artifact, queries), chosen, method, n_refs, 2, 0), 2)

        row = {"clean_1ref": eer(clean, 1, "fusion-mean"), "clean": eer(clean)}
        for render in RENDERINGS:
            rendered = [render(g) for g in clean]
            if args.both:
                rendered_vectors = _vectors(artifact, rendered)
                row[render.__name__ + "_1ref"] = eer(rendered, 1, "fusion-mean", rendered_vectors)
                row[render.__name__] = eer(rendered, refs=rendered_vectors)
            else:
                row[render.__name__] = eer(rendered)
        print(f"{path or 'shipped verifier'}: " + "  ".join(f"{k} {v}" for k, v in row.items()), flush=True)


if __name__ == "__main__":
    main()
