"""Notebook 04's exercises with a correct, an incorrect and a not-attempted answer, on real DPO runs of the tiny model
(the shared SFT -> DPO fixtures plus one more beta). Incorrect feedback never contains the answer."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import pytest

from exercise_harness import exercise_tests

from conftest import make_pairs
from smolsynth.exercises import ____, nb04

NOTEBOOK = "04_dpo"


def _trl_cell(sft_dir: str, output_dir: str, *, train: bool = True) -> tuple[Any, Any]:
    """What exercise 1's solution cell does, on the tiny model: (the DPOTrainer, save_checkpoint's result)."""
    from trl import DPOTrainer

    from smolsynth.hardware import count_parameters, training_profile
    from smolsynth.models import load_tokenizer
    from smolsynth.training import check_reference, dpo_config, lora_config, prepare_dataset, save_checkpoint
    from smolsynth.verbosity import quiet_training

    profile = training_profile(model_params=count_parameters(sft_dir))
    train_ds, eval_ds = prepare_dataset(make_pairs(8), method="dpo")
    config = dpo_config(profile, output_dir=output_dir, max_steps=2, n_train_rows=len(train_ds))
    with quiet_training():
        trainer = DPOTrainer(model=sft_dir, args=config, train_dataset=train_ds, eval_dataset=eval_ds,
                             processing_class=load_tokenizer(sft_dir), peft_config=lora_config(profile))
        if not train:
            return trainer, None
        before = check_reference(trainer)
        trainer.train()
    return trainer, save_checkpoint(trainer, output_dir, started_from=sft_dir, before=before)


@pytest.fixture(scope="module")
def runs(trained_sft, trained_dpo, tmp_path_factory) -> dict[str, Any]:
    """The shared SFT and DPO runs, a TRL cell's trainer and result (and an untrained trainer), a second DPO run with
    beta 0.5 (same pairs, start and steps), and pair sets."""
    from datasets import Dataset

    from smolsynth.evaluation import training_summary
    from smolsynth.handoff import SAMPLE_INSTRUCTIONS
    from smolsynth.training import dpo

    beta_half = dpo(make_pairs(), model=trained_sft.output_dir, output_dir=str(tmp_path_factory.mktemp("beta")),
                    max_steps=4, learning_rate=1e-4, beta=0.5)
    pairs = make_pairs()
    ties = Dataset.from_list([{**row, "rejected": row["chosen"]} if i >= 3 else row
                              for i, row in enumerate(make_pairs(6).to_list())])
    sample = Dataset.from_list([{**row, "prompt": [{"role": "user", "content": SAMPLE_INSTRUCTIONS[i]}]}
                                for i, row in enumerate(make_pairs(6).to_list())])
    strings = Dataset.from_list([{"prompt": f"Q{i}?", "chosen": f"A{i}.", "rejected": "No."} for i in range(6)])
    trainer, result = _trl_cell(trained_sft.output_dir, str(tmp_path_factory.mktemp("trl-dpo")))
    untrained, _ = _trl_cell(trained_sft.output_dir, str(tmp_path_factory.mktemp("trl-untrained")), train=False)
    return {"trainer": trainer, "result": result, "untrained": untrained,
            "sft": trained_sft, "dpo": trained_dpo, "beta_half": beta_half, "pairs": pairs, "ties": ties,
            "sample": sample, "strings": strings, "empty_dir": str(tmp_path_factory.mktemp("empty")),
            "table": training_summary({0.1: trained_dpo, 0.5: beta_half}), "summary": training_summary}


def _metrics(result: Any, **changes: Any) -> Any:
    metrics = {**result.metrics, **changes}
    return dataclasses.replace(result, metrics={k: v for k, v in metrics.items() if v is not None})


def _beta(r: dict[str, Any], runs: dict[Any, Any], table: Any = None) -> dict[str, Any]:
    return {"beta_runs": runs, "beta_table": r["summary"](runs) if table is None else table}


def _preferred(text: str) -> bool:
    """What make_pairs prefers: an answer, not "I do not know"."""
    return "do not know" not in text


def _own(r, **kw):
    return {"my_pairs": r["pairs"], "my_preferred": _preferred, "my_own_dpo_result": r["dpo"], **kw}


CASES: dict[str, dict[str, Any]] = {
    "04_dpo.q1": {
        "exercise": nb04.q1,
        "correct": lambda r: {"my_dpo_trainer": r["trainer"], "my_dpo_result": r["result"]},
        "incorrect": {
            "not a trainer": (lambda r: {"my_dpo_trainer": r["result"], "my_dpo_result": r["result"]},
                              "TRL `DPOTrainer`"),
            "never trained": (lambda r: {"my_dpo_trainer": r["untrained"], "my_dpo_result": r["result"]},
                              "not trained a single step"),
            "an SFT run": (lambda r: {"my_dpo_trainer": r["trainer"], "my_dpo_result": r["sft"]},
                           "result of a SFT run"),
            "result of another run": (lambda r: {"my_dpo_trainer": r["trainer"], "my_dpo_result": r["dpo"]},
                                      "not saved from `my_dpo_trainer`"),
            "started from the base model": (lambda r: {"my_dpo_trainer": r["trainer"], "my_dpo_result": _metrics(
                r["result"], model="smolsynth/tiny")}, "not a saved SFT checkpoint"),
            "started from a DPO checkpoint": (lambda r: {"my_dpo_trainer": r["trainer"], "my_dpo_result": _metrics(
                r["result"], model=r["dpo"].output_dir)}, "not an SFT one"),
            "wrong reference": (lambda r: {"my_dpo_trainer": r["trainer"], "my_dpo_result": _metrics(
                r["result"], **{"eval_rewards/margins_before": 0.8})}, "not ~0"),
            "no step-0 check": (lambda r: {"my_dpo_trainer": r["trainer"], "my_dpo_result": _metrics(
                r["result"], **{"eval_rewards/margins_before": None})}, "no evaluation before the first step"),
            "checkpoint gone": (lambda r: {"my_dpo_trainer": r["trainer"], "my_dpo_result": dataclasses.replace(
                r["result"], output_dir=r["empty_dir"])}, "no saved model"),
        },
        "not_attempted": [lambda r: {"my_dpo_trainer": ____, "my_dpo_result": ____},
                          lambda r: {"my_dpo_trainer": r["trainer"], "my_dpo_result": ____}],
    },
    "04_dpo.q2": {
        "exercise": nb04.q2,
        "correct": lambda r: _beta(r, {0.1: r["dpo"], 0.5: r["beta_half"]}),
        "incorrect": {
            "not a dict": (lambda r: {"beta_runs": [r["dpo"], r["beta_half"]], "beta_table": r["table"]},
                           "should be a dict"),
            "one run": (lambda r: _beta(r, {0.1: r["dpo"]}), "at least two"),
            "key is not the run's beta": (lambda r: _beta(r, {0.3: r["dpo"], 0.5: r["beta_half"]}),
                                          "trained with beta=0.1"),
            "an SFT run": (lambda r: _beta(r, {0.1: r["dpo"], 0.5: r["sft"]}), "result of a SFT run"),
            "different steps": (lambda r: _beta(r, {0.1: r["dpo"], 0.5: _metrics(r["beta_half"], train_steps=2)}),
                                "same number of steps"),
            "different start": (lambda r: _beta(r, {0.1: r["dpo"], 0.5: _metrics(r["beta_half"], model="x")}),
                                "start from the same checkpoint"),
            "table of one run": (lambda r: _beta(r, {0.1: r["dpo"], 0.5: r["beta_half"]},
                                                 r["summary"]({0.1: r["dpo"]})), "one row per run"),
            "table without the comparable margin": (lambda r: _beta(r, {0.1: r["dpo"], 0.5: r["beta_half"]},
                                                                    r["table"].drop(
                                                                        columns=["eval_logratio_margin_after"])),
                                                    "eval_logratio_margin_after"),
            "not a table": (lambda r: _beta(r, {0.1: r["dpo"], 0.5: r["beta_half"]}, "a table"), "DataFrame"),
        },
        "not_attempted": [lambda r: {"beta_runs": ____, "beta_table": ____},
                          lambda r: {"beta_runs": {0.1: r["dpo"], 0.5: ____}, "beta_table": ____}],
    },
    "04_dpo.q3": {
        "exercise": nb04.q3,
        "correct": _own,
        "incorrect": {
            "missing column": (lambda r: _own(r, my_pairs=r["pairs"].remove_columns("rejected")),
                               "not in the format DPO takes"),
            "plain strings": (lambda r: _own(r, my_pairs=r["strings"]), "plain strings"),
            "too few usable pairs": (lambda r: _own(r, my_pairs=r["ties"]), "3 usable pair(s)"),
            "the built-in sample": (lambda r: _own(r, my_pairs=r["sample"]), "built-in sample"),
            "trained on other pairs": (lambda r: _own(r, my_pairs=r["pairs"].select(range(10))),
                                       "train on `my_pairs` itself"),
            "an SFT run": (lambda r: _own(r, my_own_dpo_result=r["sft"]), "result of a SFT run"),
            "swapped pairs": (lambda r: _own(r, my_pairs=r["pairs"].map(
                lambda row: {"chosen": row["rejected"], "rejected": row["chosen"]})), "swapped"),
            "a constant test": (lambda r: _own(r, my_preferred=lambda text: True), "rejected answer has it too"),
            "not a function": (lambda r: _own(r, my_preferred="no 'I do not know'"), "should be a function"),
        },
        "not_attempted": [lambda r: {"my_pairs": ____, "my_preferred": ____, "my_own_dpo_result": ____},
                          lambda r: _own(r, my_own_dpo_result=____)],
    },
    "04_dpo.q4": {
        "exercise": nb04.q4,
        "correct": lambda r: {"my_dpo_loss": _dpo_loss},
        "incorrect": {
            "not a function": (lambda r: {"my_dpo_loss": math.log(2)}, "should be a function"),
            "no reference": (lambda r: {"my_dpo_loss": lambda pc, pr, rc, rr, beta: _dpo_loss(pc, pr, 0, 0, beta)},
                             "Case 1"),
            "the constant log 2": (lambda r: {"my_dpo_loss": lambda *args: math.log(2)}, "Case 2"),
            "chosen and rejected swapped": (lambda r: {"my_dpo_loss": lambda pc, pr, rc, rr, beta: _dpo_loss(
                pr, pc, rr, rc, beta)}, "Case 2"),
            "beta ignored": (lambda r: {"my_dpo_loss": lambda pc, pr, rc, rr, beta: _dpo_loss(pc, pr, rc, rr, 0.1)},
                             "Case 5"),
            "the sigmoid, not its -log": (lambda r: {"my_dpo_loss": lambda pc, pr, rc, rr, beta: 1 / (
                1 + math.exp(-beta * ((pc - rc) - (pr - rr))))}, "Case 1"),
            "a string": (lambda r: {"my_dpo_loss": lambda *args: "low"}, "as a number"),
        },
        "not_attempted": [lambda r: {"my_dpo_loss": ____}, lambda r: {}],
    },
}


def _dpo_loss(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta):
    import torch

    margin = beta * ((policy_chosen - ref_chosen) - (policy_rejected - ref_rejected))
    return -torch.nn.functional.logsigmoid(torch.tensor(margin, dtype=torch.float64))  # TRL's own form, a tensor


(test_every_exercise_has_test_cases, test_correct_answer_passes,
 test_incorrect_answer_is_explained_without_the_answer, test_not_attempted_answer) = exercise_tests(
    NOTEBOOK, CASES, fixture="runs")


