"""Exercises of notebook 04, "DPO: preference optimisation from your SFT model".

``q1`` 🐢 runs DPO from the saved SFT checkpoint and checks that it started at a zero margin; ``q2`` 🐕 compares
two values of ``beta`` on the same data and steps; ``q3`` 🦁 trains on preference pairs of the learner's own. The
checks judge structure (where a run started, its step-0 rewards, what was saved and whether it loads and generates),
never the wording of an answer.

    >>> from smolsynth.exercises import ____, nb04
    >>> nb04.q2.evaluate(beta_runs=____, beta_table=____).status
    'not_attempted'
    >>> nb04.q2.evaluate(beta_runs={0.1: None}, beta_table=None).message
    '`beta_runs` has 1 run; compare at least two values of beta.'
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from smolsynth.exercises.core import Exercise, Incorrect, Level, expect
from smolsynth.exercises.nb03 import loads_and_generates, training_result

NOTEBOOK = "04_dpo"
MIN_OWN_PAIRS = 4


def _started_from_sft(result: Any, name: str) -> str:
    """The SFT checkpoint folder a DPO run started from; Incorrect when it started elsewhere."""
    start = str(result.metrics.get("model"))
    info = Path(start) / "smolsynth_training.json"
    expect(info.exists(),
           f"`{name}` started from {start!r}, which is not a saved SFT checkpoint: DPO should start from the folder "
           "of your SFT model (its path), so that the reference model is that same checkpoint.")
    kind = json.loads(info.read_text(encoding="utf-8")).get("kind")
    expect(kind == "sft", f"`{name}` started from a saved {str(kind).upper()} run, not an SFT one.")
    return start


def _start_margin(result: Any, name: str) -> float:
    from smolsynth.training import START_MARGIN_TOLERANCE

    margin = result.metrics.get("eval_rewards/margins_before")
    expect(margin is not None,
           f"`{name}` has no evaluation before the first step (`eval_rewards/margins_before`): keep an eval split "
           "(the default `eval_fraction`) so the start can be checked.")
    beta = float(result.config.beta)
    expect(abs(margin) <= START_MARGIN_TOLERANCE * beta,
           f"`{name}` started with a reward margin of {margin:.4g}, not ~0: the reference model was not the policy "
           "you started from. Pass the SFT checkpoint's path as `model=` (not a model object).")
    return float(margin)


class DPOFromSFT(Exercise):
    notebook = NOTEBOOK
    name = "q1"
    title = "DPO from your SFT checkpoint"
    level = Level.DEFAULT
    variables = ("my_dpo_result",)
    hints = (
        "Call `dpo(pairs.dataset, model=..., output_dir=..., max_steps=MAX_STEPS)` as in the lesson, with an "
        "`output_dir` of your own (e.g. `str(RUNS / \"my-dpo\")`).",
        "`model=` is the *path* of the SFT checkpoint (`sft_model.path`), a string: then TRL loads the reference "
        "model from that same folder and the rewards start at 0.",
        "Keep the default `eval_fraction`: the evaluation before the first step is what shows the start margin.",
    )

    def _check(self, my_dpo_result: Any) -> str:
        result = training_result(my_dpo_result, "my_dpo_result", "dpo")
        start = _started_from_sft(result, "my_dpo_result")
        margin = _start_margin(result, "my_dpo_result")
        expect(result.metrics.get("train_steps", 0) >= 1, "`my_dpo_result` did not train a single step.")
        loads_and_generates(result.output_dir, "my_dpo_result")
        after = result.metrics.get("eval_rewards/margins_after")
        moved = f"; after {result.metrics['train_steps']} steps it is {after:.4g}" if after is not None else ""
        return (f"DPO started from {start} with a reward margin of {margin:.3g} at step 0 (the reference is the "
                f"starting policy){moved}. The checkpoint in {result.output_dir} loads and generates.")


class BetaComparison(Exercise):
    notebook = NOTEBOOK
    name = "q2"
    title = "Compare two values of beta"
    level = Level.VARIANT
    variables = ("beta_runs", "beta_table")
    hints = (
        "`beta_runs` is a dict: each key a value of beta (a number), each value the `dpo(...)` result trained with "
        "`beta=` that value. You may reuse `dpo_result` from the lesson for its beta.",
        "Compare like with like: the same pairs, the same starting SFT checkpoint and the same `max_steps` for "
        "every run; only beta changes.",
        "`beta_table = training_summary(beta_runs)` puts the runs side by side.",
    )

    def _check(self, beta_runs: Any, beta_table: Any) -> str:
        expect(isinstance(beta_runs, dict),
               f"`beta_runs` should be a dict {{beta: result}}; it is a {type(beta_runs).__name__}.")
        expect(len(beta_runs) >= 2, f"`beta_runs` has {len(beta_runs)} run; compare at least two values of beta.")
        for key, value in beta_runs.items():
            expect(isinstance(key, (int, float)) and not isinstance(key, bool) and key > 0,
                   f"The key {key!r} of `beta_runs` should be the run's beta, a positive number.")
            result = training_result(value, f"beta_runs[{key!r}]", "dpo")
            expect(math.isclose(float(result.config.beta), float(key), rel_tol=1e-6),
                   f"`beta_runs[{key!r}]` was trained with beta={result.config.beta}, not {key}: pass `beta=` to "
                   "`dpo` and use the same value as the key.")
        results = list(beta_runs.values())
        expect(len({round(float(k), 9) for k in beta_runs}) == len(beta_runs), "Two keys of `beta_runs` are equal.")
        for what, key in (("start from the same checkpoint", "model"), ("train on the same rows", "train_rows"),
                          ("train the same number of steps", "train_steps")):
            values = {str(r.metrics.get(key)) for r in results}
            expect(len(values) == 1, f"The runs in `beta_runs` do not {what} ({key}: {sorted(values)}): change only "
                                     "beta, so that the difference you see comes from beta.")
        expect(hasattr(beta_table, "columns") and hasattr(beta_table, "index"),
               f"`beta_table` should be a table (a pandas DataFrame, e.g. from `training_summary`); it is a "
               f"{type(beta_table).__name__}.")
        expect(len(beta_table) == len(beta_runs),
               f"`beta_table` has {len(beta_table)} row(s) for {len(beta_runs)} runs: one row per run.")
        expect("eval_rewards/margins_after" in beta_table.columns,
               "`beta_table` has no `eval_rewards/margins_after` column: the reward margin after training is the "
               "number to compare between betas.")
        margins = ", ".join(f"beta {k}: {r.metrics.get('eval_rewards/margins_after', float('nan')):.3g}"
                            for k, r in sorted(beta_runs.items()))
        return (f"Eval reward margins after training: {margins}. A larger beta keeps the policy closer to the "
                "reference (each unit of log-ratio is worth more reward), a smaller one lets it drift further.")


class OwnPairs(Exercise):
    notebook = NOTEBOOK
    name = "q3"
    title = "DPO on preference pairs of your own"
    level = Level.OWN
    variables = ("my_pairs", "my_own_dpo_result")
    hints = (
        f"Write at least {MIN_OWN_PAIRS} prompts of your own use case and generate two answers for each, e.g. with "
        "two system prompts (`generate(..., system_prompt=...)`), then decide which answer is preferred.",
        "Each row of `my_pairs` holds `prompt` (a list with one user message), `chosen` and `rejected` (each a list "
        "with one assistant message); build it with `Dataset.from_list(rows)`.",
        "Train with `dpo(my_pairs, model=sft_model.path, output_dir=..., max_steps=MAX_STEPS)`.",
    )

    def _check(self, my_pairs: Any, my_own_dpo_result: Any) -> str:
        from smolsynth.handoff import SAMPLE_INSTRUCTIONS
        from smolsynth.formats import validate_dpo_dataset

        dataset = getattr(my_pairs, "dataset", my_pairs)
        expect(hasattr(dataset, "column_names") and hasattr(dataset, "__len__"),
               f"`my_pairs` should be a `datasets.Dataset` of pairs; it is a {type(my_pairs).__name__}.")
        try:
            usable = validate_dpo_dataset(dataset).rows  # pairs whose chosen and rejected differ
        except ValueError as err:
            raise Incorrect(f"`my_pairs` is not in the format DPO takes: {err}") from None
        expect(not isinstance(dataset[0]["prompt"], str),
               "`my_pairs` uses plain strings; write `prompt`, `chosen` and `rejected` as message lists "
               "(`[{\"role\": \"user\", \"content\": ...}]`), so the model's chat template is applied.")
        expect(len(usable) >= MIN_OWN_PAIRS,
               f"`my_pairs` has {len(usable)} usable pair(s) (chosen different from rejected); the exercise asks "
               f"for at least {MIN_OWN_PAIRS}.")
        prompts = [m["content"] for row in dataset["prompt"] for m in row if m["role"] == "user"]
        expect(not set(prompts) <= set(SAMPLE_INSTRUCTIONS),
               "`my_pairs` uses only the course's built-in sample instructions: write prompts of your own.")
        result = training_result(my_own_dpo_result, "my_own_dpo_result", "dpo")
        m = result.metrics
        used = int(m.get("train_rows", 0)) + int(m.get("eval_rows", 0)) + sum((m.get("dropped_rows") or {}).values())
        expect(used == len(dataset), f"`my_own_dpo_result` accounts for {used} pairs, but `my_pairs` has "
                                     f"{len(dataset)}: train on `my_pairs` itself.")
        loads_and_generates(result.output_dir, "my_own_dpo_result")
        return (f"{len(usable)} pairs of your own, {m['train_steps']} DPO steps; the model in {result.output_dir} "
                "loads and answers. Read a few pairs again: would *you* agree with every chosen answer?")


q1 = DPOFromSFT()
q2 = BetaComparison()
q3 = OwnPairs()
EXERCISES = (q1, q2, q3)
