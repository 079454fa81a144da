"""Pilot for the quick profile: clean test accuracy against CPU-minutes for candidate recipes.

Issue "quick v2": the old quick recipe (1,200 training images seen 10 times, the protocol's
200-epoch recipe cut to 10 epochs) left models at 16–32 % accuracy. This script trains the same
models under candidate short-schedule recipes and reports, per (model, candidate): accuracy on the
full 10,000-image test set, the training CPU-minutes (one thread; CPU time, so other processes on the
machine do not inflate it), images per CPU-second, the final
training loss and the predictions per class (a collapsed model predicts one class).

Every candidate goes through the model cache (``nascore.zoo``), so a candidate that becomes the
quick profile is not trained twice. Candidates are trained by two single-threaded worker
processes (how the zoo trains), slowest first.

    OMP_NUM_THREADS=1 python benchmarks/pilot_quick_recipe.py --out results/pilot/pilot.csv
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from nascore import provenance, zoo
from nascore.models import family
from nascore.profiles import get_profile

#: The quick-v2 short schedule (issue 8's probe): Nesterov SGD, peak lr 0.2 reached by a linear
#: warm-up over 15 % of the steps, then linear decay to 0; batch 128; no cutout, no dropout (the
#: models under-fit); bf16 autocast where it pays (see bench_speed_levers.py).
SHORT = dict(batch_size=128, dropout=0.0, recipe=dict(nesterov=True, lr=0.2, schedule="warmup_linear",
                                                      warmup_fraction=0.15, cutout=0))
CANDIDATES = {
    "v1: 1.2k images x 10 epochs (old quick)": dict(train_per_class=120, test_per_class=None, epochs=10),
    "50k x 1 epoch, short schedule": dict(train_per_class=None, test_per_class=None, epochs=1, **SHORT),
    "50k x 2 epochs, short schedule": dict(train_per_class=None, test_per_class=None, epochs=2, **SHORT),
    "25k x 1 epoch, short schedule": dict(train_per_class=2500, test_per_class=None, epochs=1, **SHORT),
    "50k x 1 epoch, peak lr 0.4": dict(train_per_class=None, test_per_class=None, epochs=1,
                                       **{**SHORT, "recipe": {**SHORT["recipe"], "lr": 0.4}}),
    "50k x 1 epoch, batch 64, peak lr 0.1": dict(train_per_class=None, test_per_class=None, epochs=1,
                                                 **{**SHORT, "batch_size": 64, "recipe": {**SHORT["recipe"], "lr": 0.1}}),
}


def candidate_profile(knobs: dict, precision: str, nas_scale: dict, manual_scale: dict):
    """The quick profile with a candidate's data, schedule and recipe; ``dropout`` (DARTS ops) is a
    NAS scale knob, 0.2 in the artifact."""
    knobs = dict(knobs)
    recipe = {**knobs.pop("recipe", {}), "precision": precision}
    nas = {**nas_scale, **({"dropout": knobs.pop("dropout")} if "dropout" in knobs else {})}
    return get_profile("quick", recipe=recipe, nas_scale=nas, manual_scale=manual_scale, **knobs)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="+", default=["darts", "resnet18", "densenet121"])
    ap.add_argument("--candidates", nargs="+", default=list(CANDIDATES), help="names from CANDIDATES")
    ap.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    ap.add_argument("--C", type=int, default=8)
    ap.add_argument("--layers", type=int, default=5)
    ap.add_argument("--width", type=float, default=1 / 8)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", default="results/pilot/pilot.csv")
    args = ap.parse_args(argv)
    bad = [c for c in args.candidates if c not in CANDIDATES]
    if bad:
        raise SystemExit(f"unknown candidate(s) {bad}; valid: {list(CANDIDATES)}")
    rows = []
    for cand in args.candidates:
        prof = candidate_profile(CANDIDATES[cand], args.precision, {"C": args.C, "layers": args.layers},
                                 {"width": args.width})
        trained = zoo.train_many(args.models, prof, seeds=(0,), workers=args.workers, progress=True)
        for (name, seed), tm in trained.items():
            m, h = tm.record["metrics"], tm.record["history"]
            rows.append({"candidate": cand, "model": name, "family": family(name), "precision": args.precision,
                         "scale": json.dumps(prof.scale_for(name)), "epochs": len(h),
                         "train_images": m["n_train"], "test_images": m["n_test"],
                         "test_acc": 100 * m["test_acc"], "cpu_minutes": m["train_cpu_seconds"] / 60,
                         "wall_minutes": m["train_seconds"] / 60,
                         "img_per_cpu_s": sum(r["images"] for r in h) / m["train_cpu_seconds"],
                         "final_train_loss": m["final_train_loss"],
                         "largest_class_share": max(m["prediction_counts"]) / sum(m["prediction_counts"]),
                         "key": tm.record["key"]})
    df = pd.DataFrame(rows)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(out, index=False)
    out.with_suffix(".json").write_text(json.dumps(provenance.collect("cpu", args=vars(args)), indent=2))
    print(df.drop(columns=["key", "scale"]).to_string(index=False, float_format=lambda v: f"{v:.3g}"))


if __name__ == "__main__":
    main()
