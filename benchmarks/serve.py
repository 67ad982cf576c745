"""gridcnn serve under load, and torch against onnxruntime, for one MNIST image model.

1. A bounded load test on loopback: ``gridcnn serve`` runs in its own process (a real uvicorn server on 127.0.0.1
   and a free port); C concurrent clients send R requests each (one 28x28 test digit as a PNG upload). Throughput,
   p50/p99 latency and errors (anything but the expected status; must be 0). Then the same with every fourth
   request a bad one (corrupt, empty, wrong content type, malformed JSON, wrong shape), which must get its 4xx.
2. Inference throughput on the MNIST test set (10,000 digits from uint8 pixels): the loaded pipeline's
   ``predict_proba`` in torch against the exported ONNX graph in onnxruntime, same threads, same batches.

    python -m benchmarks.serve                          # trains a one-epoch model on 6,000 digits first (~30 s)
                                                        # into runs/serve-benchmark-model, reused after
    python -m benchmarks.serve --run runs/image-...     # or use a trained MNIST run folder
    python -m benchmarks.serve --results-md benchmarks/RESULTS.md

Everything talks to 127.0.0.1 only, every loop is bounded by its request count and a 30 s timeout per request,
and the server process is stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import REPO, machine_info, machine_line

BEGIN, END = "<!-- serve.py:begin -->", "<!-- serve.py:end -->"


def train_model(folder: Path) -> Path:
    """The image recipe's network (simple CNN, 28x28 gray) trained one epoch on 6,000 digits: speed, not accuracy."""
    from sklearn.pipeline import make_pipeline

    from gridcnn import GridCNNClassifier
    from gridcnn.adapters import ImageGrid
    from gridcnn.data import load_dataset
    from gridcnn.modelfile.persistence import save

    X, y = load_dataset("mnist", split="train")
    model = make_pipeline(ImageGrid(mode="L", size=[28, 28]),
                          GridCNNClassifier(architecture="simple", max_epochs=1, batch_size=128, lr=3e-3,
                                            random_state=0, device="cpu"))
    model.fit(to_uint8(X[:6000]), y[:6000])
    save(model, folder / "model")
    return folder


def to_uint8(X) -> np.ndarray:
    """MNIST's stored values (bytes / 256) back to the uint8 pixels an image file holds."""
    return np.clip(np.round(np.asarray(X) * 256), 0, 255).astype(np.uint8)


def png(pixels: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(run: Path, port: int, log: Path, *options: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    # The access log goes to a file: a pipe nobody reads would fill up and stall the server.
    proc = subprocess.Popen([sys.executable, "-m", "gridcnn", "serve", str(run), "--host", "127.0.0.1",
                             "--port", str(port), *options], env=env, stdout=subprocess.DEVNULL, stderr=log.open("wb"))
    import httpx

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"gridcnn serve exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("gridcnn serve did not answer /health within 120 s")


def requests(digits: np.ndarray, n: int, bad_every: int):
    """``n`` request specs (kwargs for httpx, expected status, kind): good digit uploads, some bad ones mixed in."""
    bad = [
        (dict(files=[("files", ("bad.png", b"\x89PNG not an image", "image/png"))]), 400, "corrupt file"),
        (dict(files=[("files", ("empty.png", b"", "image/png"))]), 400, "empty file"),
        (dict(content=b"hello", headers={"content-type": "text/plain"}), 415, "wrong content type"),
        (dict(content=b'{"inputs": [', headers={"content-type": "application/json"}), 400, "malformed JSON"),
        (dict(json={"inputs": [[1.0, 2.0]]}), 400, "wrong shape"),
    ]
    out = []
    for i in range(n):
        if bad_every and i % bad_every == bad_every - 1:
            out.append(bad[(i // bad_every) % len(bad)])
        else:
            out.append((dict(files=[("files", (f"{i}.png", digits[i % len(digits)], "image/png"))]), 200, "good"))
    return out


async def load_test(url: str, digits: np.ndarray, clients: int, per_client: int, bad_every: int) -> dict:
    import httpx

    results = []  # (kind, latency s, ok)
    failures = []  # what went wrong, for the report: errors must be 0

    async def client(c: int, http: httpx.AsyncClient):
        for kwargs, status, kind in requests(digits[c::clients], per_client, bad_every):
            t = time.perf_counter()
            try:
                r = await http.post(url + "/predict", **kwargs)
                ok = r.status_code == status and ("error" in r.json()) == (status != 200)
                if not ok:
                    failures.append(f"{kind}: expected {status}, got {r.status_code} {r.text[:200]}")
            except (httpx.HTTPError, ValueError) as exc:
                ok = False
                failures.append(f"{kind}: {type(exc).__name__}: {exc}")
            results.append((kind, time.perf_counter() - t, ok))

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=30, limits=limits) as http:
        await http.get(url + "/health")
        start = time.perf_counter()
        await asyncio.gather(*(client(c, http) for c in range(clients)))
        wall = time.perf_counter() - start
    lat = np.array([r[1] for r in results])
    good = np.array([r[1] for r in results if r[0] == "good"])
    return {
        "clients": clients, "requests": len(results), "bad_requests": sum(r[0] != "good" for r in results),
        "errors": sum(not r[2] for r in results), "failures": failures[:10], "wall_s": wall,
        "throughput_rps": len(results) / wall,
        "p50_ms": 1000 * float(np.percentile(lat, 50)), "p99_ms": 1000 * float(np.percentile(lat, 99)),
        "good_p50_ms": 1000 * float(np.percentile(good, 50)), "good_p99_ms": 1000 * float(np.percentile(good, 99)),
    }


def inference(run: Path, threads: int) -> dict:
    """predict_proba rows/s on MNIST's 10,000 test digits: torch (the loaded pipeline) against onnxruntime."""
    import onnxruntime as ort
    import torch

    import gridcnn
    from gridcnn.data import load_dataset
    from gridcnn.export.onnx import export_onnx

    X, _ = load_dataset("mnist", split="test")
    X = to_uint8(X)
    torch.set_num_threads(threads)
    model = gridcnn.load(run, device="cpu")
    with tempfile.TemporaryDirectory() as tmp:
        path, _ = export_onnx(model, Path(tmp) / "mnist.onnx")
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    out = {"rows": len(X), "threads": threads}
    for batch in (1024, 1):
        n = len(X) if batch > 1 else 500  # one row at a time: 500 rows are enough for a steady rate
        model.predict_proba(X[:batch])  # warm-up
        session.run(None, {"image": X[:batch, ..., None]})
        t = time.perf_counter()
        p_torch = np.concatenate([model.predict_proba(X[s : s + batch]) for s in range(0, n, batch)])
        torch_s = time.perf_counter() - t
        t = time.perf_counter()
        p_onnx = np.concatenate([session.run(None, {"image": X[s : s + batch, ..., None]})[0]
                                 for s in range(0, n, batch)])
        onnx_s = time.perf_counter() - t
        out[f"batch_{batch}"] = {"torch_rows_s": n / torch_s, "onnxruntime_rows_s": n / onnx_s,
                                 "max_abs_diff": float(np.abs(p_torch - p_onnx).max()),
                                 "same_labels": bool((p_torch.argmax(1) == p_onnx.argmax(1)).all())}
    return out


def report(results: dict) -> str:
    lines = [BEGIN, f"### Serving and ONNX (`python -m benchmarks.serve`, {results['date']})", "",
             f"Machine: {results['machine']}. Model: the image recipe's network (simple CNN, "
             "28x28 gray, 10 classes).", "",
             "#### Load test: `gridcnn serve` on 127.0.0.1, one PNG digit per request", "",
             "| mix | clients x requests | throughput | p50 | p99 | errors |", "|---|---|---|---|---|---|"]
    for name, r in results["load"].items():
        extra = (f" (good only: p50 {r['good_p50_ms']:.1f} ms, p99 {r['good_p99_ms']:.1f} ms)"
                 if r["bad_requests"] else "")
        lines.append(f"| {name} | {r['clients']} x {r['requests'] // r['clients']} | {r['throughput_rps']:.0f} req/s "
                     f"| {r['p50_ms']:.1f} ms | {r['p99_ms']:.1f} ms{extra} | {r['errors']} |")
    for name, r in results["load"].items():
        lines += [f"- {name}, unexpected answer: {f}" for f in r["failures"]]
    inf = results.get("inference")
    if inf is not None:
        lines += ["", f"#### predict_proba on MNIST's {inf['rows']:,} test digits (uint8 pixels in, {inf['threads']} "
                  "thread(s) each)", "", "| rows per call | torch (loaded pipeline) | onnxruntime (exported graph) | "
                  "ratio | max abs diff | same labels |", "|---|---|---|---|---|---|"]
        for batch in (1024, 1):
            b = inf[f"batch_{batch}"]
            lines.append(f"| {batch} | {b['torch_rows_s']:,.0f} rows/s | {b['onnxruntime_rows_s']:,.0f} rows/s | "
                         f"{b['onnxruntime_rows_s'] / b['torch_rows_s']:.2f}x | {b['max_abs_diff']:.1e} | "
                         f"{b['same_labels']} |")
    lines.append(END)
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, help="an MNIST image run or model folder (default: train one)")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=500, help="requests per client")
    parser.add_argument("--bad-every", type=int, default=4, help="every Nth request of the mixed test is bad")
    parser.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", os.cpu_count())),
                        help="torch and onnxruntime threads for the inference comparison")
    parser.add_argument("--no-inference", action="store_true", help="the load test only")
    parser.add_argument("--out", type=Path, default=Path("runs/serve-benchmark.json"))
    parser.add_argument("--results-md", type=Path, help="replace this file's serve.py section with the results")
    args = parser.parse_args(argv)
    import onnxruntime

    results = {"machine": machine_line(machine_info(onnxruntime=onnxruntime.__version__)),
               "date": time.strftime("%Y-%m-%d")}
    from gridcnn.data import load_dataset

    digits = [png(x) for x in to_uint8(load_dataset("mnist", split="test")[0][:1000])]
    run = args.run or Path("runs/serve-benchmark-model")
    if args.run is None and not (run / "model" / "config.json").is_file():
        train_model(run)  # kept, so a second run measures the same model
    results["load"] = {}
    # The batching comparison alternates plain and --batching servers, so a change in the machine's load between
    # two measurements (other jobs share it) does not pass for a difference between them.
    mixes = [("good requests only", 0, (), args.requests), (f"1 in {args.bad_every} bad", args.bad_every, (),
                                                             args.requests)]
    for r in range(1, 3):
        mixes += [(f"batching round {r}: plain", 0, (), args.requests // 2),
                  (f"batching round {r}: --batching", 0, ("--batching",), args.requests // 2)]
    for name, bad_every, options, per_client in mixes:
        with tempfile.TemporaryDirectory() as tmp:
            port = free_port()
            server = start_server(run, port, Path(tmp) / "server.log", *options)
            try:
                results["load"][name] = asyncio.run(load_test(f"http://127.0.0.1:{port}", digits, args.clients,
                                                              per_client, bad_every))
            finally:
                server.terminate()
                server.wait(timeout=30)
                if results["load"].get(name, {}).get("errors", 1):
                    log = (Path(tmp) / "server.log").read_text()
                    print("\n".join(l for l in log.splitlines() if "INFO" not in l)[-4000:], file=sys.stderr)
    if not args.no_inference:  # once, after the load tests (it ran after each of the six before)
        results["inference"] = inference(run, args.threads)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    text = report(results)
    print(text)
    if args.results_md:
        md = args.results_md.read_text()
        if BEGIN in md:
            md = md[: md.index(BEGIN)] + text + md[md.index(END) + len(END):]
        else:
            md = md.rstrip() + "\n\n" + text + "\n"
        args.results_md.write_text(md)
    errors = sum(r["errors"] for r in results["load"].values())
    return 1 if errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
