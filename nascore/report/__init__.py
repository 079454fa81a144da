"""Reporting: the papers' claims, statistics across models, verdicts, and result tables.

* :mod:`.claims` — the one table of the papers' claims (``get``, ``all_claims``, ``claims_frame``).
* :mod:`.stats` — seeded, vectorised bootstrap CIs and permutation tests (one value per model).
* :mod:`.verdict` — the project's definition of reproduced / not reproduced / inconclusive.
* :mod:`.tables` — CSV + provenance-JSON result files.

Typical chapter use::

    from nascore.report import compare_groups, verdict_table
    row = compare_groups("evasion.pgd_asr", nas_asr, manual_asr, seed=0)
    scorecard = verdict_table([row])
"""
from .claims import CLAIMS, EVIDENCE_TAGS, PAPERS, Claim, all_claims, claims_frame, get
from .stats import (DiffEstimate, MeanBand, SpearmanResult, auc_trapz, bootstrap_ci, bootstrap_diff,
                    mean_band, n_splits, permutation_test, sign_flip_test, spearman_ci)
from .tables import load_metadata, load_results, save_results
from .verdict import (INCONCLUSIVE, LABELS, NOT_REPRODUCED, REPRODUCED, TABLE_COLUMN_DESCRIPTIONS,
                      Verdict, compare_groups, compare_values, verdict, verdict_table)

__all__ = [
    "CLAIMS", "EVIDENCE_TAGS", "PAPERS", "Claim", "all_claims", "claims_frame", "get",
    "DiffEstimate", "MeanBand", "SpearmanResult", "auc_trapz", "bootstrap_ci", "bootstrap_diff",
    "mean_band", "n_splits", "permutation_test", "sign_flip_test", "spearman_ci",
    "load_metadata", "load_results", "save_results",
    "INCONCLUSIVE", "LABELS", "NOT_REPRODUCED", "REPRODUCED", "TABLE_COLUMN_DESCRIPTIONS",
    "Verdict", "compare_groups", "compare_values", "verdict", "verdict_table",
]
