"""Shared test set-up."""

import os

# OpenMP threads that wait sleep instead of spinning (read once, when torch loads): tests on a loaded machine do not
# crawl, and fits keep their thread count, so their numbers do not follow the load (gridcnn/training/threads.py).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest  # noqa: E402
import torch  # noqa: E402

# Under pytest-xdist each worker gets one core: torch's default of one thread per core in every worker would
# oversubscribe the CPU and make the suite several times slower.
if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)


def _single_thread():
    """Train on one thread: the test grids are small, and on a busy 2-core machine two threads stall each other."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


one_thread = pytest.fixture(_single_thread)
# For module-scoped fixtures that train (a reference fit compared bit for bit with fits under one_thread).
one_thread_per_module = pytest.fixture(scope="module")(_single_thread)


# -- small trained models of each modality, shared by the export, serve and browser tests (issue 16) ------------

DIGITS_RUN = """# digits for the export and serve tests
[data]
name = "digits"
test_fraction = 0.25
random_state = 0

[adapter]
name = "image"

[estimator]
filters = [8, 16]
hidden = [32]
max_epochs = 4
lr = 0.003
lr_schedule = "constant"  # the settings this small run was sized with, before the tuned defaults
weight_decay = 0.0
augment_shift = 0
random_state = 0
"""
TONES_HZ = {"low": 300.0, "mid": 900.0, "high": 2400.0}
WORDS = {"pos": ["wonderful", "great", "moving", "brilliant", "funny", "superb"],
         "neg": ["awful", "boring", "dull", "terrible", "bland", "tedious"]}


def tone(freq: float, seed: int, seconds: float = 0.3, sr: int = 8000):
    """A noisy sine whose pitch wanders a little: three pitches make a three-class sound problem."""
    import numpy as np

    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    f = freq * rng.uniform(0.9, 1.1)
    return (0.5 * np.sin(2 * np.pi * f * t) + 0.05 * rng.standard_normal(len(t))).astype(np.float32)


def sentences(n: int, seed: int):
    """Short reviews built from a positive or a negative word list, with their labels."""
    import numpy as np

    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for i in range(n):
        label = ("pos", "neg")[i % 2]
        a, b = rng.choice(WORDS[label], 2, replace=False)
        texts.append(f"the film was {a} and {b}" + (" ." if i % 3 else ", really"))
        labels.append(label)
    return texts, np.array(labels)


@pytest.fixture(scope="session")
def image_run(tmp_path_factory):
    """A run folder (model, recipe, metrics) of a small CNN on sklearn's 8x8 digits: a few seconds."""
    from gridcnn.workflow.recipes import read_recipe
    from gridcnn.workflow.runs import fit_recipe

    root = tmp_path_factory.mktemp("image-run")
    (root / "digits.toml").write_text(DIGITS_RUN)
    fit_recipe(read_recipe(root / "digits.toml"), root / "run", verbose=0)
    return root / "run"


@pytest.fixture(scope="session")
def audio_model(tmp_path_factory):
    """A model folder: three tone pitches as WAV files, log-mel grids, a small CNN."""
    import soundfile as sf
    from sklearn.pipeline import make_pipeline

    from gridcnn import GridCNNClassifier
    from gridcnn.adapters import SpectrogramGrid

    root = tmp_path_factory.mktemp("audio-model")
    paths, labels = [], []
    for i in range(36):
        label = list(TONES_HZ)[i % 3]
        path = root / "clips" / label / f"{i}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, tone(TONES_HZ[label], i), 8000)
        paths.append(str(path))
        labels.append(label)
    model = make_pipeline(
        SpectrogramGrid(sample_rate=8000, duration=0.25, n_fft=256, hop_length=128, n_mels=16, device="cpu"),
        GridCNNClassifier(filters=[4, 8], hidden=[16], max_epochs=6, lr=0.01, random_state=0, device="cpu"),
    ).fit(paths, labels)
    from gridcnn.modelfile.persistence import save

    save(model, root / "model")
    return root / "model", paths, labels


@pytest.fixture(scope="session")
def text_model(tmp_path_factory):
    """A model folder: positive and negative sentences, MiniLM's static token table, Kim's CNN with few filters."""
    from sklearn.pipeline import make_pipeline

    from gridcnn import GridCNNClassifier
    from gridcnn.adapters import EmbeddingGrid
    from gridcnn.modelfile.persistence import save

    texts, labels = sentences(60, 0)
    model = make_pipeline(
        EmbeddingGrid(embedding="minilm-static", device="cpu"),
        GridCNNClassifier(architecture="kim", filters=8, max_epochs=8, lr=0.01, random_state=0, device="cpu"),
    ).fit(texts, labels)
    path = tmp_path_factory.mktemp("text-model") / "model"
    save(model, path)
    return path, texts, labels
