"""Before/after evaluation of trained models: greedy answers side by side, a summary table, training plots.

* :func:`compare_answers` loads each model in turn (base, SFT, DPO, ...), answers a fixed list of prompts greedily
  and returns a pandas DataFrame with one column per model, which renders as a table in Jupyter;
* :func:`training_summary` puts the metrics of several runs side by side (eval loss before/after, DPO margins);
* :func:`plot_training` draws a :class:`~smolsynth.training.TrainingResult` (or a raw ``log_history``): loss and eval
  loss, and for DPO the reward margins and accuracies. It returns a matplotlib ``Figure`` built without pyplot, so it
  shows once in a notebook (as the cell's value), works under the Agg backend, and leaks no global figure.

    >>> from smolsynth.evaluation import compare_answers
    >>> table = compare_answers({"base": "smolsynth/tiny"}, ["Say hi."], max_new_tokens=4)
    >>> list(table.columns)
    ['prompt', 'base']
"""

from __future__ import annotations

import copy

import gc
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from matplotlib.figure import Figure

__all__ = ["compare_answers", "generate_answers", "load_log_history", "plot_rates", "plot_training",
           "training_summary"]


def generate_answers(model: Any, tokenizer: Any, prompts: Sequence[str | list[dict[str, str]]], *,
                     max_new_tokens: int = 64, system_prompt: str | None = None, batch_size: int = 8) -> list[str]:
    """Greedy answers of a loaded ``model`` to ``prompts`` (strings, or message lists), through the chat template.

    >>> from smolsynth.models import load_model
    >>> model, tok = load_model("smolsynth/tiny")
    >>> len(generate_answers(model, tok, ["Hi", "Bye"], max_new_tokens=3))
    2
    """
    import torch
    from transformers import GenerationConfig

    if tokenizer.pad_token is None or tokenizer.padding_side != "left":
        tokenizer = copy.deepcopy(tokenizer)  # the caller's tokenizer is left as it is
        tokenizer.pad_token = tokenizer.pad_token or tokenizer.eos_token
        tokenizer.padding_side = "left"
    eos = [t for t in {tokenizer.eos_token_id, *(_as_list(model.generation_config.eos_token_id))} if t is not None]
    gen = GenerationConfig(max_new_tokens=max_new_tokens, do_sample=False, eos_token_id=eos or None,
                           pad_token_id=tokenizer.pad_token_id)
    texts = []
    for p in prompts:
        messages = [{"role": "user", "content": p}] if isinstance(p, str) else list(p)
        if system_prompt and messages[0]["role"] != "system":
            messages = [{"role": "system", "content": system_prompt}, *messages]
        texts.append(tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True))
    answers: list[str] = []
    device = next(model.parameters()).device
    for start in range(0, len(texts), batch_size):
        batch = tokenizer(texts[start:start + batch_size], return_tensors="pt", padding=True,
                          add_special_tokens=False).to(device)
        with torch.inference_mode():
            out = model.generate(**batch, generation_config=gen)
        new = out[:, batch["input_ids"].shape[1]:]
        answers.extend(s.strip() for s in tokenizer.batch_decode(new, skip_special_tokens=True))
    return answers


def _as_list(x: Any) -> list[Any]:
    if x is None:
        return []
    return list(x) if isinstance(x, (list, tuple)) else [x]


def compare_answers(models: Mapping[str, Any], prompts: Sequence[str], max_new_tokens: int = 64, *,
                    system_prompt: str | None = None) -> pd.DataFrame:
    """Greedy answers of several models to the same prompts, side by side: a DataFrame, one column per model.

    ``models`` maps a column name to a model id or a checkpoint path (``"smolsynth/tiny"``,
    ``sft_result.output_dir``), or to an already loaded ``(model, tokenizer)`` pair. Paths are loaded one at a time
    with :func:`smolsynth.load_model` and released before the next, so base + SFT + DPO fit where one model fits.

    >>> compare_answers({"base": "smolsynth/tiny"}, ["Name a colour."], max_new_tokens=4).shape
    (1, 2)
    """
    import pandas as pd

    from smolsynth.models import load_model
    from smolsynth.verbosity import quiet_training

    if not prompts:
        raise ValueError("compare_answers needs at least one prompt.")
    table: dict[str, list[str]] = {"prompt": list(prompts)}
    for name, spec in models.items():
        if isinstance(spec, tuple) and len(spec) == 2:
            model, tok = spec
            table[name] = generate_answers(model, tok, prompts, max_new_tokens=max_new_tokens,
                                           system_prompt=system_prompt)
            continue
        with quiet_training():
            model, tok = load_model(str(spec))
        try:
            table[name] = generate_answers(model, tok, prompts, max_new_tokens=max_new_tokens,
                                           system_prompt=system_prompt)
        finally:
            del model
            gc.collect()
    return pd.DataFrame(table)


def load_log_history(source: Any) -> list[dict[str, Any]]:
    """The log history of a TrainingResult, a trainer, a saved output folder (``smolsynth_training.json``), or a
    list of log dicts (returned as is)."""
    if isinstance(source, (str, Path)):
        path = Path(source)
        path = path / "smolsynth_training.json" if path.is_dir() else path
        return json.loads(path.read_text(encoding="utf-8"))["log_history"]
    if hasattr(source, "log_history"):
        return list(source.log_history)
    if hasattr(source, "state") and hasattr(source.state, "log_history"):
        return list(source.state.log_history)
    if isinstance(source, Sequence):
        return list(source)
    raise TypeError(f"Cannot read a log history from {type(source).__name__}: pass a TrainingResult, a trainer, "
                    "an output folder or a list of dicts.")


def _series(history: list[dict[str, Any]], key: str) -> tuple[list[float], list[float]]:
    pts = [(h["step"], h[key]) for h in history if key in h and h[key] is not None and "step" in h]
    return [p[0] for p in pts], [float(p[1]) for p in pts]


def plot_training(source: Any, *, title: str | None = None) -> Figure:
    """Plot a training run: loss and eval loss; for DPO also reward margins and accuracies (train and eval).

    ``source`` is a :class:`~smolsynth.training.TrainingResult`, a trainer, an output folder or a ``log_history``
    list. Returns a matplotlib Figure (made without pyplot: the notebook shows it once, as the cell's value; save it
    with ``fig.savefig("loss.png")``).

    >>> fig = plot_training([{"loss": 2.0, "step": 1}, {"loss": 1.5, "step": 2}, {"eval_loss": 1.7, "step": 2}])
    >>> [ax.get_title() for ax in fig.axes]
    ['loss']
    """
    from matplotlib.figure import Figure

    history = load_log_history(source)
    is_dpo = any(k.startswith("rewards/") or k.startswith("eval_rewards/") for h in history for k in h)
    panels = [("loss", "eval_loss")]
    if is_dpo:
        panels += [("rewards/margins", "eval_rewards/margins"), ("rewards/accuracies", "eval_rewards/accuracies")]
    fig = Figure(figsize=(4.2 * len(panels), 3.2), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (train_key, eval_key) in zip(axes, panels):
        x, y = _series(history, train_key)
        if x:
            ax.plot(x, y, marker="." if len(x) < 30 else None, label="train")
        x, y = _series(history, eval_key)
        if x:
            ax.plot(x, y, marker="o", linestyle="--", label="eval")
        if train_key == "rewards/margins":
            for k, style in (("eval_rewards/chosen", ":"), ("eval_rewards/rejected", ":")):
                x, y = _series(history, k)
                if x:
                    ax.plot(x, y, linestyle=style, label=k.split("/")[-1] + " (eval)")
            ax.axhline(0.0, color="grey", linewidth=0.6)
        if train_key == "rewards/accuracies":
            ax.set_ylim(-0.05, 1.05)
        ax.set_title(train_key)
        ax.set_xlabel("step")
        if ax.lines:
            ax.legend(fontsize="small")
        else:
            ax.text(0.5, 0.5, "no data logged", ha="center", va="center", transform=ax.transAxes)
    kind = getattr(source, "kind", None)
    if title or kind:
        fig.suptitle(title or f"{kind.upper()} training")
    _show_figures_in_ipython()
    return fig


def _show_figures_in_ipython() -> None:
    """In an IPython kernel, display a pyplot-free ``Figure`` (a cell's value) as a PNG.

    IPython registers its PNG formatter for figures only once pyplot (or ``%matplotlib inline``) is loaded; without
    it a cell ending in ``plot_training(...)`` shows only ``<Figure size ...>``. Registers it when missing.
    """
    import sys

    if "IPython" not in sys.modules:
        return
    from IPython import get_ipython

    shell = get_ipython()
    if shell is None or not hasattr(shell, "display_formatter"):
        return
    from IPython.core.pylabtools import print_figure
    from matplotlib.figure import Figure

    formatter = shell.display_formatter.formatters["image/png"]
    try:
        formatter.lookup_by_type(Figure)
    except KeyError:
        formatter.for_type(Figure, lambda fig: print_figure(fig, "png", bbox_inches="tight"))


def training_summary(results: Mapping[str, Any] | Sequence[Any]) -> pd.DataFrame:
    """One row per run (SFT, DPO, ...): steps, seconds, examples/s, eval loss before/after and, for DPO, beta, the
    eval reward margin and accuracy before/after, and the margin divided by beta.

    The rewards TRL logs are ``beta`` times a log-probability ratio, so a run with ``beta=0.5`` shows 5x the margin
    of a run with ``beta=0.1`` that moved the model exactly as much. ``eval_logratio_margin_after`` (margin / beta,
    in nats) is the scale on which runs with different betas compare.

    >>> training_summary({}).empty
    True
    """
    import pandas as pd

    items = results.items() if isinstance(results, Mapping) else ((r.kind, r) for r in results)
    keys = ["train_rows", "eval_rows", "train_steps", "examples_per_second", "eval_loss_before", "eval_loss_after",
            "beta", "eval_rewards/margins_before", "eval_rewards/margins_after", "eval_rewards/accuracies_after"]
    rows = []
    for name, r in items:
        row = {"run": name, "kind": r.kind, "profile": r.profile.name if r.profile else None,
               "train_seconds": r.train_seconds}
        row.update({k: r.metrics.get(k) for k in keys})
        margin, beta = r.metrics.get("eval_rewards/margins_after"), r.metrics.get("beta")
        row["eval_logratio_margin_after"] = margin / beta if margin is not None and beta else None
        rows.append(row)
    df = pd.DataFrame(rows).dropna(axis=1, how="all")
    return df.set_index("run") if not df.empty else df


def plot_rates(rates: Mapping[str, float], *, title: str = "", ylabel: str = "share of held-out prompts",
               chance: float | None = None) -> Figure:
    """A bar chart of rates between 0 and 1 (e.g. ``{"base": 0.0, "after SFT": 0.8}``), each bar labelled.

    ``chance`` draws a dashed line (e.g. 0.5 for a preference accuracy). Returns a matplotlib Figure, like
    :func:`plot_training`.

    >>> fig = plot_rates({"before": 0.0, "after": 0.75}, title="trait rate")
    >>> [round(float(p.get_height()), 2) for p in fig.axes[0].patches]
    [0.0, 0.75]
    """
    from matplotlib.figure import Figure

    if not rates:
        raise ValueError("plot_rates needs at least one rate, e.g. plot_rates({'before': 0.0, 'after': 0.8}).")
    fig = Figure(figsize=(1.2 + 1.3 * len(rates), 3.0), layout="constrained")
    ax = fig.subplots()
    bars = ax.bar(list(rates), [float(v) for v in rates.values()], color="#4C72B0")
    ax.bar_label(bars, labels=[f"{v:.0%}" for v in rates.values()], padding=2)
    if chance is not None:
        ax.axhline(chance, color="grey", linestyle="--", linewidth=0.8, label=f"chance ({chance:.0%})")
        ax.legend(fontsize="small", loc="upper left")
    ax.set_ylim(0, 1.12)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    _show_figures_in_ipython()
    return fig
