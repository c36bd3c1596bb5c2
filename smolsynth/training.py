"""Train on the generated data: TRL SFT, then DPO, with hardware profiles and a reference-model check.

Thin over TRL 1.x (``SFTTrainer``/``SFTConfig``, ``DPOTrainer``/``DPOConfig``). You build the trainer yourself;
smolsynth supplies what TRL lacks, as functions you call beside it (notebooks 03 and 04 do exactly this)::

    config = sft_config(training_profile(model_params=count_parameters(model_id)), output_dir="out/sft")
    train, held_out = prepare_dataset(rows, method="sft")
    trainer = SFTTrainer(model=model_path(model_id), args=config, train_dataset=train, eval_dataset=held_out,
                         processing_class=load_tokenizer(model_id), peft_config=lora_config(profile))
    with measured() as cost:
        trainer.train()
    result = save_checkpoint(trainer, "out/sft", started_from=model_id, cost=cost)

(for DPO: ``dpo_config``, ``DPOTrainer``, and ``check_reference(trainer)`` before ``train()``). :func:`sft` and
:func:`dpo` run the same pieces in one call, for the demo and for scripts. What the pieces add:

* **profiles** (:func:`training_profile`): fp32 + ``use_cpu`` and LoRA for every real model on a CPU, fp16 on a
  T4-class GPU (compute capability < 8, LoRA above ~0.5B parameters), bf16 on Ampere and newer; :func:`lora_config`
  is the ``peft.LoraConfig`` that goes with a profile. Every default lands in the returned TRL config, where
  you can read it, and every one can be overridden by keyword (``sft(..., learning_rate=1e-4)``);
* **SFT from ``messages``** (:func:`prepare_dataset`): each conversation becomes ``prompt`` (every turn before the last assistant
  turn) and ``completion`` (the last assistant turn), so the loss covers the answer only, without needing
  ``{% generation %}`` markers in the chat template (SmolLM2's and plain ChatML templates have none);
* **DPO from a saved SFT checkpoint** (:func:`check_reference`): given an in-memory model and no ``ref_model``, TRL
  reloads the reference from ``model.config._name_or_path``, i.e. the *base* checkpoint, not your SFT model.
  :func:`check_reference` (and :func:`dpo`) evaluates before the first step and raises
  :class:`ReferenceModelError` unless the rewards are ~0 there;
* **a checkpoint that says what it is** (:func:`save_checkpoint`): LoRA merged, the tokenizer beside it, and
  ``smolsynth_training.json`` (what it started from, metrics, log), which the next notebook checks; :func:`measured`
  adds the minutes and peak memory;
* **quiet runs**: no ``report_to`` integrations, no dataset/weight-loading progress bars, no deprecation noise, one
  progress bar (or the notebook's progress table) for training;
* **an account**: eval loss before and after, rows dropped by reason, seconds and throughput, in ``result.metrics``.

The whole path on the tiny offline model takes seconds::

    >>> from datasets import Dataset
    >>> from smolsynth.training import sft, dpo
    >>> chats = Dataset.from_list([{"messages": [{"role": "user", "content": f"Say {i}."},
    ...                                          {"role": "assistant", "content": f"{i}."}]} for i in range(16)])
    >>> s = sft(chats, model="smolsynth/tiny", output_dir="out/sft", max_steps=2)      # doctest: +SKIP
    >>> pairs = Dataset.from_list([{"prompt": [{"role": "user", "content": f"Say {i}."}],
    ...                             "chosen": [{"role": "assistant", "content": f"{i}."}],
    ...                             "rejected": [{"role": "assistant", "content": "No."}]} for i in range(16)])
    >>> d = dpo(pairs, model=s.output_dir, output_dir="out/dpo", max_steps=2)           # doctest: +SKIP
    >>> d.metrics["eval_rewards/margins_before"]                                         # doctest: +SKIP
    0.0

Saved checkpoints are plain transformers folders (LoRA adapters are merged first), so
``smolsynth.load_model(result.output_dir)`` loads them back for generation.
"""

from __future__ import annotations

import copy
import dataclasses
import gc
import json
import math
import os
import shutil
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from smolsynth.arguments import check_number, check_path
from smolsynth.formats import validate_dpo_dataset, validate_sft_dataset
from smolsynth.hardware import TrainingProfile, count_parameters, training_profile
from smolsynth.report import Report
from smolsynth.rows import Result
from smolsynth.verbosity import quiet_training, quiet_warnings

if TYPE_CHECKING:  # pragma: no cover
    from datasets import Dataset
    from trl import DPOConfig, SFTConfig

__all__ = [
    "START_MARGIN_TOLERANCE",
    "Cost",
    "ReferenceModelError",
    "TrainingProfile",
    "TrainingResult",
    "check_reference",
    "count_parameters",
    "dpo",
    "dpo_config",
    "lora_config",
    "measured",
    "prepare_dataset",
    "save_checkpoint",
    "sft",
    "sft_config",
    "training_profile",
]

START_MARGIN_TOLERANCE = 0.1
"""Largest mean |log pi(y|x) - log pi_ref(y|x)| (in nats, summed over a completion's tokens) accepted before the first
DPO step. The rewards TRL logs are ``beta`` times this, so with ``beta=0.1`` the eval rewards and margins at step 0
must lie within +-0.01. When the reference *is* the starting policy they are exactly 0 on a CPU (the same weights run
the same computation); the in-memory trap gives values of order 1 (0.5-3 measured)."""

# ================================================================================================= cost
@dataclass
class Cost:
    """What a block of work cost: wall-clock ``seconds`` and the process's peak resident memory ``peak_rss_gb``
    while it ran (sampled every 0.1 s, so a spike shorter than that can be missed)."""

    seconds: float = 0.0
    peak_rss_gb: float = 0.0

    def __str__(self) -> str:
        return f"{self.seconds / 60:.1f} min ({self.seconds:.0f} s), peak RSS {self.peak_rss_gb:.1f} GB"

    __repr__ = __str__


@contextmanager
def measured() -> Iterator[Cost]:
    """Measure the time and peak memory (RSS) of the block; the :class:`Cost` is filled in when the block ends.

    >>> with measured() as cost:
    ...     _ = sum(range(1000))
    >>> cost.seconds >= 0 and cost.peak_rss_gb > 0
    True
    """
    import threading

    import psutil

    process, cost, done = psutil.Process(), Cost(), threading.Event()
    peak = [process.memory_info().rss]

    def sample() -> None:
        while not done.wait(0.1):
            peak[0] = max(peak[0], process.memory_info().rss)

    sampler = threading.Thread(target=sample, daemon=True)
    started = time.perf_counter()
    sampler.start()
    try:
        yield cost
    finally:
        done.set()
        sampler.join()
        peak[0] = max(peak[0], process.memory_info().rss)
        cost.seconds = round(time.perf_counter() - started, 2)
        cost.peak_rss_gb = round(peak[0] / 2**30, 2)


# ================================================================================================= results
@dataclass(eq=False)
class TrainingResult(Result):
    """What :func:`sft` and :func:`dpo` return: a :class:`~smolsynth.rows.Result` (``rows``: the training rows in
    TRL's format, ``dropped_rows``, ``report``: rows in and out, dropped by reason, seconds) plus the run.

    ``output_dir`` holds a plain transformers checkpoint (model + tokenizer; LoRA merged in) that
    ``smolsynth.load_model(output_dir)`` loads; pass it as ``model=`` to the next step. ``config`` is the TRL config
    that ran, every default visible. ``log_history`` is the trainer's log, starting with the evaluation at step 0.
    ``metrics`` has ``eval_loss_before``/``eval_loss_after`` (and for DPO every ``eval_rewards/*`` before and after),
    ``train_rows``, ``eval_rows``, ``dropped_rows`` (reason -> count), ``train_steps``, ``examples_per_second``.
    ``model`` is the trained model object only with ``keep_model=True`` (never pass it to :func:`dpo` without a
    ``ref_model``: pass ``output_dir``).
    """

    kind: Literal["sft", "dpo"] = "sft"
    output_dir: str = ""
    config: Any = None
    log_history: list[dict[str, Any]] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    train_seconds: float = 0.0
    profile: TrainingProfile | None = None
    model: Any = field(default=None, repr=False)

    def __str__(self) -> str:
        return f"{self.kind.upper()} -> {self.output_dir}: {self.report}"

    __repr__ = __str__

    def _repr_html_(self) -> str:  # a compact card in Jupyter
        rows = "".join(f"<tr><td>{k}</td><td>{_fmt(v)}</td></tr>" for k, v in self.metrics.items())
        profile = self.profile.name if self.profile else "?"
        return (f"<b>{self.kind.upper()}</b> &rarr; <code>{self.output_dir}</code> "
                f"({self.train_seconds:.1f} s, profile {profile})<table>{rows}</table>")


def _fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


class ReferenceModelError(RuntimeError):
    """DPO would start with a reference model that is not the policy: rewards/margins are not ~0 at step 0."""


# ================================================================================================= data
def _split(ds: Dataset, eval_fraction: float, eval_dataset: Any, seed: int,
           validate: Any) -> tuple[Dataset, Dataset | None]:
    if eval_dataset is not None:
        return ds, validate(eval_dataset).dataset
    if eval_fraction == 0 or len(ds) < 2:
        return ds, None
    n_eval = min(len(ds) - 1, max(1, round(eval_fraction * len(ds))))
    parts = ds.train_test_split(test_size=n_eval, seed=seed)
    return parts["train"], parts["test"]


def _split_dict(dataset: Any) -> tuple[Any, Any]:
    """A DatasetDict with train and test/validation splits -> (train, eval)."""
    from datasets import DatasetDict

    if isinstance(dataset, (DatasetDict, dict)) and "train" in dataset:
        ev = next((dataset[k] for k in ("test", "validation", "eval") if k in dataset), None)
        return dataset["train"], ev
    return dataset, None


def prepare_dataset(dataset: Any, *, method: Literal["sft", "dpo"] = "sft", eval_fraction: float = 0.1,
                    eval_dataset: Any = None, seed: int = 0) -> tuple[Dataset, Dataset | None]:
    """``(train, eval)`` datasets in the format TRL's trainer for ``method`` reads, checked before any model loads.

    SFT rows (``messages``) become ``prompt``/``completion`` (the loss then covers the answer only, see
    :func:`smolsynth.formats.messages_to_prompt_completion`); DPO rows keep ``prompt``/``chosen``/``rejected`` and lose
    pairs whose chosen equals rejected. ``eval_fraction`` of the rows (at least one) is held out, unless
    ``eval_dataset`` is given or the dataset is a DatasetDict with a test split; ``eval`` is None with
    ``eval_fraction=0``. Raises ValueError (naming the problem and the fix) on data TRL could not train on.

    >>> train, held_out = prepare_dataset([{"messages": [{"role": "user", "content": f"Say {i}."},
    ...                                                  {"role": "assistant", "content": f"{i}."}]}
    ...                                    for i in range(10)])
    >>> len(train), len(held_out), sorted(train.column_names)
    (9, 1, ['completion', 'prompt'])
    """
    if method not in ("sft", "dpo"):
        raise ValueError(f"method={method!r}: use 'sft' (a 'messages' dataset) or 'dpo' (prompt/chosen/rejected).")
    _check_training_arguments(dataset, None, 1, eval_fraction, {})
    validate = validate_sft_dataset if method == "sft" else validate_dpo_dataset
    train_raw, eval_raw = _split_dict(dataset)
    checked = validate(train_raw)
    return _split(checked.dataset, eval_fraction, eval_dataset if eval_dataset is not None else eval_raw, seed,
                  validate)


# ================================================================================================= configs
def _total_steps(n_rows: int, profile: TrainingProfile, max_steps: int | None, epochs: float,
                 overrides: Mapping[str, Any]) -> int:
    if max_steps:
        return max_steps
    bs = overrides.get("per_device_train_batch_size", profile.per_device_train_batch_size)
    acc = overrides.get("gradient_accumulation_steps", profile.gradient_accumulation_steps)
    return max(1, math.ceil(math.ceil(n_rows / bs) / acc * epochs))


def _common_kwargs(profile: TrainingProfile, method: Literal["sft", "dpo"], *, output_dir: str,
                   max_steps: int | None, num_train_epochs: float, total_steps: int, has_eval: bool,
                   seed: int) -> dict[str, Any]:
    return dict(
        output_dir=str(output_dir),
        max_steps=max_steps if max_steps else -1,
        num_train_epochs=num_train_epochs,
        per_device_train_batch_size=profile.per_device_train_batch_size,
        per_device_eval_batch_size=profile.per_device_train_batch_size,
        gradient_accumulation_steps=profile.gradient_accumulation_steps,
        learning_rate=profile.learning_rate(method),
        lr_scheduler_type="linear",
        warmup_steps=0.1,  # transformers 5: a float < 1 is a fraction of the steps (was warmup_ratio)
        bf16=profile.bf16,
        fp16=profile.fp16,
        use_cpu=profile.use_cpu,
        activation_checkpointing=profile.gradient_checkpointing,  # the transformers 5 name: no FutureWarning
        max_length=profile.max_length,
        model_init_kwargs={"dtype": profile.model_dtype},
        eval_strategy="steps" if has_eval else "no",
        eval_steps=max(1, total_steps // 4),
        logging_steps=max(1, total_steps // 20),
        save_strategy="no",  # the final model is saved once, by smolsynth, into output_dir
        report_to="none",
        disable_tqdm=False,  # one progress bar (smolsynth hides the per-evaluation bars and log lines)
        seed=seed,
        data_seed=seed,
        dataloader_pin_memory=not profile.use_cpu,
    )


def _apply_overrides(kwargs: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    overrides = dict(overrides)
    for old, new in (("gradient_checkpointing", "activation_checkpointing"),
                     ("gradient_checkpointing_kwargs", "activation_checkpointing_kwargs")):
        if old in overrides:
            overrides[new] = overrides.pop(old)
    if "warmup_ratio" in overrides:
        overrides["warmup_steps"] = overrides.pop("warmup_ratio")
    return {**kwargs, **overrides}


def sft_config(profile: TrainingProfile | None = None, *, output_dir: str, max_steps: int | None = None,
               num_train_epochs: float = 1, n_train_rows: int = 1000, has_eval: bool = True, seed: int = 0,
               **overrides: Any) -> SFTConfig:
    """The ``SFTConfig`` :func:`sft` runs with, every profile default written out; ``overrides`` win.

    >>> from smolsynth.hardware import Hardware, training_profile
    >>> cfg = sft_config(training_profile(Hardware(), model_params=400_000), output_dir="out", max_steps=3)
    >>> (cfg.use_cpu, cfg.bf16, cfg.completion_only_loss, cfg.report_to)
    (True, False, True, [])
    """
    from trl import SFTConfig

    profile = profile or training_profile()
    total = _total_steps(n_train_rows, profile, max_steps, num_train_epochs, overrides)
    kwargs = _common_kwargs(profile, "sft", output_dir=output_dir, max_steps=max_steps,
                            num_train_epochs=num_train_epochs, total_steps=total, has_eval=has_eval, seed=seed)
    kwargs.update(completion_only_loss=True, assistant_only_loss=False, packing=False)
    with quiet_warnings():
        return SFTConfig(**_apply_overrides(kwargs, overrides))


def dpo_config(profile: TrainingProfile | None = None, *, output_dir: str, max_steps: int | None = None,
               num_train_epochs: float = 1, beta: float = 0.1, n_train_rows: int = 1000, has_eval: bool = True,
               seed: int = 0, **overrides: Any) -> DPOConfig:
    """The ``DPOConfig`` :func:`dpo` runs with, every profile default written out; ``overrides`` win.

    >>> from smolsynth.hardware import Hardware, training_profile
    >>> cfg = dpo_config(training_profile(Hardware(), model_params=400_000), output_dir="out", beta=0.2)
    >>> (cfg.beta, cfg.learning_rate, cfg.precompute_ref_log_probs)
    (0.2, 1e-06, False)
    """
    from trl import DPOConfig

    profile = profile or training_profile()
    total = _total_steps(n_train_rows, profile, max_steps, num_train_epochs, overrides)
    kwargs = _common_kwargs(profile, "dpo", output_dir=output_dir, max_steps=max_steps,
                            num_train_epochs=num_train_epochs, total_steps=total, has_eval=has_eval, seed=seed)
    kwargs.update(beta=beta, loss_type=["sigmoid"], precompute_ref_log_probs=False)
    with quiet_warnings():
        return DPOConfig(**_apply_overrides(kwargs, overrides))


# ================================================================================================= trainers
def _tidy_callbacks(trainer: Any) -> None:
    """One progress bar: no printed log dicts, no per-evaluation bars (the notebook table is kept as is)."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    class _TrainingBar(ProgressCallback):
        def on_prediction_step(self, args, state, control, eval_dataloader=None, **kwargs):  # noqa: ANN001
            pass

        def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: ANN001
            pass

    trainer.remove_callback(PrinterCallback)
    for cb in list(trainer.callback_handler.callbacks):
        if type(cb) is ProgressCallback:
            trainer.remove_callback(cb)
            trainer.add_callback(_TrainingBar())


# ================================================================================================= training
def _resolve(model: Any, profile: TrainingProfile | None, lora: bool | None,
             tokenizer: Any) -> tuple[Any, str, int, TrainingProfile, Any]:
    """-> (model object or path for TRL, a name for messages, parameter count, profile, tokenizer)."""
    from smolsynth.models import load_tokenizer, model_path, resolve_model

    if isinstance(model, (str, os.PathLike)) or model is None:
        name = resolve_model(str(model) if model is not None else None)
        path = model_path(name)
        n_params = count_parameters(path)
        tok = tokenizer or load_tokenizer(name)
        target: Any = path
    else:
        name = getattr(getattr(model, "config", None), "_name_or_path", type(model).__name__)
        n_params = count_parameters(model)
        tok = tokenizer or load_tokenizer(name)
        target = model
    if tok.pad_token is None:  # TRL pads with it; a tokenizer the caller holds is copied, never changed
        tok = copy.deepcopy(tok) if tokenizer is not None else tok
        tok.pad_token = tok.eos_token
    prof = profile or training_profile(model_params=n_params)
    if lora is not None:
        prof = prof.with_lora(lora)
    return target, name, n_params, prof, tok


def _prepare(model: Any, profile: TrainingProfile | None, lora: bool | None, tokenizer: Any,
             config_overrides: Mapping[str, Any]) -> tuple[Any, str, int, TrainingProfile, Any, dict[str, Any]]:
    """:func:`_resolve`, and the config overrides (an in-memory model takes no ``model_init_kwargs``)."""
    target, name, n_params, prof, tok = _resolve(model, profile, lora, tokenizer)
    overrides = dict(config_overrides)
    if not isinstance(target, str):
        overrides.setdefault("model_init_kwargs", None)
    return target, name, n_params, prof, tok, overrides


def _check_training_arguments(dataset: Any, max_steps: Any, num_train_epochs: Any, eval_fraction: Any,
                              overrides: Mapping[str, Any]) -> None:
    if dataset is None or isinstance(dataset, str):
        raise TypeError(f"dataset={dataset!r}: pass the training rows (a datasets.Dataset, a list of dicts, or the "
                        "result of to_sft() / binarize()).")
    check_number("max_steps", max_steps, minimum=1, integer=True, allow_none=True)
    check_number("num_train_epochs", num_train_epochs, minimum=0, exclusive_minimum=True)
    if not (isinstance(eval_fraction, (int, float)) and not isinstance(eval_fraction, bool)
            and 0 <= eval_fraction < 1):
        raise ValueError(f"eval_fraction={eval_fraction!r} must be in [0, 1) (the share of rows held out), e.g. "
                         "eval_fraction=0.1, or 0 for none.")
    if "learning_rate" in overrides:
        check_number("learning_rate", overrides["learning_rate"], minimum=0, maximum=1, exclusive_minimum=True)
    for name in ("per_device_train_batch_size", "gradient_accumulation_steps", "max_length"):
        if name in overrides:
            check_number(name, overrides[name], minimum=1, integer=True)


def lora_config(profile: TrainingProfile | None = None) -> Any:
    """The ``peft.LoraConfig`` of ``profile`` (its rank, alpha, dropout and target modules), or None when the profile
    trains every weight. Pass it to a TRL trainer as ``peft_config=``.

    >>> from smolsynth.hardware import Hardware
    >>> lora_config(training_profile(Hardware(), model_params=135_000_000)).r
    16
    """
    profile = profile or training_profile()
    if not profile.lora:
        return None
    from peft import LoraConfig

    targets = profile.lora_target_modules
    return LoraConfig(r=profile.lora_r, lora_alpha=profile.lora_alpha, lora_dropout=profile.lora_dropout,
                      target_modules=targets if isinstance(targets, str) else list(targets), task_type="CAUSAL_LM")


def _save(trainer: Any, output_dir: str) -> Any:
    """Save a plain transformers checkpoint (LoRA merged into the weights) with the trainer's tokenizer; return the
    model."""
    model = trainer.model
    if hasattr(model, "merge_and_unload"):  # a peft model: merge the adapters, save plain weights
        model = model.merge_and_unload()
    model.save_pretrained(output_dir)
    trainer.processing_class.save_pretrained(output_dir)
    return model


def check_reference(trainer: Any, *, tolerance: float = START_MARGIN_TOLERANCE) -> dict[str, float]:
    """Evaluate a ``DPOTrainer`` before its first step and raise :class:`ReferenceModelError` unless the rewards and
    margins are ~0 (``|value| <= tolerance * beta``): at step 0 the policy must *be* its reference.

    Returns the step-0 evaluation (pass it to :func:`save_checkpoint` as ``before=``). The trainer needs an
    ``eval_dataset`` (a few training pairs will do). With LoRA and no ``ref_model`` the reference is the policy with
    its adapters switched off, which is exactly the starting policy.

    >>> before = check_reference(trainer)                          # doctest: +SKIP
    >>> abs(before["eval_rewards/margins"]) < 1e-3                 # doctest: +SKIP
    True
    """
    check_number("tolerance", tolerance, minimum=0)
    if getattr(trainer, "eval_dataset", None) is None:
        raise ValueError("check_reference(trainer) needs a trainer with an eval_dataset: pass eval_dataset= to "
                         "DPOTrainer (e.g. the held-out split of prepare_dataset, or a few training pairs).")
    with quiet_training():
        before = trainer.evaluate()
    problem = _check_start(before, beta=float(trainer.args.beta), tolerance=tolerance, model=trainer.model,
                           ref_model=getattr(trainer, "ref_model", None), trainer=trainer, from_path=True)
    if problem:
        raise ReferenceModelError(problem)
    return before


def save_checkpoint(trainer: Any, output_dir: str | os.PathLike, *, started_from: str,
                    before: Mapping[str, Any] | None = None, cost: Cost | None = None,
                    profile: TrainingProfile | None = None) -> TrainingResult:
    """Save what a TRL ``SFTTrainer``/``DPOTrainer`` trained, after ``trainer.train()``; return a :class:`TrainingResult`.

    Writes a plain transformers checkpoint to ``output_dir`` (LoRA adapters merged into the weights, the tokenizer
    beside them) and ``smolsynth_training.json``: the kind of run, ``started_from`` (the model id or checkpoint
    folder training started from, as ``metrics["model"]``: later notebooks check it), the metrics and the log
    history. The eval loss (and for DPO the rewards) at the
    end is measured when the trainer has an eval split; ``before`` (``trainer.evaluate()`` before training, or what
    :func:`check_reference` returned) adds the step-0 values. ``cost`` (from :func:`measured`) adds the minutes and
    peak memory of training.

    >>> trainer.train()                                                               # doctest: +SKIP
    >>> result = save_checkpoint(trainer, "out/sft", started_from="smolsynth/tiny")      # doctest: +SKIP
    >>> smolsynth.load_model(result.output_dir)                                        # doctest: +SKIP
    """
    check_path("output_dir", output_dir)
    with quiet_training():  # the evaluation and the LoRA merge print library notices otherwise
        return _save_checkpoint(trainer, str(output_dir), started_from=started_from, before=before, cost=cost,
                                profile=profile)


def _save_checkpoint(trainer: Any, output_dir: str, *, started_from: str, before: Mapping[str, Any] | None,
                     cost: Cost | None, profile: TrainingProfile | None, account: Mapping[str, Any] | None = None,
                     checked: Result | None = None, t_start: float | None = None,
                     keep_model: bool = True) -> TrainingResult:
    """:func:`save_checkpoint`'s work. :func:`sft`/:func:`dpo` add their ``account`` (metrics that win over the
    ones read from the trainer: the base model's size, the rows their checks dropped), the ``checked`` rows and the
    call's start, so that the report and the record are written once."""
    kind: Literal["sft", "dpo"] = "dpo" if hasattr(trainer.args, "beta") else "sft"
    history = list(trainer.state.log_history)
    after_raw: dict[str, Any] | None = None
    if trainer.eval_dataset is not None and trainer.args.eval_strategy != "no":
        last_eval = next((h for h in reversed(history) if "eval_loss" in h), None)
        if last_eval is not None and last_eval.get("step") == trainer.state.global_step:
            after_raw = last_eval
        else:
            after_raw = trainer.evaluate()
            history = list(trainer.state.log_history)
    elif trainer.eval_dataset is not None and before is not None:
        after_raw = trainer.evaluate()
        history = list(trainer.state.log_history)
    lora = hasattr(trainer.model, "merge_and_unload")
    metrics: dict[str, Any] = {"model": started_from, "lora": lora,
                               "train_rows": len(trainer.train_dataset),
                               "eval_rows": len(trainer.eval_dataset) if trainer.eval_dataset is not None else 0}
    if kind == "dpo":
        metrics["beta"] = float(trainer.args.beta)
    if before is not None:
        history.insert(0, {**before, "epoch": 0.0, "step": 0})
        metrics.update({f"{k}_before": float(v) for k, v in before.items()
                        if k == "eval_loss" or k.startswith("eval_rewards/")})
    if after_raw is not None:
        metrics.update({f"{k}_after": float(v) for k, v in after_raw.items()
                        if k == "eval_loss" or k.startswith("eval_rewards/")})
    train_out = next((h for h in reversed(history) if "train_loss" in h), {})
    train_seconds = cost.seconds if cost is not None else float(train_out.get("train_runtime") or 0.0)
    steps = trainer.state.global_step
    seen = steps * trainer.args.per_device_train_batch_size * trainer.args.gradient_accumulation_steps
    metrics.update(train_loss=train_out.get("train_loss"), train_steps=steps,
                   examples_per_second=round(seen / train_seconds, 2) if train_seconds > 0 else None)
    if cost is not None:
        metrics.update(train_minutes=round(cost.seconds / 60, 2), peak_rss_gb=cost.peak_rss_gb)
    model = _save(trainer, output_dir)
    metrics["model_params"] = count_parameters(model)  # the saved (merged) model: adapters are not parameters of it
    metrics.update(account or {})
    used = metrics["train_rows"] + metrics["eval_rows"]
    seconds = round(train_seconds, 2)
    if t_start is not None:
        seconds = metrics["total_seconds"] = round(time.perf_counter() - t_start, 2)
    report = Report(kind.upper(), rows_in=checked.report.rows_in if checked is not None else used, rows_out=used,
                    dropped=dict(metrics.get("dropped_rows") or {}), seconds=seconds,
                    compute_seconds=round(train_seconds, 3), model=metrics["model"])
    result = TrainingResult(rows=[], dropped_rows=list(checked.dropped_rows) if checked is not None else [],
                            report=report, kind=kind, output_dir=str(output_dir), config=trainer.args,
                            log_history=history, metrics=metrics, train_seconds=round(train_seconds, 3),
                            profile=profile, model=model if keep_model else None)
    with open(Path(output_dir) / "smolsynth_training.json", "w", encoding="utf-8") as fh:
        json.dump({"kind": kind, "metrics": metrics, "log_history": history,
                   "profile": profile.as_dict() if profile else None}, fh, indent=1, default=str)
    return result


def _train_and_save(trainer: Any, checked: Result, *, output_dir: str,
                    profile: TrainingProfile, before: dict[str, Any] | None, metrics: dict[str, Any], t_start: float,
                    keep_model: bool) -> TrainingResult:
    """Train, then save as :func:`save_checkpoint` does, with the account of the rows :func:`sft`/:func:`dpo`
    checked.

    With checkpoints on (``save_strategy="steps"``, ``save_steps=N``: what a recipe's training steps use), a
    ``checkpoint-*`` folder that an interrupted run left in ``output_dir`` is resumed from (weights, optimizer,
    scheduler, data order and random state: the steps after it are the steps an uninterrupted run takes), and the
    checkpoints are deleted once the final model is saved."""
    from transformers.trainer_utils import get_last_checkpoint

    saving = str(getattr(trainer.args.save_strategy, "value", trainer.args.save_strategy)) != "no"
    resume = get_last_checkpoint(output_dir) if saving and Path(output_dir).is_dir() else None
    if resume is not None:
        metrics = {**metrics, "resumed_from": Path(resume).name}
    with measured() as cost:
        trainer.train(resume_from_checkpoint=resume)
    with quiet_training():
        result = _save_checkpoint(trainer, output_dir, started_from=metrics["model"], before=before, cost=cost,
                                  profile=profile, account=metrics, checked=checked, t_start=t_start,
                                  keep_model=keep_model)
    for folder in Path(output_dir).glob("checkpoint-*"):
        shutil.rmtree(folder, ignore_errors=True)
    return result


def _release() -> None:
    """Free what a finished trainer held (call after dropping the last reference to it)."""
    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except Exception:  # pragma: no cover
        pass


def sft(dataset: Any, *, model: Any = None, output_dir: str, max_steps: int | None = None,
        num_train_epochs: float = 1, eval_fraction: float = 0.1, eval_dataset: Any = None, lora: bool | None = None,
        profile: TrainingProfile | None = None, seed: int = 0, tokenizer: Any = None, keep_model: bool = False,
        **config_overrides: Any) -> TrainingResult:
    """Supervised fine-tuning with TRL's ``SFTTrainer`` on a ``messages`` dataset; save to ``output_dir``.

    Args:
        dataset: a ``datasets.Dataset`` with a ``messages`` column (see smolsynth.formats), or ``prompt``/``completion`` columns; a
            ``DatasetDict`` with ``train`` (+ ``test``) splits; or a list of dicts.
        model: a model id, a local checkpoint path, or None for ``$SMOLSYNTH_MODEL`` / the hardware default.
        output_dir: where the final model and tokenizer are saved (a plain checkpoint; LoRA is merged in).
        max_steps: optimizer steps (overrides ``num_train_epochs`` when set).
        eval_fraction: share of rows held out for eval loss (at least 1 row; 0 for none). Ignored with
            ``eval_dataset`` or a DatasetDict that has a test split.
        lora: force LoRA on/off (None: the profile decides).
        profile: a :class:`TrainingProfile` (None: :func:`training_profile` for this machine and model size).
        config_overrides: any ``SFTConfig`` field, e.g. ``learning_rate=1e-4``, ``max_length=2048``.

    Returns a :class:`TrainingResult`; ``metrics["eval_loss_before"]`` / ``["eval_loss_after"]`` compare the held-out
    loss before and after training.

    >>> from datasets import Dataset
    >>> chats = Dataset.from_list([{"messages": [{"role": "user", "content": f"Count to {i}."},
    ...                                          {"role": "assistant", "content": " ".join(map(str, range(i)))}]}
    ...                            for i in range(1, 17)])
    >>> result = sft(chats, model="smolsynth/tiny", output_dir="out/sft", max_steps=2)  # doctest: +SKIP
    >>> result.metrics["eval_loss_after"] < result.metrics["eval_loss_before"]          # doctest: +SKIP
    True
    """
    from trl import SFTTrainer

    t_start = time.perf_counter()
    _check_training_arguments(dataset, max_steps, num_train_epochs, eval_fraction, config_overrides)
    check_path("output_dir", output_dir)
    train_raw, eval_raw = _split_dict(dataset)
    checked = validate_sft_dataset(train_raw)  # before any model is loaded
    train_ds, eval_ds = _split(checked.dataset, eval_fraction, eval_dataset if eval_dataset is not None else eval_raw,
                               seed, validate_sft_dataset)
    with quiet_training():
        target, _name, n_params, prof, tok, overrides = _prepare(model, profile, lora, tokenizer, config_overrides)
        cfg = sft_config(prof, output_dir=output_dir, max_steps=max_steps, num_train_epochs=num_train_epochs,
                         n_train_rows=len(train_ds), has_eval=eval_ds is not None, seed=seed, **overrides)
        trainer = SFTTrainer(model=target, args=cfg, train_dataset=train_ds, eval_dataset=eval_ds,
                             processing_class=tok, peft_config=lora_config(prof))
        _tidy_callbacks(trainer)
        metrics: dict[str, Any] = {
            "model": _name, "model_params": n_params, "lora": prof.lora, "train_rows": len(trainer.train_dataset),
            "eval_rows": len(trainer.eval_dataset) if trainer.eval_dataset is not None else 0,
            "dropped_rows": _dropped(len(train_ds), len(trainer.train_dataset), checked.report.dropped),
        }
        before = trainer.evaluate() if eval_ds is not None else None
        result = _train_and_save(trainer, checked, output_dir=output_dir, profile=prof,
                                 before=before, metrics=metrics, t_start=t_start, keep_model=keep_model)
    del trainer
    _release()
    return result


def _dropped(n_in: int, n_out: int, checked: Mapping[str, int]) -> dict[str, int]:
    """Rows dropped by the format check, and by TRL (rows too long for ``max_length``), by reason."""
    out = dict(checked)
    if n_out < n_in:
        out["too_long_for_max_length"] = n_in - n_out
    return out


def dpo(dataset: Any, *, model: Any, output_dir: str, max_steps: int | None = None, num_train_epochs: float = 1,
        beta: float = 0.1, eval_fraction: float = 0.1, eval_dataset: Any = None, lora: bool | None = None,
        profile: TrainingProfile | None = None, seed: int = 0, check_start_margin: bool = True,
        start_margin_tolerance: float = START_MARGIN_TOLERANCE, ref_model: Any = None, tokenizer: Any = None,
        keep_model: bool = False, **config_overrides: Any) -> TrainingResult:
    """Direct preference optimisation with TRL's ``DPOTrainer``, starting from a saved SFT checkpoint.

    Args:
        dataset: ``prompt``/``chosen``/``rejected`` message lists (see smolsynth.formats); extra columns are dropped, rows with
            chosen == rejected dropped and counted.
        model: the **path** of the saved SFT checkpoint (``sft_result.output_dir``), or a model id. The reference
            model is then the same checkpoint, as DPO requires. An in-memory model works only with ``ref_model``:
            without one TRL loads the reference from ``model.config._name_or_path`` (the base model).
        beta: DPO temperature (rewards are ``beta`` times policy/reference log-ratios).
        check_start_margin: evaluate before the first step and raise :class:`ReferenceModelError` when the eval
            rewards or margins are not ~0 (``|reward| <= start_margin_tolerance * beta``, see
            :data:`START_MARGIN_TOLERANCE`). Uses the eval split, or up to 8 training rows without one.
        ref_model: an explicit reference (a path or a model object), e.g. ``copy.deepcopy(model)``.
        config_overrides: any ``DPOConfig`` field, e.g. ``learning_rate=5e-7``, ``max_length=2048``.

    >>> result = dpo(pairs, model=sft_result.output_dir, output_dir="out/dpo", max_steps=2)   # doctest: +SKIP
    >>> abs(result.metrics["eval_rewards/margins_before"]) < 1e-3                            # doctest: +SKIP
    True
    """
    from trl import DPOTrainer

    t_start = time.perf_counter()
    if model is None:
        raise ValueError("dpo() needs model=: the path of the saved SFT checkpoint (sft_result.output_dir).")
    _check_training_arguments(dataset, max_steps, num_train_epochs, eval_fraction, config_overrides)
    check_path("output_dir", output_dir)
    check_number("beta", beta, minimum=0, exclusive_minimum=True)
    check_number("start_margin_tolerance", start_margin_tolerance, minimum=0)
    train_raw, eval_raw = _split_dict(dataset)
    checked = validate_dpo_dataset(train_raw)  # before any model is loaded
    train_ds, eval_ds = _split(checked.dataset, eval_fraction, eval_dataset if eval_dataset is not None else eval_raw,
                               seed, validate_dpo_dataset)
    check_ds = eval_ds
    if check_start_margin and check_ds is None:
        check_ds = train_ds.select(range(min(8, len(train_ds))))
    with quiet_training():
        target, name, n_params, prof, tok, overrides = _prepare(model, profile, lora, tokenizer, config_overrides)
        cfg = dpo_config(prof, output_dir=output_dir, max_steps=max_steps, num_train_epochs=num_train_epochs,
                         beta=beta, n_train_rows=len(train_ds), has_eval=eval_ds is not None, seed=seed, **overrides)
        ref = ref_model
        if isinstance(ref, (str, os.PathLike)):
            from transformers import AutoModelForCausalLM

            from smolsynth.models import _from_pretrained

            ref = _from_pretrained(AutoModelForCausalLM, str(ref), dtype=_torch_dtype(prof.model_dtype))
        trainer = DPOTrainer(model=target, ref_model=ref, args=cfg, train_dataset=train_ds, eval_dataset=check_ds,
                             processing_class=tok, peft_config=lora_config(prof))
        _tidy_callbacks(trainer)
        metrics: dict[str, Any] = {
            "model": name, "model_params": n_params, "lora": prof.lora, "beta": cfg.beta,
            "train_rows": len(trainer.train_dataset),
            "eval_rows": len(trainer.eval_dataset) if eval_ds is not None else 0,
            "dropped_rows": _dropped(len(train_ds), len(trainer.train_dataset), checked.report.dropped),
        }
        before = None
        if check_start_margin or eval_ds is not None:
            before = trainer.evaluate()
            if check_start_margin:
                problem = _check_start(before, beta=cfg.beta, tolerance=start_margin_tolerance, model=model,
                                       ref_model=ref_model, trainer=trainer)
                if problem:  # free the trainer and its reference model before raising (a traceback keeps frames)
                    del trainer, ref, target
                    _release()
                    raise ReferenceModelError(problem)
            if eval_ds is None:  # the check ran on training rows: not an eval loss to report
                before = None
                trainer.eval_dataset = None
        result = _train_and_save(trainer, checked, output_dir=output_dir, profile=prof,
                                 before=before, metrics=metrics, t_start=t_start, keep_model=keep_model)
    del trainer
    _release()
    return result


def _torch_dtype(name: str) -> Any:
    import torch

    return getattr(torch, name)


def _check_start(before: Mapping[str, float], *, beta: float, tolerance: float, model: Any, ref_model: Any,
                 trainer: Any, from_path: bool = False) -> str | None:
    """None when the step-0 eval rewards are ~0; else the message of the :class:`ReferenceModelError` to raise."""
    keys = ("eval_rewards/chosen", "eval_rewards/rejected", "eval_rewards/margins")
    values = {k: float(before.get(k, 0.0)) for k in keys}
    limit = tolerance * beta
    worst = max(abs(v) for v in values.values())
    if worst <= limit:
        return None
    in_memory = not from_path and not isinstance(model, (str, os.PathLike))
    ref_path = getattr(getattr(getattr(trainer, "ref_model", None), "config", None), "_name_or_path", None)
    if in_memory and ref_model is None:
        cause = (f"You passed an in-memory model and no ref_model, so TRL loaded the reference from "
                 f"model.config._name_or_path ({ref_path!r}), which is the checkpoint that model was *loaded* "
                 f"from (the base model), not the model you trained. ")
    else:
        cause = "The reference model is not the same network as the starting policy. "
    return (
        f"DPO reference check failed before the first step: eval rewards/margins = "
        f"{values['eval_rewards/margins']:.4g} (rewards/chosen {values['eval_rewards/chosen']:.4g}, "
        f"rewards/rejected {values['eval_rewards/rejected']:.4g}); expected ~0 (|value| <= {limit:.3g} = "
        f"{tolerance} nats x beta {beta}). {cause}"
        "Fix: pass the path of the saved SFT checkpoint, dpo(pairs, model=sft_result.output_dir, ...); or pass "
        "ref_model=copy.deepcopy(model). (check_start_margin=False skips this check.)"
    )
