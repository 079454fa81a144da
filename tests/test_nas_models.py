"""NAS genotypes, the DARTS evaluation network and the registry (automl protocol §1.2–1.5)."""
import pytest
import torch

from nascore import models
from nascore.models.genotypes import GENOTYPES, Genotype

# Protocol §1.4: parameter counts of an independent re-implementation (10 classes, no aux head).
PARAM_CHECKSUM_M = dict(amoebanet=3.145, darts_v1=3.169, darts=3.349, drnas=4.099, enas=3.860, nasnet=3.831,
                        pc_darts=3.635, pdarts=3.434, sgas=3.795, snas_mild=2.661, random=2.646,
                        diy_deep=3.349, diy_noskip=3.889, diy_deep_noskip=3.889)
# Protocol §1.5: depth / skips / edges fed by the cell inputs, of the normal cell.
CELL_STATS = dict(darts="2/2/7of8", darts_v1="2/3/7of8", pc_darts="1/1/8of8", snas_mild="1/4/8of8",
                  pdarts="3/2/6of8", sgas="2/1/6of8", drnas="3/1/5of8", enas="1/2/10of10", nasnet="1/2/10of10",
                  amoebanet="3/2/8of10", random="3/2/5of8", diy_deep="4/2/2of8", diy_noskip="2/0/7of8",
                  diy_deep_noskip="4/0/2of8")


def test_registry_lists_all_models():
    nas_like = [n for n in models.names("nas") + models.names("mitigation") if not models.is_size_variant(n)]
    assert sorted(nas_like) == sorted(PARAM_CHECKSUM_M)
    n_var = {f: sum(models.family(v) == f for v in models.SIZE_VARIANTS) for f in ("nas", "manual")}
    assert n_var == {"nas": 2, "manual": 4}
    assert len(models.names("manual")) == 7 + n_var["manual"]   # the seven CNNs and their size-matched variants
    assert len(models.names("sdn")) == 3
    assert len(models.names()) == 24 + len(models.SIZE_VARIANTS)
    assert models.names()[-len(models.SIZE_VARIANTS):] == list(models.SIZE_VARIANTS)


def test_size_variants_build_their_base_architecture_at_their_own_width():
    from nascore.profiles import get_profile
    P = get_profile("quick")

    def n_params(m):
        return sum(p.numel() for p in models.build(m, **P.scale_for(m)).parameters())

    size = {m: n_params(m) for m in P.models}
    for name, base in models.SIZE_VARIANTS.items():
        assert models.family(name) == models.family(base) and models.base_architecture(name) == base
        assert models.is_size_variant(name) and not models.is_size_variant(base)
    for name in P.size_matched_models:
        base = models.base_architecture(name)
        knob = "width" if models.family(name) == "manual" else "C"
        a = models.build(name, **P.scale_for(name))
        b = models.build(base, **{**P.scale_for(base), knob: P.scale_for(name)[knob]})
        assert type(a) is type(b) and [p.shape for p in a.parameters()] == [p.shape for p in b.parameters()]
        if knob == "C":
            assert models.genotype(name) == models.genotype(base)
            assert models.cell_stats(name) == models.cell_stats(base)
        # inside the other family's parameter range: the variants give the size adjustment common support
        other = [n for m, n in size.items() if (models.family(m) == "manual") != (models.family(name) == "manual")
                 and models.family(m) != "mitigation"]
        assert min(other) <= size[name] <= max(other), name
    with pytest.raises(ValueError, match="size_matched_models lists 'resnet18'"):
        P.override(size_matched_models=("resnet18",))
    with pytest.raises(ValueError, match="needs its own width"):
        P.override(size_matched_models=("resnet18_narrow",), model_scale={})
    with pytest.raises(ValueError, match="needs its own C"):
        P.override(size_matched_models=("darts_wide",), model_scale={})
    assert len(models.STUDY_NAS) == 10 and "darts_v1" not in models.STUDY_NAS


@pytest.mark.parametrize("name", sorted(PARAM_CHECKSUM_M))
def test_full_size_parameter_count_matches_protocol(name):
    n = sum(p.numel() for p in models.build(name).parameters()) / 1e6
    assert abs(n - PARAM_CHECKSUM_M[name]) / PARAM_CHECKSUM_M[name] < 0.01, n


@pytest.mark.parametrize("name", sorted(CELL_STATS))
def test_cell_statistics_derived_from_genotype(name):
    assert str(models.cell_stats(name)) == CELL_STATS[name]


def test_cell_stats_follow_the_genotype_not_a_table():
    chain = (("sep_conv_3x3", 0), ("skip_connect", 1), ("sep_conv_3x3", 2), ("sep_conv_3x3", 2))
    flat = (("skip_connect", 0), ("skip_connect", 1), ("max_pool_3x3", 0), ("skip_connect", 1))
    g = Genotype(normal=chain, normal_concat=(3,), reduce=flat, reduce_concat=(2, 3))
    s = models.cell_stats(g)
    assert (s.depth, s.skips, s.input_edges, s.edges) == (2, 1, 2, 4)
    r = models.cell_stats(g, cell="reduce")
    assert (r.depth, r.skips, r.input_edges, r.edges) == (1, 3, 4, 4)


def test_one_cell_stats_for_normal_and_reduce_cells():
    from nascore.models import genotypes

    assert models.cell_stats("darts") == genotypes.cell_stats("darts")      # one implementation, re-exported
    assert models.cell_stats("darts_wide") == genotypes.cell_stats("darts")  # a variant has its base cell
    assert not hasattr(genotypes, "normal_cell_stats")
    # DARTS-V2 reduce cell: mp(0)+mp(1); id(2)+mp(1); mp(0)+id(2); id(2)+mp(1)
    assert str(models.cell_stats("darts", cell="reduce")) == "2/3/5of8"
    assert str(models.cell_stats("darts", cell="normal")) == CELL_STATS["darts"]
    with pytest.raises(ValueError, match="normal, reduce"):
        models.cell_stats("darts", cell="reduction")
    with pytest.raises(ValueError, match="resnet18.*valid: .*darts"):
        models.cell_stats("resnet18")


def test_plot_cell_titles_each_cell_with_its_own_statistics():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from nascore.findings.model_zoo import plot_cell

    fig, (a, b) = plt.subplots(1, 2)
    try:
        plot_cell("darts", ax=a)
        plot_cell("darts", ax=b, reduce=True)
        assert "depth 2, skips 2" in a.get_title()            # normal: 2/2/7of8
        assert "depth 2, skips 3" in b.get_title()            # reduce: 2/3/5of8
    finally:
        plt.close(fig)


def test_flops_per_image_restores_every_module_mode():
    from nascore.models.cost import flops_per_image

    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Dropout(0.5),
                              torch.nn.Flatten(), torch.nn.Linear(4 * 30 * 30, 10))
    net.train()
    net[2].eval()                                  # a submodule deliberately in another mode
    seen = []
    net[1].register_forward_pre_hook(lambda m, i: seen.append(m.training))
    flops = flops_per_image(net)
    assert flops == 2 * (4 * 30 * 30 * 3 * 9 + 4 * 30 * 30 * 10)   # conv + linear multiply-adds
    assert seen == [False]                         # counted in eval mode
    assert net.training and net[1].training and not net[2].training


@pytest.mark.parametrize("name,feat", [("darts", 576), ("nasnet", 720), ("enas", 720), ("amoebanet", 432)])
def test_classifier_width(name, feat):
    assert models.build(name).head[-1].in_features == feat


def test_default_network_shape():
    net = models.build("darts")
    assert len(net.blocks) == 20
    assert [i for i, c in enumerate(net.blocks) if c.reduction] == [6, 13]
    assert net.stem[0].out_channels == 108


def test_dropout_after_every_non_identity_op():
    net = models.build("darts", C=4, layers=3)
    for cell in net.blocks:
        for op in cell.ops:
            if isinstance(op, torch.nn.Identity):
                continue
            assert isinstance(op[-1], torch.nn.Dropout) and op[-1].p == 0.2


def test_small_scale_forward_logits_and_taps():
    net = models.build("enas", C=4, layers=5).eval()
    x = torch.rand(3, 3, 32, 32)
    logits = net(x)
    assert logits.shape == (3, 10)
    logits2, taps = net.forward_with_taps(x)
    assert torch.allclose(logits, logits2) and len(taps) == 5
    assert taps[-1].shape[-1] == 8  # two reductions: 32 -> 16 -> 8


def test_aux_head_optional_and_forward_returns_logits_only():
    net = models.build("darts", C=4, layers=6, auxiliary=True).train()
    out = net(torch.rand(2, 3, 32, 32))
    assert isinstance(out, torch.Tensor) and out.shape == (2, 10)
    assert net.aux_logits is not None and net.aux_logits.shape == (2, 10)


def test_normalisation_inside_model():
    net = models.build("darts", C=4, layers=3)
    assert torch.allclose(net.normalize.mean.flatten(), torch.tensor([0.4914, 0.4822, 0.4465]))


def test_unknown_names_and_knobs_are_rejected():
    with pytest.raises(ValueError, match="valid: .*darts"):
        models.build("dartz")
    with pytest.raises(ValueError, match="valid: C, layers"):
        models.build("darts", width=0.5)
    with pytest.raises(ValueError, match="valid: nas, manual, mitigation"):
        models.names("auto")
    with pytest.raises(KeyError, match="valid"):
        from nascore.models.genotypes import genotype
        genotype("dartz")
    with pytest.raises(ValueError, match="reduction"):
        models.build("darts", C=4, layers=3, reductions=(5,))


def test_mitigations_keep_the_darts_reduction_cell():
    for name in models.names("mitigation"):
        assert GENOTYPES[name].reduce == GENOTYPES["darts"].reduce
    assert models.cell_stats("diy_noskip").skips == 0
