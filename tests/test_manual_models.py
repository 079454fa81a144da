"""Tests of the seven hand-designed CIFAR models (``nascore.models.manual``).

Protocol: Pang et al., "On the Security Risks of AutoML" (USENIX Security 2022), artifact
ain-soph/autovul, ``*_comp`` models: 3x3 stride-1 stem, no stem max-pool.
"""
from __future__ import annotations

import functools

import pytest
import torch
from torch import nn

from nascore._torchvision_compat import import_torchvision
from nascore.models.base import CIFAR10_MEAN, CIFAR10_STD, BlockNet, Normalize
from nascore.models.manual import (
    MANUAL_BUILDERS,
    StdConv2d,
    gn_groups,
    scale_channels,
)

tv = import_torchvision()
NAMES = ["resnet18", "resnext50_32x4d", "wide_resnet50_2", "densenet121", "dla34", "vgg13_bn",
         "bit_r50x1"]

# Full-width parameter counts for 10 classes. Where each number comes from:
#   torchvision counts (1000 classes) are those of the torchvision model docs; the CIFAR `_comp`
#   changes are subtracted/added explicitly. conv7 = 3*64*7*7 = 9,408; conv3 = 3*64*3*3 = 1,728.
EXPECTED_PARAMS = {
    # torchvision resnet18 11,689,512 - conv7 + conv3 - fc(512*1000+1000) + fc(512*10+10)
    # (= the well-known kuangliu/pytorch-cifar ResNet18 count, 11,173,962)
    "resnet18": 11_689_512 - 9_408 + 1_728 - 513_000 + 5_130,
    # torchvision resnext50_32x4d 25,028,904 - layer4 (14,544,896) - conv7 + conv3
    # - fc(2048*1000+1000) + Linear(1024, 10, bias=False)
    "resnext50_32x4d": 25_028_904 - 14_544_896 - 9_408 + 1_728 - 2_049_000 + 10_240,
    # torchvision wide_resnet50_2 68,883,240 - conv7 + conv3 - fc(2048*1000+1000) + fc(2048*10+10)
    # (~66.8 M)
    "wide_resnet50_2": 68_883_240 - 9_408 + 1_728 - 2_049_000 + 20_490,
    # torchvision densenet121 7,978,856 - conv0 7x7 - norm0 (128) + 3x3 conv0
    # - classifier(1024*1000+1000) + Linear(1024, 10)  (~6.96 M, the usual CIFAR DenseNet-121)
    "densenet121": 7_978_856 - 9_408 - 128 + 1_728 - 1_025_000 + 10_250,
    # timm dla34 15,742,104 (official DLA-34 minus the unused projections) - 7x7 base conv
    # (3*16*49 = 2,352) + 3x3 (432) - 1x1-conv fc (512*1000+1000) + Linear(512, 10)
    "dla34": 15_742_104 - 2_352 + 432 - 513_000 + 5_130,
    # torchvision vgg13_bn 133,053,736 - its classifier (25088*4096+4096 + 4096*4096+4096
    # + 4096*1000+1000 = 123,642,856) = features 9,410,880; + MLP 512-512-10
    # (2*(512*512+512) + 512*10+10 = 530,442)
    "vgg13_bn": 133_053_736 - 123_642_856 + 530_442,
    # timm resnetv2_50x1_bit (BiT-M-R50x1, 1000 classes) 25,549,352 - 7x7 root + 3x3 root
    # - head(2048*1000+1000) + Linear(2048, 10); also checked analytically below
    "bit_r50x1": 25_549_352 - 9_408 + 1_728 - 2_049_000 + 20_490,
}
PINNED = {"resnet18": 11_173_962, "resnext50_32x4d": 8_437_568, "wide_resnet50_2": 66_847_050,
          "densenet121": 6_956_298, "dla34": 15_232_314, "vgg13_bn": 9_941_322,
          "bit_r50x1": 23_513_162}


def _rep(shape, n):
    return [shape] * n


# Block output shapes (C, H, W) of the full-width models on a 32x32 input.
EXPECTED_TAPS = {
    "resnet18": _rep((64, 32, 32), 2) + _rep((128, 16, 16), 2) + _rep((256, 8, 8), 2)
    + _rep((512, 4, 4), 2),
    "resnext50_32x4d": _rep((256, 32, 32), 3) + _rep((512, 16, 16), 4) + _rep((1024, 8, 8), 6),
    "wide_resnet50_2": _rep((256, 32, 32), 3) + _rep((512, 16, 16), 4) + _rep((1024, 8, 8), 6)
    + _rep((2048, 4, 4), 3),
    "densenet121": [(256, 32, 32), (128, 16, 16), (512, 16, 16), (256, 8, 8), (1024, 8, 8),
                    (512, 4, 4), (1024, 4, 4)],
    "dla34": [(16, 32, 32), (32, 32, 32), (64, 32, 32), (128, 16, 16), (256, 8, 8), (512, 4, 4)],
    "vgg13_bn": [(64, 32, 32), (64, 16, 16), (128, 16, 16), (128, 8, 8), (256, 8, 8), (256, 4, 4),
                 (512, 4, 4), (512, 2, 2), (512, 2, 2), (512, 1, 1)],
    "bit_r50x1": _rep((256, 32, 32), 3) + _rep((512, 16, 16), 4) + _rep((1024, 8, 8), 6)
    + _rep((2048, 4, 4), 3),
}


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@functools.lru_cache(maxsize=None)
def full(name: str) -> BlockNet:
    torch.manual_seed(0)
    return MANUAL_BUILDERS[name](num_classes=10, width=1.0).eval()


@functools.lru_cache(maxsize=None)
def small(name: str, width: float = 0.25, num_classes: int = 10) -> BlockNet:
    torch.manual_seed(0)
    return MANUAL_BUILDERS[name](num_classes=num_classes, width=width).eval()


def images(n: int = 2, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, 32, 32, generator=g)


def test_registry_has_the_seven_models():
    assert sorted(MANUAL_BUILDERS) == sorted(NAMES)


def test_expected_counts_are_consistent():
    assert EXPECTED_PARAMS == PINNED


# ----------------------------------------------------------------------------- full width


@pytest.mark.parametrize("name", NAMES)
def test_full_width_param_count(name):
    assert n_params(full(name)) == EXPECTED_PARAMS[name]


@pytest.mark.parametrize("name", NAMES)
def test_full_width_logits_and_block_shapes(name):
    model = full(name)
    assert isinstance(model, BlockNet)
    n = 1 if name == "wide_resnet50_2" else 2  # wide_resnet50_2 is ~3.7 GFLOP/img: keep it small
    with torch.no_grad():
        logits, taps = model.forward_with_taps(images(n))
    assert logits.shape == (n, 10)
    assert torch.isfinite(logits).all()
    assert len(taps) == len(model.blocks) == len(EXPECTED_TAPS[name])
    assert [tuple(t.shape[1:]) for t in taps] == EXPECTED_TAPS[name]


def _param_shapes(modules) -> list[tuple[str, tuple[int, ...]]]:
    out = []
    for i, m in enumerate(modules):
        out += [(f"{i}.{k}", tuple(p.shape)) for k, p in m.named_parameters()]
    return out


@pytest.mark.parametrize("name, tv_name, stages", [
    ("resnet18", "resnet18", 4),
    ("resnext50_32x4d", "resnext50_32x4d", 3),
    ("wide_resnet50_2", "wide_resnet50_2", 4),
])
def test_resnets_are_torchvision_stages(name, tv_name, stages):
    ref = getattr(tv.models, tv_name)()
    ref_blocks = [b for layer in [ref.layer1, ref.layer2, ref.layer3, ref.layer4][:stages]
                  for b in layer]
    model = full(name)
    assert [type(b) for b in model.blocks] == [type(b) for b in ref_blocks]
    assert _param_shapes(model.blocks) == _param_shapes(ref_blocks)
    conv1 = model.stem.conv1
    assert (conv1.kernel_size, conv1.stride, conv1.padding, conv1.bias) == ((3, 3), (1, 1), (1, 1), None)
    assert conv1.out_channels == 64


def test_densenet_is_torchvision_densenet121_with_3x3_stem():
    ref = tv.models.densenet121().features
    names = ["denseblock1", "transition1", "denseblock2", "transition2", "denseblock3",
             "transition3", "denseblock4"]
    model = full("densenet121")
    assert _param_shapes(model.blocks) == _param_shapes([getattr(ref, n) for n in names])
    stem = model.stem
    assert isinstance(stem, nn.Conv2d)  # a single conv: no BN/ReLU/pool after the new stem
    assert (stem.in_channels, stem.out_channels, stem.kernel_size, stem.stride, stem.bias) == (
        3, 64, (3, 3), (1, 1), None)
    assert isinstance(model.head[0], nn.BatchNorm2d) and model.head[0].num_features == 1024  # norm5
    assert isinstance(model.head[1], nn.ReLU)
    assert model.head[-1].in_features == 1024 and model.head[-1].bias is not None


def test_vgg13_bn_structure():
    model = full("vgg13_bn")
    convs = [[m for m in b if isinstance(m, nn.Conv2d)] for b in model.blocks]
    assert all(len(c) == 1 for c in convs)  # one conv-BN-ReLU(+pool) unit per block
    assert [c[0].out_channels for c in convs] == [64, 64, 128, 128, 256, 256, 512, 512, 512, 512]
    assert all(c[0].kernel_size == (3, 3) and c[0].stride == (1, 1) for c in convs)
    pooled = [any(isinstance(m, nn.MaxPool2d) for m in b) for b in model.blocks]
    assert pooled == [False, True] * 5
    assert all(isinstance(b[1], nn.BatchNorm2d) and isinstance(b[2], nn.ReLU) for b in model.blocks)
    linears = [m for m in model.head if isinstance(m, nn.Linear)]
    assert [(fc.in_features, fc.out_features) for fc in linears] == [(512, 512), (512, 512), (512, 10)]
    drops = [m.p for m in model.head if isinstance(m, nn.Dropout)]
    assert drops == [0.5, 0.5]
    # the conv layers are exactly torchvision's vgg13_bn features (cfg "B")
    ref = tv.models.vgg.make_layers(tv.models.vgg.cfgs["B"], batch_norm=True)
    assert _param_shapes(model.blocks) != [] and [s for _, s in _param_shapes(model.blocks)] == [
        tuple(p.shape) for p in ref.parameters()]


def test_dla34_levels():
    model = full("dla34")
    assert len(model.blocks) == 6
    stem_conv = model.stem[0]
    assert (stem_conv.kernel_size, stem_conv.stride, stem_conv.out_channels) == ((3, 3), (1, 1), 16)
    level1_conv = model.blocks[1][0]
    assert level1_conv.stride == (1, 1) and level1_conv.out_channels == 32  # CIFAR: stride 2 -> 1
    assert model.head[-1].in_features == 512


# ----------------------------------------------------------------------------- CIFAR stem etc.


@pytest.mark.parametrize("name", NAMES)
def test_normalisation_is_inside_and_input_is_01(name):
    model = small(name)
    assert isinstance(model.normalize, Normalize)
    torch.testing.assert_close(model.normalize.mean.flatten(), torch.tensor(CIFAR10_MEAN))
    torch.testing.assert_close(model.normalize.std.flatten(), torch.tensor(CIFAR10_STD))
    # the stem reads (x - mean) / std of the [0,1] input: normalisation is the first operation
    x = images()
    seen = []
    handle = model.stem.register_forward_pre_hook(lambda mod, args: seen.append(args[0]))
    try:
        with torch.no_grad():
            model(x)
    finally:
        handle.remove()
    assert len(seen) == 1
    mean = torch.tensor(CIFAR10_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CIFAR10_STD).view(1, 3, 1, 1)
    torch.testing.assert_close(seen[0], (x - mean) / std)
    assert seen[0].min() < -1.0 and seen[0].max() > 1.5  # i.e. not the raw [0,1] pixels


@pytest.mark.parametrize("name", NAMES)
def test_stem_is_3x3_stride1_without_maxpool(name):
    model = small(name)
    assert not any(isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)) for m in model.stem.modules())
    first_conv = next(m for m in [*model.stem.modules(), *model.blocks.modules()]
                      if isinstance(m, nn.Conv2d))
    assert first_conv.in_channels == 3
    assert first_conv.kernel_size == (3, 3) and first_conv.stride == (1, 1)
    # (the first block's output being 32x32 is checked in the taps tests)


# ----------------------------------------------------------------------------- width knob


@pytest.mark.parametrize("name", NAMES)
def test_quarter_width_is_small_and_taps_match_forward(name):
    model = small(name, 0.25)
    assert n_params(model) < EXPECTED_PARAMS[name] / 8  # ~1/16 for the convs
    x = images()
    with torch.no_grad():
        logits = model(x)
        logits2, taps = model.forward_with_taps(x)
    assert logits.shape == (2, 10)
    torch.testing.assert_close(logits, logits2)
    assert len(taps) == len(model.blocks) == len(EXPECTED_TAPS[name])
    # spatial sizes do not depend on the width
    assert [tuple(t.shape[-2:]) for t in taps] == [s[1:] for s in EXPECTED_TAPS[name]]
    assert all(t.shape[0] == 2 for t in taps)


@pytest.mark.parametrize("name", NAMES)
def test_odd_width_and_num_classes(name):
    model = small(name, 0.3, num_classes=7)
    with torch.no_grad():
        assert model(images()).shape == (2, 7)


def test_scale_channels():
    assert scale_channels(64, 1.0) == 64
    assert scale_channels(64, 0.25) == 16
    assert scale_channels(16, 0.01) == 1
    with pytest.raises(ValueError):
        scale_channels(64, 0)


@pytest.mark.parametrize("name", NAMES)
def test_gradients_flow_to_input_and_every_parameter(name):
    model = small(name)  # eval mode (cached; grads are cleared again below)
    x = images().requires_grad_(True)
    try:
        loss = nn.functional.cross_entropy(model(x), torch.tensor([1, 3]))
        loss.backward()
        assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
        missing = [k for k, p in model.named_parameters() if p.grad is None]
        assert not missing, f"parameters not in the graph: {missing[:5]}"
    finally:
        model.zero_grad(set_to_none=True)


def test_train_mode_step_changes_the_output():
    torch.manual_seed(0)
    model = MANUAL_BUILDERS["vgg13_bn"](num_classes=10, width=0.25).train()  # dropout + BN stats
    x, y = images(4), torch.tensor([0, 1, 2, 3])
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    model.eval()
    with torch.no_grad():
        before = model(x)
    model.train()
    nn.functional.cross_entropy(model(x), y).backward()
    opt.step()
    model.eval()
    with torch.no_grad():
        after = model(x)
    assert not torch.allclose(before, after)


# ----------------------------------------------------------------------------- ResNeXt


def test_resnext_has_three_stages_and_bias_free_fc():
    model = full("resnext50_32x4d")
    fc = model.head[-1]
    assert isinstance(fc, nn.Linear) and fc.bias is None
    assert (fc.in_features, fc.out_features) == (1024, 10)
    assert len(model.blocks) == 3 + 4 + 6
    assert max(m.out_channels for m in model.modules() if isinstance(m, nn.Conv2d)) == 1024
    assert all(b.conv2.groups == 32 for b in model.blocks)
    assert [b.conv2.out_channels for b in model.blocks[::4][:3]] == [128, 256, 512]  # 32x4d
    small_model = small("resnext50_32x4d", 0.25)
    assert small_model.head[-1].bias is None
    assert all(b.conv2.groups == 32 and b.conv2.out_channels % 32 == 0 for b in small_model.blocks)


# ----------------------------------------------------------------------------- BiT


def _bit_analytic_params(num_classes: int = 10) -> int:
    """BiT-R50x1 (3x3 root) parameters from the architecture description."""
    total = 3 * 64 * 9  # root StdConv 3x3, no bias
    cin = 64
    for units, mid in ((3, 64), (4, 128), (6, 256), (3, 512)):
        cout = 4 * mid
        for i in range(units):
            total += 2 * cin + 2 * mid + 2 * mid  # gn1, gn2, gn3 affine
            total += cin * mid + 9 * mid * mid + mid * cout  # conv1, conv2, conv3 (no bias)
            if i == 0:
                total += cin * cout  # projection shortcut
            cin = cout
    return total + 2 * 2048 + 2048 * num_classes + num_classes  # head GN + Linear


def test_bit_param_count_matches_the_analytic_count():
    assert n_params(full("bit_r50x1")) == _bit_analytic_params()


def test_bit_uses_groupnorm_and_weight_standardisation():
    model = full("bit_r50x1")
    mods = list(model.modules())
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in mods)
    gns = [m for m in mods if isinstance(m, nn.GroupNorm)]
    assert len(gns) == 16 * 3 + 1 and all(g.num_groups == 32 for g in gns)
    convs = [m for m in mods if isinstance(m, nn.Conv2d)]
    assert len(convs) == 1 + 16 * 3 + 4 and all(isinstance(c, StdConv2d) for c in convs)
    stem = model.stem
    assert isinstance(stem, StdConv2d) and stem.kernel_size == (3, 3) and stem.stride == (1, 1)
    head = model.head
    assert isinstance(head[0], nn.GroupNorm) and isinstance(head[1], nn.ReLU)
    assert head[-1].in_features == 2048

    conv = model.blocks[5].conv2
    with torch.no_grad():
        conv.weight.mul_(3.0).add_(0.7)  # raw weight far from standardised
        w = conv.standardized_weight()
        mean = w.mean(dim=(1, 2, 3))
        var = w.var(dim=(1, 2, 3), unbiased=False)
        assert mean.abs().max() < 1e-5
        assert (var - 1).abs().max() < 1e-4
        # the convolution uses the standardised weight: invariant to per-filter affine rescaling
        x = torch.randn(1, conv.in_channels, 8, 8)
        y = conv(x)
        offset = conv.weight.std() * torch.randn(conv.out_channels, 1, 1, 1)
        conv.weight.mul_(0.1).add_(offset)
        torch.testing.assert_close(conv(x), y, atol=1e-3, rtol=1e-3)
        assert not torch.allclose(nn.functional.conv2d(x, conv.weight, padding=1), y, atol=1e-1)


def test_gn_groups_divide_channels():
    assert gn_groups(64) == 32 and gn_groups(2048) == 32
    for c in range(1, 300):
        g = gn_groups(c)
        assert c % g == 0 and 1 <= g <= 32
        assert g == 1 or c // g >= 2
    model = small("bit_r50x1", 0.3, num_classes=7)
    assert all(m.num_channels % m.num_groups == 0
               for m in model.modules() if isinstance(m, nn.GroupNorm))


# ----------------------------------------------------------------------------- refactor guard
# Trained models are cached by configuration; a code refactor must not change what a fixed seed
# builds. These fingerprints were recorded from the code *before* nascore/models/manual.py was
# split into a package (commit 3f5517b, torch 2.13.0+cpu, CPU capability AVX512), for
# ``torch.manual_seed(0); build(name, width=1/16).eval()``:
#   tensors, structure: number of state_dict entries and a hash of their keys, shapes, dtypes
#     (exact: any change of module names or order fails);
#   proj: sum over entries k of <t_k, r_k> with fixed uniform(-0.5, 0.5) vectors r_k (any change
#     of the drawn values or of the order parameters are initialised in moves it by O(1), so a
#     1e-6 relative tolerance separates "same draws" from "different draws");
#   norm2: sum of squares of every entry;
#   logits, out_abs: eval-mode output on a fixed input (first image's logits, sum |logits| over 4);
#   exact: sha256 of the raw bytes, compared only on the CPU capability it was recorded on (the
#     vectorised normal_ of other capabilities may differ in the last bit).
FINGERPRINTS_W16 = {
    "resnet18": dict(tensors=122, structure="785686d488a59000", exact="acf2c08db886a952",
                proj=3.867842901408735, norm2=1079.8529965839236,
                logits=[0.00301, -0.250769, -2.034457, -0.00879, 0.411549, -0.857243, -0.112934, -0.439573, -1.399603, -0.150321],
                out_abs=22.732211235910654),
    "resnext50_32x4d": dict(tensors=259, structure="48f329c3df3d4f34", exact="0061a41e5e8cfc06",
                proj=-2.871917955253106, norm2=6406.911784468418,
                logits=[-0.013492, -0.039883, -0.002668, -0.078999, 0.009768, -0.057065, 0.12106, -0.046623, -0.027942, 0.063445],
                out_abs=1.815241237753071),
    "wide_resnet50_2": dict(tensors=320, structure="e571eda3908fc739", exact="7831624b52853100",
                proj=16.828402005064778, norm2=8009.982392207772,
                logits=[-3.956494, 1.039961, -0.734543, 2.578714, -1.051226, 0.588766, -3.633413, 2.38327, 0.691813, 1.56858],
                out_abs=67.60660070180893),
    "densenet121": dict(tensors=722, structure="108fc23ca832f8a9", exact="61578bd8abb51c5f",
                proj=18.451039538109814, norm2=6481.794211270233,
                logits=[-0.033224, 0.015903, 0.010346, 0.05954, -0.023611, 0.055358, 0.037573, 0.050151, 0.028469, 0.037469],
                out_abs=1.3471139017492533),
    "dla34": dict(tensors=224, structure="0b7e4bb22bdd3188", exact="74f10b7b99c3331b",
                proj=0.9742769217096876, norm2=1131.820830686701,
                logits=[0.011688, 0.126539, -0.095934, 0.094077, 0.153622, -0.07088, -0.121148, 0.033047, 0.062403, -0.162165],
                out_abs=3.726011499762535),
    "vgg13_bn": dict(tensors=76, structure="e29e9fb4697f807e", exact="a37382910ff95e8c",
                proj=-10.632926956005159, norm2=703.3032258904034,
                logits=[-0.017255, 0.079744, 0.003674, 0.062897, -0.004389, 0.182772, -0.040181, -0.055482, -0.205265, 0.064892],
                out_abs=2.8754287008196115),
    "bit_r50x1": dict(tensors=153, structure="f6d0c9bfd60470fc", exact="b81e75e9a6b1e471",
                proj=-2.1353371271003856, norm2=1974.8283944670115,
                logits=[-0.214439, 0.157955, 0.098313, -0.210804, -0.142684, 0.06028, 0.374729, -0.272887, 0.257471, -0.045112],
                out_abs=7.8087752014398575),
}


def _fingerprint(name: str) -> dict:
    import hashlib

    from nascore import models

    torch.manual_seed(0)
    model = models.build(name, width=1 / 16).eval()
    struct, exact = hashlib.sha256(), hashlib.sha256()
    proj = norm2 = 0.0
    for k, (key, t) in enumerate(model.state_dict().items()):
        struct.update(f"{key}:{tuple(t.shape)}:{t.dtype};".encode())
        exact.update(t.detach().contiguous().numpy().tobytes())
        t64 = t.detach().double()
        r = torch.rand(t.shape, generator=torch.Generator().manual_seed(k), dtype=torch.float64) - 0.5
        proj += float((t64 * r).sum())
        norm2 += float((t64 ** 2).sum())
    x = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        out = model(x).double()
    return dict(tensors=len(model.state_dict()), structure=struct.hexdigest()[:16],
                exact=exact.hexdigest()[:16], proj=proj, norm2=norm2,
                logits=[float(v) for v in out[0]], out_abs=float(out.abs().sum()))


@pytest.mark.parametrize("name", NAMES)
def test_fixed_seed_build_is_unchanged_by_refactoring(name):
    ref, got = FINGERPRINTS_W16[name], _fingerprint(name)
    assert (got["tensors"], got["structure"]) == (ref["tensors"], ref["structure"])
    assert got["proj"] == pytest.approx(ref["proj"], rel=1e-6, abs=1e-6)
    assert got["norm2"] == pytest.approx(ref["norm2"], rel=1e-6)
    assert got["logits"] == pytest.approx(ref["logits"], rel=1e-3, abs=2e-6)
    assert got["out_abs"] == pytest.approx(ref["out_abs"], rel=1e-4)
    if torch.backends.cpu.get_cpu_capability() == "AVX512":
        assert got["exact"] == ref["exact"]


@pytest.mark.parametrize("name", NAMES)
def test_code_fingerprint_covers_the_builder_module(name):
    """The model cache keys on the modules defining the model's classes (nascore.fingerprint);
    the module holding a model's builder must be one of them, or a changed builder would load
    stale weights. (Each builder module defines the ManualNet subclass it returns.)"""
    from nascore.fingerprint import model_modules

    mods = model_modules(small(name))
    assert MANUAL_BUILDERS[name].__module__ in mods
    assert "nascore.models.manual.common" in mods and "nascore.models.base" in mods
