"""Reporting: the papers' claims, the statistics registry, verdict rules, result tables.

* :mod:`.claims` — the one table of the papers' claims, each with one pre-registered primary
  statistic (``get``, ``all_claims``, ``claims_frame``).
* :mod:`.statistics` — the registry: what each statistic is, its units, scale, floor/ceiling.
* :mod:`.stats` — estimators on scipy/statsmodels (bootstrap, permutation, Spearman, Holm, McNemar).
* :mod:`.confounds` — OLS adjustment for log-parameters, clean accuracy, final training loss.
* :mod:`.compare` — the comparisons chapters call; each returns one verdicts-table row.
* :mod:`.verdict` — labels, the decision rule, the verdicts-table columns, Holm across primaries.
* :mod:`.scorecard` — the scorecard and per-chapter verdict blocks (MyST).
* :mod:`.paper` — the paper's per-model figure data (protocol §11) and a plot next to ours.
* :mod:`.tables` — CSV + provenance-JSON result files.

Typical chapter use::

    from nascore.report import add_confounds, compare_families, save_results, verdict_table
    df = add_confounds(per_model, entries)                  # params, clean_acc, train_loss
    rows = [compare_families(df, "pgd_asr", "evasion.pgd_asr", seed=0),          # primary
            compare_families(df, "pgd_asr_argmax", "evasion.pgd_asr", seed=0)]   # exploratory
    save_results(verdict_table(rows), OUT / "verdicts", provenance)
"""
from .claims import CLAIMS, EVIDENCE_TAGS, PAPERS, Claim, all_claims, claims_frame, get
from .compare import (compare_extreme, compare_families, compare_groups, compare_paired, compare_to_baseline,
                      compare_values)
from .confounds import CONFOUNDS, add_confounds, model_confounds
from .paper import paper_difference, paper_statistic, paper_values, plot_paper_vs_ours
from .scorecard import chapter_table
from .statistics import STATISTICS, Statistic, register, role, statistic
from .stats import (DiffEstimate, MeanBand, SpearmanResult, auc_trapz, bootstrap_ci, bootstrap_diff, holm,
                    mcnemar_test, mean_band, n_splits, permutation_test, sign_flip_test, spearman_ci)
from .tables import load_metadata, load_results, save_results
from .verdict import (COLUMNS, INCONCLUSIVE, LABELS, NOT_MEASURABLE, NOT_REPRODUCED, NOT_YET_MEASURED,
                      REPRODUCED, TABLE_COLUMN_DESCRIPTIONS, Verdict, apply_holm, verdict, verdict_table)

__all__ = [
    "CLAIMS", "EVIDENCE_TAGS", "PAPERS", "Claim", "all_claims", "claims_frame", "get",
    "compare_extreme", "compare_families", "compare_groups", "compare_paired", "compare_to_baseline",
    "compare_values", "CONFOUNDS", "add_confounds", "model_confounds",
    "paper_difference", "paper_statistic", "paper_values", "plot_paper_vs_ours", "chapter_table",
    "STATISTICS", "Statistic", "register", "role", "statistic",
    "DiffEstimate", "MeanBand", "SpearmanResult", "auc_trapz", "bootstrap_ci", "bootstrap_diff", "holm",
    "mcnemar_test", "mean_band", "n_splits", "permutation_test", "sign_flip_test", "spearman_ci",
    "load_metadata", "load_results", "save_results",
    "COLUMNS", "INCONCLUSIVE", "LABELS", "NOT_MEASURABLE", "NOT_REPRODUCED", "NOT_YET_MEASURED", "REPRODUCED",
    "TABLE_COLUMN_DESCRIPTIONS", "Verdict", "apply_holm", "verdict", "verdict_table",
]
