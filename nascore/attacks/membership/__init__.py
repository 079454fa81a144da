"""Membership inference: is a given image in the model's training set?

* :mod:`.hopskipjump` — the label-only boundary-distance attack of the artifact of Pang et al.
  (2022, protocol §4.5): :class:`HopSkipJump`, batched across samples; the score is the
  distance to the decision boundary (L∞ as the artifact computes it, L2 as the attack optimises).
* :mod:`.scores` — score-based attacks: loss threshold (Yeom et al. 2018), confidence and
  entropy thresholds, and an offline LiRA-style calibrated score (Carlini et al. 2022).
* :mod:`.sets` — the member / non-member sets (balanced, seeded; the artifact's
  confidence-matched non-members with a stated widening rule).
* :mod:`.metrics` — ROC curve, AUC (and the artifact's folded AUC), TPR at low FPR, in numpy.
"""
from .hopskipjump import BoundaryResult, HopSkipJump, artifact_hopskipjump
from .metrics import (auc_interval, auc_p_value, folded_auc, folded_auc_null_mean, min_resolvable_fpr, roc_auc, roc_curve,
                      tpr_at_fpr)
from .scores import SCORE_ATTACKS, lira_offline, logit_confidence, membership_scores
from .sets import ARTIFACT_SEED, CONFIDENCE_BAND, artifact_members, confidence_matched, random_indices, shared_band

__all__ = ["HopSkipJump", "BoundaryResult", "artifact_hopskipjump",
           "roc_curve", "roc_auc", "folded_auc", "folded_auc_null_mean", "tpr_at_fpr", "min_resolvable_fpr",
           "auc_p_value", "auc_interval", "SCORE_ATTACKS", "membership_scores", "logit_confidence", "lira_offline",
           "ARTIFACT_SEED", "CONFIDENCE_BAND", "artifact_members", "confidence_matched", "random_indices",
           "shared_band"]
