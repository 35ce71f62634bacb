"""REST API: every route, every bad input, and that a rejected request changes nothing."""

import io
import sqlite3
import struct
import zlib

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from helpers import toy_signature
from sigverify.service.app import create_app, enroll_samples
from sigverify.service.store import Store


def png(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "PNG")
    return buffer.getvalue()


def header_only_png(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)) + chunk(b"IEND", b"")


REFS = [png(toy_signature(3, 700 + i)) for i in range(4)]
GENUINE = png(toy_signature(3, 799))
OTHER = png(toy_signature(11, 798))


@pytest.fixture
def store(tmp_path, tiny_model):
    return Store(str(tmp_path / "store.db"), model=tiny_model)


@pytest.fixture
def client(store):
    return TestClient(create_app(store, ui=False, max_upload_bytes=200_000))


def enroll(client, writer="alice", refs=REFS):
    assert client.post("/v1/writers", json={"id": writer, "name": writer.title()}).status_code == 201
    response = client.post(f"/v1/writers/{writer}/references", files=[("files", (f"r{i}.png", r, "image/png")) for i, r in enumerate(refs)])
    assert response.status_code == 201, response.text
    return response.json()


def snapshot(store):
    return store.counts(), store.list_writers(), [w and store.get_writer(w["id"]) for w in store.list_writers()]


def test_health_and_docs(client):
    health = client.get("/healthz").json()
    assert health["status"] == "ok" and health["model"] == "tiny" and health["writers"] == 0
    assert client.get("/docs").status_code == 200
    assert "/v1/verify" in client.get("/openapi.json").json()["paths"]


def test_writer_lifecycle(client):
    created = client.post("/v1/writers", json={"id": "alice", "name": "Alice A."})
    assert created.status_code == 201 and created.json()["id"] == "alice"
    assert client.post("/v1/writers", json={"id": "alice"}).status_code == 409
    added = client.post("/v1/writers/alice/references", files=[("files", ("a.png", REFS[0], "image/png")), ("files", ("b.png", REFS[1], "image/png"))])
    assert added.status_code == 201 and len(added.json()["references"]) == 2
    writer = client.get("/v1/writers/alice").json()
    assert writer["n_references"] == 2 and writer["name"] == "Alice A." and writer["references"][0]["filename"] == "a.png"
    assert [w["id"] for w in client.get("/v1/writers").json()] == ["alice"]
    assert client.delete("/v1/writers/alice").json() == {"deleted": "alice"}
    assert client.get("/v1/writers/alice").status_code == 404
    assert client.delete("/v1/writers/alice").status_code == 404


def test_verify_enrolled_and_with_reference_files(client, store):
    enroll(client)
    genuine = client.post("/v1/verify", files={"query": ("q.png", GENUINE, "image/png")}, data={"writer_id": "alice"})
    assert genuine.status_code == 200, genuine.text
    body = genuine.json()
    for key in ("verified", "decision", "score", "threshold", "method", "model", "n_references", "per_reference", "time_ms"):
        assert key in body
    assert body["n_references"] == 4 and body["writer_id"] == "alice" and body["audit_id"] >= 1
    other = client.post("/v1/verify", files={"query": ("o.png", OTHER, "image/png")}, data={"writer_id": "alice"}).json()
    assert other["score"] < body["score"]
    direct = client.post(
        "/v1/verify",
        files=[("query", ("q.png", GENUINE, "image/png"))] + [("references", (f"r{i}.png", r, "image/png")) for i, r in enumerate(REFS)],
        data={"method": "fusion-max"},
    )
    assert direct.status_code == 200 and direct.json()["method"] == "fusion-max"
    audit = client.get("/v1/audit").json()
    assert [row["decision"] for row in audit] == [other["decision"], body["decision"]]
    assert audit[1]["writer_id"] == "alice" and audit[1]["reference_ids"] == body["reference_ids"]


def test_verify_with_test_time_augmentation(client, tmp_path, tiny_model):
    enroll(client)
    plain = client.post("/v1/verify", files={"query": ("q.png", GENUINE, "image/png")}, data={"writer_id": "alice"}).json()
    augmented = client.post("/v1/verify", files={"query": ("q.png", GENUINE, "image/png")}, data={"writer_id": "alice", "tta": "true"}).json()
    assert plain["tta"] is False and augmented["tta"] is True
    assert augmented["score"] != plain["score"]  # the references were re-embedded augmented, not compared as stored
    assert not any("test-time" in w or "embeddings" in w for w in augmented["warnings"])
    direct = client.post(
        "/v1/verify",
        files=[("query", ("q.png", GENUINE, "image/png"))] + [("references", (f"r{i}.png", r, "image/png")) for i, r in enumerate(REFS)],
        data={"tta": "true"},
    ).json()
    assert direct["tta"] is True and direct["score"] == pytest.approx(augmented["score"], abs=1e-6)
    # Without stored images the augmented references cannot be made: refused, not scored against the plain ones.
    lean = TestClient(create_app(Store(str(tmp_path / "lean.db"), model=tiny_model, keep_images=False), ui=False))
    enroll(lean, "bob")
    refused = lean.post("/v1/verify", files={"query": ("q.png", GENUINE, "image/png")}, data={"writer_id": "bob", "tta": "true"})
    assert refused.status_code >= 400 and "no stored image" in refused.text


def test_identify(client):
    enroll(client, "alice")
    enroll(client, "bob", [png(toy_signature(11, 600 + i)) for i in range(3)])
    result = client.post("/v1/identify", files={"query": ("q.png", GENUINE, "image/png")}, data={"top": "2"}).json()
    assert [c["writer_id"] for c in result["candidates"]] == ["alice", "bob"]
    assert client.post("/v1/identify", files={"query": ("q.png", GENUINE, "image/png")}, data={"top": "0"}).status_code == 422


@pytest.mark.parametrize(
    "files, status, fragment",
    [
        ([("files", ("empty.png", b"", "image/png"))], 422, "empty.png: empty file"),
        ([("files", ("notes.txt", b"hello, not an image", "text/plain"))], 422, "notes.txt: not an image"),
        ([("files", ("ok.png", REFS[0], "image/png")), ("files", ("broken.png", REFS[1][:300], "image/png"))], 422, "broken.png"),
        ([("files", ("huge.png", header_only_png(10000, 6000), "image/png"))], 413, "over the limit"),
        ([("files", ("big.png", b"\x89PNG" + b"\x00" * 300_000, "image/png"))], 413, "over the limit of 200000 bytes"),
        ([("files", ("blank.png", png(np.full((60, 90), 250, np.uint8)), "image/png"))], 422, "blank.png"),
    ],
)
def test_bad_reference_uploads_change_nothing(client, store, files, status, fragment):
    enroll(client)
    before = snapshot(store)
    response = client.post("/v1/writers/alice/references", files=files)
    assert response.status_code == status, response.text
    assert fragment in response.json()["detail"]
    assert snapshot(store) == before


def test_bad_requests_get_4xx_json(client, store):
    enroll(client)
    client.post("/v1/writers", json={"id": "empty-writer"})
    before = snapshot(store)
    cases = [
        (client.post("/v1/writers", json={"name": "no id"}), 422, "id"),
        (client.post("/v1/writers", json={"id": "bad id with spaces"}), 422, "invalid writer id"),
        (client.post("/v1/writers", content=b"not json", headers={"content-type": "application/json"}), 422, ""),
        (client.post("/v1/writers/nobody/references", files=[("files", ("a.png", REFS[0], "image/png"))]), 404, "unknown writer"),
        (client.post("/v1/writers/alice/references"), 422, "files"),
        (client.post("/v1/verify", files={"query": ("q.png", GENUINE, "image/png")}, data={"writer_id": "nobody"}), 404, "unknown writer"),
        (client.post("/v1/verify", files={"query": ("q.png", GENUINE, "image/png")}, data={"writer_id": "empty-writer"}), 409, "no (unexpired) references"),
        (client.post("/v1/verify", data={"writer_id": "alice"}), 422, "query"),
        (client.post("/v1/verify", files={"query": ("q.png", GENUINE, "image/png")}), 422, "give writer_id"),
        (client.post("/v1/verify", files={"query": ("q.png", b"", "image/png")}, data={"writer_id": "alice"}), 422, "empty file"),
        (client.post("/v1/verify", files={"query": ("q.jpg", b"\xff\xd8\xff garbage", "image/jpeg")}, data={"writer_id": "alice"}), 422, "q.jpg"),
        (client.post("/v1/verify", files={"query": ("q.png", GENUINE, "image/png")}, data={"writer_id": "alice", "method": "magic"}), 422, "unknown method"),
        (client.post("/v1/verify", files={"query": ("q.png", GENUINE, "image/png")}, data={"writer_id": "alice", "threshold": "7"}), 422, "threshold"),
        (client.post("/v1/identify"), 422, "query"),
        (client.get("/v1/writers/nobody"), 404, "unknown writer"),
    ]
    for response, status, fragment in cases:
        assert response.status_code == status, (response.status_code, response.text)
        body = response.json()
        assert set(body) == {"error", "detail"} and fragment in str(body["detail"])
    after = snapshot(store)
    assert after[1:] == before[1:]
    assert after[0]["writers"] == before[0]["writers"] and after[0]["references"] == before[0]["references"]


def test_audit_is_read_only(client, store, tmp_path):
    enroll(client)
    client.post("/v1/verify", files={"query": ("q.png", GENUINE, "image/png")}, data={"writer_id": "alice"})
    for method in ("post", "put", "patch", "delete"):
        assert getattr(client, method)("/v1/audit").status_code == 405
    connection = sqlite3.connect(tmp_path / "store.db")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        connection.execute("UPDATE audit SET decision = 'genuine'")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        connection.execute("DELETE FROM audit")
    connection.rollback()
    connection.close()
    # Deleting a writer keeps its audit history.
    client.delete("/v1/writers/alice")
    assert client.get("/v1/audit", params={"writer_id": "alice"}).json()[0]["writer_id"] == "alice"


def test_api_key(store):
    client = TestClient(create_app(store, ui=False, api_key="s3cret"))
    assert client.get("/healthz").status_code == 200
    assert client.get("/v1/writers").status_code == 401
    assert client.get("/v1/writers", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/v1/writers", headers={"Authorization": "Bearer s3cret"}).status_code == 200
    assert client.post("/v1/writers", json={"id": "x"}).status_code == 401
    assert store.counts()["writers"] == 0


def test_model_version_change(tmp_path, tiny_model):
    from sigverify.api import load_model

    store = Store(str(tmp_path / "v.db"), model=tiny_model)
    store.create_writer("alice")
    store.add_references("alice", [("a.png", REFS[0]), ("b.png", REFS[1])])
    lean = Store(str(tmp_path / "lean.db"), model=tiny_model, keep_images=False)
    lean.create_writer("bob")
    lean.add_references("bob", [("a.png", REFS[0])])
    artifact = load_model(tiny_model)
    original = artifact.metadata.get("version")
    try:
        artifact.metadata["version"] = "tiny-v2"
        result = store.verify("alice", GENUINE)
        assert result["n_references"] == 2
        assert {r["model_version"] for r in store.get_writer("alice")["references"]} == {"tiny-v2"}
        with pytest.raises(Exception, match="another model version"):
            lean.verify("bob", GENUINE)
    finally:
        artifact.metadata["version"] = original


def test_copy_of_reference_is_flagged(client):
    enroll(client)
    result = client.post("/v1/verify", files={"query": ("copy.png", REFS[2], "image/png")}, data={"writer_id": "alice"}).json()
    assert result["flags"] == ["query_identical_to_reference"] and result["decision"] == "inconclusive"


def test_sample_enrollment(store):
    assert enroll_samples(store) == ["cedar-13", "cedar-19", "cedar-2"]
    assert store.counts()["references"] == 12
    assert enroll_samples(store) == []  # only into an empty store


def test_enrolled_references_match_reference_files_on_the_shipped_model(tmp_path):
    """The store keeps the vectors the methods compare; the shipped model hands out others from
    represent() (a constant-norm layout), so verifying against stored ones must convert them."""
    import sigverify
    from sigverify.demo import samples_dir

    store = Store(str(tmp_path / "shipped.db"))
    assert store.artifact.represent_dim != store.artifact.vector_dim
    references = sorted((samples_dir() / "cedar-13" / "genuine").glob("*.png"))[:3]
    query = sorted((samples_dir() / "cedar-13" / "genuine").glob("*.png"))[4]
    store.create_writer("w13", "sample writer")
    store.add_references("w13", [(p.name, p.read_bytes()) for p in references])
    enrolled = store.verify("w13", query.read_bytes(), method="writer-threshold")
    direct = sigverify.verify(query, references, method="writer-threshold")
    assert enrolled["score"] == pytest.approx(direct["score"], abs=1e-4)
