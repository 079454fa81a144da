"""Multi-exit networks (Shallow-Deep Networks) and early-exit inference, for DeepSloth.

Protocol ``deepsloth.md`` (Hong et al., ICLR 2021; Kaya et al., ICML 2019):

* :mod:`.sdn` — :class:`SDN`: internal classifiers on any :class:`~nascore.models.base.BlockNet`
  (after every block, or the SDN paper's layout), backbone frozen; :mod:`.heads` the IC head,
  :mod:`.taps` lazy block-by-block evaluation;
* :mod:`.train_ics` — IC-only training with reusable pooled features; :mod:`.store` caches it;
* :mod:`.cost` — analytic per-exit cost fractions (the authors' operation counts);
* :mod:`.inference` — the exit rule, vectorised and batch-1; :mod:`.metrics` — EEC curve,
  efficacy, RAD thresholds; :mod:`.latency` — measured per-image wall time.
"""
from .cost import GROUPED_CONV_COUNTS, block_costs, cost_fractions, exit_costs
from .heads import ICHead
from .inference import (ExitRecord, early_exit_accuracy, early_exit_one, early_exit_predictions, exit_indices,
                        exit_record)
from .latency import latency_summary, measure_latency
from .metrics import (RAD_BUDGETS, THRESHOLD_GRID, choose_threshold, eec_curve, efficacy, exit_accuracies,
                      per_sample_efficacy, threshold_table)
from .sdn import LAYOUTS, SDN, ic_blocks
from .store import ic_recipe, trained_sdn
from .taps import iter_taps, tap_shapes
from .train_ics import ICRecipe, fit_ics, reduced_features

__all__ = [
    "SDN", "ICHead", "LAYOUTS", "ic_blocks", "iter_taps", "tap_shapes",
    "ICRecipe", "fit_ics", "reduced_features", "ic_recipe", "trained_sdn",
    "GROUPED_CONV_COUNTS", "block_costs", "exit_costs", "cost_fractions",
    "ExitRecord", "exit_record", "exit_indices", "early_exit_one", "early_exit_predictions", "early_exit_accuracy",
    "THRESHOLD_GRID", "RAD_BUDGETS", "threshold_table", "choose_threshold", "eec_curve", "efficacy",
    "per_sample_efficacy", "exit_accuracies", "measure_latency", "latency_summary",
]
