"""smolsynth.evaluation: the before/after table and the training plots, on real tiny SFT/DPO checkpoints."""

from __future__ import annotations

import io

import matplotlib
import pandas as pd
import pytest
from matplotlib.figure import Figure

from smolsynth.evaluation import compare_answers, generate_answers, load_log_history, plot_training, training_summary

PROMPTS = ["What is 2 plus 2?", "Name a colour.", "Say hello."]


def test_compare_answers_is_a_side_by_side_dataframe(trained_sft, trained_dpo):
    table = compare_answers({"base": "smolsynth/tiny", "sft": trained_sft.output_dir, "dpo": trained_dpo.output_dir},
                            PROMPTS, max_new_tokens=6)
    assert isinstance(table, pd.DataFrame)
    assert list(table.columns) == ["prompt", "base", "sft", "dpo"]
    assert table["prompt"].tolist() == PROMPTS
    assert all(isinstance(v, str) for col in ("base", "sft", "dpo") for v in table[col])
    assert "<table" in table._repr_html_()  # what Jupyter shows


def test_greedy_answers_are_deterministic_and_batched_like_single(trained_sft):
    from smolsynth import load_model

    model, tok = load_model(trained_sft.output_dir)
    batched = generate_answers(model, tok, PROMPTS, max_new_tokens=6, batch_size=3)
    single = [generate_answers(model, tok, [p], max_new_tokens=6)[0] for p in PROMPTS]
    assert batched == single == generate_answers(model, tok, PROMPTS, max_new_tokens=6)
    # a loaded (model, tokenizer) pair is accepted as is
    assert compare_answers({"sft": (model, tok)}, PROMPTS, max_new_tokens=6)["sft"].tolist() == batched


def test_compare_answers_needs_prompts():
    with pytest.raises(ValueError, match="at least one prompt"):
        compare_answers({"base": "smolsynth/tiny"}, [])


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def test_plot_sft_is_a_figure_with_train_and_eval_loss(trained_sft):
    matplotlib.use("Agg")
    fig = plot_training(trained_sft)
    assert isinstance(fig, Figure)
    assert [ax.get_title() for ax in fig.axes] == ["loss"]
    labels = [line.get_label() for line in fig.axes[0].lines]
    assert labels == ["train", "eval"]
    eval_x = fig.axes[0].lines[1].get_xdata()
    assert eval_x[0] == 0  # the evaluation before training is on the curve
    assert _png(fig).startswith(b"\x89PNG")


def test_plot_dpo_has_rewards_panels(trained_dpo):
    fig = plot_training(trained_dpo)
    assert [ax.get_title() for ax in fig.axes] == ["loss", "rewards/margins", "rewards/accuracies"]
    margins = {line.get_label(): line for line in fig.axes[1].lines}
    assert {"train", "eval", "chosen (eval)", "rejected (eval)"} <= set(margins)
    assert margins["eval"].get_ydata()[0] == pytest.approx(0.0, abs=1e-6)  # step-0 margin from the saved SFT path
    assert _png(fig).startswith(b"\x89PNG")


def test_plot_from_a_saved_run_and_from_a_raw_log(trained_dpo):
    assert load_log_history(trained_dpo.output_dir) == load_log_history(trained_dpo)
    fig = plot_training(trained_dpo.output_dir, title="from disk")
    assert fig._suptitle.get_text() == "from disk"
    empty = plot_training([{"eval_loss": 1.0, "step": 0}])
    assert [ax.get_title() for ax in empty.axes] == ["loss"]


def test_training_summary_table(trained_sft, trained_dpo):
    df = training_summary({"SFT": trained_sft, "DPO": trained_dpo})
    assert list(df.index) == ["SFT", "DPO"]
    assert df.loc["SFT", "eval_loss_after"] < df.loc["SFT", "eval_loss_before"]
    assert df.loc["DPO", "eval_rewards/margins_before"] == pytest.approx(0.0, abs=1e-6)
    assert df.loc["DPO", "profile"] == "cpu-fp32"
