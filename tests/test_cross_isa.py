"""nascore.findings.model_zoo.cross_isa_spread on a constructed table (benchmarks/cross_isa_spread.py's CSV)."""
import math

import pandas as pd

from nascore.findings.model_zoo import cross_isa_spread


def test_ranges_and_identical_weights_on_a_constructed_table(tmp_path):
    rows = [("darts", 0, "uncapped", 64.0, "a"), ("darts", 0, "oneDNN AVX2", 63.0, "b"),
            ("darts", 1, "uncapped", 63.5, "c"), ("darts", 1, "oneDNN AVX2", 63.9, "d"),
            ("darts", 0, "oneDNN AVX-512, no AMX", 64.0, "a"),           # same weights as uncapped
            ("vgg13_bn", 0, "ATen AVX2", 53.0, "e")]                       # one run only: no range
    path = tmp_path / "cross_isa.csv"
    pd.DataFrame(rows, columns=["model", "seed", "setting", "test_acc", "weights_sha256"]).assign(
        family="x", cpu_seconds=1.0, capability="AVX512", cpu="cpu").to_csv(path, index=False)
    out = cross_isa_spread(path).set_index("model")
    assert list(out.columns[1:5]) == ["uncapped", "ATen AVX2", "oneDNN AVX2", "oneDNN AVX-512, no AMX"]
    assert out.loc["darts", "uncapped"] == "64.00, 63.50" and out.loc["darts", "oneDNN AVX2"] == "63.00, 63.90"
    assert math.isclose(out.loc["darts", "isa_range"], 1.0)       # seed 0: 64.0 vs 63.0
    assert math.isclose(out.loc["darts", "seed_range"], 0.9)      # oneDNN AVX2: 63.9 vs 63.0
    assert out.loc["darts", "identical_to_uncapped"] == "oneDNN AVX-512, no AMX"
    assert math.isnan(out.loc["vgg13_bn", "isa_range"]) and math.isnan(out.loc["vgg13_bn", "seed_range"])
    assert cross_isa_spread(tmp_path / "missing.csv") is None
