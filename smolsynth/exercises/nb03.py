"""Exercises of notebook 03, "SFT: supervised fine-tuning on your generated data".

``q1`` 🐢 writes the TRL cell (``SFTConfig``, ``SFTTrainer``, ``train``, ``save_checkpoint``) on notebook 01's
data; ``q2`` 🐕 counts trainable parameters (full fine-tuning vs LoRA); ``q3`` 🦁 teaches a trait of the learner's
own; ``q4`` 🐢 the learner writes the split of a conversation into the prompt and the completion SFT trains on, run on
hidden cases. The checks judge structure and behaviour (what ran, with which settings, what was saved and whether it
loads back and generates), never the wording of an answer, so they hold for the tiny offline model in CI and for a
real model.

    >>> from smolsynth.exercises import ____, nb03
    >>> nb03.q1.evaluate(my_trainer=____, my_sft_result=____).status
    'not_attempted'
    >>> nb03.q1.evaluate(my_trainer="trainer", my_sft_result=None).message
    '`my_trainer` should be a TRL `SFTTrainer`; it is a str.'
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from smolsynth.exercises.core import Case, Exercise, Incorrect, Level, expect, run_cases

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


def saved_from_trainer(trainer: Any, result: Any, names: tuple[str, str], kind: str) -> Any:
    """``result`` when ``trainer`` is a TRL trainer of ``kind`` that trained at least one step and ``result`` is
    what ``save_checkpoint`` returned for it; Incorrect otherwise. ``names``: the two variables' names."""
    import trl

    trainer_name, result_name = names
    cls = {"sft": trl.SFTTrainer, "dpo": trl.DPOTrainer}[kind]
    expect(isinstance(trainer, cls),
           f"`{trainer_name}` should be a TRL `{cls.__name__}`; it is a {type(trainer).__name__}.")
    expect(trainer.state.global_step >= 1, f"`{trainer_name}` has not trained a single step: call its `train()` "
                                           "method before saving it.")
    saved = training_result(result, result_name, kind)
    expect(saved.config is trainer.args,
           f"`{result_name}` was not saved from `{trainer_name}` (its config is another one): pass `{trainer_name}` "
           "to `save_checkpoint`.")
    return saved


class TRLCell(Exercise):
    notebook = NOTEBOOK
    name = "q1"
    title = "Your own TRL cell: the self-distillation trap"
    level = Level.DEFAULT
    variables = ("my_trainer", "my_sft_result")
    hints = (
        "`prepare_dataset(sft_data.dataset, method=\"sft\")` returns `(train, eval)`; `sft_config(profile, "
        "output_dir=str(RUNS / \"my-sft\"), max_steps=MAX_STEPS, n_train_rows=len(my_train))` the config.",
        "`SFTTrainer(model=model_path(model_id), args=my_config, train_dataset=my_train, eval_dataset=my_eval, "
        "processing_class=tokenizer, peft_config=lora_config(profile))`, as in section 5.",
        "After `my_trainer.train()`, `save_checkpoint(my_trainer, RUNS / \"my-sft\", started_from=model_id)` saves "
        "the model and returns the result.",
    )

    def _check(self, my_trainer: Any, my_sft_result: Any) -> str:
        from smolsynth.hardware import training_profile

        result = saved_from_trainer(my_trainer, my_sft_result, ("my_trainer", "my_sft_result"), "sft")
        default = training_profile(model_params=result.metrics.get("model_params"))
        cfg = result.config
        for flag in ("bf16", "fp16", "use_cpu"):
            expect(bool(getattr(cfg, flag)) == bool(getattr(default, flag)),
                   f"The run's config has `{flag}={getattr(cfg, flag)}`, not what the profile for this machine "
                   f"({default.name}) sets: build the config with `sft_config(profile, ...)`.")
        expect(bool(result.metrics.get("lora")) == default.lora,
               f"The trainer {'has' if result.metrics.get('lora') else 'has no'} LoRA adapters, but the profile for "
               f"this machine has LoRA {'on' if default.lora else 'off'}: pass `peft_config=lora_config(profile)`.")
        logged = losses(result)
        expect(logged, "`my_sft_result.log_history` has no training loss: did the run train at all?")
        loads_and_generates(result.output_dir, "my_sft_result")
        before, after = result.metrics.get("eval_loss_before"), result.metrics.get("eval_loss_after")
        evals = (f" Eval loss {before:.3f} -> {after:.3f}: on a real model it barely moves, because these are the "
                 "model's own answers." if isinstance(before, float) and isinstance(after, float) else "")
        return (f"{result.metrics['train_steps']} steps of your own SFTTrainer on the {default.name} profile; "
                f"{len(logged)} losses logged.{evals} The checkpoint in {result.output_dir} loads back and "
                "generates.")


def lora_trainable_count(model: str, profile: Any) -> int:
    """Parameters LoRA trains on ``model`` with ``profile``'s LoRA settings, counted on an empty (meta) skeleton."""
    import torch
    from peft import get_peft_model
    from transformers import AutoConfig, AutoModelForCausalLM

    from smolsynth.models import _from_pretrained, model_path
    from smolsynth.training import lora_config
    from smolsynth.verbosity import quiet_training

    with quiet_training():
        config = _from_pretrained(AutoConfig, model_path(model))
        with torch.device("meta"):
            skeleton = AutoModelForCausalLM.from_config(config)
        peft_model = get_peft_model(skeleton, lora_config(profile))
    return sum(p.numel() for p in peft_model.parameters() if p.requires_grad)


class LoRAParameters(Exercise):
    notebook = NOTEBOOK
    name = "q2"
    title = "LoRA: how many parameters does it train?"
    level = Level.VARIANT
    variables = ("full_trainable", "lora_trainable")
    hints = (
        "`full_trainable`: load the model with `load_model(model_id)` and add up `p.numel()` for the parameters "
        "with `p.requires_grad`. Full fine-tuning trains all of them.",
        "`lora_trainable`: wrap the model with `peft.get_peft_model(model, lora_config(lora_profile))` (or a "
        "`LoraConfig` with `lora_profile`'s `lora_r`, `lora_alpha`, `lora_target_modules` and "
        "`task_type=\"CAUSAL_LM\"`), then add up the parameters that still require a gradient.",
    )

    def _check(self, full_trainable: Any, lora_trainable: Any) -> str:
        from smolsynth.hardware import count_parameters, training_profile
        from smolsynth.models import resolve_model

        for name, value in (("full_trainable", full_trainable), ("lora_trainable", lora_trainable)):
            expect(isinstance(value, int) and not isinstance(value, bool),
                   f"`{name}` should be a whole number of parameters (an int); it is a {type(value).__name__}.")
            expect(value > 0, f"`{name}` is {value}: a model being trained has some trainable parameters.")
        model = resolve_model()
        model_params = count_parameters(model)
        expect(full_trainable == model_params,
               f"`full_trainable` is {full_trainable:,}, but {model} has {model_params:,} parameters, and full "
               "fine-tuning trains every one of them. Count them on the plain model, before any LoRA adapter is "
               "added.")
        expect(lora_trainable < full_trainable,
               f"`lora_trainable` ({lora_trainable:,}) is not smaller than `full_trainable`: with LoRA the base "
               "weights are frozen and only the small adapter matrices train. Count only the parameters with "
               "`requires_grad=True` after `get_peft_model`.")
        profile = training_profile(model_params=model_params).with_lora(True)
        expected = lora_trainable_count(model, profile)
        expect(lora_trainable == expected,
               f"`lora_trainable` ({lora_trainable:,}) is not what LoRA with `lora_profile`'s settings "
               f"(r={profile.lora_r}, targets {profile.lora_target_modules!r}) trains on {model}. Each adapted "
               "layer adds r x (inputs + outputs) parameters: use the profile's r and target modules, and count "
               "after `get_peft_model`.")
        share = lora_trainable / full_trainable
        return (f"LoRA trains {lora_trainable:,} of {full_trainable:,} parameters ({share:.1%}); the optimizer "
                f"state shrinks with it (about {16 * full_trainable / 2**20:,.1f} MiB of weights, gradients and "
                f"Adam moments for full fine-tuning against {16 * lora_trainable / 2**20:,.2f} MiB for the "
                f"adapters, plus the frozen weights).")


class OwnSFT(Exercise):
    notebook = NOTEBOOK
    name = "q3"
    title = "A trait of your own"
    level = Level.OWN
    variables = ("my_sft_data", "my_own_result")
    hints = (
        "`distillation.Trait(name=..., opening=..., rule=..., examples=((question, answer), ...))`: every example "
        "answer starts with the opening.",
        f"Write at least {MIN_OWN_ROWS} instructions for a use case of yours and let the teacher answer them: "
        "`distillation.teacher_answers(my_instructions, my_trait, model=model_id).dataset` has a single "
        "`messages` column.",
        "Then train with `sft(my_sft_data, model=model_id, output_dir=..., max_steps=MAX_STEPS)`.",
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


def _turn(role: str, content: str) -> dict[str, str]:
    return {"role": role, "content": content}


_Q, _A = _turn("user", "How deep should I plant tulips?"), _turn("assistant", "About 15 cm deep.")
_Q2, _A2 = _turn("user", "And daffodils?"), _turn("assistant", "A little less: about 10 cm.")
_SYSTEM = _turn("system", "You are a gardener.")
_SPLIT_CASES = (
    Case("one question, one answer", ([_Q, _A],), {"prompt": [_Q], "completion": [_A]}),
    Case("a system prompt comes first and belongs to the prompt", ([_SYSTEM, _Q, _A],),
         {"prompt": [_SYSTEM, _Q], "completion": [_A]}),
    Case("two turns (Magpie with n_turns=2): only the last answer is trained on, the first is context",
         ([_Q, _A, _Q2, _A2],), {"prompt": [_Q, _A, _Q2], "completion": [_A2]}),
    Case("the conversation ends with the user: nothing to learn", ([_Q, _A, _Q2],), None),
    Case("an answer with no question before it", ([_SYSTEM, _A],), None),
    Case("no messages at all", ([],), None),
)


class PromptCompletion(Exercise):
    notebook = NOTEBOOK
    name = "q4"
    title = "Split a conversation into what SFT reads and what it learns"
    level = Level.DEFAULT
    variables = ("my_prompt_completion",)
    hints = (
        "The completion is the last message, as a list of one message (`messages[-1:]`), when its role is "
        "`assistant`; everything before it is the prompt (`messages[:-1]`).",
        "Return None when the last message is not the assistant's, or when no user message comes before it: TRL "
        "would have no answer to learn, or an answer to nothing.",
        "Check the empty list first: `messages[-1]` raises IndexError on it.",
    )

    def _check(self, my_prompt_completion: Any) -> str:
        def read(got: Any, case: Case) -> Any:
            if got is None:
                return None
            expect(isinstance(got, dict) and set(got) == {"prompt", "completion"},
                   f"it returned {got!r}; return a dict with the keys 'prompt' and 'completion' (lists of "
                   "messages), or None")
            return got

        n = run_cases(my_prompt_completion, "my_prompt_completion", _SPLIT_CASES, read=read)
        return (f"Your split passed all {n} hidden cases. `prepare_dataset` does this to every row, and with "
                "`completion_only_loss=True` TRL computes the loss on the completion's tokens only.")


q1 = TRLCell()
q2 = LoRAParameters()
q3 = OwnSFT()
q4 = PromptCompletion()
EXERCISES = (q1, q2, q3, q4)
