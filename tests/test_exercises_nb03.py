"""Notebook 03's exercises with a correct, an incorrect and a not-attempted answer, on real training runs of the tiny
model (real TRL trainers, real checkpoints that load and generate). Incorrect feedback never contains the answer."""

from __future__ import annotations

import dataclasses
import types
from typing import Any

import pytest

from exercise_harness import exercise_tests

from conftest import make_chats
from smolsynth.exercises import ____, nb03

NOTEBOOK = "03_sft"


@pytest.fixture(autouse=True)
def _tiny_course_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """The notebook's model_id is smolsynth.resolve_model(): the tiny model here (exercise 2 counts on it)."""
    monkeypatch.setenv("SMOLSYNTH_MODEL", "smolsynth/tiny")


def _trl_cell(output_dir: str, *, train: bool = True, lora: bool | None = None) -> tuple[Any, Any]:
    """What exercise 1's solution cell does, on the tiny model: (the SFTTrainer, save_checkpoint's result)."""
    from trl import SFTTrainer

    from smolsynth.hardware import count_parameters, training_profile
    from smolsynth.models import load_tokenizer, model_path
    from smolsynth.training import lora_config, prepare_dataset, save_checkpoint, sft_config
    from smolsynth.verbosity import quiet_training

    profile = training_profile(model_params=count_parameters("smolsynth/tiny"))
    if lora is not None:
        profile = profile.with_lora(lora)
    train_ds, eval_ds = prepare_dataset(make_chats(8), method="sft")
    config = sft_config(profile, output_dir=output_dir, max_steps=2, n_train_rows=len(train_ds))
    with quiet_training():
        trainer = SFTTrainer(model=model_path("smolsynth/tiny"), args=config, train_dataset=train_ds,
                             eval_dataset=eval_ds, processing_class=load_tokenizer("smolsynth/tiny"),
                             peft_config=lora_config(profile))
        if not train:
            return trainer, None
        before = trainer.evaluate()
        trainer.train()
    return trainer, save_checkpoint(trainer, output_dir, started_from="smolsynth/tiny", before=before)


@pytest.fixture(scope="module")
def runs(trained_sft, tmp_path_factory) -> dict[str, Any]:
    """What a learner's cells would hold: a TRL cell's trainer and result (and one with LoRA, one untrained), the
    shared SFT run, and LoRA/full counts made the way the solution makes them (a real model, peft's
    get_peft_model)."""
    from datasets import Dataset
    from peft import LoraConfig, get_peft_model

    from smolsynth.handoff import SAMPLE_INSTRUCTIONS
    from smolsynth.models import load_model

    trainer, result = _trl_cell(str(tmp_path_factory.mktemp("trl")))
    lora_trainer, lora_result = _trl_cell(str(tmp_path_factory.mktemp("trl-lora")), lora=True)
    untrained, _ = _trl_cell(str(tmp_path_factory.mktemp("trl-untrained")), train=False)
    model, _ = load_model("smolsynth/tiny")
    full = sum(p.numel() for p in model.parameters() if p.requires_grad)
    p = lora_result.profile or _lora_profile()
    peft_model = get_peft_model(model, LoraConfig(r=p.lora_r, lora_alpha=p.lora_alpha,
                                                  target_modules=p.lora_target_modules, task_type="CAUSAL_LM"))
    sample = Dataset.from_list([{"messages": [{"role": "user", "content": text},
                                              {"role": "assistant", "content": "Sure."}]}
                                for text in SAMPLE_INSTRUCTIONS[:6]])
    return {"sft": trained_sft, "trainer": trainer, "result": result, "lora_trainer": lora_trainer,
            "lora_result": lora_result, "untrained": untrained, "full": full,
            "lora_count": sum(q.numel() for q in peft_model.parameters() if q.requires_grad),
            "chats": make_chats(16), "sample": sample, "empty_dir": str(tmp_path_factory.mktemp("empty"))}


def _lora_profile() -> Any:
    from smolsynth.hardware import count_parameters, training_profile

    return training_profile(model_params=count_parameters("smolsynth/tiny")).with_lora(True)


def _with(result: Any, **changes: Any) -> Any:
    return dataclasses.replace(result, **changes)


CASES: dict[str, dict[str, Any]] = {
    "03_sft.q1": {
        "exercise": nb03.q1,
        "correct": lambda r: {"my_trainer": r["trainer"], "my_sft_result": r["result"]},
        "incorrect": {
            "a path, not a trainer": (lambda r: {"my_trainer": r["result"].output_dir,
                                                 "my_sft_result": r["result"]}, "TRL `SFTTrainer`"),
            "never trained": (lambda r: {"my_trainer": r["untrained"], "my_sft_result": r["result"]},
                              "not trained a single step"),
            "result of another trainer": (lambda r: {"my_trainer": r["trainer"], "my_sft_result": r["sft"]},
                                          "not saved from `my_trainer`"),
            "a path, not a result": (lambda r: {"my_trainer": r["trainer"],
                                                "my_sft_result": r["result"].output_dir}, "TrainingResult"),
            "LoRA where the profile trains fully": (lambda r: {"my_trainer": r["lora_trainer"],
                                                               "my_sft_result": r["lora_result"]},
                                                    "lora_config(profile)"),
            "no losses logged": (lambda r: {"my_trainer": r["trainer"],
                                            "my_sft_result": _with(r["result"], log_history=[])},
                                 "no training loss"),
            "checkpoint gone": (lambda r: {"my_trainer": r["trainer"],
                                           "my_sft_result": _with(r["result"], output_dir=r["empty_dir"])},
                                "no saved model"),
        },
        "not_attempted": [lambda r: {"my_trainer": ____, "my_sft_result": ____},
                          lambda r: {"my_trainer": r["trainer"], "my_sft_result": ____}],
    },
    "03_sft.q2": {
        "exercise": nb03.q2,
        "correct": lambda r: {"full_trainable": r["full"], "lora_trainable": r["lora_count"]},
        "incorrect": {
            "full count off": (lambda r: {"full_trainable": r["full"] - 1, "lora_trainable": r["lora_count"]},
                               "full fine-tuning trains every one"),
            "LoRA not smaller": (lambda r: {"full_trainable": r["full"], "lora_trainable": r["full"]},
                                 "not smaller"),
            "LoRA count off": (lambda r: {"full_trainable": r["full"], "lora_trainable": r["lora_count"] // 2},
                               "is not what LoRA"),
            "a float": (lambda r: {"full_trainable": float(r["full"]), "lora_trainable": r["lora_count"]},
                        "whole number"),
            "zero": (lambda r: {"full_trainable": r["full"], "lora_trainable": 0}, "some trainable parameters"),
        },
        "not_attempted": [lambda r: {"full_trainable": ____, "lora_trainable": ____},
                          lambda r: {"full_trainable": r["full"], "lora_trainable": ____}],
    },
    "03_sft.q3": {
        "exercise": nb03.q3,
        "correct": lambda r: {"my_sft_data": r["chats"], "my_own_result": r["sft"]},
        "incorrect": {
            "not a dataset": (lambda r: {"my_sft_data": r["chats"].to_list(), "my_own_result": r["sft"]},
                              "should be a `datasets.Dataset`"),
            "extra column": (lambda r: {"my_sft_data": r["chats"].add_column("prompt", ["x"] * 16),
                                        "my_own_result": r["sft"]}, "`messages` column only"),
            "too few rows": (lambda r: {"my_sft_data": r["chats"].select(range(3)), "my_own_result": r["sft"]},
                             "at least 4"),
            "last turn not the assistant's": (lambda r: {"my_sft_data": _user_last(r["chats"]),
                                                         "my_own_result": r["sft"]}, "not in the format"),
            "the built-in sample": (lambda r: {"my_sft_data": r["sample"], "my_own_result": r["sft"]},
                                    "built-in sample"),
            "trained on other rows": (lambda r: {"my_sft_data": r["chats"].select(range(12)),
                                                 "my_own_result": r["sft"]}, "train on `my_sft_data` itself"),
            "not a result": (lambda r: {"my_sft_data": r["chats"], "my_own_result": "out"}, "TrainingResult"),
        },
        "not_attempted": [lambda r: {"my_sft_data": ____, "my_own_result": ____},
                          lambda r: {"my_sft_data": r["chats"], "my_own_result": ____}],
    },
    "03_sft.q4": {
        "exercise": nb03.q4,
        "correct": lambda r: {"my_prompt_completion": _split},
        "incorrect": {
            "not a function": (lambda r: {"my_prompt_completion": {"prompt": [], "completion": []}},
                               "should be a function"),
            "never None": (lambda r: {"my_prompt_completion": lambda m: {"prompt": m[:-1], "completion": m[-1:]}},
                           "Case 4"),
            "user turns only": (lambda r: {"my_prompt_completion": lambda m: None if _split(m) is None else {
                "prompt": [t for t in m if t["role"] == "user"], "completion": m[-1:]}}, "Case 2"),
            "every answer is a completion": (lambda r: {"my_prompt_completion": lambda m: None if _split(m) is None
                                                        else {"prompt": [t for t in m if t["role"] != "assistant"],
                                                              "completion": [t for t in m
                                                                             if t["role"] == "assistant"]}},
                                             "Case 3"),
            "completion as a dict": (lambda r: {"my_prompt_completion": lambda m: None if _split(m) is None else {
                "prompt": m[:-1], "completion": m[-1]}}, "Case 1"),
            "no user needed": (lambda r: {"my_prompt_completion": lambda m: {"prompt": m[:-1], "completion": m[-1:]}
                                          if m and m[-1]["role"] == "assistant" else None}, "Case 5"),
            "crashes on []": (lambda r: {"my_prompt_completion": lambda m: _split(m) if m[-1] else None},
                              "IndexError"),
            "a tuple": (lambda r: {"my_prompt_completion": lambda m: (m[:-1], m[-1:])}, "keys 'prompt'"),
        },
        "not_attempted": [lambda r: {"my_prompt_completion": ____}, lambda r: {}],
    },
}


def _split(messages: Any) -> Any:
    if not messages or messages[-1]["role"] != "assistant" or not any(m["role"] == "user" for m in messages[:-1]):
        return None
    return {"prompt": messages[:-1], "completion": messages[-1:]}


def _user_last(chats: Any) -> Any:
    from datasets import Dataset

    return Dataset.from_list([{"messages": row["messages"][:-1]} for row in chats])


(test_every_exercise_has_test_cases, test_correct_answer_passes,
 test_incorrect_answer_is_explained_without_the_answer, test_not_attempted_answer) = exercise_tests(
    NOTEBOOK, CASES, fixture="runs")


def test_lora_count_on_an_empty_skeleton_matches_the_real_model(runs: dict[str, Any]) -> None:
    """The checker counts LoRA parameters on a meta-device skeleton (instant for any size): same number as peft on
    the loaded model."""
    profile = _lora_profile()
    assert nb03.lora_trainable_count("smolsynth/tiny", profile) == runs["lora_count"]
    assert 0 < runs["lora_count"] < runs["full"] and runs["lora_count"] % profile.lora_r == 0
