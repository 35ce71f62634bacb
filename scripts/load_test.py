#!/usr/bin/env python
"""Send verify requests from concurrent clients to a running service; print latency and throughput.

Usage: python scripts/load_test.py --url http://127.0.0.1:8000 --requests 200 --clients 8 [--api-key KEY]

Enrolls a writer from the bundled samples if it is missing, then every request verifies one of the
bundled sample signatures against it (POST /v1/verify with writer_id). Prints JSON: errors, p50 and
p95 latency in ms, requests per second.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from pathlib import Path

import httpx

SAMPLES = Path(__file__).resolve().parents[1] / "src" / "sigverify" / "samples"


def run(url: str, requests: int, clients: int, api_key: str | None = None, writer: str = "load-test") -> dict:
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    genuine = sorted((SAMPLES / "cedar-2" / "genuine").glob("*.png"))
    queries = [p.read_bytes() for p in sorted(SAMPLES.glob("*/*/*.png"))]
    with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
        if client.get(f"/v1/writers/{writer}").status_code == 404:
            client.post("/v1/writers", json={"id": writer, "name": "load test"}).raise_for_status()
            files = [("files", (p.name, p.read_bytes(), "image/png")) for p in genuine[:4]]
            client.post(f"/v1/writers/{writer}/references", files=files).raise_for_status()
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    counter = iter(range(requests))

    def worker() -> None:
        with httpx.Client(base_url=url, headers=headers, timeout=120) as client:
            while True:
                with lock:
                    index = next(counter, None)
                if index is None:
                    return
                started = time.perf_counter()
                try:
                    response = client.post("/v1/verify", files={"query": ("q.png", queries[index % len(queries)], "image/png")}, data={"writer_id": writer})
                    ok = response.status_code == 200 and "decision" in response.json()
                    failure = None if ok else f"{response.status_code}: {response.text[:200]}"
                except httpx.HTTPError as exc:
                    failure = repr(exc)
                elapsed = time.perf_counter() - started
                with lock:
                    latencies.append(elapsed)
                    if failure:
                        errors.append(failure)

    started = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    ordered = sorted(latencies)
    return {
        "requests": len(latencies),
        "clients": clients,
        "errors": len(errors),
        "first_errors": errors[:3],
        "p50_ms": round(1000 * statistics.median(ordered), 1),
        "p95_ms": round(1000 * ordered[int(0.95 * (len(ordered) - 1))], 1),
        "requests_per_second": round(len(latencies) / wall, 2),
        "wall_seconds": round(wall, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--api-key")
    args = parser.parse_args()
    result = run(args.url, args.requests, args.clients, args.api_key)
    print(json.dumps(result, indent=1))
    sys.exit(1 if result["errors"] else 0)


if __name__ == "__main__":
    main()
