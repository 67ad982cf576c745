"""TF-IDF + logistic regression on the text recipe's own split: the baseline the CNN has to beat.

Run:  python -m benchmarks.text_baseline [--recipe recipes/text.toml] [--cnn]
Prints one markdown table row per model: test accuracy and wall time (fit + predict). ``--cnn`` also trains the
recipe's EmbeddingGrid + GridCNNClassifier pipeline (minutes on a CPU: MiniLM embeds every review first).
"""

from __future__ import annotations

import argparse
import time

from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline

from gridcnn.workflow.recipes import build_pipeline, load_split, read_recipe

from benchmarks.common import machine_line


def tfidf_baseline():
    # Word unigrams and bigrams with sublinear counts, the usual strong linear baseline for sentence polarity;
    # C is chosen by 5-fold cross-validation on the training part only.
    return make_pipeline(
        TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1),
        GridSearchCV(LogisticRegression(max_iter=2000), {"C": [0.3, 1, 3, 10, 30, 100]}, cv=5),
    )


def run(name, model, X_train, y_train, X_test, y_test) -> None:
    start = time.perf_counter()
    model.fit(X_train, y_train)
    accuracy = model.score(X_test, y_test)
    print(f"| {name} | {accuracy:.4f} | {time.perf_counter() - start:.1f} s |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="recipes/text.toml", help="recipe whose data and split to use")
    parser.add_argument("--cnn", action="store_true", help="also train the recipe's CNN pipeline")
    args = parser.parse_args()

    recipe = read_recipe(args.recipe)
    X_train, y_train, X_test, y_test = load_split(recipe)
    print(f"{recipe.data}: {len(y_train)} train / {len(y_test)} test; {machine_line()}")
    print("| model | test accuracy | time |\n|---|---|---|")
    run("TF-IDF (1-2 grams) + LogisticRegression (C by 5-fold CV)", tfidf_baseline(), X_train, y_train, X_test, y_test)
    if args.cnn:
        run(f"{args.recipe} (EmbeddingGrid + GridCNNClassifier)", build_pipeline(recipe), X_train, y_train, X_test,
            y_test)


if __name__ == "__main__":
    main()
