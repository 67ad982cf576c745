"""``/predict?explain=true``: the predictions as usual, and for each input where the network looked.

Kept apart from the predictor so the engine that answers predictions (torch or onnxruntime) stays free to change:
the probabilities come from the predictor exactly as without ``explain``; Grad-CAM runs on the torch module beside.
"""

from __future__ import annotations

import numpy as np

from gridcnn._registry import did_you_mean
from gridcnn.serve._predictor import RequestError


def target_index(predictor, target: str | None) -> int | None:
    """The index of the class named ``target`` (as the page and ``/model`` write it), None for "the predicted one"."""
    if target is None or target == "":
        return None
    names = [str(c) for c in predictor.classes]
    if target not in names:
        raise RequestError(f"Unknown class {target!r} to explain; this model's classes are {names[:20]}"
                           f"{' ...' if len(names) > 20 else ''}.{did_you_mean(target, names)}")
    return names.index(target)


def predict_and_explain(predictor, X, feature_maps: bool, target: int | None) -> dict:
    """The predictor's answer, with ``explanations``: one per input, for class ``target`` or the predicted one.

    Each holds ``class``, ``method``, ``layers``, and either ``heatmap`` (rows of 0-255 over the grid, ``shape``
    [H, W]; the grid as the network read it is in the feature maps' "input") or, for texts, ``tokens`` and
    ``token_weights`` (-1 to 1, positive for the class).
    """
    from gridcnn.backbone.explain import grad_cam

    grids = predictor.grids(X)  # once: the predictor passes grids through to its engine as they are
    out = predictor.predict(grids, feature_maps)
    if target is None:  # the class the answer names, whichever engine computed it
        names = [str(c) for c in predictor.classes]
        target = np.array([names.index(str(p["label"])) for p in out["predictions"]])
    explained = grad_cam(predictor.estimator.model_, grids, target)
    texts = predictor.takes_text and isinstance(X, list)
    tokens = predictor.adapter.tokens(X) if texts else None
    items = []
    for i, t in enumerate(explained.targets):
        item = {"class": predictor.classes[int(t)], "layers": explained.layers}
        if tokens is not None:
            n = min(len(tokens[i]), explained.row_weights.shape[1])
            item.update(method="gradient x input", tokens=tokens[i][:n],
                        token_weights=[round(float(v), 4) for v in explained.row_weights[i, :n]])
        else:
            heat = np.round(explained.heatmaps[i] * 255).astype(np.uint8)
            item.update(method="grad-cam", shape=list(heat.shape), heatmap=heat.tolist(),
                        evidence=bool(heat.any()))  # False: nothing in the input speaks for the class
        items.append(item)
    out["explanations"] = items
    return out
