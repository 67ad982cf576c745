"""The backbone: shapes and parameter counts against the conv arithmetic and torch, presets, summary, errors."""

import re

import pytest
import torch
from torch import nn

from gridcnn.backbone import PRESETS, BackboneSpec, Block, ConvBlock, get_preset, resolve_spec
from gridcnn.exceptions import GridCNNError

# A grid each preset is meant for: (C, H, W). The families get their smallest grid: the tests stay fast.
PRESET_INPUTS = {"simple": (1, 28, 28), "lenet5": (1, 28, 28), "kim": (1, 40, 384), "vgg11": (3, 32, 32),
                 "resnet18": (3, 32, 32), "resnet18_small": (1, 28, 28), "resnet50": (3, 32, 32), "resnet20": (3, 32, 32),
                 "googlenet": (3, 32, 32), "densenet121": (3, 32, 32), "mobilenetv2": (3, 32, 32),
                 "efficientnet_lite0": (3, 32, 32)}


def test_every_preset_has_an_input_here():
    assert set(PRESETS.names()) == set(PRESET_INPUTS)


def test_seed_example_summary():
    # Conv2D 6 filters 2x2 on 28x28x1, ReLU, 2x2 max pool, flatten, dense 10 (the Keras example the design cites).
    spec = BackboneSpec(branches=((ConvBlock(6, 2, padding=0, pool="max", pool_size=2),),))
    s = spec.summary((1, 28, 28), 10)
    rows = {name.split(" ")[0]: (shape, params) for name, shape, params in s.rows}
    assert rows["conv1"] == ((27, 27, 6), 30)
    assert rows["pool1"] == ((13, 13, 6), 0)
    assert rows["flatten"] == ((1014,), 0)
    assert rows["output"] == ((10,), 10_150)
    assert s.total_params == s.trainable_params == 10_180
    text = str(s)
    assert "(27, 27, 6)" in text and "10,150" in text and "Total params: 10,180" in text


def _torch_shapes(module, input_shape):
    """Run a zero batch layer by layer and record each named layer's output shape as (H, W, C) or (features,)."""
    x = torch.zeros(2, *input_shape)
    shapes = {}
    outs = []
    if hasattr(module, "normalize"):
        x = module.normalize(x)
        shapes["normalize"] = (x.shape[2], x.shape[3], x.shape[1])
    for bi, branch in enumerate(module.branches, 1):
        z = x
        prefix = f"b{bi}_" if len(module.branches) > 1 else ""  # the summary's names: conv1, b2_pool1...
        for block_name, block in branch.named_children():  # blocks (block1, ...) and the global pool
            if hasattr(block, "kind"):  # a family's stage is one row, named by its kind: residual2, mbconv3...
                z = block(z)
                shapes[prefix + block.kind + block_name.removeprefix("block")] = (z.shape[2], z.shape[3], z.shape[1])
                continue
            for kind, layer in (block.named_children() if len(block._modules) else [("", block)]):
                z = layer(z)
                name = f"{kind}{block_name.removeprefix('block')}" if kind else block_name
                shapes[prefix + name] = (z.shape[2], z.shape[3], z.shape[1])
        outs.append(z.flatten(1))
    z = torch.cat(outs, 1)
    for name, layer in module.head.named_children():
        z = layer(z)
        shapes[name] = (z.shape[1],)
    return shapes


@pytest.mark.parametrize("name", PRESETS.names())
def test_preset_summary_matches_torch(name):
    shape = PRESET_INPUTS[name]
    spec = get_preset(name)
    module = spec.build(shape, 7)
    summary = spec.summary(shape, 7)
    torch_shapes = _torch_shapes(module, shape)
    for row_name, row_shape, params in summary.rows:
        layer = row_name.split(" ")[0]
        if layer in ("flatten", "concatenate"):
            continue
        assert torch_shapes[layer] == row_shape, layer
    assert summary.total_params == sum(p.numel() for p in module.parameters())
    assert module(torch.zeros(3, *shape)).shape == (3, 7)


@pytest.mark.parametrize(
    "size, kernel, stride, padding",
    [(28, 5, 1, 0), (28, 5, 2, 2), (9, 3, 3, 1), (32, 4, 2, 1), (7, 7, 1, 0), (10, 3, 1, "same"), (11, 4, 1, "same"),
     (11, 3, 2, "same"), (12, 5, 1, "valid")],
)
@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
def test_conv_arithmetic_matches_torch(size, kernel, stride, padding):
    spec = BackboneSpec(branches=((ConvBlock(4, kernel, stride=stride, padding=padding, pool="none"),),))
    rows = spec.summary((3, size, size), 2).rows
    if padding == "same" and stride == 1:
        ref_pad, expected = "same", size
    else:
        ref_pad = {"same": kernel // 2, "valid": 0}.get(padding, padding)
        expected = (size + 2 * ref_pad - kernel) // stride + 1
    assert rows[0][1] == (expected, expected, 4)
    ref = nn.Conv2d(3, 4, kernel, stride=stride, padding=ref_pad)
    assert ref(torch.zeros(1, 3, size, size)).shape[-1] == expected
    assert rows[0][2] == sum(p.numel() for p in ref.parameters()) == (kernel * kernel * 3 + 1) * 4


@pytest.mark.parametrize("pool", ["max", "avg", "sum"])
def test_pool_kinds_match_torch(pool):
    spec = BackboneSpec(branches=((ConvBlock(2, 1, padding=0, pool=pool, pool_size=2),),))
    module = spec.build((1, 4, 6), 2)
    x = torch.randn(5, 1, 4, 6)
    conv_out = torch.relu(module.branches[0].block1.conv(x))
    got = module.branches[0].block1.pool(conv_out)
    ref = {
        "max": nn.functional.max_pool2d(conv_out, 2),
        "avg": nn.functional.avg_pool2d(conv_out, 2),
        "sum": nn.functional.avg_pool2d(conv_out, 2) * 4,
    }[pool]
    torch.testing.assert_close(got, ref)
    assert got.shape == (5, 2, 2, 3)


def test_full_width_kernel_spans_the_grid():
    spec = BackboneSpec(branches=((ConvBlock(5, (3, "full"), padding=0, pool="none"),),), global_pool="max")
    rows = {n.split(" ")[0]: s for n, s, _ in spec.summary((1, 20, 50), 2).rows}
    assert rows["conv1"] == (18, 1, 5)
    assert rows["global_pool"] == (1, 1, 5)


def test_square_sizes_leave_a_unit_axis_alone():
    # A 1 x L sequence with the default 3x3 kernels and 2x2 pools convolves and pools along L only.
    rows = {n.split(" ")[0]: s for n, s, _ in get_preset("simple").summary((2, 1, 40), 3).rows}
    assert rows["conv1"] == (1, 40, 32)
    assert rows["pool2"] == (1, 10, 64)


def test_explicit_pair_is_not_squeezed():
    spec = BackboneSpec(branches=((ConvBlock(4, (3, 3), padding=0, pool="none"),),))
    with pytest.raises(GridCNNError, match=re.escape("floor((1 + 2*0 - 3) / 1) + 1 = -1 high")):
        spec.summary((1, 1, 40), 2)


def test_too_small_grid_names_block_and_arithmetic():
    with pytest.raises(GridCNNError) as exc:
        get_preset("lenet5").summary((1, 5, 5), 10)
    assert str(exc.value) == (
        "Grid 2x2 is too small for the convolution of block 2 (kernel 5x5, stride 1, padding 0): its output would be "
        "floor((2 + 2*0 - 5) / 1) + 1 = -2 high. Use padding='same', a smaller kernel, or fewer pooling blocks."
    )


def test_pool_too_large_names_block():
    spec = BackboneSpec(branches=((ConvBlock(4, 3, pool="max", pool_size=4),),))
    with pytest.raises(GridCNNError, match=r"Grid 3x3 is too small for the 4x4 max pool of block 1"):
        spec.summary((1, 3, 3), 2)


def test_unknown_preset_suggests_the_nearest():
    with pytest.raises(GridCNNError, match=re.escape("Unknown preset 'lenet'. Did you mean 'lenet5'?")):
        get_preset("lenet")


def test_resolve_spec_lists_set_the_block_count():
    spec = resolve_spec("simple", filters=[8, 16, 32], pool=["none", "max", "avg"], kernel_size=(3, 5))
    (blocks,) = spec.branches
    assert [b.filters for b in blocks] == [8, 16, 32]
    assert [b.pool for b in blocks] == ["none", "max", "avg"]
    assert all(b.kernel_size == (3, 5) for b in blocks)  # a pair is one (h, w) size, not two blocks
    assert all(b.batch_norm for b in blocks)  # the preset's last block is repeated


def test_resolve_spec_rejects_lists_of_different_lengths():
    with pytest.raises(GridCNNError, match=r"lengths differ: \{'filters': 3, 'pool': 2\}"):
        resolve_spec(None, filters=[8, 16, 32], pool=["max", "max"])


def test_spec_round_trips_through_a_dict():
    spec = resolve_spec("kim", filters=10)
    assert BackboneSpec.from_dict(spec.to_dict()) == spec


@pytest.mark.parametrize("channels, stride, padding", [(1, 1, 0), (2, 2, 1)])
def test_full_width_convolution_matches_torch_conv2d(channels, stride, padding):
    from gridcnn.backbone import FullWidthConv2d

    torch.manual_seed(0)
    fast = FullWidthConv2d(channels, 6, (3, 12), stride=(stride, 1), padding=(padding, 0))
    plain = torch.nn.Conv2d(channels, 6, (3, 12), stride=(stride, 1), padding=(padding, 0))
    plain.load_state_dict(fast.state_dict())
    x = torch.randn(5, channels, 17, 12)
    out_fast, out_plain = fast(x), plain(x)
    torch.testing.assert_close(out_fast, out_plain, rtol=1e-5, atol=1e-5)
    out_fast.square().sum().backward()
    out_plain.square().sum().backward()
    torch.testing.assert_close(fast.weight.grad, plain.weight.grad, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(fast.bias.grad, plain.bias.grad, rtol=1e-4, atol=1e-4)


def test_only_kernels_spanning_the_width_take_the_1d_form():
    from gridcnn.backbone import FullWidthConv2d

    kim = get_preset("kim").build((1, 20, 16), 2)
    assert sum(isinstance(m, FullWidthConv2d) for m in kim.modules()) == 3
    simple = get_preset("simple").build((1, 16, 16), 2)
    assert not any(isinstance(m, FullWidthConv2d) for m in simple.modules())


@pytest.mark.parametrize("name", PRESETS.names())
def test_feature_maps_are_block_outputs(name):
    module = get_preset(name).build(PRESET_INPUTS[name], 3).eval()
    x = torch.randn(1, *PRESET_INPUTS[name])
    maps = module.feature_maps(x)
    blocks = [m for n, m in module.branches[0].named_children() if n.startswith("block")]  # a Block, or a stage
    assert [n for n, _ in maps] == [f"block{i}" for i in range(1, len(blocks) + 1)]
    z = module.normalize(x) if hasattr(module, "normalize") else x
    for (_, got), block in zip(maps, blocks):
        z = block(z)
        torch.testing.assert_close(got, z)


def test_text_grids_get_kims_network_by_default():
    # modality="text" (what a recipe's text adapter passes on) with no layer given: Kim's three full-width branches;
    # a layer given, or another modality, keeps the grid-sized image default.
    from gridcnn import GridCNNClassifier

    assert GridCNNClassifier(modality="text")._resolve_spec((1, 40, 16)) == get_preset("kim")
    assert GridCNNClassifier(modality="text", dropout=0.3)._resolve_spec((1, 40, 16)).dropout == 0.3
    assert len(GridCNNClassifier(modality="text", filters=[8, 16])._resolve_spec((1, 40, 16)).branches) == 1
    assert len(GridCNNClassifier()._resolve_spec((1, 40, 16)).branches) == 1
