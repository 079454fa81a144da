"""Analyses behind the "why are NAS cells vulnerable" argument (Pang et al., USENIX Sec 2022, §5).

* :mod:`.grad_variance` — gradient variance of per-sample, norm-clipped CE gradients
  (protocol ``automl-security.md`` §5.1, Fig. 12).
* :mod:`.contours` — loss contours in parameter space (first conv weight) and input space
  (protocol §5.2, Eq. 12), a flatness number and the contour plot.
* :mod:`.hessian` — Hessian-vector products, top eigenvalue (power iteration) and trace
  (Hutchinson 1989), PyHessian-style (Yao et al. 2020). **An addition to the paper** (§5.3).

All analyses take a model mapping ``(N, 3, H, W)`` [0,1] images to logits, run it in eval mode
(BatchNorm running statistics, dropout off) and restore every module's mode afterwards.
"""
from .contours import (ContourResult, balanced_sign_directions, first_conv, flatness,
                       grid_coordinates, input_contour, input_directions, parameter_contour,
                       plot_contour)
from .grad_variance import (GVResult, eval_mode, gradient_variance, gradient_variance_loop,
                            trainable_parameters)
from .hessian import (HVP, hessian_trace, hutchinson, hvp, hvp_fn, power_iteration,
                      top_eigenvalue)

__all__ = [
    "GVResult", "gradient_variance", "gradient_variance_loop", "eval_mode",
    "trainable_parameters",
    "HVP", "hvp", "hvp_fn", "power_iteration", "hutchinson", "top_eigenvalue", "hessian_trace",
    "ContourResult", "balanced_sign_directions", "first_conv", "grid_coordinates",
    "parameter_contour", "input_contour", "input_directions", "flatness", "plot_contour",
]
