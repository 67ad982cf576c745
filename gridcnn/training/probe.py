"""A linear probe as the head's starting point (LP-FT, Kumar et al. 2022): before fine-tuning a pretrained network,
its output layer is set to a logistic regression fitted on what the frozen body makes of the training rows.

Why: a randomly initialised head sends large, random gradients into the pretrained body in the first steps and
distorts the features fine-tuning is meant to keep. fastai trains the head alone for an epoch first; on clip art
(benchmarks/RESULTS.md, "Transfer learning") that epoch left the head under-trained (63.8% after 6 head-only epochs
against 68.4% for the probe), while the probe costs one forward pass and starts fine-tuning at the probe's accuracy.
"""

from __future__ import annotations

import numpy as np
import torch

PROBE_C = 1.0  # sklearn's default regularisation: C in 0.1-1 scored within one picture of each other on clip art


@torch.no_grad()
def probe_head(model, source, n_classes: int, batch_size: int) -> float:
    """Set ``model.head.output`` to a multinomial logistic regression on its inputs over ``source`` (the training
    rows, in order, not augmented, batch norm in eval mode); return the probe's training accuracy."""
    from sklearn.linear_model import LogisticRegression

    output = model.head.output
    feats, labels = [], []
    handle = output.register_forward_pre_hook(lambda _, args: feats.append(args[0].detach().float().cpu()))
    was_training = model.training
    model.eval()
    try:
        for xb, yb in source.batches(torch.arange(len(source)), batch_size):
            model(xb)
            labels.append(yb.cpu())
    finally:
        handle.remove()
        model.train(was_training)
    F, y = torch.cat(feats).numpy().astype(np.float64), torch.cat(labels).numpy()
    if len(np.unique(y)) < 2:  # nothing to separate (a one-class shard): the head stays as built
        return float("nan")
    lr = LogisticRegression(C=PROBE_C, max_iter=1000).fit(F, y)
    coef, bias = lr.coef_, lr.intercept_
    if coef.shape[0] == 1:  # two classes: sklearn keeps one row; softmax over (-z/2, z/2) is the same sigmoid
        coef, bias = np.vstack([-coef / 2, coef / 2]), np.array([-bias[0] / 2, bias[0] / 2])
    W = np.zeros((n_classes, F.shape[1]))
    b = np.full(n_classes, -10.0)  # a class absent from these rows starts unlikely, not at random
    W[lr.classes_], b[lr.classes_] = coef, bias - np.mean(bias)
    output.weight.copy_(torch.as_tensor(W, dtype=output.weight.dtype))
    output.bias.copy_(torch.as_tensor(b, dtype=output.bias.dtype))
    return float(lr.score(F, y))
