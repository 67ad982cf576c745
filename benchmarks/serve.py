"""gridcnn serve under load, today's server beside an earlier one, for an image, a sound and a text model.

1. Load test on loopback: every server runs in its own process (``gridcnn serve`` on 127.0.0.1, a free port):
   the earlier version (default: commit 7cbf6af, before issue 24, unpacked with ``git archive`` and imported through
   its own PYTHONPATH) and this checkout's (plain, ``--batching``, ``--engine torch``). C clients on keep-alive
   connections each send R requests, every 4th a bad one that must get its 4xx (a corrupt or empty file, a wrong
   content type, malformed JSON, a wrong shape). Throughput, p50/p99 latency, errors (must be 0). The servers of
   one model take turns, in reversed order in the second round, so a change in the machine's load (others share
   it) does not pass for a difference between them; compare rows of one run.
2. One-row ``predict_proba`` of each model in each version (a fresh process per version, 1 and 2 torch threads),
   and the onnxruntime engine the server uses.

    python -m benchmarks.serve                          # trains three small models first (~1 min), then reuses them
    python -m benchmarks.serve --results-md benchmarks/RESULTS.md

The client is a few lines of asyncio on raw sockets, not an HTTP library: at several hundred requests a second on
two cores, httpx's own 2 ms of CPU a request would be measured instead of the server. Every loop is bounded by its
request count and a 30 s timeout per request, and every server is stopped at the end.
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

from benchmarks.common import REPO, machine_info, machine_line, run_before

BEGIN, END = "<!-- serve.py:begin -->", "<!-- serve.py:end -->"
BEFORE = "7cbf6af"  # main before issue 24: torch, a 64-row pass per call, two trips to a worker thread
MODELS = Path("runs/serve-benchmark")
TONES_HZ = (300.0, 900.0, 2400.0)
WORDS = {"pos": ["wonderful", "great", "moving", "brilliant", "funny", "superb"],
         "neg": ["awful", "boring", "dull", "terrible", "bland", "tedious"]}


# -- the models: small, trained once and kept, so a second run measures the same ones ------------------------------

def to_uint8(X) -> np.ndarray:
    """MNIST's stored values (bytes / 256) back to the uint8 pixels an image file holds."""
    return np.clip(np.round(np.asarray(X) * 256), 0, 255).astype(np.uint8)


def png(pixels: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def wav(wave: np.ndarray, rate: int) -> bytes:
    import soundfile as sf

    buffer = io.BytesIO()
    sf.write(buffer, wave, rate, format="WAV")
    return buffer.getvalue()


def tone(freq: float, seed: int, rate: int = 16000) -> np.ndarray:
    """One second of a noisy sine whose pitch wanders a little: three pitches, three classes."""
    rng = np.random.default_rng(seed)
    t = np.arange(rate) / rate
    return (0.5 * np.sin(2 * np.pi * freq * rng.uniform(0.9, 1.1) * t)
            + 0.05 * rng.standard_normal(rate)).astype(np.float32)


def sentences(n: int, seed: int):
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for i in range(n):
        label = ("pos", "neg")[i % 2]
        a, b = rng.choice(WORDS[label], 2, replace=False)
        texts.append(f"the film was {a} and {b}" + (" ." if i % 3 else ", really"))
        labels.append(label)
    return texts, np.array(labels)


def inputs(kind: str):
    """(the request payloads of good inputs, the same inputs as the model's first step reads them)."""
    if kind == "image":
        from gridcnn.data import load_dataset

        pixels = to_uint8(load_dataset("mnist", split="test")[0][:500])
        return [png(p) for p in pixels], pixels
    if kind == "sound":
        waves = [tone(TONES_HZ[i % 3], 1000 + i) for i in range(60)]
        return [wav(w, 16000) for w in waves], waves
    texts, _ = sentences(200, 1)
    return texts, texts


def train(kind: str, folder: Path) -> Path:
    """The image recipe's network (simple CNN, 28x28 gray) one epoch on 3,000 MNIST digits; a log-mel model of three
    tone pitches (1 s clips at 16 kHz, 40 mel bands); Kim's CNN over MiniLM's static token vectors: speed, not
    accuracy."""
    from sklearn.pipeline import make_pipeline

    from gridcnn import GridCNNClassifier
    from gridcnn.modelfile.persistence import save

    if kind == "image":
        from gridcnn.adapters import ImageGrid
        from gridcnn.data import load_dataset

        X, y = load_dataset("mnist", split="train")
        model = make_pipeline(ImageGrid(mode="L", size=[28, 28]),
                              GridCNNClassifier(max_epochs=1, batch_size=128, random_state=0, device="cpu"))
        model.fit(to_uint8(X[:3000]), y[:3000])
    elif kind == "sound":
        from gridcnn.adapters import SpectrogramGrid

        waves = [tone(TONES_HZ[i % 3], i) for i in range(90)]
        model = make_pipeline(SpectrogramGrid(sample_rate=16000, duration=1.0, device="cpu"),
                              GridCNNClassifier(max_epochs=3, random_state=0, device="cpu"))
        model.fit(waves, np.array(["low", "mid", "high"])[np.arange(90) % 3])
    else:
        from gridcnn.adapters import EmbeddingGrid

        texts, labels = sentences(120, 0)
        model = make_pipeline(EmbeddingGrid(embedding="minilm-static", device="cpu"),
                              GridCNNClassifier(architecture="kim", max_epochs=4, random_state=0, device="cpu"))
        model.fit(texts, labels)
    save(model, folder)
    return folder


def today_model(kind: str, folder: Path):
    """This checkout's copy of the model, trained again when absent or written in an older model format."""
    from gridcnn.exceptions import GridCNNError
    from gridcnn.modelfile.persistence import load

    try:
        return load(folder, device="cpu")
    except GridCNNError:
        import shutil

        shutil.rmtree(folder, ignore_errors=True)
        train(kind, folder)
        return load(folder, device="cpu")


# -- requests, as bytes on the wire ---------------------------------------------------------------------------------

def http(body: bytes, content_type: str) -> bytes:
    return (f"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


def upload(name: str, data: bytes, mime: str) -> bytes:
    boundary = "gridcnnbenchmarkboundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{name}\"\r\n"
            f"Content-Type: {mime}\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return http(body, f"multipart/form-data; boundary={boundary}")


def as_json(value) -> bytes:
    return http(json.dumps({"inputs": value}).encode(), "application/json")


def requests(kind: str, good: list, n: int, bad_every: int, offset: int):
    """``n`` requests (bytes, expected status, label): good inputs, every ``bad_every``-th a bad one."""
    mime, suffix = {"image": ("image/png", "png"), "sound": ("audio/wav", "wav")}.get(kind, (None, None))
    bad = [(http(b"hello", "text/plain"), 415, "wrong content type"),
           (http(b'{"inputs": [', "application/json"), 400, "malformed JSON"),
           (as_json([[1.0, 2.0]]), 400, "wrong shape")]
    if mime:
        bad += [(upload(f"bad.{suffix}", b"not a file of this kind", mime), 400, "corrupt file"),
                (upload(f"empty.{suffix}", b"", mime), 400, "empty file")]
    else:
        bad += [(as_json([" "]), 400, "empty text"), (upload("x.png", b"\x89PNG", "image/png"), 415, "a file")]
    out = []
    for i in range(n):
        if bad_every and i % bad_every == bad_every - 1:
            out.append(bad[(i // bad_every) % len(bad)])
        else:
            item = good[(offset + i) % len(good)]
            out.append((upload(f"{i}.{suffix}", item, mime) if mime else as_json([item]), 200, "good"))
    return out


async def load_test(port: int, kind: str, good: list, clients: int, per_client: int, bad_every: int,
                    seconds: float) -> dict:
    """``per_client`` requests from each client, or as many as ``seconds`` allow (the earlier server took 2.7 s of
    CPU for one sound clip: 480 of them would take the benchmark's whole budget)."""
    results, failures = [], []  # (label, latency s, ok); what went wrong, for the report: errors must be 0
    deadline = time.perf_counter() + seconds

    async def client(c: int):
        reader = writer = None
        for raw, status, label in requests(kind, good, per_client, bad_every, offset=c * per_client):
            if time.perf_counter() > deadline:
                break
            t = time.perf_counter()
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(raw)
                code, body = await asyncio.wait_for(_response(reader), 30)
                ok = code == status and (b'"error"' in body) == (status != 200)
                if not ok:
                    failures.append(f"{label}: expected {status}, got {code} {body[:200]!r}")
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError, IndexError) as exc:
                ok = False
                failures.append(f"{label}: {type(exc).__name__}: {exc}")
                writer, reader = None, None  # a new connection for the next request
            results.append((label, time.perf_counter() - t, ok))
        if writer is not None:
            writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(client(c) for c in range(clients)))
    wall = time.perf_counter() - start
    lat = np.array([r[1] for r in results]) * 1000
    good_lat = np.array([r[1] for r in results if r[0] == "good"]) * 1000
    return {"clients": clients, "requests": len(results), "bad_requests": sum(r[0] != "good" for r in results),
            "errors": sum(not r[2] for r in results), "failures": failures[:10], "wall_s": wall,
            "throughput_rps": len(results) / wall, "p50_ms": float(np.percentile(lat, 50)),
            "p99_ms": float(np.percentile(lat, 99)), "good_p50_ms": float(np.percentile(good_lat, 50)),
            "good_p99_ms": float(np.percentile(good_lat, 99))}


async def _response(reader) -> tuple[int, bytes]:
    """One HTTP/1.1 response: its status and body (the server always sends Content-Length)."""
    status = await reader.readline()
    code, length = int(status.split()[1]), 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return code, await reader.readexactly(length)


# -- servers ----------------------------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def earlier_copy(commit: str) -> Path:
    """The ``gridcnn`` package as of ``commit``, unpacked once into runs/ (``git archive``; the checkout is left
    alone)."""
    folder = MODELS / f"gridcnn-{commit}"
    if not (folder / "gridcnn" / "__init__.py").is_file():
        folder.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "-C", str(REPO), "archive", commit, "gridcnn"], capture_output=True,
                                 check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


def start_server(code: Path, model: Path, log: Path, *options: str) -> tuple[subprocess.Popen, int]:
    """``gridcnn serve`` of the package in ``code``; -P keeps the working directory's gridcnn off sys.path."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(code)}
    # The access log goes to a file: a pipe nobody reads would fill up and stall the server.
    proc = subprocess.Popen([sys.executable, "-P", "-m", "gridcnn", "serve", str(model), "--host", "127.0.0.1",
                             "--port", str(port), *options], env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    return proc, port


def wait_ready(proc: subprocess.Popen, port: int, log: Path, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"gridcnn serve exited: {log.read_text()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                if b" 200 " in s.recv(1024):
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"gridcnn serve did not answer /health within {timeout:.0f} s")


# -- one row through predict_proba, in a fresh process per version -----------------------------------------------------

ONE_ROW = """
import json, sys, time
import numpy as np, torch
torch.set_num_threads({threads})
import gridcnn
model = gridcnn.load({model!r}, device="cpu")
est = model.steps[-1][1]
grids = np.load({grids!r})
def median_ms(f):
    f(grids[:1])
    times, end = [], time.perf_counter() + 5  # {calls} calls, or fewer (at least 3) where one takes seconds
    for i in range({calls}):
        t = time.perf_counter(); f(grids[i % len(grids)][None]); times.append(time.perf_counter() - t)
        if len(times) >= 3 and time.perf_counter() > end:
            break
    return 1000 * float(np.median(times))
out = {{"predict_proba": median_ms(est.predict_proba)}}
if {engine}:
    from gridcnn.serve._engine import OnnxEngine
    out["onnxruntime"] = median_ms(OnnxEngine(est).predict_proba)
print(json.dumps(out))
"""


def one_row(code: Path, model: Path, grids: Path, threads: int, calls: int, engine: bool) -> dict:
    script = ONE_ROW.format(threads=threads, model=str(model), grids=str(grids), calls=calls, engine=engine)
    env = {**os.environ, "PYTHONPATH": str(code), "OMP_NUM_THREADS": str(threads)}
    out = subprocess.run([sys.executable, "-P", "-c", script], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


# -- the report -------------------------------------------------------------------------------------------------------

def report(results: dict) -> str:
    old = results["before"]
    lines = [BEGIN, f"### gridcnn serve, today's against {old} (`python -m benchmarks.serve`, {results['date']})", "",
             f"Machine: {results['machine']}. {results['clients']} clients on keep-alive connections, 1 in "
             f"{results['bad_every']} requests bad (each must get its 4xx), {results['requests']} requests per client "
             f"or {results['seconds']:g} s per server, whichever ends first; the servers of a model take turns, in "
             "reversed order in the second round. p99 of good requests in brackets.", "",
             "| model | server | round | requests | throughput | vs before | p50 | p99 (good only) | errors |",
             "|---|---|---|---|---|---|---|---|---|"]
    for row in results["load"]:
        r = row["result"]
        base = next(x["result"]["throughput_rps"] for x in results["load"]
                    if x["model"] == row["model"] and x["round"] == row["round"] and x["server"] == f"before ({old})")
        lines.append(f"| {row['model']} | {row['server']} | {row['round']} | {r['requests']} | "
                     f"{r['throughput_rps']:.0f} req/s | "
                     f"{r['throughput_rps'] / base:.1f}x | {r['p50_ms']:.1f} ms | {r['p99_ms']:.1f} ms "
                     f"({r['good_p99_ms']:.1f} ms) | {r['errors']} |")
    for row in results["load"]:
        lines += [f"- {row['model']}, {row['server']}, unexpected answer: {f}" for f in row["result"]["failures"]]
    lines += ["", f"One row through `predict_proba` (median of {results['calls']} calls or of 5 s of them, ms; a "
              "fresh process per "
              "version and thread count), and through the server's onnxruntime engine:", "",
              "| model | before, 1 thread | today, 1 thread | before, 2 threads | today, 2 threads | "
              "onnxruntime engine, 1 thread |", "|---|---|---|---|---|---|"]
    for kind, t in results["one_row"].items():
        lines.append(f"| {kind} | {t['before_1']['predict_proba']:.1f} | {t['today_1']['predict_proba']:.1f} | "
                     f"{t['before_2']['predict_proba']:.1f} | {t['today_2']['predict_proba']:.1f} | "
                     f"{t['today_1']['onnxruntime']:.2f} |")
    lines.append(END)
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["image", "sound", "text"], choices=["image", "sound", "text"])
    parser.add_argument("--before", default=BEFORE, help="the earlier commit to compare with (default %(default)s)")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=60, help="requests per client and server")
    parser.add_argument("--seconds", type=float, default=15, help="at most this long per server and round")
    parser.add_argument("--rounds", type=int, default=2, help="rounds for the image model (the others: 1)")
    parser.add_argument("--bad-every", type=int, default=4, help="every Nth request is bad (0: none)")
    parser.add_argument("--calls", type=int, default=50, help="one-row predict_proba calls timed")
    parser.add_argument("--out", type=Path, default=MODELS / "results.json")
    parser.add_argument("--results-md", type=Path, help="replace this file's serve.py section with the results")
    args = parser.parse_args(argv)
    import onnxruntime

    results = {"machine": machine_line(machine_info(onnxruntime=onnxruntime.__version__)),
               "date": time.strftime("%Y-%m-%d"), "before": args.before, "clients": args.clients,
               "bad_every": args.bad_every, "calls": args.calls, "requests": args.requests, "seconds": args.seconds,
               "load": [], "one_row": {}}
    old = earlier_copy(args.before)
    servers = {"image": [(f"before ({args.before})", old, ()), ("today", REPO, ()),
                         ("today --batching", REPO, ("--batching",)), ("today --engine torch", REPO, ("--engine", "torch"))],
               "sound": [(f"before ({args.before})", old, ()), ("today", REPO, ())],
               "text": [(f"before ({args.before})", old, ()), ("today", REPO, ())]}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        procs, good, models = [], {}, {}
        try:
            # Every server starts at once and waits idle (no CPU) for its turn: one start-up time, not ten.
            started = {}
            for kind in args.models:
                # Each version serves the same network trained and saved by itself: model files change format
                # between versions (7cbf6af's are format 1, today's format 2, and neither reads the other's).
                models[kind] = {"before": MODELS / f"{kind}-{args.before}", "today": MODELS / f"{kind}-today"}
                if not (models[kind]["before"] / "config.json").is_file():
                    run_before(str(old), f"from benchmarks.serve import train; from pathlib import Path; "
                                         f"train({kind!r}, Path({str(models[kind]['before'].resolve())!r})); "
                                         "print('null')")
                good[kind], raw = inputs(kind)
                np.save(tmp / f"{kind}.npy", today_model(kind, models[kind]["today"]).steps[0][1].transform(raw[:20]))
                for name, code, options in servers[kind]:
                    log = tmp / f"{kind}-{len(procs)}.log"
                    model = models[kind]["before" if code == old else "today"]
                    proc, port = start_server(code, model, log, *options)
                    procs.append(proc)
                    started[kind, name] = (proc, port, log)
            for proc, port, log in started.values():
                wait_ready(proc, port, log)
            for kind in args.models:
                for r in range(1, (args.rounds if kind == "image" else 1) + 1):
                    order = servers[kind] if r % 2 else servers[kind][::-1]
                    for name, _, _ in order:
                        proc, port, log = started[kind, name]
                        res = asyncio.run(load_test(port, kind, good[kind], args.clients, args.requests,
                                                    args.bad_every, args.seconds))
                        results["load"].append({"model": kind, "server": name, "round": r, "result": res})
                        print(f"{kind:6} {name:24} round {r}: {res['throughput_rps']:6.0f} req/s, p50 "
                              f"{res['p50_ms']:6.1f} ms, p99 {res['p99_ms']:6.1f} ms, errors {res['errors']}",
                              flush=True)
                        if res["errors"]:
                            print(log.read_text()[-3000:], file=sys.stderr)
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                proc.wait(timeout=30)
        for kind in args.models:
            grids = tmp / f"{kind}.npy"
            results["one_row"][kind] = {
                f"{version}_{threads}": one_row(code, models[kind][version], grids, threads, args.calls,
                                                version == "today")
                for threads in (1, 2) for version, code in (("before", old), ("today", REPO))}
            print(kind, "one row:", json.dumps(results["one_row"][kind]), flush=True)
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
    # Today's servers must answer every request as expected; the earlier one's failures are reported, not ours.
    return 1 if any(row["result"]["errors"] for row in results["load"] if row["server"].startswith("today")) else 0


if __name__ == "__main__":
    raise SystemExit(main())
