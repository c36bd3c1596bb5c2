"""Exercises of notebook 04, "DPO: preference optimisation from your SFT model".

``q1`` 🐢 writes the TRL cell (``DPOConfig``, ``DPOTrainer``, the step-0 check, ``save_checkpoint``) on the
learner's judged pairs, from the saved SFT checkpoint; ``q2`` 🐕 compares two values of ``beta`` on the same data
and steps, on a scale comparable across betas; ``q3`` 🦁 trains on preference pairs of the learner's own. The
``q4`` 🐢 the learner writes the DPO loss from log-probabilities, run on hidden cases. The checks judge structure and
behaviour (where a run started, its step-0 rewards, what was saved and whether it loads and generates), never the
wording of an answer.

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

from smolsynth.exercises.core import Case, Exercise, Incorrect, Level, expect, run_cases
from smolsynth.exercises.nb03 import loads_and_generates, saved_from_trainer, training_result

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
           "and pass what `check_reference(trainer)` returned to `save_checkpoint(..., before=...)` (`dpo(...)` "
           "does both), so the start can be checked.")
    beta = float(result.config.beta)
    expect(abs(margin) <= START_MARGIN_TOLERANCE * beta,
           f"`{name}` started with a reward margin of {margin:.4g}, not ~0: the reference model was not the policy "
           "you started from. Pass the SFT checkpoint's path as `model=` (not a model object).")
    return float(margin)


class DPOFromSFT(Exercise):
    notebook = NOTEBOOK
    name = "q1"
    title = "Your own DPOTrainer on your judged pairs"
    level = Level.DEFAULT
    variables = ("my_dpo_trainer", "my_dpo_result")
    hints = (
        "`prepare_dataset(judged.dataset, method=\"dpo\")` returns `(train, eval)`; `dpo_config(profile, "
        "output_dir=str(RUNS / \"my-dpo\"), max_steps=MAX_STEPS, beta=BETA)` the config.",
        "`DPOTrainer(model=sft_model.path, args=my_config, train_dataset=my_train, eval_dataset=my_eval, "
        "processing_class=tokenizer, peft_config=lora_config(profile))`: `model=` is the *path* of the SFT "
        "checkpoint, so that the reference is that same checkpoint.",
        "`my_before = check_reference(my_dpo_trainer)` before `train()`, then `save_checkpoint(my_dpo_trainer, "
        "RUNS / \"my-dpo\", started_from=sft_model.path, before=my_before)`: the step-0 margin is recorded.",
    )

    def _check(self, my_dpo_trainer: Any, my_dpo_result: Any) -> str:
        result = saved_from_trainer(my_dpo_trainer, my_dpo_result, ("my_dpo_trainer", "my_dpo_result"), "dpo")
        start = _started_from_sft(result, "my_dpo_result")
        margin = _start_margin(result, "my_dpo_result")
        loads_and_generates(result.output_dir, "my_dpo_result")
        after = result.metrics.get("eval_rewards/margins_after")
        moved = f"; after {result.metrics['train_steps']} steps it is {after:.4g}" if after is not None else ""
        return (f"Your DPOTrainer started from {start} with a reward margin of {margin:.3g} at step 0 (the reference "
                f"is the starting policy){moved}. The checkpoint in {result.output_dir} loads and generates.")


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
        expect("eval_logratio_margin_after" in beta_table.columns,
               "`beta_table` has no `eval_logratio_margin_after` column: the reward margins TRL logs are beta times "
               "a log-ratio, so they do not compare across betas; `training_summary(beta_runs)` adds the margin "
               "divided by beta, the number to compare.")
        margins = {k: r.metrics["eval_rewards/margins_after"] / float(k) for k, r in sorted(beta_runs.items())
                   if "eval_rewards/margins_after" in r.metrics}
        ratios = ", ".join(f"beta {k}: {m:.3g} nats" for k, m in margins.items())
        same = len(margins) > 1 and max(margins.values()) - min(margins.values()) <= 0.05 * max(
            1e-9, max(abs(m) for m in margins.values()))
        why = (" They are (nearly) the same: Adam scales every update to the learning rate whatever the gradient's "
               "size, so in the first steps, before the sigmoid saturates, beta hardly changes how far the model "
               "moves. Train longer to see beta hold the policy back." if same else "")
        return (f"Eval log-ratio margins (reward margin / beta) after training: {ratios}.{why} A larger beta makes "
                "each nat of log-ratio worth more reward, so the loss is satisfied sooner and the policy stays closer "
                "to the reference; a smaller one lets it drift further.")


class OwnPairs(Exercise):
    notebook = NOTEBOOK
    name = "q3"
    title = "DPO on preference pairs of your own"
    level = Level.OWN
    variables = ("my_pairs", "my_preferred", "my_own_dpo_result")
    hints = (
        f"Write at least {MIN_OWN_PAIRS} prompts of your own use case; make a `distillation.Trait` of your own, let "
        "the teacher answer (`teacher_answers`) and turn the answers into pairs with `trait_pairs` (chosen with the "
        "opening, rejected without).",
        "Each row of `my_pairs` holds `prompt` (a list with one user message), `chosen` and `rejected` (each a list "
        "with one assistant message); build it with `Dataset.from_list(rows)`.",
        "`my_preferred` is a function of an answer's text that returns True when it has what you prefer; for a "
        "trait, `my_trait.shows` is one. The check runs it on both answers of every pair.",
        "Train with `dpo(my_pairs, model=sft_model.path, output_dir=..., max_steps=MAX_STEPS)`.",
    )

    def _check(self, my_pairs: Any, my_preferred: Any, my_own_dpo_result: Any) -> str:
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
        expect(callable(my_preferred), "`my_preferred` should be a function: an answer's text -> True when it has "
                                       "what your pairs prefer.")
        for i, row in enumerate(usable):
            chosen, rejected = row["chosen"][-1]["content"], row["rejected"][-1]["content"]
            expect(bool(my_preferred(chosen)) and not my_preferred(rejected),
                   f"Pair {i} of `my_pairs`: by your own test `my_preferred`, "
                   + ("its chosen answer does not have what you prefer" if not my_preferred(chosen) else
                      "its rejected answer has it too")
                   + f" (chosen: {chosen[:60]!r}; rejected: {rejected[:60]!r}). Are chosen and rejected swapped?")
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


def _dpo_loss(policy_chosen: float, policy_rejected: float, ref_chosen: float, ref_rejected: float,
              beta: float) -> float:
    """The reference: -log sigmoid(beta * (chosen log-ratio - rejected log-ratio)), written to be exact for large
    margins (``log1p(exp(-x))`` for x >= 0, ``-x + log1p(exp(x))`` otherwise)."""
    x = beta * ((policy_chosen - ref_chosen) - (policy_rejected - ref_rejected))
    return math.log1p(math.exp(-x)) if x >= 0 else -x + math.log1p(math.exp(x))


_LOSS_ARGS = (
    ("the policy is the reference (step 0): the loss is log 2", (-12.0, -15.0, -12.0, -15.0, 0.1)),
    ("the chosen answer became more likely, the rejected one less", (-10.0, -17.0, -12.0, -15.0, 0.1)),
    ("the model moved the wrong way: the rejected answer gained", (-13.0, -13.0, -12.0, -15.0, 0.1)),
    ("what matters is the change from the reference, not the raw log-probabilities",
     (-40.0, -8.0, -42.0, -8.5, 0.1)),
    ("a larger beta: the same change counts 5 times more", (-10.0, -17.0, -12.0, -15.0, 0.5)),
    ("a large margin: the loss is close to 0", (-2.0, -90.0, -20.0, -20.0, 1.0)),
)
_LOSS_CASES = tuple(Case(what, args, _dpo_loss(*args)) for what, args in _LOSS_ARGS)


class DPOLoss(Exercise):
    notebook = NOTEBOOK
    name = "q4"
    title = "Write the DPO loss"
    level = Level.DEFAULT
    variables = ("my_dpo_loss",)
    hints = (
        "Each side's log-ratio is the policy's log-probability minus the reference's: "
        "`policy_chosen - ref_chosen` for the chosen answer, the same for the rejected one.",
        "The margin is `beta * (chosen log-ratio - rejected log-ratio)`; the loss is `-log(sigmoid(margin))`, with "
        "`sigmoid(x) = 1 / (1 + exp(-x))`.",
        "`-log(sigmoid(x))` is `log(1 + exp(-x))`: `math.log1p(math.exp(-x))`.",
    )

    def _check(self, my_dpo_loss: Any) -> str:
        def read(got: Any, case: Case) -> Any:
            try:
                return float(got)  # a float, a 0-d tensor or a numpy number
            except (TypeError, ValueError):
                expect(False, f"it returned {got!r}; return the loss as a number")

        n = run_cases(my_dpo_loss, "my_dpo_loss", _LOSS_CASES, read=read,
                      same=lambda got, expected: math.isclose(got, expected, rel_tol=1e-6, abs_tol=1e-9),
                      show=lambda value: f"{value:.6g}" if isinstance(value, float) else repr(value))
        return (f"Your loss matches on all {n} hidden cases. At step 0 every pair's loss is log 2 = 0.693: that is "
                "the first `loss` TRL logs, and why a DPO run that starts elsewhere did not start from its reference.")


q1 = DPOFromSFT()
q2 = BetaComparison()
q3 = OwnPairs()
q4 = DPOLoss()
EXERCISES = (q1, q2, q3, q4)
