"""Audio data sets: ``spoken_digits`` and ``spoken_words`` (synthesised with espeak-ng, built once into the cache)
and ``audio_folder``.

``spoken_digits`` stands in for the Free Spoken Digit Dataset, which cannot be downloaded here: espeak-ng says
"zero" ... "nine" in each of its voice variants (the voices), each take in one of its English accents with a random
pitch, speed, onset, loudness and a little white noise. The test split holds out whole voices, so a score on it
is speaker-independent, as with FSDD. ``spoken_words`` is the same recipe with Speech Commands' ten command words
("yes", "no", "up", ...), a second set for checking choices tuned on the first.
"""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import subprocess
import tempfile
import warnings
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from gridcnn.adapters.audio.clips import AUDIO_EXTENSIONS, SOUNDFILE_EXTENSIONS
from gridcnn.data.folders import list_class_folder
from gridcnn.exceptions import GridCNNError
from gridcnn.data.registry import cache_dir, register_dataset

log = logging.getLogger(__name__)

DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
WORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")  # Speech Commands' ten commands
ACCENTS = ("en", "en-us", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-rp", "en-gb-x-gbcwmd", "en-029", "en-us-nyc")
_VERSION = 1  # bump when the recipe below changes, so old caches are rebuilt
_TEST_EVERY = 5  # every 5th voice (in a fixed pseudo-random order) is a test voice: 20%


@register_dataset(
    "spoken_digits",
    modality="audio",
    splits=("train", "test"),
    adapter="spectrogram",
    description="Spoken digits 0-9 synthesised by espeak-ng (~100 voices x 8 accents); test holds out voices.",
)
def load_spoken_digits(split=None, *, voices=None, takes=3):
    """Spoken digits as sound file paths and integer labels, built into the cache on first use.

    Parameters
    ----------
    split : {"train", "test"} or None, default=None
        "test" holds the clips of every fifth voice, "train" the others; None returns both.
    voices : int, default=None
        Build from only this many voices (a smaller, separate cache, for quick tests); None uses all of them.
    takes : int, default=3
        Clips per voice and digit, each in a different accent (at most 8).

    Returns
    -------
    X : list of str
        Paths of 22.05 kHz mono WAV files named ``<voice>_<accent>_<take>.wav``.
    y : ndarray of int64
        The digit each clip says.
    """
    paths = _spoken("spoken_digits", DIGITS, split, voices, takes)
    return [str(p) for p in paths], np.array([int(p.parent.name) for p in paths], dtype=np.int64)


@register_dataset(
    "spoken_words",
    modality="audio",
    splits=("train", "test"),
    adapter="spectrogram",
    description="Speech Commands' ten words (yes, no, up, ...) synthesised like spoken_digits; test holds out voices.",
)
def load_spoken_words(split=None, *, voices=None, takes=3):
    """Spoken command words as sound file paths and string labels, built into the cache on first use.

    The same voices, accents and randomisation as `load_spoken_digits`, saying `WORDS` ("yes", "no", "up", "down",
    "left", "right", "on", "off", "stop", "go") instead of digits; the parameters are the same.

    Returns
    -------
    X : list of str
        Paths of 22.05 kHz mono WAV files ``<word>/<voice>_<accent>_<take>.wav``.
    y : ndarray of str
        The word each clip says.
    """
    paths = _spoken("spoken_words", WORDS, split, voices, takes)
    return [str(p) for p in paths], np.array([p.parent.name for p in paths])


def _spoken(name: str, words: tuple, split, voices, takes) -> list[Path]:
    """The clips of a synthesised set (built first when missing), all or one split's (whole voices held out)."""
    if voices is not None and (isinstance(voices, bool) or not isinstance(voices, int) or voices < _TEST_EVERY):
        raise GridCNNError(
            f"voices must be None or an int >= {_TEST_EVERY} (every {_TEST_EVERY}th voice is a test voice). "
            f"Got {voices!r} instead."
        )
    if isinstance(takes, bool) or not isinstance(takes, int) or not 1 <= takes <= len(ACCENTS):
        raise GridCNNError(f"takes must be an int from 1 to {len(ACCENTS)} (one accent each). Got {takes!r} instead.")
    root = _build_spoken(name, words, voices, takes)
    test_voices = set(json.loads((root / "manifest.json").read_text())["test_voices"])
    paths = sorted(root.glob("*/*.wav"))
    if split is not None:
        paths = [p for p in paths if (p.name.split("_")[0] in test_voices) == (split == "test")]
    return paths


@register_dataset(
    "audio_folder",
    modality="audio",
    adapter="spectrogram",
    description="Your own sound files: one subfolder per class (path=...); split with test_fraction.",
)
def load_audio_folder(split=None, *, path=None, on_error="raise"):
    """Sound files from a class-per-folder directory, such as ``path/yes/*.wav``, ``path/no/*.wav``.

    Parameters
    ----------
    split : None
        This loader has no named splits; recipes split it with ``test_fraction``.
    path : str or path
        The folder whose subfolders are the classes.
    on_error : {"raise", "skip"}, default="raise"
        What a file whose header cannot be read does: raise, or be left out together with its label (with a
        warning). This is the place to drop bad files in a Pipeline, where the adapter cannot drop labels.

    Returns
    -------
    X : list of str
        File paths, sorted by class then name.
    y : ndarray of str
        The subfolder (class) of each file.
    """
    if path is None:
        raise GridCNNError("audio_folder needs path=: a folder with one subfolder of sound files per class.")
    if on_error not in ("raise", "skip"):
        raise GridCNNError(f"on_error must be 'raise' or 'skip'. Got {on_error!r} instead.")
    paths, labels = list_class_folder(Path(path).expanduser(), AUDIO_EXTENSIONS)
    paths = [Path(p) for p in paths]
    bad = [(i, _unreadable(p)) for i, p in enumerate(paths)]
    bad = [(i, why) for i, why in bad if why]
    if bad and on_error == "raise":
        i, why = bad[0]
        raise GridCNNError(
            f"{len(bad)} file(s) in {os.fspath(path)!r} cannot be read; the first, {os.fspath(paths[i])!r}: {why}. "
            "Fix or remove them, or pass on_error='skip' to leave them out (in a recipe: on_error = \"skip\" "
            "under [data])."
        )
    if bad:
        warnings.warn(f"audio_folder left out {len(bad)} unreadable file(s), e.g. {paths[bad[0][0]]}: {bad[0][1]}")
        drop = {i for i, _ in bad}
        keep = [i for i in range(len(paths)) if i not in drop]
        paths, labels = [paths[i] for i in keep], [labels[i] for i in keep]
    return [str(p) for p in paths], np.array(labels)


def _unreadable(path: Path) -> str:
    """Why a sound file's header cannot be read, or "" when it can (cheap: decodes no samples)."""
    if path.suffix.lower() not in SOUNDFILE_EXTENSIONS:
        return ""  # decoded by librosa/ffmpeg in the adapter; checking here would mean decoding it twice
    import soundfile as sf

    try:
        return "" if sf.info(path).frames > 0 else "it is empty (0 samples)"
    except (sf.LibsndfileError, RuntimeError) as exc:
        return str(exc).strip() or "it cannot be decoded"


# -- building spoken_digits and spoken_words ---------------------------------------------------------------------


def _espeak(name: str) -> str:
    """The espeak-ng executable, or a `GridCNNError` with the command that installs it."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise GridCNNError(
            f"The {name} data set is synthesised with espeak-ng, which is not installed. "
            "Install it with: sudo apt-get install espeak-ng"
        )
    return exe


def _voices(exe: str) -> list[str]:
    """espeak-ng's voice variants in a fixed pseudo-random order (so any prefix mixes voice types)."""
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, check=True).stdout
    variants = Path(out.split("Data at:")[-1].strip()) / "voices" / "!v"
    names = [p.name for p in variants.iterdir() if p.is_file()] if variants.is_dir() else []
    # Underscores separate fields in our file names; spaces do not survive espeak's "-v accent+variant".
    names = [n for n in names if "_" not in n and " " not in n]
    if len(names) < _TEST_EVERY:
        raise GridCNNError(
            f"espeak-ng at {exe} has {len(names)} voice variants in {variants}; the spoken sets need at least "
            f"{_TEST_EVERY}. Reinstall it with: sudo apt-get install --reinstall espeak-ng-data"
        )
    return sorted(names, key=lambda n: (zlib.crc32(n.encode()), n))


def _build_spoken(base: str, words: tuple, voices: int | None, takes: int) -> Path:
    """The cache folder of this set and configuration, built first (atomically) when missing or out of date. Digits
    are filed under their number (folder "3"), other words under the word: the folder names the class."""
    name = base if (voices, takes) == (None, 3) else f"{base}-{voices or 'all'}v{takes}t"
    root = cache_dir() / name
    manifest = root / "manifest.json"
    if manifest.is_file() and json.loads(manifest.read_text()).get("version") == _VERSION:
        return root
    exe = _espeak(base)
    order = _voices(exe)[:voices]
    test_voices = order[_TEST_EVERY - 1 :: _TEST_EVERY]
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}-building-", dir=root.parent))
    try:
        log.info("building %s (%d clips) into %s", name, len(order) * takes * len(words), root)
        folders = [str(i) for i in range(len(words))] if words == DIGITS else list(words)
        jobs = [(v, f, w, t) for v in order for f, w in zip(folders, words) for t in range(takes)]
        with ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1))) as pool:
            # The first build takes a minute or more: say how far it got every tenth of the way (gridcnn fit shows
            # these lines under "Loading data", where it would otherwise sit silent).
            step = max(1, len(jobs) // 10)
            for done, _ in enumerate(pool.map(lambda job: _synthesise(exe, tmp, *job), jobs), 1):
                if done % step == 0 and done < len(jobs):
                    log.info("%s: %d of %d clips synthesised", name, done, len(jobs))
        info = {"version": _VERSION, "voices": order, "test_voices": test_voices, "takes": takes}
        (tmp / "manifest.json").write_text(json.dumps(info, indent=1))
        _swap_in(tmp, root)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return root


def _swap_in(tmp: Path, root: Path) -> None:
    """Rename the finished build to ``root``, moving an outdated one aside first; a rival's finished build wins."""
    old = None
    if root.exists():
        old = root.with_name(f".{root.name}-old-{os.getpid()}")
        os.rename(root, old)
    try:
        os.rename(tmp, root)
    except OSError:  # another process put a complete build there in the meantime
        if not (root / "manifest.json").is_file():
            raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _synthesise(exe: str, out: Path, voice: str, folder: str, word: str, take: int) -> None:
    """Say one word in one voice; write ``out/<folder>/<voice>_<accent>_<take>.wav`` (22.05 kHz, 16-bit)."""
    import soundfile as sf

    # Seeded by the clip's identity, so a rebuild (or a smaller build) makes the same clip again; the takes of
    # one voice and word share an accent order, so each take has its own accent.
    accents = np.random.default_rng(zlib.crc32(f"{voice}/{folder}".encode())).permutation(len(ACCENTS))
    accent = ACCENTS[accents[take]]
    rng = np.random.default_rng(zlib.crc32(f"{voice}/{folder}/{take}".encode()))
    pitch, speed = int(rng.integers(25, 76)), int(rng.integers(140, 211))  # espeak defaults: 50, 175 wpm
    cmd = [exe, "-v", f"{accent}+{voice}", "-p", str(pitch), "-s", str(speed), "--stdout", word]
    run = subprocess.run(cmd, capture_output=True)
    clip, sr = sf.read(io.BytesIO(run.stdout), dtype="float32") if run.returncode == 0 else (np.zeros(0), 0)
    if not np.abs(clip).max(initial=0.0) > 0:
        raise GridCNNError(
            f"espeak-ng said nothing for {word!r} with voice {accent}+{voice} (exit code {run.returncode}: "
            f"{run.stderr.decode(errors='replace').strip()!r}). Check that `{' '.join(cmd)}` works, then load again."
        )
    loud = np.flatnonzero(np.abs(clip) > 0.01 * np.abs(clip).max())
    clip = clip[loud[0] : loud[-1] + 1]  # espeak pads with silence of varying length; the onset is ours to set
    onset = np.zeros(int(rng.uniform(0.0, 0.15) * sr), dtype=np.float32)
    clip = np.concatenate([onset, clip, np.zeros(int(0.05 * sr), dtype=np.float32)])
    clip = clip / np.abs(clip).max() * rng.uniform(0.3, 0.9)
    rms = np.sqrt(np.mean(clip[len(onset) :] ** 2))
    snr_db = rng.uniform(20.0, 40.0)
    clip = clip + rng.normal(0.0, rms * 10 ** (-snr_db / 20), size=clip.shape).astype(np.float32)
    (out / folder).mkdir(exist_ok=True)
    sf.write(out / folder / f"{voice}_{accent}_{take}.wav", np.clip(clip, -1, 1), sr, subtype="PCM_16")
