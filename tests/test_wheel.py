"""A non-editable install ships what gridcnn reads at run time: the recipes and the serve page's static files are
package data (issue 23, part 5: before, recipes lived beside the package and a wheel had none)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

SERVE_PAGE = """
import numpy as np
from fastapi.testclient import TestClient
from gridcnn import GridCNNClassifier
from gridcnn.serve import create_app
from gridcnn.serve.app import STATIC

model = GridCNNClassifier(filters=2, hidden=4, max_epochs=1, random_state=0, check_input="off")
model.fit(np.random.default_rng(0).random((8, 4, 4)).astype(np.float32), np.arange(8) % 2)
client = TestClient(create_app(model, engine="torch"))
page = client.get("/")
assert page.status_code == 200 and "<html" in page.text.lower(), page.status_code
for f in sorted(STATIC.iterdir()):
    got = client.get("/static/" + f.name)
    assert got.status_code == 200 and got.content == f.read_bytes(), f.name
print("static:", ",".join(sorted(f.name for f in STATIC.iterdir())))
"""


@pytest.mark.slow
def test_a_wheel_installs_the_recipes_and_the_serve_page(tmp_path):
    # Build from a copy of the sources, so the build leaves nothing (build/, egg-info) in the checkout.
    src = tmp_path / "src"
    src.mkdir()
    shutil.copytree(ROOT / "gridcnn", src / "gridcnn", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    run = lambda *args, **kw: subprocess.run(args, capture_output=True, text=True, timeout=600, **kw)  # noqa: E731
    built = run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w",
                str(tmp_path / "wheel"), str(src))
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = (tmp_path / "wheel").glob("gridcnn-*.whl")

    # A fresh environment that sees torch & co. from the system, and gridcnn only from the wheel.
    venv = tmp_path / "venv"
    made = run(sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv))
    assert made.returncode == 0, made.stderr
    python, script = venv / "bin" / "python", venv / "bin" / "gridcnn"
    installed = run(str(python), "-m", "pip", "install", "--no-deps", "--no-index", str(wheel))
    assert installed.returncode == 0, installed.stderr[-2000:]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "GRIDCNN_DEBUG")}
    away = tmp_path / "elsewhere"  # not the checkout: nothing may come from its files
    away.mkdir()

    where = run(str(python), "-c", "import gridcnn; print(gridcnn.__file__)", cwd=away, env=env)
    assert where.stdout.strip().startswith(str(venv)), where.stdout + where.stderr

    listed = run(str(script), "recipes", cwd=away, env={**env, "COLUMNS": "200"})
    assert listed.returncode == 0, listed.stderr
    shipped = sorted(p.stem for p in (ROOT / "gridcnn" / "workflow" / "recipe_files").glob("*.toml"))
    assert len(shipped) >= 5 and all(name in listed.stdout for name in shipped), listed.stdout

    code = ("from gridcnn.workflow.recipes import RECIPES_DIR, read_recipe\n"
            f"for name in {shipped!r}:\n"
            "    assert read_recipe(name).estimator, name\n"
            "print(RECIPES_DIR)")
    read = run(str(python), "-c", code, cwd=away, env=env)
    assert read.returncode == 0, read.stderr[-2000:]
    assert read.stdout.strip().startswith(str(venv))
    for name in shipped:  # byte for byte what the checkout ships
        installed_file = Path(read.stdout.strip()) / f"{name}.toml"
        shipped_file = ROOT / "gridcnn" / "workflow" / "recipe_files" / f"{name}.toml"
        assert installed_file.read_bytes() == shipped_file.read_bytes()

    page = run(str(python), "-c", SERVE_PAGE, cwd=away, env=env)
    assert page.returncode == 0, page.stderr[-2000:]
    shipped_static = ",".join(sorted(p.name for p in (ROOT / "gridcnn" / "serve" / "static").iterdir()))
    assert f"static: {shipped_static}" in page.stdout
