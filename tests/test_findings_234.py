"""Chapters 2–4 findings modules: image sets, per-image summaries, NES budgets, the largest Hessian
eigenvalue, paired mitigation comparisons, the "more manual-like" direction check, and the page
helpers (tables, verdict badges, labels, no empty panels). Synthetic inputs only; every test checks
an invariant or an analytic case that a wrong implementation breaks."""
from __future__ import annotations

import math

import matplotlib
import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

matplotlib.use("Agg")

from nascore.findings import common, evasion, mitigations, smoothness  # noqa: E402
from nascore.profiles import get_profile  # noqa: E402


# ----------------------------------------------------------------------------- chapter 2
def test_nes_budgets_start_at_one_step_and_match_the_attack_query_count(one_thread):
    P = get_profile("smoke").override(nes_samples=3, nes_max_queries=40)
    S = P.evasion.nes_samples
    budgets = evasion.nes_budgets(P)
    assert budgets[0] == 2 + (2 * S + 1)              # target query + 2 checks + 2S estimates
    assert all(b2 - b1 == 2 * S + 1 for b1, b2 in zip(budgets, budgets[1:]))
    assert budgets[-1] <= P.evasion.nes_max_queries < budgets[-1] + 2 * S + 1
    # the attack's own accounting: an image that never succeeds spends exactly the last budget
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 10)).eval()
    x, y = torch.rand(5, 3, 4, 4), torch.zeros(5, dtype=torch.long)
    attack = evasion.nes_attack(P)
    attack.success_fn = lambda out, y, t: torch.zeros(out.shape[0], dtype=torch.bool, device=out.device)
    res = attack(model, x, y)
    assert res.queries.tolist() == [budgets[-1]] * 5
    assert len(budgets) == attack.steps


def test_nes_budget_that_affords_no_step_is_refused_before_compute():
    P = get_profile("smoke").override(nes_samples=5, nes_max_queries=12)
    with pytest.raises(ValueError, match="affords no NES step.*13"):
        evasion.nes_budgets(P)


def _fake_sets(monkeypatch, masks, total):
    """Models whose correctness per image is given; images carry their index in pixel [0,0,0]."""
    seen = []
    x = torch.arange(total, dtype=torch.uint8).view(total, 1, 1, 1).expand(total, 3, 2, 2)
    y = torch.zeros(total, dtype=torch.long)
    monkeypatch.setattr(evasion, "evaluation_subset", lambda entry, data: (x, y))

    def fake(model, xs, ys):
        idx = xs[:, 0, 0, 0].long()
        seen.extend(idx.tolist())
        return torch.tensor(model, dtype=torch.bool)[idx]

    monkeypatch.setattr(evasion, "correct_mask", fake)
    return {k: type("E", (), {"model": v})() for k, v in masks.items()}, seen


def test_image_sets_protocol_and_pairs(monkeypatch):
    masks = {("darts", 0): [1, 0, 1, 1, 0, 1, 1], ("diy_deep", 0): [0, 1, 1, 0, 0, 1, 1],
             ("resnet18", 0): [1, 1, 1, 1, 1, 1, 1]}
    entries, _ = _fake_sets(monkeypatch, masks, 7)
    protocol, pairs = evasion.image_sets(entries, None, 3, "darts", ("diy_deep",))
    assert protocol[("darts", 0)].tolist() == [0, 2, 3]
    assert protocol[("diy_deep", 0)].tolist() == [1, 2, 5]
    assert list(pairs) == [("diy_deep", 0)] and pairs[("diy_deep", 0)].tolist() == [2, 5, 6]
    table = evasion.paired_table(pairs, "darts")
    assert table.image.tolist() == [2, 5, 6] and set(table.subject) == {"diy_deep"}
    with pytest.raises(ValueError, match="n must be"):
        evasion.image_sets(entries, None, 0)


def test_image_sets_classify_a_growing_prefix_only_as_far_as_needed(monkeypatch):
    total = 40
    base = [1] * total
    late = [0] * 12 + [1] * (total - 12)   # the pair is jointly correct only from image 12 on
    entries, seen = _fake_sets(monkeypatch, {("darts", 0): base, ("diy_deep", 0): late}, total)
    protocol, pairs = evasion.image_sets(entries, None, 2, "darts", ("diy_deep",))
    assert pairs[("diy_deep", 0)].tolist() == [12, 13]      # found after doubling 8 -> 16
    assert protocol[("darts", 0)].tolist() == [0, 1]
    assert max(seen) == 15 and len(seen) == 2 * 16           # each model classified images 0..15 once
    entries, seen = _fake_sets(monkeypatch, {("darts", 0): [0] * total}, total)
    protocol, _ = evasion.image_sets(entries, None, 2)
    assert protocol[("darts", 0)].numel() == 0 and len(seen) == total  # exhausted, not looping


def _per_image(model, seed, any_step, last_step, iters, protocol=None, rule="artifact", images=None):
    n = len(any_step)
    return pd.DataFrame({"model": model, "seed": seed, "rule": rule,
                         "image": images if images is not None else np.arange(n),
                         "success_any_step": np.array(any_step, bool), "success_last_step": np.array(last_step, bool),
                         "iterations": iters, "target": 0,
                         "in_protocol_set": np.ones(n, bool) if protocol is None else np.array(protocol, bool)})


def test_pgd_summary_counts_protocol_images_and_fails_as_fourteen_iterations():
    df = pd.concat([_per_image("darts", 0, [1, 1, 0, 0, 1], [1, 0, 0, 0, 1], [2, 4, 7, 7, 0], [1, 1, 1, 1, 0]),
                    _per_image("darts", 0, [1, 1, 1, 0, 1], [1, 1, 0, 0, 1], [1, 1, 3, 7, 0], [1, 1, 1, 1, 0],
                               rule="argmax")])
    row = evasion.pgd_summary(df).iloc[0]
    assert row.pgd_asr == pytest.approx(50.0)                    # 2 of the 4 protocol images
    assert row.pgd_asr_last_step == pytest.approx(25.0)
    assert row.pgd_mean_iter == pytest.approx((2 + 4 + 14 + 14) / 4)
    assert row.pgd_asr_argmax == pytest.approx(75.0) and row.pgd_asr_argmax_last_step == pytest.approx(50.0)
    assert row.n_images == 4
    assert row.pgd_asr_last_step <= row.pgd_asr


def test_curve_summary_analytic_line_and_never_half():
    line = pd.DataFrame({"eps": [0, 0.25, 0.5, 0.75, 1.0], "robust_acc": [100, 75, 50, 25, 0]})
    s = evasion.curve_summary(line)
    assert s["auc"] == pytest.approx(50.0) and s["eps50"] == pytest.approx(0.5)
    flat = pd.DataFrame({"eps": [0, 1.0], "robust_acc": [100, 80]})
    assert math.isnan(evasion.curve_summary(flat)["eps50"])


def test_untargeted_sweep_reports_every_step_at_most_last_step(one_thread):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 10)).eval()
    x = torch.rand(32, 3, 4, 4)
    with torch.no_grad():
        y = model(x).argmax(1)
    entry = type("E", (), {"model": model})()
    rows = evasion.robust_curve(entry, x, y, "linf", (0.01, 0.05, 0.2), steps=4, seed=0)
    assert rows[0]["robust_acc"] == 100.0
    for r in rows:
        assert 0 <= r["robust_acc"] <= r["robust_acc_last_step"] <= 100
    accs = [r["robust_acc"] for r in rows]
    assert accs[-1] < 100  # a 0.2 L∞ budget breaks a random linear model


def test_step_gap_signs():
    pm = pd.DataFrame({"model": ["a", "b", "b"], "pgd_asr": [10.0, 20.0, 20.0], "pgd_asr_last_step": [8.0, 20.0, 20.0],
                       "pgd_asr_argmax": [30.0, 40.0, 40.0],
                       "pgd_asr_argmax_last_step": [25.0, 39.0, 39.0], "linf_auc": [40.0, 50.0, 50.0],
                       "linf_auc_last_step": [41.0, 53.0, 53.0]})  # model b: two seeds, one unit
    g = evasion.step_gap(pm)
    assert g["asr"] == {"mean": 1.0, "max": 2.0, "n": 2}
    assert g["asr_argmax"]["max"] == 5.0 and g["linf_auc"]["mean"] == 2.0


# ----------------------------------------------------------------------------- chapter 3
def test_eigen_columns_name_the_algebraic_and_the_magnitude_eigenvalue():
    """The estimator is tested in tests/test_analysis.py; here: which result field becomes which column."""
    from nascore.analysis import hvp_fn, power_iteration

    a = torch.tensor((-5.0, 1.0, 2.0), dtype=torch.float64)
    w = {"w": torch.zeros(3, dtype=torch.float64)}
    r = smoothness.eigen_columns(power_iteration(hvp_fn(lambda p: 0.5 * (a * p["w"] ** 2).sum(), w), w,
                                                 max_iter=500, tol=1e-10, which="algebraic"))
    assert list(r) == ["top_eig_abs", "eig_shifted", "top_eig", "eig_iterations", "eig_converged", "eig_rel_change"]
    assert r["top_eig"] == pytest.approx(2.0, rel=1e-6) and r["top_eig_abs"] == pytest.approx(-5.0, rel=1e-6)
    assert r["eig_shifted"] is True and r["eig_converged"] is True


def test_chain_table_merges_on_model_and_seed():
    t = pd.DataFrame({"model": ["a", "a", "b"], "seed": [0, 1, 0], "gv_init": [1.0, 2.0, 3.0]})
    speed = pd.DataFrame({"model": ["a", "a", "b"], "seed": [1, 0, 0], "early_auc": [20.0, 10.0, 30.0]})
    ev = pd.DataFrame({"model": ["b", "a", "a"], "seed": [0, 0, 1], "pgd_asr": [5.0, 6.0, 7.0]})
    out = smoothness.chain_table(t, speed, ev).set_index(["model", "seed"])
    assert out.loc[("a", 0), "early_auc"] == 10.0 and out.loc[("a", 1), "pgd_asr"] == 7.0


# ----------------------------------------------------------------------------- chapter 4
def _inputs(seeds=(0,), manual_asr=60.0, nas_asr=30.0, base_succ=None, subj_succ=None):
    rows = []
    for s in seeds:
        for m, fam_asr in (("resnet18", manual_asr), ("vgg13_bn", manual_asr + 2), ("densenet121", manual_asr - 2),
                           ("darts", nas_asr), ("pc_darts", nas_asr + 1), ("snas_mild", nas_asr - 1),
                           ("diy_deep", nas_asr - 20)):
            rows.append({"model": m, "seed": s, "pgd_asr": fam_asr + s, "pgd_asr_argmax": fam_asr + 5,
                         "clean_acc": 60.0, "depth": 2, "skips": 1, "pgd_asr_last_step": fam_asr, "linf_auc": 30.0})
    evasion_pm = pd.DataFrame(rows)
    smooth = evasion_pm[["model", "seed"]].assign(
        gv_init=evasion_pm.model.map(lambda m: 1000.0 if m in ("resnet18", "vgg13_bn", "densenet121") else 50.0),
        gv_trained=100.0, contour_sharpness=1.0, top_eig=10.0)
    n = 40
    base = np.array(base_succ if base_succ is not None else [1] * 30 + [0] * 10)
    subj = np.array(subj_succ if subj_succ is not None else [1] * 5 + [0] * 35)
    per_image = pd.concat([
        _per_image("darts", s, base, base, 1, images=np.arange(100, 100 + n)[::-1]) for s in seeds] + [
        _per_image("diy_deep", s, subj, subj, 1, images=np.arange(100, 100 + n)[::-1]) for s in seeds] + [
        _per_image(m, s, subj, subj, 1, rule="argmax", images=np.arange(100, 100 + n)[::-1])
        for s in seeds for m in ("darts", "diy_deep")])
    paired = pd.DataFrame({"seed": np.repeat(seeds, n), "subject": "diy_deep", "baseline": "darts",
                           "image": np.tile(np.arange(100, 100 + n), len(seeds))})
    return {"evasion": evasion_pm, "pgd_per_image": per_image, "paired_images": paired, "smoothness": smooth}


def test_paired_outcomes_align_by_image_id_and_refuse_missing_images():
    inputs = _inputs()
    o = mitigations.paired_outcomes(inputs["pgd_per_image"], inputs["paired_images"], "diy_deep", "darts", 0)
    # the per-image rows are stored in reverse order: alignment must go through the image id
    assert o.image.tolist() == list(range(100, 140))
    assert o.baseline.sum() == 30 and o.subject.sum() == 5
    assert o.baseline.iloc[0] == 0 and o.baseline.iloc[-1] == 1
    broken = inputs["pgd_per_image"][inputs["pgd_per_image"].image != 120]
    with pytest.raises(ValueError, match="re-run chapter 2"):
        mitigations.paired_outcomes(broken, inputs["paired_images"], "diy_deep", "darts", 0)


def test_evasion_rows_single_seed_mcnemar_is_primary_and_about_weights():
    rows, notes = mitigations.evasion_rows(_inputs(), ["diy_deep"], "smoke")
    assert not notes
    prim = [r for r in rows if r["role"] == "primary"]
    assert len(prim) == 1 and prim[0]["statistic"] == "pgd_asr" and prim[0]["subject"] == "diy_deep"
    assert prim[0]["test"].startswith("McNemar") and "weights" in prim[0]["about"]
    assert prim[0]["estimate"] == pytest.approx(100 * (5 - 30) / 40)
    assert prim[0]["label"] == "reproduced"  # 25 discordant images, all one way: lower ASR as claimed
    assert {r["statistic"] for r in rows if r["role"] == "exploratory"} == {"pgd_asr_last_step", "pgd_asr_argmax"}


def test_evasion_rows_with_two_seeds_use_seeds_and_demote_mcnemar():
    rows, _ = mitigations.evasion_rows(_inputs(seeds=(0, 1)), ["diy_deep"], "smoke")
    prim = [r for r in rows if r["role"] == "primary"]
    assert len(prim) == 1 and prim[0]["units_of_analysis"] == "seeds"
    assert all(r["role"] == "exploratory" for r in rows if r["test"].startswith("McNemar"))


def test_evasion_rows_note_when_no_image_is_paired():
    inputs = _inputs()
    inputs["paired_images"] = inputs["paired_images"].iloc[:1]
    rows, notes = mitigations.evasion_rows(inputs, ["diy_deep"], "smoke")
    assert rows == [] and "only 1" in notes[0]


def test_gv_rows_use_init_seeds_as_units():
    gv = pd.DataFrame({"model": ["darts"] * 3 + ["diy_deep"] * 3, "init_seed": [0, 1, 2] * 2,
                       "gv_init": [10.0, 11.0, 12.0, 100.0, 110.0, 120.0],
                       "gv_init_per_param": [1.0, 1.1, 1.2, 2.0, 2.1, 2.2]})
    rows = mitigations.gv_rows(gv, ["diy_deep"], "smoke")
    prim = [r for r in rows if r["role"] == "primary"]
    assert len(prim) == 1 and prim[0]["statistic"] == "log10_gv_init"
    assert prim[0]["estimate"] == pytest.approx(1.0, abs=1e-9)  # ten times larger = +1 log10 unit
    assert prim[0]["units_of_analysis"] == "init_seeds"


def test_direction_check_against_the_books_own_data():
    from nascore.report import verdict_table

    inputs = _inputs(manual_asr=60.0, nas_asr=30.0)  # the book's manual models are fooled MORE often
    rows, _ = mitigations.evasion_rows(inputs, ["diy_deep"], "smoke")
    check = mitigations.direction_check(inputs, verdict_table(rows))
    r = check[check.statistic == "pgd_asr"].iloc[0]
    assert r.book_manual_side == "higher" and r.claimed_manual_side == "lower"
    assert r.book_agrees_with_paper == "no"
    assert r.change == "lower" and r.toward_book_manual == "away from"
    assert "other" in mitigations.direction_text(check)
    # manual and NAS indistinguishable: no side, never a ratio that explodes
    flat = _inputs(manual_asr=30.0, nas_asr=30.0)
    flat["evasion"]["pgd_asr"] = 30.0
    check = mitigations.direction_check(flat, verdict_table(mitigations.evasion_rows(flat, ["diy_deep"], "smoke")[0]))
    r = check[check.statistic == "pgd_asr"].iloc[0]
    assert r.book_manual_side == "unresolved" and r.toward_book_manual == "—"
    assert np.isfinite(check.drop(columns=["statistic", "subject", "setting", "book_manual_side",
                                           "claimed_manual_side", "book_agrees_with_paper", "change",
                                           "toward_book_manual"]).to_numpy(float)).all()


def test_load_inputs_names_the_chapter_to_run(tmp_path, monkeypatch):
    monkeypatch.setattr(mitigations, "results_dir", lambda p, ch: tmp_path / p / ch)
    with pytest.raises(mitigations.MissingChapterError, match="02_evasion.*python -m nascore.book run 02_evasion"):
        mitigations.load_inputs("quick")


# ----------------------------------------------------------------------------- page helpers
def test_show_table_has_no_index_fixed_decimals_dash_and_unicode_minus():
    df = pd.DataFrame({"a": [1.23456, -2.0, np.nan], "b": ["x", "y", "z"]}, index=[7, 8, 9])
    html = common.show_table(df, {"b": "name", "a": "value (pp)"}, caption="Cap", decimals={"a": 2}).to_html()
    assert "1.23" in html and "1.235" not in html and "\u22122.00" in html and "—" in html
    assert "Cap" in html and "value (pp)" in html
    assert ">7<" not in html and ">9<" not in html  # no index


def test_verdicts_view_badges_second_column():
    from nascore.report import verdict_table

    rows, _ = mitigations.evasion_rows(_inputs(), ["diy_deep"], "smoke")
    html = common.verdicts_view(verdict_table(rows)).to_html()
    assert html.count('class="verdict ') == len(rows)
    heads = [h for h in ("claim · statistic", "label, raw p", "estimate [95 % CI]") if h in html]
    assert heads == ["claim · statistic", "label, raw p", "estimate [95 % CI]"]
    assert html.index("label, raw p") < html.index("estimate [95 % CI]")


def test_place_labels_never_overlap():
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 3))
    rng = np.random.default_rng(0)
    xs, ys = rng.normal(size=30), rng.normal(size=30)
    ax.scatter(xs, ys)
    skipped = common.place_labels(ax, xs, ys, [f"model_{i}" for i in range(30)])
    renderer = fig.canvas.get_renderer()
    boxes = [t.get_window_extent(renderer) for t in ax.texts]
    assert len(boxes) + skipped == 30 and skipped > 0  # crowded: some are left out
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])
    plt.close(fig)


def test_no_empty_all_zero_panels():
    import matplotlib.pyplot as plt

    pm = pd.DataFrame({"model": ["darts", "resnet18"], "pgd_asr": [0.0, 0.0], "pgd_asr_last_step": [0.0, 0.0],
                       "pgd_asr_argmax": [10.0, 20.0], "pgd_asr_argmax_last_step": [5.0, 20.0]})
    fig, omitted = evasion.plot_asr(pm)
    assert len(fig.axes) == 1 and omitted == ["artifact rule"]
    assert evasion.plot_asr(pm.assign(pgd_asr_argmax=0.0))[0] is None
    inputs = _inputs()
    inputs["evasion"]["pgd_asr"] = 0.0
    fig2, omitted2 = mitigations.plot_positions(inputs, ["diy_deep"])
    assert len(fig2.axes) == len(mitigations.POSITION_PANELS) - 1 and len(omitted2) == 1
    plt.close("all")


def test_model_colours_one_code():
    assert common.model_colour("darts") == common.GROUP_COLOURS["nas"]
    assert common.model_colour("resnet18") == common.GROUP_COLOURS["manual"]
    assert len({common.model_colour(m) for m in common.MITIGATION_COLOURS}) == 3
    assert common.FAMILY_ORDER == ("manual", "nas", "mitigation")


def test_evasion_in_workers_equals_in_process(synthetic_cifar, cache_tmp):
    """Chapter 2 attacks the models in spawned single-threaded workers (each loads its model from
    the cache by key): the tables must equal the in-process run's, row for row."""
    from nascore import zoo
    from nascore.profiles import get_profile

    tiny = {"C": 4, "layers": 2}
    prof = get_profile("smoke", pgd_images=6, sweep_images=4, nes_images=3, nes_samples=2, nes_max_queries=12,
                       mitigation_models=("diy_deep",), nas_scale={**tiny, "dropout": 0.0},
                       manual_scale={"width": 1 / 16}, batch_size=50, epochs=2)
    entries = {(n, 0): zoo.get(n, prof, data=synthetic_cifar, progress=False, device="cpu")
               for n in ("darts", "diy_deep", "resnet18")}
    n_threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the workers' thread count: float results then agree exactly
    try:
        here = evasion.evaluate_models(entries, prof, synthetic_cifar, workers=1)
    finally:
        torch.set_num_threads(n_threads)
    there = evasion.evaluate_models(entries, prof, synthetic_cifar, workers=2)
    assert len(here["per_model"]) == 3 and len(here["pgd_per_image"]) > 0
    for table in ("pgd_per_image", "curves", "nes", "nes_per_image"):
        pd.testing.assert_frame_equal(here[table], there[table])
    cols = [c for c in here["per_model"].columns if c != "seconds"]
    pd.testing.assert_frame_equal(here["per_model"][cols], there["per_model"][cols])
    with pytest.raises(ValueError, match="workers must be >= 1"):
        evasion.evaluate_models(entries, prof, synthetic_cifar, workers=0)


def test_model_bar_legend_never_covers_a_bar():
    """Bars of nearly equal height (chapter 5's drops) leave no free corner: the legend sits above the axes."""
    import matplotlib.pyplot as plt

    names = ["darts", "pdarts", "resnet18", "vgg13_bn", "diy_deep", "dla34", "sgas", "bit_r50x1"]
    df = pd.DataFrame({"model": names, "family": [common.family(m) for m in names],
                       "drop": np.linspace(12.0, 15.8, len(names))})
    fig, ax = plt.subplots(figsize=(3.8, 3.2), layout="constrained")
    common.plot_model_bars(df, "drop", ax, "drop (pp)")
    fig.canvas.draw()
    legend = ax.get_legend().get_window_extent()
    assert all(not legend.overlaps(bar.get_window_extent()) for bar in ax.patches)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["manual", "NAS", "mitigation"]
    plt.close("all")
