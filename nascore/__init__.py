"""nascore: the security price of efficiency-driven neural-network design.

Subpackages and modules in data-flow order (``../shared/GUIDE.md``; the README's "Layout" table
states each one's contract, ``tests/test_import_layers.py`` checks that none imports a later one):

* ``data`` / ``cifar_archive`` — CIFAR-10 as uint8 NCHW tensors with provenance.
* ``models`` — ``build(name, **scale)``: [0,1] images → logits, normalisation inside;
  ``models.predict.predict`` (batched prediction) and ``models.cost`` (parameters, FLOPs, DeepSloth op counts).
* ``train`` / ``fingerprint`` — resumable training; the code fingerprint of a model's training.
* ``attacks`` — evasion-time attacks share one contract (:class:`nascore.attacks.base.Attack`:
  configured once, ``attack(model, x, y) -> AttackResult``); training-time attacks are
  :class:`nascore.attacks.training.Variant` objects the zoo or a chapter composes.
* ``analysis`` — gradient variance, Hessian spectrum and trace, loss contours.
* ``report`` — the claims table, statistics registry, estimators, confounds, verdicts, result files.
* ``profiles`` / ``parallel`` — the three scales (each chapter's knobs in its own section); worker processes.
* ``zoo`` — the model cache, keyed by config, data and code.
* ``multiexit`` — multi-exit networks (SDNs), early exit, costs, efficacy, latency.
* ``findings`` — one module per chapter (checks, computations, verdict plan, summary numbers).
* ``book`` — runs the chapters with papermill and writes the status appendix.
"""
__version__ = "0.1.0"
