"""Chapter 4 — the remedies: deeper cells and fewer skip connections (Pang et al. 2022, §5).

DARTS-i (``diy_deep``: the normal cell's nodes chained), DARTS-ii (``diy_noskip``: skips replaced
by convolutions) and DARTS-iii (``diy_deep_noskip``: both) are compared with DARTS-V2 (``darts``),
whose reduction cell they share. The paper reports them more manual-like (Table 4). Here, with
units chosen so that each comparison has an uncertainty:

* targeted-PGD ASR of the trained models, the artifact's attack (chapter 2), with the
  evaluation **images** as units: the interval says how sure we are that *this trained*
  mitigation is fooled less often than *this trained* DARTS-V2 (training-seed variation is not in it);
* gradient variance at initialisation (the artifact's GV setting), with **initialisation seeds**
  as units, so it needs no training.
"""
from __future__ import annotations

import pandas as pd
import torch

from ..analysis import gradient_variance
from ..attacks import artifact_pgd, attack_batches
from ..profiles import Profile
from ..report import compare_groups
from .evasion import SUCCESS_RULES, eval_images
from .smoothness import fixed_batches, fresh_model

BASELINE = "darts"


def asr_per_image(entries: dict, names, profile: Profile, data, seed: int = 0) -> dict[str, dict[str, torch.Tensor]]:
    """Per-image success (0/1, float) of the artifact's targeted PGD for each model, under each
    success rule of :data:`nascore.findings.evasion.SUCCESS_RULES`: ``{rule: {model: (n,)}}``."""
    out: dict[str, dict[str, torch.Tensor]] = {rule: {} for rule in SUCCESS_RULES}
    for name in names:
        entry = entries[(name, seed)]
        x, y = eval_images(entry, profile, data, profile.pgd_images)
        for rule, success in SUCCESS_RULES.items():
            attack = artifact_pgd() if success is None else artifact_pgd(success_fn=success)
            out[rule][name] = attack_batches(entry.model, x, y, attack, 100).success.float().cpu()
    return out


def gv_init_seeds(entries: dict, names, profile: Profile, data, init_seeds, seed: int = 0) -> pd.DataFrame:
    """Gradient variance of freshly initialised networks for several initialisation seeds, on the
    same fixed batch of test images (the baseline model's), one row per (model, init_seed)."""
    (gx, gy), _ = fixed_batches(entries[(BASELINE, seed)], data, profile)
    rows = []
    for name in names:
        for s in init_seeds:
            r = gradient_variance(fresh_model(name, profile, s), gx, gy)
            rows.append({"model": name, "init_seed": s, "gv_init": r.gv, "params": r.n_params,
                         "gv_init_per_param": r.gv / r.n_params})
    return pd.DataFrame(rows)


def verdict_rows(success: dict[str, dict[str, torch.Tensor]], gv: pd.DataFrame, mitigations,
                 seed: int = 0) -> list[dict]:
    """mitigation − DARTS-V2 for ASR (image units, pp; each success rule) and GV at init
    (init-seed units)."""
    rows = []
    base_gv = gv.loc[gv.model == BASELINE, "gv_init"].to_numpy(float)
    for m in mitigations:
        for rule, per_model in success.items():
            r = compare_groups("mitigation.evasion_manual_like", 100 * per_model[m].numpy(),
                               100 * per_model[BASELINE].numpy(), seed=seed)
            r["setting"] = f"{m}: {rule} (units: images)"
            rows.append(r)
        r = compare_groups("mitigation.grad_var_manual_like", gv.loc[gv.model == m, "gv_init"].to_numpy(float),
                           base_gv, seed=seed)
        r["setting"] = f"{m}: GV at init (units: init seeds)"
        rows.append(r)
    return rows


def positioning(per_model_tables: dict[str, pd.DataFrame], columns) -> pd.DataFrame:
    """For each metric: the NAS-cell mean, the manual mean, and each mitigation and DARTS-V2 value,
    with ``toward_manual`` = (value − NAS mean)/(manual mean − NAS mean) (0 = NAS-like, 1 = manual-like)."""
    merged = None
    for df in per_model_tables.values():
        pm = df.groupby(["model", "family"], as_index=False).mean(numeric_only=True)
        keep = ["model", "family"] + [c for c in columns if c in pm.columns]
        merged = pm[keep] if merged is None else merged.merge(pm[keep], on=["model", "family"], how="outer",
                                                              suffixes=("", "_dup"))
    merged = merged[[c for c in merged.columns if not c.endswith("_dup")]]
    rows = []
    for col in columns:
        if col not in merged:
            continue
        nas = merged.loc[merged.family == "nas", col].mean()
        manual = merged.loc[merged.family == "manual", col].mean()
        for _, r in merged[merged.family == "mitigation"].iterrows():
            rows.append({"metric": col, "model": r.model, "value": r[col], "nas_mean": nas, "manual_mean": manual,
                         "darts": merged.loc[merged.model == BASELINE, col].mean(),
                         "toward_manual": (r[col] - nas) / (manual - nas) if manual != nas else float("nan")})
    return pd.DataFrame(rows)
