"""Pretrained bodies for the family presets: published ImageNet weights converted, by key maps, into the preset's
network (`load_pretrained`), and the table of which presets have them (`WEIGHTS`)."""

from __future__ import annotations

import torch

from gridcnn.backbone.pretrained.layouts import LAYOUTS, their_name
from gridcnn.backbone.pretrained.sources import WEIGHTS, Weights, published, read_file
from gridcnn.exceptions import GridCNNError

__all__ = ["WEIGHTS", "Weights", "check_has_weights", "load_pretrained"]

_OPTIONAL = "num_batches_tracked"  # older files lack batch norm's step counter; it only matters for momentum=None


def check_has_weights(name) -> None:
    """Refuse ``pretrained`` with a preset that has no published weights, naming those that have."""
    if name not in WEIGHTS:
        shown = "the default network" if name is None else repr(name)
        raise GridCNNError(
            f"pretrained needs a preset with published weights, and {shown} has none. Presets with weights: "
            f"{', '.join(WEIGHTS)}; or leave pretrained=False to train from scratch."
        )


def load_pretrained(model, spec, name: str, source=True, *, head: bool = False) -> str:
    """Copy pretrained weights into ``model`` (built from ``spec``, the preset ``name``'s network) and return where
    they came from.

    Parameters
    ----------
    model : GridCNN
        The network, built for grids of any number of channels: a first convolution made for 3 (RGB) takes their
        sum for 1 channel (spectrograms, grayscale: the features of the same gray picture in colour, up to the
        channel-averaged normalisation), else the colour kernels repeated and scaled by 3 / channels (timm's
        ``in_chans`` rule).
    spec : BackboneSpec
        The network's spec; its branch decides where each tensor goes.
    name : str
        The preset (a key of `WEIGHTS`).
    source : True, str or Path
        True: the published weights (`WEIGHTS`); a path: a .pth or .safetensors file in torchvision's or timm's
        layout (or EfficientNet-PyTorch's, for efficientnet_lite0).
    head : bool, default=False
        Also load the ImageNet classifier into the output layer (it must have the file's 1000 outputs); otherwise
        the head keeps its fresh initialisation.

    Returns
    -------
    source : str
        The file or URL the weights were read from.
    """
    check_has_weights(name)
    weights = WEIGHTS[name]
    state, where = published(name, weights) if source is True else (read_file(source), str(source))
    layout = next((lay for lay in LAYOUTS[weights.family] if _stem(lay, spec) in state), None)
    if layout is None:
        stems = ", ".join(f"{_stem(lay, spec)} ({lay.name})" for lay in LAYOUTS[weights.family])
        raise GridCNNError(
            f"{where} does not hold {name} weights: it has no {stems}; its first key is {next(iter(state))!r}. Pass "
            f"a weights file of {name}."
        )
    if layout.fix is not None:
        state = layout.fix(state)
    rules = layout.rules(spec.branches[0])
    ours = model.state_dict()
    new, used = {}, set()
    for key, tensor in ours.items():
        if key.startswith("branches.0."):
            theirs = their_name(rules, key[len("branches.0."):])
        elif head and key.startswith("head.output.") and layout.classifier:
            theirs = layout.classifier + key[len("head.output"):]
        else:
            continue
        if theirs not in state:
            if key.endswith(_OPTIONAL):
                continue
            raise GridCNNError(
                f"{where} does not fit {name}: it has no {theirs}, where {name} needs its {key} "
                f"{tuple(tensor.shape)}. Pass a weights file of {name}."
            )
        value = state[theirs]
        if tensor.dim() == 4 and value.dim() == 4 and value.shape[1] != tensor.shape[1] and not new:
            value = _adapt_input_conv(value, tensor.shape[1])  # the first convolution of a grid that is not RGB
        if value.shape != tensor.shape:
            raise GridCNNError(
                f"{where} does not fit {name}: its {theirs} has shape {tuple(value.shape)}, where {name} needs "
                f"{tuple(tensor.shape)}. It holds the weights of another network; pass a weights file of {name}."
            )
        new[key] = value.to(tensor.dtype)
        used.add(theirs)
    skip = tuple(layout.ignore) + ((layout.classifier + ".",) if layout.classifier else ())
    extra = [k for k in state if k not in used and not k.startswith(skip) and not k.endswith(_OPTIONAL)]
    if extra:
        raise GridCNNError(
            f"{where} does not fit {name}: it holds {extra[0]} {tuple(state[extra[0]].shape)}, for which {name} has "
            f"no layer. It holds the weights of a larger network; pass a weights file of {name}."
        )
    ours.update(new)
    model.load_state_dict(ours)
    return where


def _stem(layout, spec) -> str:
    return their_name(layout.rules(spec.branches[0]), "block1.conv.weight")


def _adapt_input_conv(weight: torch.Tensor, channels: int) -> torch.Tensor:
    """A first convolution's RGB kernels for ``channels`` input channels: summed for 1 (a gray grid then gives the
    features of the same gray picture in colour), repeated and scaled by 3 / channels otherwise."""
    if channels == 1:
        return weight.sum(dim=1, keepdim=True)
    reps = -(-channels // weight.shape[1])
    return weight.repeat(1, reps, 1, 1)[:, :channels] * (weight.shape[1] / channels)
