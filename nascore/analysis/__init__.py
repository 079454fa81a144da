"""Analyses behind the "why are NAS cells vulnerable" argument (Pang et al., USENIX Sec 2022, §5).

* :mod:`.grad_variance` — gradient variance of per-sample, norm-clipped CE gradients
  (protocol ``automl-security.md`` §5.1, Fig. 12), with GV per parameter, log10 GV and the
  fraction of clipped gradients.
* :mod:`.contours` — loss contours in parameter space (all parameters along filter-normalised
  directions, Li et al. 2018; or the artifact's first-conv ±1 mode) and input space (protocol
  §5.2, Eq. 12), and the sharpness number; :mod:`.directions` builds the directions and
  :mod:`.contour_plot` draws several models on one colour scale.
* :mod:`.hessian` — the one eigenvalue estimator (power iteration to a tolerance; the eigenvalue of
  largest magnitude or, shifted, the largest one) and the trace (Hutchinson 1989) with their
  convergence records, on Hessian-vector products from :mod:`.hvp`, PyHessian-style
  (Yao et al. 2020). **An addition to the paper** (§5.3).

All analyses take a model mapping ``(N, 3, H, W)`` [0,1] images to logits, run it in eval mode
(BatchNorm running statistics, dropout off) and restore every module's mode afterwards.
"""
from .contour_plot import BOOK_WIDTH_IN, plot_contour, plot_contours
from .contours import (DEFAULT_SPAN, MODES, ContourResult, first_conv, flatness, grid_coordinates,
                       input_contour, parameter_contour)
from .directions import (balanced_sign_directions, cosine, filter_normalized_directions,
                         input_directions)
from .grad_variance import (GVResult, eval_mode, gradient_variance, gradient_variance_loop,
                            trainable_parameters)
from .hessian import (WHICH, EigenResult, TraceResult, hessian_trace, hutchinson, power_iteration,
                      top_eigenvalue)
from .hvp import HVP, hvp, hvp_fn

__all__ = [
    "GVResult", "gradient_variance", "gradient_variance_loop", "eval_mode",
    "trainable_parameters",
    "HVP", "hvp", "hvp_fn", "power_iteration", "hutchinson", "top_eigenvalue", "hessian_trace",
    "EigenResult", "TraceResult", "WHICH",
    "ContourResult", "balanced_sign_directions", "filter_normalized_directions", "cosine",
    "first_conv", "grid_coordinates", "parameter_contour", "input_contour", "input_directions",
    "flatness", "plot_contour", "plot_contours", "MODES", "DEFAULT_SPAN", "BOOK_WIDTH_IN",
]
