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


# ----------------------------------------------------------------------------- train

# CLI flag -> TrainConfig field, for the flags that override the config file.
TRAIN_FLAGS = {
    "model": str, "loss": str, "margin": float, "lr": float, "weight_decay": float, "decay_steps": int,
    "decay_rate": float, "epochs": int, "steps_per_epoch": int, "batch_writers": int, "per_writer": int,
    "forged_per_writer": int, "seed": int, "split_seed": int, "dev_fraction": float, "test_fraction": float,
    "split_file": str, "embedding_dim": int, "out": str, "threads": int, "max_minutes": float, "cache_dir": str,
    "name": str, "init": str, "device": str,
}


def _invocation() -> str:
    """This command line as typed (``sigverify ...``), recorded in what the command writes."""
    import shlex

    return "sigverify " + " ".join(shlex.quote(a) for a in sys.argv[1:])


def cmd_train(args: argparse.Namespace) -> int:
    from .train import TrainConfig, train

    values = TrainConfig.from_file(args.config).to_dict() if args.config else {}
    if args.data:
        values["data"] = args.data
    for flag in TRAIN_FLAGS:
        value = getattr(args, flag)
        if value is not None:
            values[flag] = value
    for flag in ("staircase", "bf16", "augment"):
        value = getattr(args, flag)
        if value is not None:
            values[flag] = value
    if args.model_args:
        values["model_args"] = json.loads(args.model_args)
    config = TrainConfig.from_dict(values)
    command = _invocation()
    try:
        train(config, resume=args.resume, progress=not args.no_progress, command=command)
    except (FileExistsError, ValueError) as exc:
        print(f"sigverify: train: {exc}", file=sys.stderr)
        return 2
    return 0


def cmd_recalibrate(args: argparse.Namespace) -> int:
    from .train import recalibrate

    command = _invocation()
    for run in args.runs:
        try:
            path = recalibrate(run, command=command)
        except (FileNotFoundError, ValueError) as exc:
            print(f"sigverify: recalibrate: {exc}", file=sys.stderr)
            return 2
        print(path)
    return 0


def cmd_ensemble(args: argparse.Namespace) -> int:
    from .errors import ModelError
    from .train import build_ensemble

    try:
        path = build_ensemble(args.models, args.out, device=args.device, command=_invocation(), log=lambda m: print(m, file=sys.stderr))
    except (FileNotFoundError, ValueError, ModelError) as exc:
        print(f"sigverify: ensemble: {exc}", file=sys.stderr)
        return 2
    print(path)
    return 0


# ----------------------------------------------------------------------------- verify

EXIT_CODES = {"genuine": 0, "forged": 1, "inconclusive": 2}


def _expand_references(items: Sequence[str]) -> list[str]:
    """Reference arguments: files, or folders (every image inside, sorted)."""
    from .datasets import list_images

    paths: list[str] = []
    for item in items:
        if Path(item).is_dir():
            found = [str(p) for p in list_images(item)]
            if not found:
                raise SigverifyError(f"{item}: folder holds no images")
            paths += found
        else:
            paths.append(item)
    return paths


def _verify_line(query: str, result: dict) -> str:
    line = (
        f"{query}: {result['decision']} (score {result['score']:.3f}, threshold {result['threshold']:.3f}, "
        f"{result['method']}, {result['n_references']} reference{'s' if result['n_references'] != 1 else ''}, {result['time_ms']:.0f} ms)"
    )
    return line + "".join(f"\n  warning: {w}" for w in result["warnings"])


def cmd_verify(args: argparse.Namespace) -> int:
    from .api import verify

    if args.writer:
        from .service.store import verify_enrolled

        result = verify_enrolled(args.query, args.writer, db=args.db, model=args.model, method=args.method, threshold=args.threshold, client="cli")
    else:
        if not args.references:
            print("sigverify: verify: give REFERENCE files/folders, or --writer W for an enrolled writer", file=sys.stderr)
            return EXIT_ERROR
        references = _expand_references(args.references)
        result = verify(args.query, references, model=args.model, method=args.method, threshold=args.threshold, inconclusive_band=args.band, tta=args.tta)
    if args.json:
        _print_json(result)
    else:
        print(_verify_line(args.query, result))
    return EXIT_CODES[result["decision"]]


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .report import format_table, run_evaluation

    methods = args.methods.split(",") if args.methods else None
    kwargs = {"methods": methods} if methods else {}
    report = run_evaluation(
        args.data,
        model=args.model if not args.train else None,
        train_config=args.train,
        folds=args.folds,
        refs=args.refs,
        draws=args.draws,
        seed=args.seed,
        runs_dir=args.runs_dir,
        plots=args.plots,
        controls=not args.no_controls,
        extra_train=args.extra_train,
        tta=args.tta,
        only_folds=args.fold,
        train_only=args.train_only,
        device=args.device,
        seeds=args.seeds,
        only_seed=args.only_seed,
        bf16=args.bf16,
        log=lambda m: print(m, file=sys.stderr),
        **kwargs,
    )
    if args.train_only:
        for fold in report["folds_detail"]:
            print(f"fold {fold['fold']}: {fold['model']}")
        return 0
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        with open(args.json, "w") as handle:
            json.dump(report, handle, indent=1)
    for index, one in enumerate(report["one_reference"]):
        for kind in ("skilled", "random"):
            if kind in one:
                figures = one[kind]
                print(f"one reference, all pairs{f' (fold {index})' if len(report['one_reference']) > 1 else ''}: genuine vs {kind}: "
                      f"EER {figures['eer'] * 100:.2f}%  FAR {figures['far'] * 100:.2f}%  FRR {figures['frr'] * 100:.2f}% at the dev threshold {one['threshold']:.3f}")
    print("\n".join(format_table(report["summary"], args.refs)))
    for key, value in report["controls"].items():
        print(f"control {key}: {value['mean']:.4f} +- {value['std']:.4f}")
    print("best method: " + ", ".join(f"R={r}: {m}" for r, m in report["best_method"].items()))
    return 0


# ----------------------------------------------------------------------------- service


def cmd_serve(args: argparse.Namespace) -> int:
    from .service.app import serve

    serve(host=args.host, port=args.port, db=args.db, model=args.model, api_key=args.api_key, ui=not args.no_ui, seed_samples=args.samples)
    return 0


def cmd_enroll(args: argparse.Namespace) -> int:
    from .service.store import StoreError, open_store

    store = open_store(args.db, args.model)
    try:
        store.get_writer(args.writer)
    except StoreError:
        store.create_writer(args.writer, args.name or "")
    paths = _expand_references(args.images)
    added = store.add_references(args.writer, [(Path(p).name, Path(p).read_bytes()) for p in paths])
    for reference in added:
        print(f"{args.writer}\treference {reference['id']}\t{reference['filename']}")
    print(f"{args.writer}: {store.get_writer(args.writer)['n_references']} references", file=sys.stderr)
    return 0


def cmd_writers(args: argparse.Namespace) -> int:
    from .service.store import open_store

    writers = open_store(args.db, args.model).list_writers()
    if args.json:
        _print_json(writers)
    else:
        for writer in writers:
            print(f"{writer['id']}\t{writer['n_references']} references\t{writer['name']}")
    return 0


def cmd_identify(args: argparse.Namespace) -> int:
    from .imageio import read_bytes
    from .service.store import open_store

    result = open_store(args.db, args.model).identify(read_bytes(args.query), top=args.top, client="cli")
    if args.json:
        _print_json(result)
    else:
        for rank, candidate in enumerate(result["candidates"], 1):
            print(f"{rank}\t{candidate['writer_id']}\t{candidate['score']:.3f}\t{candidate['name']}")
    return 0


# ----------------------------------------------------------------------------- documents


def cmd_verify_document(args: argparse.Namespace) -> int:
    import cv2

    from .api import verify_document

    if args.writer:
        from .imageio import read_bytes
        from .service.store import open_store

        result = open_store(args.db, args.model).verify_document(args.writer, read_bytes(args.page), cleaner=args.cleaner, reference_mode=args.reference_mode, method=args.method, threshold=args.threshold, min_score=args.min_score, client="cli", filename=args.page)
    else:
        if not args.references:
            print("sigverify: verify-document: give REFERENCE files/folders, or --writer W", file=sys.stderr)
            return EXIT_ERROR
        result = verify_document(args.page, _expand_references(args.references), model=args.model, cleaner=args.cleaner, reference_mode=args.reference_mode, method=args.method, threshold=args.threshold, min_score=args.min_score, dpi=args.dpi)
    for number, item in enumerate(result["signatures"], 1):
        cleaned = item.pop("cleaned")
        if args.crops:
            Path(args.crops).mkdir(parents=True, exist_ok=True)
            target = Path(args.crops) / f"{Path(args.page).stem}-sig{number}-cleaned.png"
            cv2.imwrite(str(target), cleaned)
            item["cleaned_crop"] = str(target)
    if args.json:
        _print_json(result)
    else:
        if not result["signatures"]:
            print(f"{args.page}: {result['message']}")
        for item in result["signatures"]:
            x0, y0, x1, y1 = item["box"]
            score = "n/a" if item.get("score") is None else f"{item['score']:.3f}"
            print(f"{args.page}#page{item['page'] + 1} [{x0:.0f},{y0:.0f},{x1:.0f},{y1:.0f}]: {item['decision']} (score {score}, detection {item['detection_score']:.2f})")
        print(f"{args.page}: document {result['decision']} ({result['message']})")
    return EXIT_CODES[result["decision"]]


# ----------------------------------------------------------------------------- cleaning


def cmd_clean(args: argparse.Namespace) -> int:
    import cv2

    from .cleaning import clean

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    failures = 0
    for image in args.images:
        try:
            cleaned = clean(image, args.method, cleaner=args.cleaner)
        except SigverifyError as exc:
            print(f"sigverify: {exc}", file=sys.stderr)
            failures += 1
            continue
        target = out / f"{Path(image).stem}-{args.method}.png"
        cv2.imwrite(str(target), cleaned)
        print(f"{image}\t{target}")
    return EXIT_ERROR if failures else 0


def cmd_train_cleaner(args: argparse.Namespace) -> int:
    from .cleaning.train import CleanerConfig, train_cleaner

    values = CleanerConfig.from_file(args.config).to_dict() if args.config else {}
    for flag in ("method", "out", "steps", "max_minutes", "threads", "seed"):
        value = getattr(args, flag)
        if value is not None:
            values[flag] = value
    train_cleaner(CleanerConfig.from_dict(values), command=_invocation())
    return 0


def cmd_evaluate_cleaner(args: argparse.Namespace) -> int:
    from .cleaning.evaluate import run_cleaner_evaluation

    paths = {}
    if args.unet:
        paths["unet"] = args.unet
    if args.cyclegan:
        paths["cyclegan"] = args.cyclegan
    report = run_cleaner_evaluation(args.data, args.tobacco, model=args.model, methods=args.methods.split(","), cleaner_paths=paths, grid=args.grid, max_images=args.max_images, log=lambda m: print(m, file=sys.stderr))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        with open(args.json, "w") as handle:
            json.dump(report, handle, indent=1)
    synthetic = report["synthetic"]
    print(f"synthetic noise, {synthetic['n_writers']} held-out writers, {synthetic['verifier_method']} with {synthetic['n_refs']} clean references:")
    print(f"  clean originals (ceiling): EER {synthetic['eer_clean'] * 100:.2f}%")
    for method in report["methods"]:
        entry = synthetic[method]
        gap = f"  gap removed {entry['eer_gap_removed'] * 100:.1f}%" if "eer_gap_removed" in entry else ""
        document = f"  | document path EER {entry['eer_document'] * 100:.2f}%"
        document += f" (gap removed {entry['eer_document_gap_removed'] * 100:.1f}%)" if "eer_document_gap_removed" in entry else ""
        print(f"  {method:9s} EER {entry['eer'] * 100:.2f}%  PSNR {entry['psnr']:.2f}  SSIM {entry['ssim']:.4f}  ink F1 {entry['ink_f1']:.4f}{gap}{document}")
    real = report.get("tobacco800_overlapped")
    if real:
        print(f"Tobacco-800 overlapped crops: {real['n_crops']} crops of {real['n_authors']} authors, {real['same_author_pairs']} same-author pairs:")
        for method in report["methods"]:
            control = f"  control (only what it removed) AUC {real[method]['auc_removed_only']:.4f}" if "auc_removed_only" in real[method] else ""
            print(f"  {method:9s} AUC {real[method]['auc']:.4f}  EER {real[method]['eer'] * 100:.2f}%{control}")
    return 0


# ----------------------------------------------------------------------------- detection


def _draw_boxes(gray, found, path: str) -> None:
    import cv2

    picture = cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)
    thickness = max(2, int(max(gray.shape) / 400))
    for item in found:
        x0, y0, x1, y1 = (int(round(v)) for v in item["box"])
        cv2.rectangle(picture, (x0, y0), (x1, y1), (0, 0, 230), thickness)
        cv2.putText(picture, f"{item['score']:.2f}", (x0, max(12, y0 - 6)), cv2.FONT_HERSHEY_SIMPLEX, thickness / 3, (0, 0, 230), max(1, thickness // 2))
    if not cv2.imwrite(path, picture):
        raise SigverifyError(f"{path}: cannot write the picture (unknown extension or folder?)")


def cmd_detect(args: argparse.Namespace) -> int:
    import cv2

    from .detection.detector import detect_gray, load_detector
    from .documents import load_pages

    artifact = load_detector(args.detector)
    all_results = []
    failures = 0
    for source in args.pages:
        try:
            pages = load_pages(source, dpi=args.dpi)
        except SigverifyError as exc:
            print(f"sigverify: {exc}", file=sys.stderr)
            failures += 1
            continue
        for page in pages:
            found = detect_gray(page.image, artifact, min_score=args.min_score)
            label = source if len(pages) == 1 else f"{source}#page{page.index + 1}"
            all_results.append({"page": label, "width": page.image.shape[1], "height": page.image.shape[0], "signatures": found})
            if args.crops:
                Path(args.crops).mkdir(parents=True, exist_ok=True)
                for number, item in enumerate(found, 1):
                    x0, y0, x1, y1 = (int(round(v)) for v in item["box"])
                    stem = Path(source).stem + (f"-p{page.index + 1}" if len(pages) > 1 else "")
                    target = Path(args.crops) / f"{stem}-sig{number}.png"
                    cv2.imwrite(str(target), page.image[y0:y1, x0:x1])
                    item["crop"] = str(target)
            if args.draw:
                target = args.draw if len(pages) == 1 and len(args.pages) == 1 else str(Path(args.draw).with_name(f"{Path(args.draw).stem}-{Path(source).stem}-p{page.index + 1}{Path(args.draw).suffix}"))
                _draw_boxes(page.image, found, target)
            if not args.json:
                if not found:
                    print(f"{label}\tno signature found")
                for item in found:
                    x0, y0, x1, y1 = item["box"]
                    print(f"{label}\t{x0:.0f},{y0:.0f},{x1:.0f},{y1:.0f}\t{item['score']:.3f}" + (f"\t{item['crop']}" if "crop" in item else ""))
    if args.json:
        _print_json(all_results)
    return EXIT_ERROR if failures else 0


def cmd_train_detector(args: argparse.Namespace) -> int:
    from .detection.train import DetectorConfig, train_detector

    values = DetectorConfig.from_file(args.config).to_dict() if args.config else {}
    for flag in ("tobacco", "out", "epochs", "long_side", "synthetic_pages", "max_minutes", "threads", "seed"):
        value = getattr(args, flag)
        if value is not None:
            values[flag] = value
    config = DetectorConfig.from_dict(values)
    train_detector(config, command=_invocation())
    return 0


def cmd_evaluate_detector(args: argparse.Namespace) -> int:
    from .detection.evaluate import evaluate_detector

    report = evaluate_detector(args.data, detector=args.detector, part=args.part, synthetic=args.synthetic, log=lambda m: print(m, file=sys.stderr))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        with open(args.json, "w") as handle:
            json.dump(report, handle, indent=1)
    tob = report["tobacco800"]
    print(f"Tobacco-800 {tob['part']} pages: AP50 {tob['all']['ap50']:.4f}  AP50:95 {tob['all']['ap']:.4f}  "
          f"precision {tob['all']['precision']:.4f}  recall {tob['all']['recall']:.4f} at score {report['operating_score']:.3f}")
    print(f"  with signatures ({tob['with_signatures']['pages']} pages): AP50 {tob['with_signatures']['ap50']:.4f}  recall {tob['with_signatures']['recall']:.4f}")
    print(f"  without signatures ({tob['without_signatures']['pages']} pages): {tob['without_signatures']['fp_per_page']:.3f} false positives per page")
    print(f"  latency per page: median {report['latency_ms']['median']} ms, p95 {report['latency_ms']['p95']} ms (reading the file included)")
    if "synthetic" in report:
        syn = report["synthetic"]
        print(f"synthetic pages ({syn['pages']}): AP50 {syn['ap50']:.4f}  AP50:95 {syn['ap']:.4f}  recall {syn['recall']:.4f}")
    return 0


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

    train = commands.add_parser(
        "train",
        help="train a Siamese model on one or more datasets",
        description=(
            "Train on the training writers of DATA (writer-disjoint train/dev/test split), select the "
            "epoch with the best dev EER, calibrate on dev writers and write OUT/model.safetensors. "
            "Settings come from --config (TOML, a [train] table) and are overridden by flags."
        ),
    )
    train.add_argument("data", nargs="*", help="dataset folders (or `data` in the config)")
    train.add_argument("--config", help="TOML file with a [train] table (see configs/)")
    for flag, kind in TRAIN_FLAGS.items():
        train.add_argument("--" + flag.replace("_", "-"), dest=flag, type=kind, default=None)
    train.add_argument("--model-args", help="backbone arguments as JSON, e.g. '{\"depth\": 18}'")
    train.add_argument("--staircase", action=argparse.BooleanOptionalAction, default=None, help="step-wise lr decay")
    train.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=None, help="bfloat16 autocast (CPU or GPU)")
    train.add_argument("--augment", action=argparse.BooleanOptionalAction, default=None, help="training augmentation")
    train.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    train.add_argument("--no-progress", action="store_true", help="no progress bars")
    train.set_defaults(handler=cmd_train)

    recal = commands.add_parser(
        "recalibrate",
        help="refit finished training runs' calibration (size weight, thresholds) on their dev writers",
        description=(
            "Fit again, with this version's code, what training fits on the dev writers after the last "
            "epoch (size weight, thresholds, per-method calibration, WD background, cohort) and rewrite "
            "RUN/model.safetensors; the network weights are not touched. RUN may also be a model file "
            "(the shipped one, an exported one): it is refitted in place from the data and split it records."
        ),
    )
    recal.add_argument("runs", nargs="+", metavar="RUN", help="training output folders (holding config.json, split.json, best.safetensors), or model files")
    recal.set_defaults(handler=cmd_recalibrate)

    ensemble = commands.add_parser(
        "ensemble",
        help="join trainings of one recipe (e.g. other seeds) into one model file",
        description=(
            "Join finished trainings of one recipe on one writer split (typically the same config with "
            "other --seed values) into one model: each signature is embedded by every member and two "
            "signatures' distance is the mean of the members' distances. The ensemble is calibrated on "
            "the members' dev writers like a trained model; the members' weights are not touched."
        ),
    )
    ensemble.add_argument("models", nargs="+", metavar="MODEL", help="model files (model.safetensors of each training)")
    ensemble.add_argument("--out", required=True, help="the ensemble's model file")
    ensemble.add_argument("--device", default="cpu", help='where the calibration embeds ("cpu", "cuda")')
    ensemble.set_defaults(handler=cmd_ensemble)

    from .methods import METHODS

    verify = commands.add_parser(
        "verify",
        help="verify a questioned signature against references (exit 0 genuine, 1 forged, 2 inconclusive, 3 error)",
        description="Verify QUERY against REFERENCE images (files or folders), or against an enrolled writer with --writer.",
    )
    verify.add_argument("query", help="the questioned signature image")
    verify.add_argument("references", nargs="*", help="reference images or folders of them")
    verify.add_argument("--writer", help="verify against this enrolled writer's references instead")
    verify.add_argument("--db", help="enrollment store (SQLAlchemy URL or SQLite file) for --writer")
    verify.add_argument("--model", help="model file (default: the shipped model)")
    verify.add_argument("--method", default="fusion-mean", choices=METHODS, help="decision method (default fusion-mean)")
    verify.add_argument("--threshold", type=float, help="decision threshold on the 0..1 score (default: the model's)")
    verify.add_argument("--band", type=float, default=0.1, help="width of the inconclusive band around the threshold")
    verify.add_argument("--tta", action="store_true", help="test-time augmentation (small rotations and scales)")
    verify.add_argument("--json", action="store_true", help="print the full result as JSON")
    verify.set_defaults(handler=cmd_verify)

    evaluate = commands.add_parser(
        "evaluate",
        help="writer-disjoint evaluation report (EER, FAR, FRR, AUC, controls, plots)",
        description=(
            "Evaluate --model on the writers of DATA it never saw, or with --train CONFIG retrain per fold "
            "so every writer is tested once by a model that never saw it. Thresholds come from dev writers."
        ),
    )
    evaluate.add_argument("data", nargs="+", help="dataset folders")
    evaluate.add_argument("--model", help="model file (default: the shipped model)")
    evaluate.add_argument(
        "--train", nargs="+", metavar="CONFIG",
        help="retrain on each fold's training writers from this TOML config; several configs are stages, each started from the previous stage's fold model",
    )
    evaluate.add_argument("--folds", type=int, default=5, help="folds with --train (default 5)")
    evaluate.add_argument("--extra-train", nargs="+", default=[], metavar="OTHER", help="with --train: datasets whose writers all join every fold's training writers (never tested)")
    evaluate.add_argument("--refs", type=int, nargs="+", default=[12], help="reference counts R (default 12)")
    evaluate.add_argument("--draws", type=int, default=3, help="random reference draws per writer (default 3)")
    evaluate.add_argument("--methods", help="comma-separated methods (default: all)")
    evaluate.add_argument("--seed", type=int, default=0)
    evaluate.add_argument("--runs-dir", default="runs/evaluate", help="where fold models are trained (reused if present)")
    evaluate.add_argument("--json", help="write the full report here")
    evaluate.add_argument("--plots", help="write ROC/DET/histogram/confusion plots into this folder")
    evaluate.add_argument("--no-controls", action="store_true", help="skip the probe and shuffled-reference controls")
    evaluate.add_argument("--tta", action="store_true", help="test-time augmentation, scored with the model's calibration for it")
    evaluate.add_argument("--fold", type=int, nargs="+", metavar="K", help="with --train: only these folds (0-based)")
    evaluate.add_argument("--train-only", action="store_true", help="with --train: train the fold models and stop (test them with a later run)")
    evaluate.add_argument("--seeds", type=int, nargs="+", metavar="S", help="with --train: train each fold once per seed and test the ensemble of those models")
    evaluate.add_argument("--only-seed", type=int, metavar="S", help="with --seeds and --train-only: train this seed's fold models alone")
    evaluate.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=None, help="with --train: bfloat16 autocast on or off for every stage (default the configs'; --no-bf16 on a GPU)")
    evaluate.add_argument("--device", help='with --train: where the fold models train and are scored ("cpu", "cuda", "cuda:N"; default the config\'s, and the CPU)')
    evaluate.set_defaults(handler=cmd_evaluate)

    db_help = "enrollment store: SQLAlchemy URL or SQLite file (default sigverify.db)"
    serve_parser = commands.add_parser("serve", help="start the REST API and web page", description="Start the REST API (FastAPI) and the web page (Gradio) on one port.")
    serve_parser.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1; others need an API key)")
    serve_parser.add_argument("--port", type=int, default=8000)
    serve_parser.add_argument("--db", help=db_help)
    serve_parser.add_argument("--model", help="model file (default: the shipped model)")
    serve_parser.add_argument("--api-key", help="require 'Authorization: Bearer KEY' (default $SIGVERIFY_API_KEY)")
    serve_parser.add_argument("--samples", action="store_true", help="enroll the bundled sample writers into an empty store")
    serve_parser.add_argument("--no-ui", action="store_true", help="API only, no web page")
    serve_parser.set_defaults(handler=cmd_serve)

    enroll = commands.add_parser("enroll", help="enroll reference signatures of a writer (created if new)")
    enroll.add_argument("writer", help="writer id")
    enroll.add_argument("images", nargs="+", help="reference images or folders")
    enroll.add_argument("--name", help="display name for a new writer")
    enroll.add_argument("--db", help=db_help)
    enroll.add_argument("--model", help="model file (default: the shipped model)")
    enroll.set_defaults(handler=cmd_enroll)

    writers = commands.add_parser("writers", help="list enrolled writers")
    writers.add_argument("--db", help=db_help)
    writers.add_argument("--model", help="model file (default: the shipped model)")
    writers.add_argument("--json", action="store_true")
    writers.set_defaults(handler=cmd_writers)

    identify = commands.add_parser("identify", help="the enrolled writers nearest to a signature")
    identify.add_argument("query", help="signature image")
    identify.add_argument("--top", type=int, default=5)
    identify.add_argument("--db", help=db_help)
    identify.add_argument("--model", help="model file (default: the shipped model)")
    identify.add_argument("--json", action="store_true")
    identify.set_defaults(handler=cmd_identify)

    verify_doc = commands.add_parser(
        "verify-document",
        help="detect, clean and verify every signature on a scanned page (exit codes as verify)",
        description="Detect each signature on PAGE, clean it, verify it against REFERENCE images or an enrolled --writer. "
        "The document is genuine if any signature is, forged if all are, else inconclusive (also when none is found).",
    )
    verify_doc.add_argument("page", help="page image, multi-page TIFF or PDF")
    verify_doc.add_argument("references", nargs="*", help="reference images or folders")
    verify_doc.add_argument("--writer", help="an enrolled writer instead of reference files")
    verify_doc.add_argument("--db", help="enrollment store for --writer")
    verify_doc.add_argument("--model", help="verifier model (default: the shipped one)")
    verify_doc.add_argument("--cleaner", default="unet", choices=["unet", "cyclegan", "classical", "none"])
    verify_doc.add_argument(
        "--reference-mode", default="matched", choices=["matched", "plain"],
        help="matched: references cleaned too and each crop's ink levels matched to theirs, document calibration (default); "
        "plain: the cleaned crop against the references as they are",
    )
    verify_doc.add_argument("--method", default="fusion-mean", choices=METHODS)
    verify_doc.add_argument("--threshold", type=float, help="decision threshold on the 0..1 score")
    verify_doc.add_argument("--min-score", type=float, help="detector score threshold")
    verify_doc.add_argument("--dpi", type=float, default=200, help="PDF rendering resolution")
    verify_doc.add_argument("--crops", help="write each cleaned signature crop into this folder")
    verify_doc.add_argument("--json", action="store_true", help="print JSON")
    verify_doc.set_defaults(handler=cmd_verify_document)

    clean_parser = commands.add_parser("clean", help="remove stamps, lines and printed text from signature images")
    clean_parser.add_argument("images", nargs="+", help="signature images")
    clean_parser.add_argument("--out", required=True, help="output folder")
    clean_parser.add_argument("--method", default="unet", choices=["unet", "cyclegan", "classical"])
    clean_parser.add_argument("--cleaner", help="cleaner file instead of the shipped one")
    clean_parser.set_defaults(handler=cmd_clean)

    train_clean = commands.add_parser("train-cleaner", help="train the U-Net or the CycleGAN cleaner on synthetic noise")
    train_clean.add_argument("--config", help="TOML file with a [cleaner] table (configs/cleaner-*.toml)")
    train_clean.add_argument("--method", choices=["unet", "cyclegan"])
    train_clean.add_argument("--out")
    train_clean.add_argument("--steps", type=int)
    train_clean.add_argument("--max-minutes", dest="max_minutes", type=float)
    train_clean.add_argument("--threads", type=int)
    train_clean.add_argument("--seed", type=int)
    train_clean.set_defaults(handler=cmd_train_cleaner)

    eval_clean = commands.add_parser("evaluate-cleaner", help="PSNR/SSIM/ink F1, verifier EER on noisy queries, real Tobacco-800 noise")
    eval_clean.add_argument("data", nargs="+", help="signature datasets (their held-out writers are used)")
    eval_clean.add_argument("--tobacco", help="Tobacco-800 folder for the real-noise part")
    eval_clean.add_argument("--model", help="verifier (default: the shipped one)")
    eval_clean.add_argument("--methods", default="none,classical,unet,cyclegan", help="comma-separated cleaners ('none' = no cleaning)")
    eval_clean.add_argument("--unet", help="U-Net cleaner file (default: the shipped one)")
    eval_clean.add_argument("--cyclegan", help="CycleGAN cleaner file (default: the shipped one)")
    eval_clean.add_argument("--max-images", type=int, default=0, help="cap on held-out images (whole writers)")
    eval_clean.add_argument("--grid", help="write a before/after grid of real crops to this PNG")
    eval_clean.add_argument("--json", help="write the report here")
    eval_clean.set_defaults(handler=cmd_evaluate_cleaner)

    detect = commands.add_parser("detect", help="find signatures on scanned pages (images, multi-page TIFF, PDF)")
    detect.add_argument("pages", nargs="+", help="page images or PDFs")
    detect.add_argument("--json", action="store_true", help="print JSON")
    detect.add_argument("--crops", help="write each found signature as a PNG into this folder")
    detect.add_argument("--draw", help="write the page with the boxes drawn to this PNG")
    detect.add_argument("--min-score", type=float, help="keep boxes with at least this score (default: the detector's)")
    detect.add_argument("--dpi", type=float, default=200, help="rendering resolution for PDF pages (default 200)")
    detect.add_argument("--detector", help="detector file (default: the shipped one)")
    detect.set_defaults(handler=cmd_detect)

    train_det = commands.add_parser("train-detector", help="train the signature detector (Tobacco-800 + synthetic pages)")
    train_det.add_argument("--config", help="TOML file with a [detector] table (configs/detector.toml)")
    train_det.add_argument("--tobacco", help="Tobacco-800 folder")
    train_det.add_argument("--out", help="run folder")
    train_det.add_argument("--epochs", type=int)
    train_det.add_argument("--long-side", dest="long_side", type=int)
    train_det.add_argument("--synthetic-pages", dest="synthetic_pages", type=int)
    train_det.add_argument("--max-minutes", dest="max_minutes", type=float)
    train_det.add_argument("--threads", type=int)
    train_det.add_argument("--seed", type=int)
    train_det.set_defaults(handler=cmd_train_detector)

    eval_det = commands.add_parser("evaluate-detector", help="AP50, AP50:95, precision/recall, false positives, latency")
    eval_det.add_argument("data", help="Tobacco-800 folder")
    eval_det.add_argument("--detector", help="detector file (default: the shipped one)")
    eval_det.add_argument("--part", default="test", choices=["train", "dev", "test", "all"], help="which pages (default: the detector's test pages)")
    eval_det.add_argument("--synthetic", type=int, default=0, help="also evaluate on this many fresh synthetic pages")
    eval_det.add_argument("--json", help="write the full report here")
    eval_det.set_defaults(handler=cmd_evaluate_detector)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except (SigverifyError, ValueError, OSError) as exc:
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
