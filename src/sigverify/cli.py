"""The ``sigverify`` command line.

Output is one line per item, made for people and for pipes; ``--json`` gives machine-readable
output where it makes sense. Errors go to stderr as ``sigverify: <what>: <why>`` with exit code 3
(verification commands) or 2 (usage), never a traceback for bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Callable, Optional, Sequence

from . import __version__
from .errors import SigverifyError

EXIT_ERROR = 3

Handler = Callable[[argparse.Namespace], int]


def _print_json(value: object) -> None:
    json.dump(value, sys.stdout, indent=1, default=str)
    sys.stdout.write("\n")


# ----------------------------------------------------------------------------- data


def cmd_data_inspect(args: argparse.Namespace) -> int:
    from .datasets.inspect import inspect_dataset, inspect_pages
    from .datasets.tobacco import is_tobacco800

    if is_tobacco800(args.path) and not args.layout:
        summary = inspect_pages(args.path)
    else:
        summary = inspect_dataset(args.path, layout=args.layout)
    if args.json:
        _print_json(summary)
    else:
        print("\n".join(summary["lines"]))
    return 0


def cmd_data_check(args: argparse.Namespace) -> int:
    from .cache import load_or_build
    from .datasets import read_dataset
    from .datasets.check import check_cache, check_pages
    from .datasets.tobacco import is_tobacco800

    if is_tobacco800(args.path) and not args.layout:
        root = str(Path(args.path).resolve())
        report = check_pages(root)
    else:
        dataset = read_dataset(args.path, layout=args.layout)
        root = dataset.root
        cache = load_or_build(dataset.records, cache_dir=args.cache_dir, log=lambda m: print(m, file=sys.stderr))
        report = check_cache(cache, near_duplicate_bits=args.near_bits)
    if args.json:
        _print_json({"ok": report.ok, "counts": report.counts, "errors": report.errors, "warnings": report.warnings})
    else:
        for line in report.errors:
            print(f"ERROR   {line}")
        for line in report.warnings:
            print(f"WARNING {line}")
        counts = ", ".join(f"{k} {v}" for k, v in report.counts.items())
        verdict = "OK" if report.ok else "FAILED"
        print(f"{verdict}: {root}: {len(report.errors)} errors, {len(report.warnings)} warnings ({counts})")
    return 0 if report.ok else 1


def cmd_data_cache(args: argparse.Namespace) -> int:
    from .cache import load_or_build
    from .datasets import read_dataset
    from .preprocess import PreprocessConfig

    config = PreprocessConfig.from_dict(json.loads(args.preprocess)) if args.preprocess else PreprocessConfig()
    records = []
    for path in args.paths:
        records += read_dataset(path).records
    started = time.perf_counter()
    cache = load_or_build(records, config, cache_dir=args.cache_dir, workers=args.workers, progress=args.progress)
    print(f"{len(cache)} images ready in {time.perf_counter() - started:.1f} s: {cache.path}")
    return 0


# ----------------------------------------------------------------------------- preprocess


def cmd_preprocess(args: argparse.Namespace) -> int:
    import cv2

    from .preprocess import PreprocessConfig, preprocess

    config = PreprocessConfig.from_dict(json.loads(args.preprocess)) if args.preprocess else PreprocessConfig()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    failures = 0
    for image_path in args.images:
        try:
            image = preprocess(image_path, config)
        except SigverifyError as exc:
            print(f"sigverify: {exc}", file=sys.stderr)
            failures += 1
            continue
        target = out / (Path(image_path).stem + ".png")
        cv2.imwrite(str(target), image)
        print(f"{image_path}\t{target}\t{image.shape[0]}x{image.shape[1]}\tink {int((image > 0).sum())} px")
    return EXIT_ERROR if failures else 0


# ----------------------------------------------------------------------------- demo


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(out_dir=args.out)


# ----------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sigverify",
        description="Offline handwritten-signature verification.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"sigverify {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    demo = commands.add_parser("demo", help="preprocess and inspect the bundled sample signatures")
    demo.add_argument("--out", default="sigverify-demo", help="folder for the preprocessed samples")
    demo.set_defaults(handler=cmd_demo)

    pre = commands.add_parser("preprocess", help="preprocess signature images into PNGs")
    pre.add_argument("images", nargs="+", help="image files")
    pre.add_argument("--out", required=True, help="output folder")
    pre.add_argument("--preprocess", help="preprocessing parameters as JSON, e.g. '{\"denoise\": \"median\"}'")
    pre.set_defaults(handler=cmd_preprocess)

    data = commands.add_parser(
        "data",
        help="inspect, check and cache datasets",
        description=(
            "Dataset tools. Layouts are detected: CEDAR (original_W_N / forgeries_W_N), SigComp2009 "
            "(NNN/genuine|forgery with NFI/NISDCC names), Kaggle (NNN/ + NNN_forg/), BHSig "
            "(B-S-W-G-NN.tif) and the generic ROOT/<writer>/genuine/* + ROOT/<writer>/forged/*."
        ),
    )
    data_commands = data.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    inspect = data_commands.add_parser("inspect", help="print writers, counts per label and anything odd")
    inspect.add_argument("path", help="dataset folder")
    inspect.add_argument("--layout", help="force a layout instead of detecting it")
    inspect.add_argument("--json", action="store_true", help="print JSON")
    inspect.set_defaults(handler=cmd_data_inspect)

    check = data_commands.add_parser(
        "check", help="find duplicate images across writers/labels (exit 1) and near-duplicates (warnings)"
    )
    check.add_argument("path", help="dataset folder")
    check.add_argument("--layout", help="force a layout instead of detecting it")
    check.add_argument("--cache-dir", help="where preprocessed caches live (default ~/.cache/sigverify)")
    check.add_argument("--near-bits", type=int, default=12, help="perceptual-hash bits (of 256) for a near-duplicate")
    check.add_argument("--json", action="store_true", help="print JSON")
    check.set_defaults(handler=cmd_data_check)

    cache = data_commands.add_parser("cache", help="preprocess datasets once into a reusable cache file")
    cache.add_argument("paths", nargs="+", help="dataset folders")
    cache.add_argument("--cache-dir", help="where caches live (default ~/.cache/sigverify)")
    cache.add_argument("--workers", type=int, help="processes (default: all cores)")
    cache.add_argument("--preprocess", help="preprocessing parameters as JSON")
    cache.add_argument("--progress", action="store_true", help="show a progress bar")
    cache.set_defaults(handler=cmd_data_cache)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except SigverifyError as exc:
        print(f"sigverify: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except BrokenPipeError:  # `sigverify ... | head` closed the pipe: not an error
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("sigverify: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
