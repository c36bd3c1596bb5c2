"""Exercises of notebook 03, "SFT: supervised fine-tuning on your generated data".

``q1`` 🐢 trains SFT with the default profile and saves it; ``q2`` 🐕 switches to LoRA and counts trainable
parameters (full fine-tuning vs LoRA); ``q3`` 🦁 trains on a dataset of the learner's own. The checks judge
structure (what ran, with which settings, what was saved and whether it loads back and generates), never the
wording of an answer, so they hold for the tiny offline model in CI and for a real model.

    >>> from smolsynth.exercises import ____, nb03
    >>> nb03.q1.evaluate(my_sft_result=____).status
    'not_attempted'
    >>> nb03.q1.evaluate(my_sft_result="out/sft").message
    '`my_sft_result` should be what `sft(...)` returns (a TrainingResult); it is a str.'
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from smolsynth.exercises.core import Exercise, Incorrect, Level, expect

NOTEBOOK = "03_sft"
MIN_OWN_ROWS = 4


def training_result(value: Any, name: str, kind: str) -> Any:
    """``value`` if it is a TrainingResult of ``kind`` (``"sft"``/``"dpo"``); Incorrect with a reason otherwise."""
    from smolsynth.training import TrainingResult

    made_by = f"{kind}(...)"
    expect(isinstance(value, TrainingResult),
           f"`{name}` should be what `{made_by}` returns (a TrainingResult); it is a {type(value).__name__}.")
    expect(value.kind == kind, f"`{name}` is the result of a {value.kind.upper()} run; this exercise asks for "
                               f"`{made_by}`.")
    return value


def loads_and_generates(output_dir: str, name: str) -> None:
    """Incorrect unless ``output_dir`` holds a checkpoint that loads with ``load_model`` and writes an answer."""
    folder = Path(output_dir)
    expect((folder / "config.json").exists(),
           f"The folder of `{name}` ({output_dir}) holds no saved model (no config.json): was it deleted or moved? "
           "Run the training cell again.")
    from smolsynth.evaluation import generate_answers
    from smolsynth.models import load_model
    from smolsynth.verbosity import quiet_training

    with quiet_training():
        model, tokenizer = load_model(str(folder))
    answers = generate_answers(model, tokenizer, ["Say hello."], max_new_tokens=4)
    expect(len(answers) == 1 and isinstance(answers[0], str),
           f"The checkpoint of `{name}` loads but does not generate an answer.")


def losses(result: Any) -> list[float]:
    """The training losses a run logged."""
    return [h["loss"] for h in result.log_history if "loss" in h and h.get("loss") is not None]


class DefaultSFT(Exercise):
    notebook = NOTEBOOK
    name = "q1"
    title = "Train SFT with the default profile"
    level = Level.DEFAULT
    variables = ("my_sft_result",)
    hints = (
        "Call `sft(...)` as in the lesson above: the data (`sft_data.dataset`), `model=model_id`, an `output_dir` of "
        "your own (e.g. `str(RUNS / \"my-sft\")`) and `max_steps=MAX_STEPS`.",
        "Leave `lora=` and `profile=` out: the exercise is about the defaults smolsynth picks for your machine "
        "(`my_sft_result.profile.reason` says why).",
        "After training, `my_sft_result.log_history` holds the logged losses and `my_sft_result.output_dir` the "
        "saved model.",
    )

    def _check(self, my_sft_result: Any) -> str:
        from smolsynth.hardware import training_profile

        result = training_result(my_sft_result, "my_sft_result", "sft")
        params = result.metrics.get("model_params")
        default = training_profile(model_params=params)
        expect(result.profile.lora == default.lora,
               f"`my_sft_result` was trained with LoRA {'on' if result.profile.lora else 'off'}, but the default "
               f"profile on this machine has it {'on' if default.lora else 'off'}: leave `lora=` out for this "
               "exercise (the next one is about LoRA).")
        cfg = result.config
        for flag in ("bf16", "fp16", "use_cpu"):
            expect(bool(getattr(cfg, flag)) == bool(getattr(default, flag)),
                   f"The run's config has `{flag}={getattr(cfg, flag)}`, not what the default profile "
                   f"({default.name}) sets: leave the precision settings to the profile here.")
        expect(result.metrics.get("train_steps", 0) >= 1, "`my_sft_result` did not train a single step.")
        logged = losses(result)
        expect(logged, "`my_sft_result.log_history` has no training loss: did the run train at all?")
        loads_and_generates(result.output_dir, "my_sft_result")
        before, after = result.metrics.get("eval_loss_before"), result.metrics.get("eval_loss_after")
        evals = (f" Eval loss {before:.3f} -> {after:.3f}." if isinstance(before, float) and isinstance(after, float)
                 else "")
        return (f"{result.metrics['train_steps']} steps in {result.train_seconds:.1f} s on the {result.profile.name} "
                f"profile ({result.profile.dtype}); {len(logged)} losses logged.{evals} The checkpoint in "
                f"{result.output_dir} loads back and generates.")


def lora_trainable_count(model: str, profile: Any) -> int:
    """Parameters LoRA trains on ``model`` with ``profile``'s LoRA settings, counted on an empty (meta) skeleton."""
    import torch
    from peft import get_peft_model
    from transformers import AutoConfig, AutoModelForCausalLM

    from smolsynth.models import _from_pretrained, model_path
    from smolsynth.training import _peft_config
    from smolsynth.verbosity import quiet_training

    with quiet_training():
        config = _from_pretrained(AutoConfig, model_path(model))
        with torch.device("meta"):
            skeleton = AutoModelForCausalLM.from_config(config)
        peft_model = get_peft_model(skeleton, _peft_config(profile))
    return sum(p.numel() for p in peft_model.parameters() if p.requires_grad)


class LoRAParameters(Exercise):
    notebook = NOTEBOOK
    name = "q2"
    title = "LoRA: how many parameters does it train?"
    level = Level.VARIANT
    variables = ("full_trainable", "lora_trainable", "my_lora_result")
    hints = (
        "`full_trainable`: load the model with `load_model(model_id)` and add up `p.numel()` for the parameters "
        "with `p.requires_grad`. Full fine-tuning trains all of them.",
        "`lora_trainable`: wrap the model with `peft.get_peft_model(model, LoraConfig(...))`, using the LoRA "
        "settings of `lora_profile` (`lora_r`, `lora_alpha`, `lora_target_modules`, `task_type=\"CAUSAL_LM\"`), "
        "then add up the parameters that still require a gradient.",
        "`my_lora_result`: the same `sft(...)` call as exercise 1, with `lora=True` and another `output_dir`.",
    )

    def _check(self, full_trainable: Any, lora_trainable: Any, my_lora_result: Any) -> str:
        for name, value in (("full_trainable", full_trainable), ("lora_trainable", lora_trainable)):
            expect(isinstance(value, int) and not isinstance(value, bool),
                   f"`{name}` should be a whole number of parameters (an int); it is a {type(value).__name__}.")
            expect(value > 0, f"`{name}` is {value}: a model being trained has some trainable parameters.")
        result = training_result(my_lora_result, "my_lora_result", "sft")
        expect(result.profile.lora, "`my_lora_result` was trained without LoRA: pass `lora=True` to `sft`.")
        model_params = int(result.metrics["model_params"])
        expect(full_trainable == model_params,
               f"`full_trainable` is {full_trainable:,}, but the model `my_lora_result` trained has "
               f"{model_params:,} parameters, and full fine-tuning trains every one of them. Count them on the "
               "same model, before any LoRA adapter is added.")
        expect(lora_trainable < full_trainable,
               f"`lora_trainable` ({lora_trainable:,}) is not smaller than `full_trainable`: with LoRA the base "
               "weights are frozen and only the small adapter matrices train. Count only the parameters with "
               "`requires_grad=True` after `get_peft_model`.")
        r = result.profile.lora_r
        expected = lora_trainable_count(str(result.metrics["model"]), result.profile)
        expect(lora_trainable == expected,
               f"`lora_trainable` ({lora_trainable:,}) is not what LoRA with this profile's settings (r={r}, "
               f"targets {result.profile.lora_target_modules!r}) trains on this model. Each adapted layer adds "
               "r x (inputs + outputs) parameters: use the profile's r and target modules, and count after "
               "`get_peft_model`.")
        loads_and_generates(result.output_dir, "my_lora_result")
        share = lora_trainable / full_trainable
        return (f"LoRA trains {lora_trainable:,} of {full_trainable:,} parameters ({share:.1%}); the optimizer "
                f"state shrinks with it (about {16 * full_trainable / 2**20:,.1f} MiB of weights, gradients and "
                f"Adam moments for full fine-tuning against {16 * lora_trainable / 2**20:,.2f} MiB for the "
                f"adapters, plus the frozen weights). The merged checkpoint loads back and generates.")


class OwnSFT(Exercise):
    notebook = NOTEBOOK
    name = "q3"
    title = "Train on a dataset of your own"
    level = Level.OWN
    variables = ("my_sft_data", "my_own_result")
    hints = (
        f"Write at least {MIN_OWN_ROWS} instructions for a use case of yours, answer them with `generate(...)`, "
        "and turn the result into SFT rows with `to_sft(...)` (its `.dataset` has a single `messages` column).",
        "Or load an SFT dataset you saved in notebook 01 with `datasets.load_from_disk(...)` and keep only its "
        "`messages` column.",
        "Then train with `sft(my_sft_data, ...)` into an `output_dir` of your own.",
    )

    def _check(self, my_sft_data: Any, my_own_result: Any) -> str:
        from smolsynth.handoff import SAMPLE_INSTRUCTIONS
        from smolsynth.formats import validate_sft_dataset

        dataset = getattr(my_sft_data, "dataset", my_sft_data)
        expect(hasattr(dataset, "column_names") and hasattr(dataset, "__len__"),
               f"`my_sft_data` should be a `datasets.Dataset` (e.g. `to_sft(...).dataset`) or the result of "
               f"`to_sft(...)`; it is a "
               f"{type(my_sft_data).__name__}.")
        expect(dataset.column_names == ["messages"],
               f"`my_sft_data` has the columns {dataset.column_names}; SFT data for TRL should have a `messages` "
               "column only (extra columns, a string `prompt` above all, confuse TRL's format detection).")
        n = len(dataset)
        expect(n >= MIN_OWN_ROWS, f"`my_sft_data` has {n} row(s); the exercise asks for at least {MIN_OWN_ROWS}.")
        try:
            validate_sft_dataset(dataset)
        except ValueError as err:
            raise Incorrect(f"`my_sft_data` is not in the format SFT takes: {err}") from None
        users = [m["content"] for row in dataset["messages"] for m in row if m["role"] == "user"]
        expect(not set(users) <= set(SAMPLE_INSTRUCTIONS),
               "`my_sft_data` holds only the course's built-in sample instructions: use instructions of your own "
               "(your use case, or notebook 01's dataset).")
        result = training_result(my_own_result, "my_own_result", "sft")
        m = result.metrics
        used = int(m.get("train_rows", 0)) + int(m.get("eval_rows", 0)) + sum((m.get("dropped_rows") or {}).values())
        expect(used == n, f"`my_own_result` trained and evaluated on {used} rows, but `my_sft_data` has {n}: "
                          "train on `my_sft_data` itself.")
        loads_and_generates(result.output_dir, "my_own_result")
        return (f"{n} conversations of your own, {m['train_steps']} SFT steps; the model in {result.output_dir} "
                "loads and answers. Compare it with the base model using `compare_answers` on prompts of your "
                "use case.")


q1 = DefaultSFT()
q2 = LoRAParameters()
q3 = OwnSFT()
EXERCISES = (q1, q2, q3)
