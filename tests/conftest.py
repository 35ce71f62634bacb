"""Shared fixtures. Tests that need the real datasets skip, with the reason, when ../shared is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
FORMATS = FIXTURES / "formats"
SHARED_DATA = Path(os.environ.get("SIGVERIFY_SHARED_DATA", REPO.parent / "shared" / "data"))


def shared_dataset(name: str) -> Path:
    """Path of a dataset in ../shared/data, or skip the test saying why."""
    path = SHARED_DATA / name
    if not path.is_dir():
        pytest.skip(f"needs the shared dataset {name!r} at {path} (CI places ../shared beside the clone)")
    return path


@pytest.fixture
def cedar_root() -> Path:
    return shared_dataset("cedar")


@pytest.fixture
def sigcomp_root() -> Path:
    return shared_dataset("sigcomp2009")


@pytest.fixture
def tobacco_root() -> Path:
    return shared_dataset("tobacco800_signatures")


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Every test writes preprocessed caches into a temporary folder, never ~/.cache."""
    monkeypatch.setenv("SIGVERIFY_CACHE", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture(scope="session")
def toy_data(tmp_path_factory) -> Path:
    """A synthetic folder-per-writer dataset: 16 writers x 8 genuine + 3 forged (generic layout)."""
    from helpers import write_toy_writers

    return write_toy_writers(tmp_path_factory.mktemp("toy") / "toy", n_writers=16, n_genuine=8, n_forged=3)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory, toy_data) -> Path:
    """A tiny model really trained (seconds) on the toy data, with dev calibration and background."""
    from sigverify.train import TrainConfig, train

    out = tmp_path_factory.mktemp("tiny-run")
    config = TrainConfig(
        data=[str(toy_data)],
        out=str(out / "run"),
        model="resnet-attn",
        model_args={"depth": 10, "base_width": 8},
        embedding_dim=16,
        loss="triplet-semihard",
        margin=0.5,
        lr=3e-3,
        warmup_steps=5,
        epochs=4,
        steps_per_epoch=10,
        batch_writers=4,
        per_writer=4,
        forged_per_writer=1,
        dev_fraction=0.25,
        test_fraction=0.25,
        preprocess={"height": 64, "width": 96},
        threads=2,
        cache_dir=str(out / "cache"),
        name="tiny",
    )
    return train(config, log=lambda _: None, progress=False)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LiveServer:
    """``sigverify serve`` in a subprocess on a free loopback port."""

    def __init__(self, db: Path, model: Path, *extra: str, ui: bool = False) -> None:
        self.db, self.model, self.extra, self.ui = db, model, extra, ui
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = None

    def start(self, timeout: float = 120.0) -> "LiveServer":
        import subprocess
        import sys
        import time
        import urllib.request

        command = [sys.executable, "-m", "sigverify.cli", "serve", "--port", str(self.port), "--db", str(self.db), "--model", str(self.model), *self.extra]
        if not self.ui:
            command.append("--no-ui")
        self.log = open(self.db.with_suffix(".log"), "ab")
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.db.with_suffix('.log').read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=2) as response:
                    if response.status == 200:
                        return self
            except OSError:
                time.sleep(0.3)
        raise RuntimeError("server did not start in time")

    def kill(self, sig=None) -> None:
        import signal

        if self.process and self.process.poll() is None:
            self.process.send_signal(sig or signal.SIGTERM)
            self.process.wait(timeout=30)
        self.log.close()
