"""`gridcnn predict` starts in the time its model needs (issue 24): it imports no library the command does not use.

Measured (benchmarks/RESULTS.md): two WAV files took ~5 s of CPU, nearly all of it imports; librosa (with numba
and scipy.signal) was 1 s of it, for a mel filter bank now computed in numpy. Checked here by what a predicting
process has imported, not by time, which a shared machine cannot hold still.
"""

import json
import os
import subprocess
import sys

import pytest

# Imported by no prediction: training, plots, export, serving, the contextual text model, audio decoding fallbacks.
NOT_FOR_PREDICT = ("librosa", "numba", "scipy.signal", "matplotlib", "onnx", "onnxruntime", "transformers",
                   "fastapi", "uvicorn", "sklearn.model_selection", "sklearn.metrics", "gridcnn.workflow.plots")


def imported_by_predict(args) -> list:
    code = (
        "import json, sys\n"
        "from gridcnn.cli.commands import main\n"
        f"sys.argv = ['gridcnn', 'predict', *{list(map(str, args))!r}]\n"
        "try:\n    main()\nexcept SystemExit as exc:\n    assert not exc.code, exc.code\n"
        f"print(json.dumps(sorted(m for m in {NOT_FOR_PREDICT!r} if m in sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ})
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.strip().splitlines()
    assert len(lines) == len(args[1:]) + 1  # one answer per input, then the list
    return json.loads(lines[-1])


def test_predicting_two_wav_files_imports_no_library_it_does_not_use(audio_model):
    folder, paths, _ = audio_model
    assert imported_by_predict([folder, paths[0], paths[1]]) == []


def test_predicting_images_imports_no_library_it_does_not_use(image_run, tmp_path):
    from PIL import Image
    from sklearn.datasets import load_digits

    images = load_digits().images[:2]
    for i, a in enumerate(images):
        Image.fromarray((a * 255 / 16).astype("uint8")).save(tmp_path / f"{i}.png")
    assert imported_by_predict([image_run, tmp_path / "0.png", tmp_path / "1.png"]) == []
