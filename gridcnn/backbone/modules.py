"""The modules a spec builds: blocks, the full-width text convolution, the token table, and the network itself."""

from __future__ import annotations

import torch
from torch import nn

# relu6 is MobileNetV2's and EfficientNet-Lite's (bounded, for 8-bit inference); their weights were trained with it.
ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "elu": nn.ELU, "leaky_relu": nn.LeakyReLU, "tanh": nn.Tanh,
               "relu6": nn.ReLU6}


class Normalize(nn.Module):
    """(x - mean) / std per channel: the input scaling pretrained weights were trained with, kept inside the network
    so that an exported graph and the server need nothing outside it.

    The statistics are buffers that are not saved (the spec holds them), so model files keep one tensor per weight.
    A grid with another number of channels than the statistics (a spectrogram into an RGB network) takes their
    averages, as its first convolution takes the sum of the colour kernels (`gridcnn.backbone.pretrained`).
    """

    def __init__(self, mean, std, channels: int):
        super().__init__()
        mean, std = torch.tensor(mean, dtype=torch.float32), torch.tensor(std, dtype=torch.float32)
        if len(mean) != channels:
            mean, std = mean.mean().repeat(channels), std.mean().repeat(channels)
        self.register_buffer("mean", mean.view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", std.view(1, -1, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class TokenEmbedding(nn.Module):
    """Token ids (n, 1, tokens, 1), 0 for padding, -> their rows of a trainable table, (n, 1, tokens, dim).

    Row 0 is padding (zeros, never trained: ``padding_idx``) and row ``i + 1`` token ``i``'s vector, as
    ``EmbeddingGrid(output="ids")`` numbers them, so the pretrained table copied in gives, before training, exactly
    the grid the adapter's ``output="vectors"`` makes. The
    weights start at zero without drawing random numbers: the estimator copies the pretrained table in, and the
    convolutions draw the same initial weights as the static network's.
    """

    def __init__(self, rows: int, dim: int, dropout: float = 0.0):
        super().__init__()
        self.embedding = nn.Embedding(rows, dim, padding_idx=0, _weight=torch.zeros(rows, dim))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.embedding(x[:, 0, :, 0].long()).unsqueeze(1))


class Block(nn.Sequential):
    """One [conv, (bn), act, (pool), (drop)] block; its output is the block's feature map."""


class GridCNN(nn.Module):
    """Parallel convolutional branches (each a sequence of `Block` modules), concatenated, then the head."""

    def __init__(self, branches: list[nn.Sequential], head: nn.Sequential, embed: "TokenEmbedding | None" = None,
                 normalize: "Normalize | None" = None):
        super().__init__()
        if embed is not None:  # registered first only when present: networks over grids keep their state_dict keys
            self.embed = embed
        if normalize is not None:
            self.normalize = normalize
        self.branches = nn.ModuleList(branches)
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if "embed" in self._modules:
            x = self.embed(x)
        if "normalize" in self._modules:
            x = self.normalize(x)
        if len(self.branches) == 1:
            z = self.branches[0](x).flatten(1)
        else:
            z = torch.cat([b(x).flatten(1) for b in self.branches], dim=1)
        return self.head(z)

    @torch.no_grad()
    def feature_maps(self, x: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
        """The output of each block (stage) of the first branch, named "block1", "block2"..., for plots (after the
        "embedding" grid of a network that takes token ids)."""
        maps = []
        if "embed" in self._modules:  # token ids are no picture: show the grid the table makes of them
            x = self.embed(x)
            maps.append(("embedding", x))
        if "normalize" in self._modules:
            x = self.normalize(x)
        for name, module in self.branches[0].named_children():
            x = module(x)
            if self.is_block(module):
                maps.append((name, x))
        return maps

    def forward_with_maps(self, x: torch.Tensor) -> tuple[torch.Tensor, list[tuple[str, torch.Tensor]], torch.Tensor]:
        """``forward``, also returning each branch's last block output (named) and the grid the branches read (the
        input, or the embedded token ids): what Grad-CAM (`gridcnn.backbone.explain`) differentiates. No hooks, so
        explaining in one thread never touches another thread's forward pass."""
        grid = self.embed(x) if "embed" in self._modules else x
        flat, last = [], []
        for i, branch in enumerate(self.branches):
            z, kept = (self.normalize(grid) if "normalize" in self._modules else grid), None
            for name, module in branch.named_children():
                z = module(z)
                if self.is_block(module):
                    kept = (f"branch{i + 1}.{name}" if len(self.branches) > 1 else name, z)
            last.append(kept)
            flat.append(z.flatten(1))
        return self.head(flat[0] if len(flat) == 1 else torch.cat(flat, dim=1)), last, grid

    @staticmethod
    def is_block(module: nn.Module) -> bool:
        """Is this child of a branch a block, whose output is a feature map (plots, the page, Grad-CAM)? A plain
        `Block`, or a stage of an architecture family (`gridcnn.backbone.blocks`, whose modules carry a ``kind``)."""
        return isinstance(module, Block) or hasattr(module, "kind")

    def stages(self) -> list[tuple[str, nn.Module]]:
        """The network in the order data flows, for per-stage learning rates and freezing: each block of each
        branch ("block1", ..., "b2_block1" when there are several branches), then "head"; a token table comes
        first as "embed". Every parameter is in exactly one stage."""
        out = [("embed", self.embed)] if "embed" in self._modules else []
        multi = len(self.branches) > 1
        for b, branch in enumerate(self.branches, 1):
            out += [(f"b{b}_{n}" if multi else n, m) for n, m in branch.named_children() if n.startswith("block")]
        return out + [("head", self.head)]

    def freeze_body(self, frozen: bool = True, keep_statistics: bool = False) -> None:
        """Stop (or restart) gradients to every stage but the head: the body of a pretrained network trained as a
        fixed feature extractor. With ``keep_statistics`` the frozen body's batch-norm layers also stay in eval mode
        while the network trains (their running statistics unchanged, as fastai's ``train_bn=False``)."""
        for name, module in self.stages():
            if name != "head":
                module.requires_grad_(not frozen)
        self._frozen_statistics = bool(frozen and keep_statistics)
        self.train(self.training)

    def keep_statistics(self, keep: bool = True) -> None:
        """Keep the body's batch-norm layers in eval mode while the network trains, its parameters still learning:
        a pretrained body normalises with ImageNet's statistics, not those of a few batches of 32 pictures."""
        self._frozen_statistics = bool(keep)
        self.train(self.training)

    def train(self, mode: bool = True):
        super().train(mode)
        if mode and getattr(self, "_frozen_statistics", False):  # a model file read back has no such attribute
            for name, module in self.stages():
                if name != "head":
                    for m in module.modules():
                        if isinstance(m, nn.modules.batchnorm._BatchNorm):
                            m.eval()
        return self


class FullWidthConv2d(nn.Conv2d):
    """A Conv2d whose kernel spans the whole grid width (Kim's text CNN), computed as the equivalent Conv1d.

    Sliding a (kh, W) kernel down a (C, H, W) grid is a 1-D convolution over the H rows with C*W input channels;
    torch runs that form about 2.5x faster, forward and backward, for embedding-wide text grids. The parameters and
    their initialisation are Conv2d's, so model files and results do not depend on which form ran.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        rows = x.transpose(2, 3).reshape(n, c * w, h)
        weight = self.weight.transpose(2, 3).reshape(self.out_channels, c * w, self.kernel_size[0])
        out = nn.functional.conv1d(rows, weight, self.bias, stride=self.stride[0], padding=self.padding[0])
        return out.unsqueeze(-1)
