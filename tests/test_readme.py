"""The README's examples stay runnable as written: every command line parses, every file it names exists.

The commands are parsed, not run (they train, serve or read images the reader brings); what running
them does is covered by the tests of each command.
"""

from __future__ import annotations

import ast
import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
BLOCKS = re.findall(r"```(\w*)\n(.*?)```", README, re.S)
SHELL_LINES = [line for lang, body in BLOCKS if lang == "bash" for line in body.replace("\\\n", " ").splitlines() if line.strip()]
SIGVERIFY_LINES = [line for line in SHELL_LINES if line.startswith("sigverify ")]


def test_the_readme_has_the_examples_this_file_checks():
    assert len(SIGVERIFY_LINES) >= 20 and any(lang == "python" for lang, _ in BLOCKS)


@pytest.mark.parametrize("line", SIGVERIFY_LINES)
def test_every_sigverify_line_parses(line, capsys):
    from sigverify.cli import build_parser

    args = shlex.split(line, comments=True)[1:]
    try:
        build_parser().parse_args(args)
    except SystemExit as exc:
        pytest.fail(f"README line does not parse ({exc.code}): {line}\n{capsys.readouterr().err}")
    # Files of the repo that a line names (configs, bundled samples) exist; the reader's own files
    # (questioned.png, refs/, runs/...) and ../shared are not the repo's.
    for arg in args:
        if arg.startswith(("configs/", "src/")):
            assert (ROOT / arg).exists(), f"{arg} named in: {line}"


def test_make_targets_and_sample_files_exist():
    makefile = (ROOT / "Makefile").read_text()
    for line in SHELL_LINES:
        words = shlex.split(line, comments=True)
        if words[:1] == ["make"]:
            assert re.search(rf"^{re.escape(words[1])}:", makefile, re.M), f"no make target {words[1]}"
        for word in words:
            if "=@" in word:  # curl's -F field=@file
                assert (ROOT / word.split("@", 1)[1]).is_file(), line


def test_the_python_example_uses_the_public_facade():
    import sigverify

    (source,) = [body for lang, body in BLOCKS if lang == "python"]
    tree = ast.parse(source)
    used = {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute) and getattr(node.value, "id", None) == "sigverify"}
    assert used and all(callable(getattr(sigverify, name, None)) for name in used), used
