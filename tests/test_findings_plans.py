"""The chapters' verdict plans, parameter checks, summary numbers and closing cell, which live in
``nascore.findings`` so that the notebooks only narrate and call (issue 21): each plan lists the
claims and statistics its chapter decides, each check refuses a bad value before any compute and
names the valid choices, the summary numbers equal hand-computed values on small synthetic
frames, and every notebook closes with :func:`nascore.findings.common.save_chapter`."""
from __future__ import annotations

import math
import re
from types import SimpleNamespace

import nbformat
import numpy as np
import pandas as pd
import pytest

from nascore import book
from nascore.findings import backdoor, common, deepsloth, extraction, membership, mitigations, model_zoo, poisoning, smoothness
from nascore.parallel import check_workers
from nascore.profiles import get_profile
from nascore.report import MEDIATORS, load_metadata, load_results

SMOKE = get_profile("smoke")
NAS, MANUAL = list(SMOKE.nas_models), list(SMOKE.manual_models)


def _entries(models, seed=0):
    """Zoo entries with just the record fields the confound table reads."""
    return {(m, seed): SimpleNamespace(record={"metrics": {"test_acc": 0.5 + 0.01 * i, "final_train_loss": 1.0 + 0.1 * i,
                                                          "params": 1000 * (i + 1), "flops": 5000 * (i + 1)}})
            for i, m in enumerate(models)}


@pytest.fixture
def recorded(monkeypatch):
    """Replace ``common.nas_vs_manual`` (which the plans import when called) by a recorder."""
    calls = []

    def fake(df, value, claim=None, seed=0, entries=None, **kw):
        calls.append({"df": df, "statistic": value, "claim": claim, **kw})
        return {"statistic": value}
    monkeypatch.setattr(common, "nas_vs_manual", fake)
    return calls


# ----------------------------------------------------------------------------- closing cell
def test_save_chapter_writes_every_table_with_one_provenance_and_skips_none(tmp_path):
    data = SimpleNamespace(provenance={"label": "synthetic"})
    a, b = pd.DataFrame({"x": [1, 2]}), pd.DataFrame({"y": [0.5]})
    prov = common.save_chapter(tmp_path, {"a": a, "b": b, "absent": None}, SMOKE, data, device="cpu", knob=3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.csv", "a.json", "b.csv", "b.json"]
    pd.testing.assert_frame_equal(load_results(tmp_path / "a"), a, check_dtype=False)
    stored = load_metadata(tmp_path / "b")["provenance"]
    assert stored["utc"] == prov["utc"] and stored["knob"] == 3
    assert (prov["profile"], prov["seeds"], prov["data_source"]) == ("smoke", list(SMOKE.seeds), "synthetic")
    keys = list(prov)
    assert keys.index("profile") < keys.index("seeds") < keys.index("data_source") < keys.index("knob")


def test_save_chapter_own_seed_replaces_the_profile_seeds(tmp_path):
    prov = common.save_chapter(tmp_path, {}, SMOKE, SimpleNamespace(provenance={"label": "d"}), device="cpu", seed=7)
    assert prov["seed"] == 7 and "seeds" not in prov
    assert list(prov)[-3:] == ["profile", "seed", "data_source"]


def _code_cells(path):
    return [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]


@pytest.mark.parametrize("path", sorted(book.NOTEBOOKS.glob("*.ipynb")), ids=lambda p: p.stem)
def test_every_notebook_closes_with_save_chapter(path):
    code = _code_cells(path)
    closing = [i for i, c in enumerate(code) if "save_chapter(" in c.source]
    assert closing == [len(code) - 1], path.name
    assert all("save_results(" not in c.source and "provenance.collect(" not in c.source for c in code), path.name


@pytest.mark.parametrize("stem", book.chapters())
def test_chapters_build_no_verdict_plan_and_validate_nothing_in_the_notebook(stem):
    code = "\n".join(c.source for c in _code_cells(book.NOTEBOOKS / f"{stem}.ipynb"))
    for forbidden in ("nas_vs_manual(", "compare_families(", "compare_values(", "compare_paired(", "raise ",
                      "MEDIATORS", "def pct"):
        assert forbidden not in code, (stem, forbidden)
    assert not re.search(r"pairs\s*=\s*\[", code), stem


# ----------------------------------------------------------------------------- chapter 1
@pytest.mark.parametrize("bad", [0, 0.0, -0.1, 1.5, "0.3", True, None])
def test_model_zoo_refuses_an_early_fraction_outside_the_unit_interval(bad):
    with pytest.raises(ValueError, match=r"early_fraction must be in \(0, 1\], got " + re.escape(repr(bad))):
        model_zoo.check_parameters(bad)


@pytest.mark.parametrize("ok", [0.3, 1, 1.0, np.float64(0.5)])
def test_model_zoo_accepts_a_fraction(ok):
    model_zoo.check_parameters(ok)


def test_model_zoo_plan_decides_early_convergence_and_reports_the_accuracy_level():
    models = NAS + MANUAL
    speed = pd.DataFrame({"model": models, "family": ["nas"] * 3 + ["manual"] * 3, "seed": 0,
                          "early_auc": [40.0, 42, 44, 30, 31, 33], "early_acc": [45.0, 46, 47, 35, 36, 38],
                          "early_loss_drop": [0.5, 0.6, 0.7, 0.3, 0.2, 0.4]})
    table = pd.DataFrame({"model": models * 2, "seed": [0] * 6 + [1] * 6, "test_acc": np.arange(12.0) + 50})
    rows = model_zoo.verdict_rows(speed, table, _entries(models), "smoke")
    assert [(r["claim"], r["statistic"], r["role"]) for r in rows] == [
        ("zoo.early_convergence", "early_auc", "primary"), ("zoo.early_convergence", "early_acc", "exploratory"),
        ("zoo.early_convergence", "early_loss_drop", "exploratory"), ("zoo.clean_accuracy", "test_acc", "primary")]
    # NAS − manual of the model means, hand-computed: (40+42+44)/3 − (30+31+33)/3 = 42 − 31.33…
    assert rows[0]["estimate"] == pytest.approx(42 - 94 / 3)


# ----------------------------------------------------------------------------- chapter 3
@pytest.mark.parametrize("grid", [1, 4, 20])
def test_smoothness_refuses_an_even_or_tiny_contour_grid(grid):
    with pytest.raises(ValueError, match=f"contour_grid must be odd and >= 3, got {grid}"):
        smoothness.check_parameters(SMOKE.override(contour_grid=grid), ["darts", "resnet18"])


@pytest.mark.parametrize("reps, named", [(["darts", "nope"], r"\['nope'\]"), (["darts"], r"\['darts'\]"),
                                         ("darts", r"\['darts'\]")])
def test_smoothness_refuses_representatives_naming_them_and_the_valid_models(reps, named):
    with pytest.raises(ValueError, match=named + " invalid. Valid: " + re.escape(", ".join(SMOKE.models))):
        smoothness.check_parameters(SMOKE, reps)


def test_smoothness_accepts_two_models_of_the_profile():
    smoothness.check_parameters(SMOKE, ["darts", "resnet18"])


def test_smoothness_names_the_chapter_to_run_when_chapter_2_is_missing(tmp_path, monkeypatch):
    monkeypatch.setattr(common, "REPO_ROOT", tmp_path)
    with pytest.raises(FileNotFoundError, match="02_evasion/per_model.csv is missing.*run 02_evasion --profile smoke"):
        smoothness.evasion_input(SMOKE)
    stem = tmp_path / "results" / "smoke" / "02_evasion" / "per_model"
    stem.with_suffix(".csv").write_text("model\n")
    assert smoothness.evasion_input(SMOKE) == stem


def test_smoothness_chain_pairs_are_the_default_and_all_named():
    rng = np.random.default_rng(0)
    cols = sorted({c for pair in smoothness.CHAIN_PAIRS for c in pair})
    assert set(cols) == set(smoothness.CHAIN_NAMES)
    chain = pd.DataFrame({"model": NAS + MANUAL, "seed": 0, **{c: rng.normal(size=6) for c in cols}})
    corr = smoothness.chain_correlations(chain)
    assert list(zip(corr.x, corr.y)) == list(smoothness.CHAIN_PAIRS)
    assert ("gv_init", "early_auc") in smoothness.CHAIN_PAIRS and ("early_auc", "pgd_asr_argmax") in smoothness.CHAIN_PAIRS


# ----------------------------------------------------------------------------- chapter 7
def _extraction_tables(models, soft=True):
    from nascore.models import family
    pm = pd.DataFrame({"model": models, "family": [family(m) for m in models], "seed": 0, "budget": 400,
                       "extraction_kl": np.linspace(0.5, 1, len(models)), "extraction_ce": np.linspace(1, 2, len(models)),
                       "victim_entropy": 0.5, "extraction_thief_acc": 30.0, "extraction_agreement": 40.0,
                       "agreement_gain": 20.0})
    if soft:
        pm["soft_budget"] = 200.0
        pm["extraction_ce_soft"] = [np.nan] + [1.5] * (len(models) - 1)
    thieves = pd.DataFrame([{"model": m, "seed": 0, "mode": "hard", "budget": b, "ce": 1.0}
                            for m in models for b in (100, 200, 400)])
    return pm, thieves


def test_extraction_plan_primary_first_then_exploratory_budgets_and_mitigations(recorded, monkeypatch):
    paired = []
    monkeypatch.setattr(extraction, "compare_paired", lambda a, b, stat, claim, name, **kw: paired.append(
        (stat, claim, name, kw["baseline"], kw["setting"], kw["exploratory"], kw["gate"].passed))
        or {"statistic": stat})
    models = NAS + MANUAL + ["diy_deep", "diy_noskip"]
    pm, thieves = _extraction_tables(models)
    per_image = {(m, 0, 400, "hard"): np.zeros(3) for m in models}
    rows = extraction.verdict_rows(pm, thieves, per_image, SMOKE, models)
    assert [(c["statistic"], c["claim"], c["setting"]) for c in recorded] == [
        ("extraction_kl", "extraction.ce", "Q = 400, hard labels"),
        ("extraction_ce", "extraction.ce", "Q = 400, hard labels"),
        ("victim_entropy", "extraction.ce", "Q = 400, hard labels"),
        ("extraction_ce_soft", None, "Q = 200, soft labels"),
        ("extraction_thief_acc", None, "Q = 400, hard labels"),
        ("extraction_agreement", None, "Q = 400, hard labels"),
        ("extraction_ce_at_budget", None, "Q = 100, hard labels"),
        ("extraction_ce_at_budget", None, "Q = 200, hard labels")]
    assert recorded[3]["df"].extraction_ce_soft.notna().all()  # the soft row drops victims without a soft thief
    assert all(c["gate"].passed and c["gate"].gate == "thieves_learn" for c in recorded)
    # one victim seed each: the paired rows are the primaries, each with the claim's gate
    assert paired == [("extraction_kl", "mitigation.more_manual_like", m, "darts",
                       "Q = 400, hard labels, same images, seed 0", False, True) for m in ("diy_deep", "diy_noskip")]
    assert len(rows) == 10 and all(c["profile"] == "smoke" for c in recorded)


def test_extraction_gate_fails_when_thieves_are_constant_predictors(recorded):
    models = NAS + MANUAL
    pm, thieves = _extraction_tables(models, soft=False)
    pm["agreement_gain"] = [20.0, 0.5, 1.0, 2.0, 30.0, 0.0]
    extraction.verdict_rows(pm, thieves, {}, SMOKE, models)
    gate = recorded[0]["gate"]
    assert not gate.passed and (gate.n_pass, gate.n) == (2, 6) and "thief agrees" in gate.text


def test_extraction_plan_without_soft_thieves_or_baseline(recorded, monkeypatch):
    monkeypatch.setattr(extraction, "compare_paired", lambda *a, **k: pytest.fail("no baseline: no paired rows"))
    models = NAS[1:] + MANUAL + ["diy_deep"]  # no darts
    pm, thieves = _extraction_tables(models, soft=False)
    extraction.verdict_rows(pm, thieves, {}, SMOKE, models)
    assert [c["statistic"] for c in recorded] == ["extraction_kl", "extraction_ce", "victim_entropy",
                                                  "extraction_thief_acc", "extraction_agreement",
                                                  "extraction_ce_at_budget", "extraction_ce_at_budget"]
    assert extraction.chapter_mitigations(SMOKE, models) == ["diy_deep"]


# ----------------------------------------------------------------------------- chapter 8
def _membership_frame(lira=False):
    models = NAS + MANUAL
    pm = pd.DataFrame({"model": models, "seed": 0, "mia_boundary_auc": 0.5, "mia_boundary_auc_l2": 0.5,
                       "mia_loss_auc": 0.5, "mia_loss_tpr_at_1fpr": 1.0, "gen_gap": 2.0})
    if lira:
        pm["mia_lira_auc"] = 0.5
    return pm


@pytest.mark.parametrize("lira", [False, True])
def test_membership_plan_adjusts_for_the_generalisation_gap(recorded, lira):
    P = SMOKE.override(mia_samples=20, mia_score_samples=1500)
    membership.verdict_rows(_membership_frame(lira), P)
    stats = ["mia_boundary_auc", "mia_boundary_auc_l2", "mia_loss_auc", "mia_loss_tpr_at_1fpr"] + \
        (["mia_lira_auc"] if lira else [])
    assert [c["statistic"] for c in recorded] == stats
    assert all(c["mediators"] == tuple(MEDIATORS) + ("gen_gap",) for c in recorded)
    assert [c["setting"] for c in recorded] == ["20 + 20 images, L∞ score", "20 + 20 images, L2 score"] + \
        ["1,500 + 1,500 images"] * (len(stats) - 2)


def test_membership_plan_primaries_are_the_artifact_and_loss_attacks():
    pm = _membership_frame()
    rng = np.random.default_rng(1)
    for c in ("mia_boundary_auc", "mia_boundary_auc_l2", "mia_loss_auc", "mia_loss_tpr_at_1fpr"):
        pm[c] = pm[c] + rng.uniform(0, 0.1, len(pm))
    pm = pm.assign(params=1000, flops=5000, clean_acc=50.0, train_loss=1.0)
    rows = membership.verdict_rows(pm, SMOKE)
    assert [(r["claim"], r["statistic"], r["role"]) for r in rows] == [
        ("membership.auc", "mia_boundary_auc", "primary"), ("membership.auc", "mia_boundary_auc_l2", "exploratory"),
        ("membership.score_auc", "mia_loss_auc", "primary"),
        ("membership.score_auc", "mia_loss_tpr_at_1fpr", "exploratory")]


# ----------------------------------------------------------------------------- chapter 9
@pytest.mark.parametrize("bad", [-1, 1.5, "0", True, None])
def test_deepsloth_refuses_a_bad_seed(bad):
    with pytest.raises(ValueError, match="seed must be an int >= 0, got " + re.escape(repr(bad))):
        deepsloth.check_profile(SMOKE, bad)


def test_deepsloth_checks_the_image_counts_against_each_other():
    P = SMOKE.override(sloth_images=4, sloth_extra_images=8)
    with pytest.raises(ValueError, match=r"sloth_extra_images \(8\) must be <= sloth_images \(4\)"):
        deepsloth.check_profile(P, 0)
    deepsloth.check_profile(SMOKE, np.int64(3))


def test_deepsloth_bootstrap_draws_are_capped():
    assert deepsloth.bootstrap_draws(SMOKE.override(sloth_bootstrap=500)) == 500
    assert deepsloth.bootstrap_draws(SMOKE.override(sloth_bootstrap=10_000)) == deepsloth.BOOTSTRAP_CAP


@pytest.mark.parametrize("v, text", [(0.955, "96 %"), (0.9449, "94 %"), (1.0, "100 %"), (-0.004, "0 %"),
                                     (-0.12, "−12 %"), (float("nan"), "—")])
def test_deepsloth_pct(v, text):
    assert deepsloth.pct(v) == text


def test_deepsloth_summary_numbers_index_the_right_rows():
    red5 = pd.DataFrame([
        {"backbone": b, "attack": a, "eta_clean": 0.8 + k, "eta_attacked": e + k, "reduction": r, "low": r - 0.1,
         "high": r + 0.05, "ee_acc_clean": 90.0 + 10 * k, "ee_acc_attacked": 70.0 + 10 * k}
        for k, b in enumerate(["vgg16_bn", "resnet56"])
        for a, e, r in (("deepsloth_linf", 0.1, 0.9 - k), ("universal_linf", 0.5, 0.4 - k), ("pgd20", 0.7, 0.1 - k))])
    lat = pd.DataFrame([{"backbone": b, "input": i, "median_ms": ms + k}
                        for k, b in enumerate(["vgg16_bn", "resnet56"])
                        for i, ms in (("clean", 1.0), ("deepsloth_linf", 3.0), ("universal_linf", 2.0))])
    secs = pd.DataFrame({"backbone": ["vgg16_bn", "vgg16_bn", "resnet56"], "attack": ["a", "b", "a"],
                         "seconds": [60.0, 30.0, 6.0]})
    out = deepsloth.summary_numbers(red5, lat, secs, ["resnet56", "vgg16_bn"])
    assert list(out) == ["resnet56", "vgg16_bn"]
    assert out["vgg16_bn"] == {"eta_clean": 0.8, "eta_attacked": 0.1, "reduction": 0.9, "low": pytest.approx(0.8),
                               "high": pytest.approx(0.95), "universal_linf": 0.4, "pgd20": 0.1, "ee_acc_clean": 90.0,
                               "ee_acc_attacked": 70.0, "median_ms_clean": 1.0, "median_ms_sloth": 3.0,
                               "attack_minutes": 1.5}
    r = out["resnet56"]
    assert (r["eta_clean"], r["eta_attacked"], r["reduction"]) == (1.8, 1.1, pytest.approx(-0.1))
    assert (r["universal_linf"], r["pgd20"]) == (pytest.approx(-0.6), pytest.approx(-0.9))
    assert (r["median_ms_clean"], r["median_ms_sloth"], r["attack_minutes"]) == (2.0, 4.0, 0.1)
    assert all(isinstance(v, float) and math.isfinite(v) for v in r.values())


# ----------------------------------------------------------------------------- papermill parameters
@pytest.mark.parametrize("stem, params, message", [
    ("01_model_zoo", {"early_fraction": 1.5}, r"early_fraction must be in \(0, 1\], got 1.5"),
    ("03_smoothness", {"representatives": ["darts", "nope"]}, r"\['nope'\] invalid. Valid: darts, "),
    ("09_deepsloth", {"seed": -2}, "seed must be an int >= 0, got -2"),
])
def test_a_bad_notebook_parameter_stops_the_chapter_before_any_compute(tmp_path, stem, params, message):
    import papermill as pm

    out = tmp_path / "out.ipynb"
    with pytest.raises(pm.PapermillExecutionError, match=message):
        pm.execute_notebook(str(book.NOTEBOOKS / f"{stem}.ipynb"), str(out), parameters={"profile": "smoke", **params},
                            kernel_name="python3", progress_bar=False, cwd=str(book.NOTEBOOKS))
    code = [c for c in nbformat.read(out, as_version=4).cells if c.cell_type == "code"]
    failed = [i for i, c in enumerate(code) if any(o.get("output_type") == "error" for o in c.get("outputs", []))]
    assert failed == [2]  # parameters, injected parameters, then the set-up cell that validates


# ----------------------------------------------------------------------------- chapters 4-6
@pytest.mark.parametrize("bad", [0, -1, 1.5, "2", True])
def test_a_bad_worker_count_is_refused_naming_it(bad):
    with pytest.raises(ValueError, match="workers must be a positive integer or None.*got " + re.escape(repr(bad))):
        check_workers(bad)
    for chapter in (poisoning, backdoor):
        with pytest.raises(ValueError, match=re.escape(repr(bad))):
            chapter.check(SMOKE, bad)


@pytest.mark.parametrize("ok", [None, 1, 2])
def test_a_valid_worker_count_passes_and_the_chapters_return_their_models(ok):
    assert check_workers(ok) == ok
    assert set(poisoning.check(SMOKE, ok)) <= set(SMOKE.models)
    assert set(backdoor.check(SMOKE, ok)) <= set(SMOKE.models)


def test_mitigation_init_seeds_default_per_profile_and_refuse_fewer_than_two_distinct():
    assert mitigations.check(SMOKE) == [0, 1, 2]
    assert mitigations.check(get_profile("quick")) == list(range(8))
    assert mitigations.check(SMOKE, (4, 5)) == [4, 5]
    for bad in ([1], [2, 2]):
        with pytest.raises(ValueError, match=r"init_seeds must be at least 2 distinct seeds, got " + re.escape(str(bad))):
            mitigations.check(SMOKE, bad)
    with pytest.raises(ValueError, match="must contain 'darts' and the mitigation models"):
        mitigations.check(SMOKE.override(nas_models=("pc_darts",)))
