import argparse

import pytest

from sigverify.cli import build_parser, main


def _all_command_paths(parser: argparse.ArgumentParser, prefix=()):
    yield prefix
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _all_command_paths(sub, prefix + (name,))


COMMANDS = list(_all_command_paths(build_parser()))


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "sigverify")
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--help"])
    assert exit_info.value.code == 0
    assert "usage: sigverify" in capsys.readouterr().out


def test_recalibrate_refuses_a_folder_that_is_not_a_finished_run(tmp_path, capsys):
    (tmp_path / "config.json").write_text("{}")
    assert main(["recalibrate", str(tmp_path)]) == 2
    assert "not a finished training run" in capsys.readouterr().err
    for name in ("split.json", "log.json", "best.safetensors", "model.safetensors"):
        (tmp_path / name).write_text("[]")
    (tmp_path / "config.json").write_text("{truncated")
    assert main(["recalibrate", str(tmp_path)]) == 2
    assert "config.json: not valid JSON" in capsys.readouterr().err
    assert main(["recalibrate", str(tmp_path / "typo.safetensors")]) == 2
    assert "no such training run folder or model file" in capsys.readouterr().err
    (tmp_path / "junk.safetensors").write_text("not a model")
    assert main(["recalibrate", str(tmp_path / "junk.safetensors")]) == 2
    assert "not a readable safetensors model" in capsys.readouterr().err


def test_demo_runs(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "writers  3" in out
    assert len(list(tmp_path.glob("*.png"))) == 21


def test_preprocess_command(tmp_path, capsys):
    from conftest import FORMATS

    code = main(["preprocess", str(FORMATS / "gray.png"), str(FORMATS / "blank.png"), "--out", str(tmp_path)])
    captured = capsys.readouterr()
    assert code == 3  # one of the two failed
    assert (tmp_path / "gray.png").exists() and not (tmp_path / "blank.png").exists()
    assert "blank.png" in captured.err and "gray.png" in captured.out
