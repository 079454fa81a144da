"""Reporting: the papers' claims, the statistics registry, verdict rules, result tables.

Modules, each importing only those listed above it (``tests/test_import_layers.py`` checks it):

* :mod:`.gates` — the measurability gates (data: a per-unit condition and a quorum) and their check.
* :mod:`.claim_types` — the :class:`Claim` type and the papers/evidence vocabularies it is checked against.
* :mod:`.claims_table` — the one table of the papers' claims (data), each with one pre-registered
  primary statistic; :mod:`.claims` looks them up (``get``, ``all_claims``, ``CLAIMS``).
* :mod:`.statistics` — the registry: what each statistic is, its units, scale, floor/ceiling, and
  its role under a claim (``role``).
* :mod:`.estimators` — estimators on scipy/statsmodels (bootstrap, permutation, Spearman, Holm, McNemar).
* :mod:`.confounds` — the confound rule: each model's covariates and mediators (``entry_confounds``),
  the size adjustment (log10 parameters, log10 FLOPs: fixed before training) and its common support.
* :mod:`.verdict` — labels, the decision rule, the verdicts-table columns, Holm across primaries.
* :mod:`.compare` — the comparisons chapters call; each returns one verdicts-table row.
* :mod:`.scorecard` — the scorecard, per-chapter verdict blocks (MyST) and ``claims_frame``.
* :mod:`.style` — the family colours the report's and the chapters' figures share.
* :mod:`.paper` — the paper's per-model figure data (protocol §11) and a plot next to ours.
* :mod:`.tables` — CSV + provenance-JSON result files.

The report layer imports nothing from the chapters (:mod:`nascore.findings`), the attacks or the
experiment cache; it reads the model registry (:mod:`nascore.models`) for each model's family.

Typical chapter use::

    from nascore.report import add_confounds, compare_families, save_results, verdict_table
    df = add_confounds(per_model, entries)                  # params, flops, clean_acc, train_loss
    rows = [compare_families(df, "pgd_asr", "evasion.pgd_asr", seed=0),          # primary
            compare_families(df, "pgd_asr_argmax", "evasion.pgd_asr", seed=0)]   # exploratory
    save_results(verdict_table(rows), OUT / "verdicts", provenance)
"""
from .claim_types import EVIDENCE_TAGS, PAPERS, Claim
from .claims import CLAIMS, all_claims, get
from .compare import claim_gate, compare_extreme, compare_families, compare_paired, compare_to_baseline, compare_values
from .confounds import COVARIATES, MEDIATORS, add_confounds, entry_confounds, model_confounds
from .gates import GATES, GateResult
from .estimators import (DiffEstimate, MeanBand, SpearmanResult, auc_trapz, bootstrap_ci, bootstrap_diff, holm,
                         mcnemar_test, mean_band, n_splits, permutation_test, sign_flip_test, spearman_ci)
from .paper import paper_difference, paper_statistic, paper_values, plot_paper_vs_ours
from .scorecard import chapter_table, claims_frame
from .statistics import STATISTICS, Statistic, register, role, statistic
from .style import FAMILY_ORDER, GROUP_COLOURS
from .tables import load_metadata, load_results, save_results
from .verdict import (COLUMNS, INCONCLUSIVE, LABELS, NOT_MEASURABLE, NOT_REPRODUCED, NOT_YET_MEASURED,
                      REPRODUCED, apply_holm, verdict_table)

__all__ = [
    "CLAIMS", "EVIDENCE_TAGS", "PAPERS", "Claim", "all_claims", "claims_frame", "get",
    "compare_extreme", "compare_families", "compare_paired", "compare_to_baseline",
    "compare_values", "claim_gate", "GATES", "GateResult", "COVARIATES", "MEDIATORS", "add_confounds", "entry_confounds", "model_confounds",
    "paper_difference", "paper_statistic", "paper_values", "plot_paper_vs_ours", "chapter_table",
    "STATISTICS", "Statistic", "register", "role", "statistic", "FAMILY_ORDER", "GROUP_COLOURS",
    "DiffEstimate", "MeanBand", "SpearmanResult", "auc_trapz", "bootstrap_ci", "bootstrap_diff", "holm",
    "mcnemar_test", "mean_band", "n_splits", "permutation_test", "sign_flip_test", "spearman_ci",
    "load_metadata", "load_results", "save_results",
    "COLUMNS", "INCONCLUSIVE", "LABELS", "NOT_MEASURABLE", "NOT_REPRODUCED", "NOT_YET_MEASURED", "REPRODUCED",
    "apply_holm", "verdict_table",
]
