"""What the benchmark scripts share: the machine they ran on, and an earlier copy of gridcnn timed beside this one.

Every script prints `machine_line()` beside its figures and RESULTS.md keeps that line with them, so a figure is
compared only with figures from the same kind of machine, at a known load.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from datetime import date
from pathlib import Path

#: The checkout holding this ``benchmarks`` package.
REPO = Path(__file__).resolve().parents[1]

#: The keys every `machine_info` has; anything else given to it is a version worth naming beside them.
BASE = ("cpu", "cores", "memory_gib", "gpu", "torch", "torch_threads", "python", "load_average", "date")


def cpu_name() -> str:
    """The CPU's model name from /proc/cpuinfo (what `lscpu` prints), or what `platform` knows elsewhere."""
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine() or "unknown CPU"


def memory_gib() -> float | None:
    """Total memory in GiB (one decimal), or None where /proc/meminfo is not there."""
    try:
        with open("/proc/meminfo") as f:
            kib = next(int(line.split()[1]) for line in f if line.startswith("MemTotal"))
    except (OSError, StopIteration):
        return None
    return round(kib / 2**20, 1)


def load_average() -> float | None:
    """The one-minute load average: on a shared machine it says how far wall times can be trusted."""
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else None


def machine_info(**versions) -> dict:
    """CPU, cores, memory, GPU, torch and its threads, Python, the load now and today's date, plus ``versions``
    (name -> version of other libraries the figures depend on, e.g. ``onnxruntime=ort.__version__``)."""
    import torch  # here, not at the top: a script that pins its cores imports torch only after pinning them

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    info = {"cpu": cpu_name(), "cores": os.cpu_count(), "memory_gib": memory_gib(), "gpu": gpu,
            "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "python": platform.python_version(), "load_average": load_average(), "date": date.today().isoformat()}
    return {**info, **{k: v for k, v in versions.items() if k not in info}}


def machine_line(info: dict | None = None) -> str:
    """``info`` (default: `machine_info()` now) in one line, e.g. "Intel(R) Xeon(R) Processor, 2 cores, 23.5 GiB,
    no GPU; torch 2.13.0+cpu on 2 threads, Python 3.11.7, onnxruntime 1.32.0; load average 0.7; 2026-12-07"."""
    m = info or machine_info()
    threads = f"{m['torch_threads']} thread" + ("s" if m["torch_threads"] != 1 else "")
    memory = f" {m['memory_gib']} GiB," if m.get("memory_gib") else ""
    extras = "".join(f", {k} {v}" for k, v in m.items() if k not in BASE and k != "machine")
    load = "" if m.get("load_average") is None else f"; load average {m['load_average']:.1f}"
    return (f"{m['cpu']}, {m['cores']} cores,{memory} {m['gpu']}; torch {m['torch']} on {threads}, "
            f"Python {m['python']}{extras}{load}; {m['date']}")


def run_before(before: str, code: str):
    """Run ``code`` in a fresh Python whose ``gridcnn`` is the copy in the folder ``before`` (an earlier version,
    e.g. ``git archive main gridcnn | tar -x -C /tmp/before``) and whose ``benchmarks`` is this one; returns the JSON
    value its last output line prints.

    ``-P`` keeps the working directory off ``sys.path``: run from a checkout, it would otherwise put that checkout's
    ``gridcnn`` ahead of ``before`` and time the current code twice.
    """
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([before, str(REPO)])}
    out = subprocess.run([sys.executable, "-P", "-c", code], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])
