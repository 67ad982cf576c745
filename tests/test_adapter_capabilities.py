"""What an adapter can do (read files, stream, serve uploads, export to ONNX) is asked of the adapter: a new adapter
registered with those attributes is picked up by class folders, ``gridcnn predict``, streaming, the modality check,
``gridcnn serve`` and ``gridcnn export`` without an edit to any of them (issue 23, part 3)."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
from sklearn.pipeline import Pipeline

from gridcnn import GridCNNClassifier, GridCNNError
from gridcnn.adapters import ADAPTERS, EmbeddingGrid, ImageGrid, SequenceGrid, SpectrogramGrid
from gridcnn.adapters.base import GridAdapter, file_adapters

NAME = "test-matrix-files"


class MatrixFiles(GridAdapter):
    """Reads ``.mtx`` text files, each a whitespace-separated matrix, as one-channel grids."""

    registry_name = NAME
    modality = "matrix"
    file_extensions = (".mtx",)
    upload_kind = "matrix"
    _fitted_attribute = "shape_"
    _parameter_constraints: dict = {}

    def _fit(self, X):
        self.shape_ = list(_matrix(X[0]).shape)

    def _transform(self, X):
        return np.stack([_matrix(x)[None] for x in X]).astype(np.float32)

    def read_upload(self, name, data):
        return np.loadtxt(io.BytesIO(data), ndmin=2)

    def onnx_frontend(self):
        from gridcnn.export.frontends import grid

        return grid([1, *self.shape_])


def _matrix(item):
    return np.loadtxt(item, ndmin=2) if isinstance(item, (str, os.PathLike)) else np.asarray(item, np.float64)


@pytest.fixture(scope="module")
def registered():
    ADAPTERS.register(NAME)(MatrixFiles)
    yield MatrixFiles
    ADAPTERS._entries.pop(NAME)  # the registry has no public removal: nothing but tests takes adapters away


@pytest.fixture(scope="module")
def matrices(tmp_path_factory, registered):
    """Two classes of 6 x 6 matrix files (a bright left or right half), a stray note beside them, and a model
    trained on them through the new adapter."""
    tmp_path = tmp_path_factory.mktemp("matrices")
    rng = np.random.default_rng(0)
    for label, side in (("left", slice(0, 3)), ("right", slice(3, 6))):
        (tmp_path / "data" / label).mkdir(parents=True)
        for i in range(8):
            m = rng.random((6, 6)) * 0.2
            m[:, side] += 1
            np.savetxt(tmp_path / "data" / label / f"{i}.mtx", m)
    (tmp_path / "data" / "left" / "README.txt").write_text("not a matrix")
    from gridcnn.data import read_data

    data = read_data(tmp_path / "data")  # class folders: its files, its modality; the note is not one of them
    est = GridCNNClassifier(filters=4, hidden=8, kernel_size=3, max_epochs=12, lr=1e-2, random_state=0,
                            check_input="off")
    model = Pipeline([(NAME, MatrixFiles()), ("classifier", est)]).fit(data.X, data.y)
    return tmp_path / "data", data, model


def test_the_shipped_adapters_say_what_they_can_do():
    assert (ImageGrid.reads_files(), SpectrogramGrid.reads_files()) == (True, True)
    assert not SequenceGrid.reads_files() and not EmbeddingGrid.reads_files()
    assert (ImageGrid.upload_kind, SpectrogramGrid.upload_kind, SequenceGrid.upload_kind) == ("image", "sound", "")
    assert EmbeddingGrid.text_inputs and not ImageGrid.text_inputs
    assert ".png" in ImageGrid.file_extensions and ".wav" in SpectrogramGrid.file_extensions
    assert set(file_adapters()) == {"image", "spectrogram"}
    with pytest.raises(GridCNNError, match="takes no uploaded files"):
        SequenceGrid().read_upload("x.bin", b"1")


def test_a_new_file_adapter_is_found_by_every_consumer(matrices):
    from gridcnn.cli.inputs import gather_inputs
    from gridcnn.streaming import StreamedGrids, file_adapter, predict_files, stream_folder

    matrices, data, model = matrices
    assert data.kind == "matrix" and len(data.X) == 16 and set(data.y) == {"left", "right"}
    assert model.score(data.X, data.y) == 1.0

    # gridcnn predict: a folder argument expands to the files it reads
    names, X = gather_inputs(model, [str(matrices / "left")])
    assert len(names) == 8 and all(n.endswith(".mtx") for n in names)

    # streaming: decoded one file per item by workers, bit for bit what the pipeline computes in memory
    assert file_adapter(model) is model.steps[0][1]
    proba, kept = predict_files(model, data.X)
    np.testing.assert_array_equal(proba, model.predict_proba(data.X))
    stream, labels = stream_folder(matrices, MatrixFiles())
    assert isinstance(stream, StreamedGrids) and len(labels) == 16

    # the modality check of another adapter names it
    with pytest.raises(GridCNNError, match=rf"is a matrix file, but ImageGrid reads image inputs. Use MatrixFiles "
                                           rf"\('{NAME}'\) for such files."):
        ImageGrid().fit([data.X[0]])


def test_a_new_adapter_serves_uploads_and_exports(matrices, tmp_path):
    pytest.importorskip("onnxruntime")
    from fastapi.testclient import TestClient

    from gridcnn.export.onnx import export_onnx
    from gridcnn.serve import create_app

    matrices, data, model = matrices
    client = TestClient(create_app(model, engine="torch"), raise_server_exceptions=False)
    assert "matrix files (multipart field 'files')" in client.get("/model").json()["accepts"]
    upload = [("files", ("m.mtx", (matrices / "right" / "0.mtx").read_bytes(), "text/plain"))]
    answer = client.post("/predict", files=upload)
    assert answer.status_code == 200, answer.text
    assert answer.json()["predictions"][0]["label"] == "right"
    assert client.post("/predict", files=[("files", ("e.mtx", b"", "text/plain"))]).json()["error"] == \
        "File 'e.mtx' is empty. Send a matrix file."

    onnx_path, _ = export_onnx(model, tmp_path / "m.onnx")  # checked against torch with onnxruntime as it exports
    import onnxruntime

    grids = model.steps[0][1].transform(data.X[:4])
    session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: grids})[0]
    np.testing.assert_allclose(got, model.predict_proba(data.X[:4]), atol=1e-5)
