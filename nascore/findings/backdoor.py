"""Chapter 6 — backdoors: are NAS models easier to backdoor, and cheaper to backdoor?

Pang et al. (USENIX Security 2022, Fig. 7, Table 4; protocol §4.3, §5.5) fine-tune every trained model
with stamped, relabelled copies in each batch and report the attack success rate (ASR, counted over *all*
stamped test images, target-class images included) and the clean-accuracy drop (CAD), at the epoch with
the best ASR among those that lost at most 3 points. Figure data (§11): BadNet ASR 90.5 → 93.2 %, CAD 3.2 →
2.7 points; TrojanNN ASR 95.8 → 99.6 %, CAD 3.5 → 3.0 (manual → NAS).

This module builds the injection jobs of a profile (BadNet and TrojanNN into every model, the TrojanNN
neuron-number sweep the artifact meant to run, and the latent backdoor and IMC that it implemented but never
ran), runs them through :func:`nascore.findings.backdoor_injection.inject_many` (per-epoch evaluation, cached), and
tabulates them with the confounds and the comparisons: NAS − manual over models, mitigation − DARTS-V2 on
the same stamped test images.
"""
from __future__ import annotations

import pandas as pd

from ..attacks.backdoor import IMC, BadNet, InjectionJob, LatentBackdoor, TrojanNN, unpack_bits
from .backdoor_injection import inject_many
from ..models import cell_stats, family, names
from ..report.confounds import entry_confounds
from ..parallel import check_workers
from ..profiles import Profile

CHAPTER = "06_backdoor"
BASELINE = "darts"
DEFAULT_NEURONS = 2  # the artifact's neuron_num


def models(profile: Profile) -> tuple[str, ...]:
    return tuple(profile.backdoor.backdoor_models) if profile.backdoor.backdoor_models is not None else profile.models


def _subset(profile: Profile, knob: str) -> tuple[str, ...]:
    chosen = getattr(profile.backdoor, knob)
    return models(profile) if chosen is None else tuple(chosen)


def check(profile: Profile, workers: int | None = None) -> tuple[str, ...]:
    """Validate the chapter's knobs before any compute; returns the backdoor models. ``workers`` is the
    chapter's worker-process count (``None``: one per core)."""
    check_workers(workers)
    chosen = models(profile)
    for knob in ("backdoor_models", "neuron_sweep_models", "latent_imc_models"):
        listed = _subset(profile, knob)
        unknown = [m for m in listed if m not in names()]
        if unknown:
            raise ValueError(f"unknown model(s) {unknown} in {knob}; valid: {', '.join(names())}")
        outside = [m for m in listed if m not in chosen]
        if outside:
            raise ValueError(f"{knob} lists {outside}, which are not among the backdoor models {list(chosen)}")
    for knob in ("backdoor_epochs", "latent_samples_per_class", "latent_epochs", "imc_inner_iters",
                 "imc_inner_batches"):
        if getattr(profile.backdoor, knob) < 1:
            raise ValueError(f"{knob}={getattr(profile.backdoor, knob)} must be >= 1")
    for knob in ("backdoor_train_images", "backdoor_test_images"):
        v = getattr(profile.backdoor, knob)
        if v is not None and v < 1:
            raise ValueError(f"{knob}={v} must be >= 1 or None")
    if not 0 < profile.backdoor.backdoor_poison_scale * BadNet.poison_rate < 1:
        raise ValueError(f"backdoor_poison_scale={profile.backdoor.backdoor_poison_scale} gives a BadNet poison rate of "
                         f"{profile.backdoor.backdoor_poison_scale * BadNet.poison_rate:g}; valid: a scale in (0, 50)")
    if any(n < 1 for n in profile.backdoor.trojannn_neurons):
        raise ValueError(f"trojannn_neurons {profile.backdoor.trojannn_neurons} must all be >= 1")
    if not {"nas", "manual"} <= {family(m) for m in chosen}:
        raise ValueError(f"backdoor_models needs NAS and manual models for the comparison, got {list(chosen)}")
    return chosen


def attacks(profile: Profile) -> dict[str, object]:
    """The configured attacks by column prefix (``badnet``, ``trojannn``, ``trojannn_n<k>``, ``latent``, ``imc``).

    Each attack's per-batch poison rate is the artifact's (BadNet and latent 0.02, TrojanNN and IMC 0.01) times
    ``profile.backdoor.backdoor_poison_scale``; TrojanNN ranks the penultimate units over the fine-tuning images.
    """
    scale = profile.backdoor.backdoor_poison_scale
    trojan = dict(poison_rate=TrojanNN.poison_rate * scale, feature_images=profile.backdoor.backdoor_train_images)
    out = {"badnet": BadNet(poison_rate=BadNet.poison_rate * scale),
           "trojannn": TrojanNN(neuron_num=DEFAULT_NEURONS, **trojan)}
    for k in profile.backdoor.trojannn_neurons:
        if k != DEFAULT_NEURONS:
            out[f"trojannn_n{k}"] = TrojanNN(neuron_num=k, **trojan)
    out["latent"] = LatentBackdoor(samples_per_class=profile.backdoor.latent_samples_per_class, epochs=profile.backdoor.latent_epochs,
                                   poison_rate=LatentBackdoor.poison_rate * scale)
    out["imc"] = IMC(neuron_num=DEFAULT_NEURONS, inner_iters=profile.backdoor.imc_inner_iters,
                     inner_batches=profile.backdoor.imc_inner_batches, **trojan)
    return out


def jobs(profile: Profile) -> dict[tuple[str, str, int], InjectionJob]:
    """``{(prefix, model, seed): InjectionJob}`` for the profile (validated first)."""
    check(profile)
    which = {"badnet": models(profile), "trojannn": models(profile), "latent": _subset(profile, "latent_imc_models"),
             "imc": _subset(profile, "latent_imc_models")}
    out = {}
    for prefix, attack in attacks(profile).items():
        chosen = which.get(prefix, _subset(profile, "neuron_sweep_models"))
        # BadNet and TrojanNN on every seed (the Table-4 claims take seeds as units); the neuron sweep,
        # the latent backdoor and IMC on the profile's seeds only (exploratory, single-model results)
        for m in chosen:
            for s in (profile.seeds_for(m) if prefix in ("badnet", "trojannn") else profile.seeds):
                out[(prefix, m, s)] = InjectionJob(attack, m, epochs=profile.backdoor.backdoor_epochs, seed=s,
                                                   train_images=profile.backdoor.backdoor_train_images,
                                                   test_images=profile.backdoor.backdoor_test_images)
    return out


def run(profile: Profile, progress: bool = True, workers: int | None = None) -> dict:
    """Inject every job of the profile (the clean zoo must exist or is trained first by the workers'
    ``zoo.get``); ``{(prefix, model, seed): TrainedModel}``."""
    todo = jobs(profile)
    done = inject_many(list(todo.values()), profile, workers=workers, progress=progress)
    return {k: done[j] for k, j in todo.items()}


def per_model(results: dict, clean: dict) -> pd.DataFrame:
    """One row per (model, seed): covariates and mediators of the clean zoo model (``params``,
    ``flops``, ``clean_acc`` %, ``train_loss``), the clean accuracy on the backdoor evaluation images
    before fine-tuning (``acc_before``), and per attack prefix ``<a>``:

    * at the **pre-registered fixed epoch** (the profile's last fine-tuning epoch; the primaries):
      ``<a>_asr`` (artifact counting), ``<a>_asr_standard`` (target class excluded), ``<a>_cad`` (pp);
    * the gate: ``<a>_asr_clean`` (the same trigger on the clean model, epoch 0) and
      ``<a>_asr_gain = <a>_asr − <a>_asr_clean`` (pp);
    * the artifact's epoch selection (exploratory): ``<a>_asr_selected`` (0 where its CAD > 3 rule
      zeroed every epoch), ``<a>_cad_selected``, ``<a>_epoch_selected``, ``<a>_rule_zeroed`` (True
      when the selected value is a zero set by the rule, not a measured one);
    * TrojanNN / IMC: ``<a>_activation_gain`` (selected units' mean activation after − before the
      trigger search) and ``<a>_activation_gain_ratio`` (that gain / the target activation);

    and the cell statistics."""
    from ..attacks.backdoor.trojannn import TrojanNN

    rows: dict[tuple[str, int], dict] = {}
    for (prefix, m, s), tm in results.items():
        row = rows.setdefault((m, s), {"model": m, "family": family(m), "seed": s, **entry_confounds(clean[(m, s)])})
        met, hist = tm.record["metrics"], tm.record["history"]
        sel, fin = met["selected"], met["final"]
        row["acc_before"] = met["clean_acc0"]
        row.update({f"{prefix}_asr": fin["asr"], f"{prefix}_asr_standard": fin["asr_standard"],
                    f"{prefix}_cad": fin["cad"], f"{prefix}_asr_clean": hist[0]["asr"],
                    f"{prefix}_asr_gain": fin["asr"] - hist[0]["asr"],
                    f"{prefix}_asr_selected": sel["asr"], f"{prefix}_cad_selected": sel["cad"],
                    f"{prefix}_epoch_selected": sel["epoch"],
                    f"{prefix}_rule_zeroed": bool(sel["asr"] == 0.0 and sel.get("asr_raw", 0.0) > 0.0)})
        if prefix.startswith("trojannn") or prefix == "imc":
            d = met["diagnostics"]
            gain = d.get("activation_after", float("nan")) - d.get("activation_before", float("nan"))
            row[f"{prefix}_activation_gain"] = gain
            row[f"{prefix}_activation_gain_ratio"] = gain / TrojanNN.target_value
    out = pd.DataFrame(list(rows.values()))
    for col, fn in (("depth", lambda m: cell_stats(m).depth), ("skips", lambda m: cell_stats(m).skips)):
        out[col] = [fn(m) if family(m) != "manual" else float("nan") for m in out.model]
    return out


def epochs_long(results: dict) -> pd.DataFrame:
    """Every evaluated epoch: attack, model, family, seed, epoch (0 = clean model), clean_acc, asr,
    asr_standard (%), cad (pp)."""
    rows = []
    for (prefix, m, s), tm in results.items():
        for r in tm.record["history"]:
            rows.append({"attack": prefix, "model": m, "family": family(m), "seed": s, "epoch": r["epoch"],
                         "clean_acc": r["clean_acc"], "asr": r["asr"], "asr_standard": r["asr_standard"],
                         "cad": r["cad"]})
    return pd.DataFrame(rows)


def neuron_sweep(results: dict, profile: Profile) -> pd.DataFrame:
    """TrojanNN ASR/CAD against the number of excited units, for the sweep models."""
    rows = []
    for (prefix, m, s), tm in results.items():
        if not prefix.startswith("trojannn") or m not in _subset(profile, "neuron_sweep_models") \
                or s not in profile.seeds:  # the sweep runs on the profile's seeds (TrojanNN itself on every seed)
            continue
        k = DEFAULT_NEURONS if prefix == "trojannn" else int(prefix.removeprefix("trojannn_n"))
        met = tm.record["metrics"]
        d = met["diagnostics"]
        rows.append({"model": m, "family": family(m), "seed": s, "neurons": k, "asr": met["final"]["asr"],
                     "asr_standard": met["final"]["asr_standard"], "cad": met["final"]["cad"],
                     "asr_selected": met["selected"]["asr"], "activation_before": d.get("activation_before"),
                     "activation_after": d.get("activation_after"), "steps_taken": d.get("steps_taken")})
    return pd.DataFrame(rows).sort_values(["model", "neurons"]).reset_index(drop=True) if rows else pd.DataFrame()


#: (statistic column, claim, attack prefix) judged NAS − manual; the first of each claim is its primary statistic.
FAMILY_STATISTICS = (("badnet_asr", "backdoor.asr", "badnet"), ("badnet_cad", "backdoor.cad", "badnet"),
                     ("trojannn_asr", "backdoor.trojannn_asr", "trojannn"),
                     ("trojannn_cad", "backdoor.trojannn_cad", "trojannn"),
                     ("badnet_asr_standard", "backdoor.asr", "badnet"),
                     ("badnet_asr_selected", "backdoor.asr", "badnet"),
                     ("latent_asr", "backdoor.asr", "latent"), ("imc_asr", "backdoor.asr", "imc"))


def gate_table(table: pd.DataFrame, attack: str, models=None) -> pd.DataFrame:
    """Per model (seed-averaged) the gate columns of ``attack``'s claims: ``asr_gain`` (pp: the
    fixed-epoch ASR minus the clean model's on the same stamped images) and, for TrojanNN,
    ``trojan_activation_gain`` (the trigger search's activation gain / target)."""
    cols = {f"{attack}_asr_gain": "asr_gain", f"{attack}_activation_gain_ratio": "trojan_activation_gain"}
    have = [c for c in cols if c in table]
    sub = table if models is None else table[table.model.isin(models)]
    return sub.groupby("model", as_index=False)[have].mean().rename(columns=cols)


def family_rows(table: pd.DataFrame, profile: Profile) -> list[dict]:
    """NAS − manual rows for the registered backdoor statistics present in ``table`` (latent/IMC only where
    both families have at least one model), each with its claim's gates computed on the same models."""
    from ..report import claim_gate
    from .common import nas_vs_manual

    rows = []
    for col, claim, attack in FAMILY_STATISTICS:
        if col not in table or table[col].isna().all():
            continue
        have = table[table[col].notna() & table.family.isin(["nas", "manual"])]
        if {"nas", "manual"} <= set(have.family):
            gate = claim_gate(claim, gate_table(have, attack))
            rows.append(nas_vs_manual(table, col, claim, profile=profile.name, gate=gate))
    return rows


def mitigation_rows(results: dict, profile: Profile, table: pd.DataFrame | None = None, seed: int = 0) -> list[dict]:
    """mitigation − DARTS-V2 TrojanNN ASR (claim ``mitigation.backdoor_asr``) at the fixed epoch. With ≥ 2
    training seeds of both (and the per-model ``table``) seeds are the units (primary); the paired
    comparison on the same stamped test images (per-image success, McNemar's test; about these weights)
    is then exploratory, else primary. Every row carries the claim's gates on DARTS-V2 and the
    mitigations."""
    from ..report import claim_gate, compare_paired, compare_to_baseline

    base = results.get(("trojannn", BASELINE, seed))
    if base is None:
        return []
    subjects = [m for m in profile.mitigation_models if ("trojannn", m, seed) in results]
    gate = None
    if table is not None:
        gate = claim_gate("mitigation.backdoor_asr", gate_table(table, "trojannn", (BASELINE, *subjects)))
    n_seeds = lambda m: len({s for (a, n, s) in results if a == "trojannn" and n == m})  # noqa: E731
    by_seeds = table is not None and all(n_seeds(m) >= 2 for m in (BASELINE, *subjects))
    rows = []
    if by_seeds:
        rows += [compare_to_baseline(table, "trojannn_asr", "mitigation.backdoor_asr", m, unit="seed",
                                     profile=profile.name, gate=gate,
                                     setting="TrojanNN, fixed last epoch, training seeds as units")
                 for m in subjects]
    n = base.record["metrics"]["n_test"]
    b = unpack_bits(base.record["metrics"]["success_final"], n).float()
    for m in subjects:
        a = unpack_bits(results[("trojannn", m, seed)].record["metrics"]["success_final"], n).float()
        rows.append(compare_paired(a, b, "trojannn_asr", "mitigation.backdoor_asr", subject=m, baseline=BASELINE,
                                   profile=profile.name, exploratory=by_seeds, gate=gate,
                                   setting=f"TrojanNN, fixed last epoch, same stamped images, seed {seed}"))
    return rows


def example_triggers(results: dict, seed: int = 0) -> dict[str, object]:
    """The trigger each attack used in its last epoch, for one model per attack (NAS preferred)."""
    from ..attacks.backdoor import Trigger
    import torch

    out = {}
    for (prefix, m, s), tm in sorted(results.items(), key=lambda kv: (kv[0][0], family(kv[0][1]) != "nas")):
        if s != seed or prefix in out:
            continue
        t = tm.record["metrics"]["trigger"]
        h, w = t["size"]
        mark = torch.tensor(t["mark"]).view(-1, h, w)
        out[prefix] = (m, Trigger(mark, t["top"], t["left"], t["alpha"]))
    return out


def table4(table: pd.DataFrame, profile: Profile) -> tuple[pd.DataFrame, str]:
    """The paper's Table 4 rows at this profile: DARTS-V2 and the mitigation cells with their clean accuracy,
    TrojanNN ASR and CAD (this chapter) and the 40 % poisoning drop (chapter 5's results, when saved), next to
    the paper's drop. Returns the table and a note on what is missing."""
    from ..report import load_results, paper_statistic
    from .common import results_dir

    names_ = [BASELINE, *profile.mitigation_models]
    cols = ["model", "clean_acc", "trojannn_asr", "trojannn_asr_standard", "trojannn_cad"]
    out = table[table.model.isin(names_)].groupby("model", as_index=False)[cols[1:]].mean()
    note = ""
    stem = results_dir(profile, "05_poisoning") / "per_model"
    if stem.with_suffix(".csv").is_file():
        poison = load_results(stem)
        if "poison_acc_drop_40" in poison:
            out = out.merge(poison.groupby("model", as_index=False)["poison_acc_drop_40"].mean(), on="model", how="left")
    else:
        note = (f"Chapter 5 (05_poisoning) has not been run at profile {profile.name!r}: the poisoning column is "
                "missing.")
    paper = paper_statistic("poison_acc_drop_40", mitigation=True).set_index("model")["value"]
    out["paper_poison_acc_drop_40"] = out.model.map(paper)
    order = {m: i for i, m in enumerate(names_)}
    return out.sort_values("model", key=lambda s: s.map(order)).reset_index(drop=True), note
