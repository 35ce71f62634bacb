"""A real server process: durability across SIGKILL, and a bounded concurrent load."""

import signal
import sys

import httpx
import pytest

from conftest import REPO, LiveServer

SAMPLES = REPO / "src" / "sigverify" / "samples"


def test_enrollment_and_audit_survive_sigkill(tmp_path, tiny_model):
    server = LiveServer(tmp_path / "durable.db", tiny_model).start()
    try:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            assert client.post("/v1/writers", json={"id": "alice", "name": "Alice"}).status_code == 201
            refs = sorted((SAMPLES / "cedar-13" / "genuine").glob("*.png"))[:3]
            files = [("files", (p.name, p.read_bytes(), "image/png")) for p in refs]
            assert client.post("/v1/writers/alice/references", files=files).status_code == 201
            query = (SAMPLES / "cedar-13" / "genuine" / "original_13_5.png").read_bytes()
            decision = client.post("/v1/verify", files={"query": ("q.png", query, "image/png")}, data={"writer_id": "alice"}).json()
    finally:
        server.kill(signal.SIGKILL)  # no shutdown hooks, no flush: only what was committed survives
    assert server.process.returncode == -signal.SIGKILL
    restarted = LiveServer(tmp_path / "durable.db", tiny_model).start()
    try:
        with httpx.Client(base_url=restarted.url, timeout=60) as client:
            writer = client.get("/v1/writers/alice").json()
            assert writer["n_references"] == 3 and writer["name"] == "Alice"
            audit = client.get("/v1/audit").json()
            assert len(audit) == 1 and audit[0]["id"] == decision["audit_id"] and audit[0]["score"] == pytest.approx(decision["score"])
    finally:
        restarted.kill()


def test_bounded_concurrent_load(tmp_path, tiny_model):
    sys.path.insert(0, str(REPO / "scripts"))
    from load_test import run

    server = LiveServer(tmp_path / "load.db", tiny_model).start()
    try:
        result = run(server.url, requests=200, clients=8)
    finally:
        server.kill()
    assert result["requests"] == 200 and result["errors"] == 0, result["first_errors"]
    assert result["p95_ms"] > 0
