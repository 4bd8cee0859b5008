"""Static figures: they draw what they are given, read training logs, and reject mismatched input."""
from __future__ import annotations

import json
import subprocess
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from gpt2lib import plots  # noqa: E402


def teardown_function():
    plt.close("all")


def test_plot_losses_draws_train_val_and_baseline():
    ax = plots.plot_losses([0, 10, 20], [3.0, 2.5, 2.0], val=[3.1, 2.2], baselines={"bigram": 2.4})
    lines = ax.get_lines()
    assert [list(line.get_ydata()) for line in lines[:2]] == [[3.0, 2.5, 2.0], [3.1, 2.2]]
    assert list(lines[1].get_xdata()) == [0, 20]  # validation spread over the run
    assert list(lines[2].get_ydata()) == [2.4, 2.4]
    assert "bigram (2.400)" in [t.get_text() for t in ax.get_legend().get_texts()]


def test_plot_losses_from_metrics_jsonl(tmp_path):
    log = tmp_path / "metrics.jsonl"
    rows = [{"step": 0, "train_loss": 4.0}, {"step": 5, "train_loss": 3.0, "val_loss": 3.2},
            {"step": 10, "loss": 2.0}]
    log.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    m = plots.read_metrics(log)
    assert m == {"step": [0.0, 5.0, 10.0], "train": [4.0, 3.0, 2.0], "val_step": [5.0], "val": [3.2]}
    ax = plots.plot_losses(log)
    assert list(ax.get_lines()[1].get_xdata()) == [5.0]


def test_plot_losses_from_a_train_result():
    from gpt2lib.training import TrainResult

    result = TrainResult(history=[{"step": 0, "train_loss": 4.0, "val_loss": 4.1}, {"step": 5, "train_loss": 3.0},
                                  {"step": 10, "train_loss": 2.5, "val_loss": 2.7}])
    ax = plots.plot_losses(result, baselines={"bigram": 3.5})
    train, val, bigram = ax.get_lines()[:3]
    assert list(train.get_ydata()) == [4.0, 3.0, 2.5] and list(val.get_xdata()) == [0, 10]
    assert list(val.get_ydata()) == [4.1, 2.7] and list(bigram.get_ydata()) == [3.5, 3.5]


def test_plot_losses_rejects_mismatched_lengths(tmp_path):
    with pytest.raises(ValueError, match="differ in length"):
        plots.plot_losses([0, 1, 2], [1.0, 2.0])
    with pytest.raises(ValueError, match="no metrics file"):
        plots.plot_losses(tmp_path / "missing.jsonl")


def test_plot_attention_shows_the_matrix():
    w = torch.tril(torch.ones(4, 4))
    w = w / w.sum(dim=1, keepdim=True)
    ax = plots.plot_attention(w, ["a", "b", "c", "d"])
    shown = ax.get_images()[0].get_array()
    assert shown.shape == (4, 4) and abs(float(shown[3, 0]) - 0.25) < 1e-6
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b", "c", "d"]


def test_plot_attention_rejects_wrong_shapes():
    with pytest.raises(ValueError, match="square"):
        plots.plot_attention(torch.rand(2, 3, 3), ["a", "b"])
    with pytest.raises(ValueError, match="labels"):
        plots.plot_attention(torch.rand(3, 3), ["a", "b"])


def test_plot_distribution_orders_bars_and_highlights_choice():
    p = torch.tensor([0.1, 0.6, 0.3])
    ax = plots.plot_distribution(p, ["x", "y", "z"], chosen=2)
    widths = [bar.get_width() for bar in ax.patches]
    assert widths == pytest.approx([0.6, 0.3, 0.1])
    assert ax.patches[1].get_facecolor() != ax.patches[0].get_facecolor()


def test_show_tokens_marks_every_boundary_and_escapes():
    out = plots.tokens_html(["<b>", " world", "\n"], ids=[1, 2, 3])
    assert out.count('class="gpt2-tok"') == 3
    assert "&lt;b&gt;" in out and "<b>" not in out.replace("<br>", "")
    assert "id 2" in out and "3 tokens" in out
    assert plots.token_colour(0) != plots.token_colour(1)
    html_obj = plots.show_tokens([b"a", b"b"])
    assert "gpt2-tok" in html_obj.data


def test_importing_plots_pulls_in_no_heavy_module():
    code = ("import sys, gpt2lib.plots; heavy = [m for m in ('torch', 'matplotlib', 'gpt2lib.model', "
            "'gpt2lib.training') if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
