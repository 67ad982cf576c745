"""Where the network looked: Grad-CAM on each branch's last block, and the weight of each grid row (token).

Grad-CAM (Selvaraju et al., 2017) weighs each map of the last convolutional block by the mean gradient of the class
score over it, keeps the positive part of the weighted sum, and stretches it to the grid: bright where evidence for
the class sits. A network with parallel branches (Kim's text CNN has three) gets the sum of its branches' maps, since
the class score adds up their contributions. For texts the rows of the grid are tokens, and a full-width kernel
leaves maps one column wide; there the weight of each token is gradient x input summed over the embedding (signed:
positive pushes towards the class), which needs no guess about how a branch's positions map back to tokens.

Used by the server (``/predict?explain=true``) and by the run folder's ``explain.png``; it needs only the
`GridCNN` module's ``forward_with_maps``, so any backbone whose blocks that method finds is explained.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from gridcnn.exceptions import GridCNNError


@dataclass(frozen=True)
class Explanation:
    """Grad-CAM of ``n`` grids for one class each.

    Attributes
    ----------
    heatmaps : ndarray of shape (n, H, W)
        Grad-CAM stretched to the grid's height and width, 0 to 1 (1 at each grid's strongest evidence; all zeros
        where no position speaks for the class).
    row_weights : ndarray of shape (n, H)
        Gradient x input summed over each grid row (a token of a text), -1 to 1 (divided by the largest magnitude).
    targets : ndarray of shape (n,)
        The index (into ``classes_``) of the class each grid is explained for.
    probabilities : ndarray of shape (n, n_classes)
        The softmax of the same forward pass.
    layers : list of str
        The blocks whose maps were used, one per branch.
    """

    heatmaps: np.ndarray
    row_weights: np.ndarray
    targets: np.ndarray
    probabilities: np.ndarray
    layers: list


def grad_cam(network, grids, target=None) -> Explanation:
    """Grad-CAM of each grid for the class ``target`` (an index, one per grid, or None: the predicted class).

    Parameters
    ----------
    network : GridCNN
        The fitted module (``estimator.model_``).
    grids : array-like of shape (n, C, H, W)
        What the network reads (an adapter's output).
    target : int, array-like of int, or None
        Class indices; None explains each grid's most probable class.

    Examples
    --------
    >>> import numpy as np
    >>> from gridcnn import GridCNNClassifier
    >>> X = np.random.default_rng(0).random((20, 1, 8, 8), dtype=np.float32)
    >>> est = GridCNNClassifier(filters=[4], max_epochs=1, random_state=0).fit(X, np.arange(20) % 2)
    >>> grad_cam(est.model_, X[:3]).heatmaps.shape
    (3, 8, 8)
    """
    device = next(network.parameters()).device
    x = torch.as_tensor(np.asarray(grids, dtype=np.float32), device=device)
    n_classes = network.head[-1].out_features
    if target is not None and not np.all((np.asarray(target) >= 0) & (np.asarray(target) < n_classes)):
        raise GridCNNError(f"target={np.asarray(target).tolist()} is not a class index of this network: it has "
                           f"{n_classes} classes, indices 0 to {n_classes - 1} (the order of classes_).")
    was_training = network.training
    if was_training:
        network.eval()  # batch-norm statistics and no dropout, as at prediction time
    try:
        with torch.enable_grad():
            if "embed" not in network._modules:  # token ids are indices, not values: no gradient to them
                x.requires_grad_(True)  # so maps carry gradients even where a frozen body's weights do not
            logits, last, grid = network.forward_with_maps(x)
            chosen = logits.argmax(1) if target is None else torch.as_tensor(
                np.broadcast_to(np.asarray(target, dtype=np.int64), (len(x),)).copy(), device=device)
            score = logits.gather(1, chosen[:, None]).sum()  # rows are independent: one backward serves them all
            maps = [m for _, m in last]
            wrt = [*maps, grid] if grid.requires_grad else maps  # a frozen token table gives no gradient to it
            grads = list(torch.autograd.grad(score, wrt, allow_unused=True))
            grid_grad = grads.pop() if grid.requires_grad else None
    finally:
        if was_training:
            network.train()
    h, w = grid.shape[-2:]
    cam = torch.zeros(len(x), 1, h, w, device=device)
    for a, g in zip(maps, grads):
        if g is None:  # a branch the class score does not depend on
            continue
        weights = g.mean(dim=(2, 3), keepdim=True)
        part = F.relu((weights * a.detach()).sum(1, keepdim=True))
        cam += F.interpolate(part, size=(h, w), mode="bilinear", align_corners=False)
    cam = cam[:, 0]
    peak = cam.flatten(1).max(1).values.clamp_min(1e-12)[:, None, None]
    rows = torch.zeros(len(x), h, device=device) if grid_grad is None else \
        (grid_grad * grid.detach()).sum(dim=(1, 3))
    scale = rows.abs().max(1, keepdim=True).values.clamp_min(1e-12)
    return Explanation(
        heatmaps=(cam / peak).cpu().numpy(),
        row_weights=(rows / scale).cpu().numpy(),
        targets=chosen.cpu().numpy(),
        probabilities=torch.softmax(logits.detach().float(), 1).cpu().numpy(),
        layers=[name for name, _ in last],
    )
