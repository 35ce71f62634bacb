"""Shared by the check scripts that score the writers a model's metadata records (dev or test)."""

import argparse

import torch

import sigverify


def parse_model_writers(description: str, *, default_writers: str, json_help: str, tta_help: str = ""):
    """``MODEL DATA [DATA ...] [--writers dev|test] [--json OUT]`` (and ``--tta`` when ``tta_help`` is
    given): the parsed arguments, the loaded model and the set of its ``--writers`` keys (exits with a
    message when the model lists none)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("model")
    parser.add_argument("data", nargs="+")
    parser.add_argument("--writers", choices=["dev", "test"], default=default_writers)
    parser.add_argument("--json", help=json_help)
    if tta_help:
        parser.add_argument("--tta", action="store_true", help=tta_help)
    args = parser.parse_args()
    torch.set_num_threads(2)
    artifact = sigverify.load_model(args.model)
    wanted = set(artifact.writers(args.writers))
    if not wanted:
        raise SystemExit(f"{args.model}: the model does not list its {args.writers} writers")
    return args, artifact, wanted
