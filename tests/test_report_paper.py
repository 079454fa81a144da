"""The paper's per-model figure data (protocol §11): the packaged copy, its means, and the plot."""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nascore.report import get, paper_difference, paper_statistic, paper_values, plot_paper_vs_ours
from nascore.report.paper import PAPER_CSV

SHA256 = "6607b435854287f46a9071e99b136e5d988630012fbb05c7428952e014b826b4"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "protocol" / "paper_values_cifar10.csv"


def test_packaged_copy_is_the_protocol_file():
    assert hashlib.sha256(PAPER_CSV.read_bytes()).hexdigest() == SHA256
    if SHARED.exists():
        assert SHARED.read_bytes() == PAPER_CSV.read_bytes()
    df = paper_values()
    assert len(df) == 391 and not df.duplicated(["figure", "setting", "model"]).any()  # §11 says 390
    assert set(df.family) == {"nas", "manual", "mitigation"}
    assert set(df.loc[~df.in_artifact, "model"]) == {"mobilenet", "proxylessnas"}


@pytest.mark.parametrize("figure, setting, manual, nas", [
    ("Table 1", "clean accuracy (200 epochs)", 96.42, 96.94),
    ("Fig. 2", '"best" series', 83.6, 97.0),
    ("Fig. 2", '"worst" series', 70.2, 82.1),
    ("Fig. 7", "BadNet ASR", 90.5, 93.2),
    ("Fig. 7", "TrojanNN ASR", 95.8, 99.6),
    ("Fig. 7", "TrojanNN CAD", 3.5, 3.0),
    ("Fig. 9", "16k queries", 1.35, 1.24),
    ("Fig. 10", "membership", 0.514, 0.569),
    ("Fig. 12", "before training", 5096, 41.8),
])
def test_section_11_means_are_recovered(figure, setting, manual, nas):
    means = paper_values(figure, setting).groupby("family")["value"].mean()
    for family, quoted in (("manual", manual), ("nas", nas)):
        decimals = len(repr(float(quoted)).split(".")[1].rstrip("0"))
        assert means[family] == pytest.approx(quoted, abs=0.51 * 10 ** -decimals), family  # as rounded in §11


def test_derived_statistics_and_differences():
    drop = paper_statistic("poison_acc_drop_40").groupby("family")["value"].mean()
    assert drop["manual"] == pytest.approx(10.2, abs=0.05) and drop["nas"] == pytest.approx(15.1, abs=0.05)
    assert paper_difference("poison_acc_drop_40") == pytest.approx(15.1 - 10.2, abs=0.1)
    gv = paper_statistic("log10_gv_init").groupby("family")["value"].mean()
    assert (gv["manual"], gv["nas"]) == pytest.approx((3.34, 1.62), abs=0.005)
    assert paper_difference("poison_acc_drop_40", subject="diy_deep") == pytest.approx(26.9 - 16.2, abs=0.05)
    assert paper_difference("poison_acc_drop_40", subject="diy_deep_noskip") == pytest.approx(24.5 - 16.2, abs=0.05)
    assert paper_difference("extraction_ce", subject="diy_deep") == pytest.approx(2.01 - 1.31, abs=0.01)
    assert paper_difference(figure="Fig. 6", setting="at 10 %") < 0       # accuracies, not drops
    with pytest.raises(ValueError, match="series"):
        paper_difference("pgd_asr")
    assert paper_difference("pgd_asr", series="best") == pytest.approx(97.0 - 83.6, abs=0.1)
    with pytest.raises(ValueError, match="valid"):
        paper_values("Fig. 6", "accuracy")                                # ambiguous fragment


def test_claims_table_sizes_agree_with_the_paper_data():
    """The sizes typed in the claims table from §11 are what the data give."""
    assert get("backdoor.trojannn_asr").expected == pytest.approx(paper_difference("trojannn_asr"), abs=0.05)
    assert get("backdoor.trojannn_cad").expected == pytest.approx(paper_difference("trojannn_cad"), abs=0.05)
    lo, hi = get("poisoning.acc_drop").claimed_interval
    assert lo <= paper_difference("poison_acc_drop_40") <= hi
    lo, hi = get("smoothness.grad_var").claimed_interval
    assert lo <= paper_difference("log10_gv_init") <= hi                  # −1.72 in [−2.7, −1.7]
    assert get("smoothness.grad_var").direction == "less" and paper_difference("log10_gv_trained") < 0
    assert get("mitigation.poison_drop").claimed_interval[0] <= paper_difference(
        "poison_acc_drop_40", subject="diy_deep_noskip")


def test_plot_paper_vs_ours_draws_both_values_per_model():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ours = pd.DataFrame({"model": ["darts", "darts", "resnet18", "dla34"], "pgd_asr": [10.0, 20.0, 5.0, 7.0]})
    ax = plot_paper_vs_ours(ours, "pgd_asr", series="best", ours_label="this book (quick)")
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert len(labels) == 17 and labels.index("resnet18") < labels.index("darts")   # manual first
    filled = [c for c in ax.collections if c.get_offsets()[0][1] == 15.0]            # darts' seed mean
    assert filled and all(t.get_fontsize() >= 10 for t in ax.get_xticklabels())
    plt.close(ax.figure)
    gv = pd.DataFrame({"model": ["darts", "resnet18"], "gv_init": [100.0, 1000.0]})
    ax = plot_paper_vs_ours(gv, "log10_gv_init")
    ys = sorted(c.get_offsets()[0][1] for c in ax.collections)
    assert 2.0 in ys and 3.0 in ys                                                   # log10 of ours
    plt.close(ax.figure)
    with pytest.raises(ValueError, match="series"):
        plot_paper_vs_ours(ours, "pgd_asr")
    with pytest.raises(KeyError, match="no values"):
        plot_paper_vs_ours(ours.rename(columns={"pgd_asr": "nes_asr"}), "nes_asr")
    assert np.isfinite(paper_statistic("test_acc")["value"]).all()
