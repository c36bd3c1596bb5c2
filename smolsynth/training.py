"""Train on the generated data: TRL SFT, then DPO, with hardware profiles and a reference-model check.

Thin over TRL 1.x (``SFTTrainer``/``SFTConfig``, ``DPOTrainer``/``DPOConfig``). What smolsynth adds:

* **profiles** (:func:`training_profile`): fp32 + ``use_cpu`` on a CPU, fp16 on a T4-class GPU (compute capability
  < 8, LoRA above ~0.5B parameters), bf16 on Ampere and newer. Every default lands in the returned TRL config, where
  you can read it, and every one can be overridden by keyword (``sft(..., learning_rate=1e-4)``);
* **SFT from ``messages``** (:func:`sft`): each conversation becomes ``prompt`` (every turn before the last assistant
  turn) and ``completion`` (the last assistant turn), so the loss covers the answer only, without needing
  ``{% generation %}`` markers in the chat template (SmolLM2's and plain ChatML templates have none);
* **DPO from a saved SFT checkpoint** (:func:`dpo`): given an in-memory model and no ``ref_model``, TRL reloads the
  reference from ``model.config._name_or_path``, i.e. the *base* checkpoint, not your SFT model. :func:`dpo`
  evaluates before the first step and raises :class:`ReferenceModelError` unless the rewards are ~0 there;
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

import contextlib
import dataclasses
import gc
import json
import logging
import math
import os
import time
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from smolsynth.hardware import Hardware

if TYPE_CHECKING:  # pragma: no cover
    from datasets import Dataset
    from trl import DPOConfig, SFTConfig

__all__ = [
    "LORA_THRESHOLD_PARAMS",
    "START_MARGIN_TOLERANCE",
    "ReferenceModelError",
    "TrainingProfile",
    "TrainingResult",
    "count_parameters",
    "dpo",
    "dpo_config",
    "messages_to_prompt_completion",
    "sft",
    "sft_config",
    "training_profile",
    "validate_dpo_dataset",
    "validate_sft_dataset",
]

LORA_THRESHOLD_PARAMS = 500_000_000
"""On a T4-class GPU (and on MPS), models above this many parameters train with LoRA by default."""

START_MARGIN_TOLERANCE = 0.1
"""Largest mean |log pi(y|x) - log pi_ref(y|x)| (in nats, summed over a completion's tokens) accepted before the first
DPO step. The rewards TRL logs are ``beta`` times this, so with ``beta=0.1`` the eval rewards and margins at step 0
must lie within +-0.01. When the reference *is* the starting policy they are exactly 0 on a CPU (the same weights run
the same computation); the in-memory trap gives values of order 1 (0.5-3 measured)."""

_FULL_LR = {"sft": 2e-5, "dpo": 1e-6}
_LORA_LR = {"sft": 2e-4, "dpo": 5e-6}
_BYTES_PER_TRAINED_PARAM = 16  # fp32 weights + grads + two AdamW moments


# ================================================================================================= profiles
@dataclass(frozen=True)
class TrainingProfile:
    """How to train on a machine: precision, device, memory savers, LoRA, batch and learning rates, and why.

    Built by :func:`training_profile`; every field ends up in the TRL config that :func:`sft_config` /
    :func:`dpo_config` build, and each can be changed with :func:`dataclasses.replace` or :meth:`with_lora`.

    >>> from smolsynth.hardware import Hardware
    >>> p = training_profile(Hardware(device="cuda", capability=(7, 5), gpu_memory_gb=15.0, gpu_name="Tesla T4"),
    ...                      model_params=1_700_000_000)
    >>> (p.name, p.fp16, p.bf16, p.lora)
    ('cuda-fp16', True, False, True)
    """

    name: str
    dtype: Literal["float32", "float16", "bfloat16"]
    """Compute precision: mixed-precision autocast dtype on GPUs, plain float32 on CPU."""
    bf16: bool
    fp16: bool
    use_cpu: bool
    gradient_checkpointing: bool
    """Recompute activations in the backward pass (``activation_checkpointing`` in transformers 5): less memory,
    ~20% slower. Off on CPU, where the models that fit are small and time is the scarce resource."""
    lora: bool
    per_device_train_batch_size: int
    gradient_accumulation_steps: int
    sft_learning_rate: float
    dpo_learning_rate: float
    max_length: int
    """Tokens per sequence (prompt + completion). TRL truncates longer ones; DPO drops rows whose prompt alone is
    this long (smolsynth counts them in ``metrics["dropped_rows"]``)."""
    model_dtype: Literal["float32", "float16", "bfloat16"] = "float32"
    """dtype the weights are loaded in: float32 for full fine-tuning (mixed precision keeps float32 master weights),
    the half dtype under LoRA on a GPU (the frozen base weights need no float32 copy; adapters stay float32)."""
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_target_modules: str | tuple[str, ...] = "all-linear"
    reason: str = ""

    def learning_rate(self, method: Literal["sft", "dpo"]) -> float:
        """The learning rate this profile uses for ``"sft"`` or ``"dpo"``."""
        return {"sft": self.sft_learning_rate, "dpo": self.dpo_learning_rate}[method]

    def with_lora(self, lora: bool) -> TrainingProfile:
        """This profile with LoRA switched on or off, and the learning rates and weight dtype that go with it.

        >>> training_profile(Hardware(), model_params=400_000).with_lora(True).sft_learning_rate
        0.0002
        """
        if lora == self.lora:
            return self
        rates = _LORA_LR if lora else _FULL_LR
        half = self.dtype if (lora and not self.use_cpu and self.dtype != "float32") else "float32"
        return dataclasses.replace(self, lora=lora, sft_learning_rate=rates["sft"], dpo_learning_rate=rates["dpo"],
                                   model_dtype=half,
                                   reason=self.reason + f" LoRA switched {'on' if lora else 'off'} by request.")

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def training_profile(hardware: Hardware | None = None, model_params: int | None = None) -> TrainingProfile:
    """The training profile for ``hardware`` (this machine when None) and a model of ``model_params`` parameters.

    Rules (DESIGN.md D5):

    * **CPU**: float32, ``use_cpu=True``, no gradient checkpointing. LoRA only when full fine-tuning would not fit
      in half the RAM (~16 bytes per trained parameter). Batch 8 for tiny models, else 2 x 4 accumulation.
    * **CUDA, compute capability < 8** (T4, V100): fp16 mixed precision (bf16 would be emulated), gradient
      checkpointing, LoRA above ~0.5B parameters (:data:`LORA_THRESHOLD_PARAMS`), or when the size is unknown.
    * **CUDA, compute capability >= 8** (A100, L4, H100, RTX 30xx+): bf16, gradient checkpointing, LoRA only when
      full fine-tuning would need more than 3/4 of the GPU memory.
    * **MPS**: float32 (mixed precision on MPS is not dependable), LoRA above ~0.5B.

    Learning rates: full fine-tuning SFT 2e-5, DPO 1e-6; LoRA SFT 2e-4, DPO 5e-6 (TRL / alignment-handbook recipes).

    >>> training_profile(Hardware(device="cpu"), model_params=400_000).use_cpu
    True
    >>> a100 = Hardware(device="cuda", capability=(8, 0), gpu_memory_gb=40.0, gpu_name="A100")
    >>> training_profile(a100, model_params=1_700_000_000).bf16
    True
    """
    if hardware is None:
        from smolsynth.hardware import current_profile

        hardware = current_profile().hardware
    size = f"{model_params / 1e6:,.1f}M-parameter model" if model_params else "model of unknown size"

    def full_ft_fits(memory_gb: float | None, share: float) -> bool:
        if model_params is None or memory_gb is None:
            return True
        return model_params * _BYTES_PER_TRAINED_PARAM <= share * memory_gb * 2**30

    if hardware.device == "cuda":
        cap = hardware.capability or (0, 0)
        gpu = f"{hardware.gpu_name or 'the GPU'} (compute capability {cap[0]}.{cap[1]})"
        if cap[0] >= 8:
            lora = not full_ft_fits(hardware.gpu_memory_gb, 0.75) if model_params else False
            name, dtype, bf16, fp16 = "cuda-bf16", "bfloat16", True, False
            why = f"{gpu}: native bfloat16 mixed precision, gradient checkpointing; "
            why += ("LoRA, since full fine-tuning of a " + size + " would need more than 3/4 of the GPU memory."
                    if lora else "full fine-tuning of a " + size + ".")
        else:
            lora = model_params is None or model_params > LORA_THRESHOLD_PARAMS
            name, dtype, bf16, fp16 = "cuda-fp16", "float16", False, True
            why = (f"{gpu} < 8.0, T4-class: float16 mixed precision (bfloat16 would be emulated and slow), gradient "
                   "checkpointing; " + ("LoRA for a " + size + " (above ~0.5B parameters, or size unknown)."
                                        if lora else "full fine-tuning of a " + size + "."))
        big = lora or (model_params or 0) > 300_000_000
        batch = 4 if big else 8
        rates = _LORA_LR if lora else _FULL_LR
        return TrainingProfile(
            name=name, dtype=dtype, bf16=bf16, fp16=fp16, use_cpu=False, gradient_checkpointing=True, lora=lora,
            per_device_train_batch_size=batch, gradient_accumulation_steps=16 // batch,
            sft_learning_rate=rates["sft"], dpo_learning_rate=rates["dpo"], max_length=1024,
            model_dtype=dtype if lora else "float32", reason=why)
    if hardware.device == "mps":
        lora = model_params is None or model_params > LORA_THRESHOLD_PARAMS
        rates = _LORA_LR if lora else _FULL_LR
        return TrainingProfile(
            name="mps-fp32", dtype="float32", bf16=False, fp16=False, use_cpu=False, gradient_checkpointing=True,
            lora=lora, per_device_train_batch_size=4, gradient_accumulation_steps=4,
            sft_learning_rate=rates["sft"], dpo_learning_rate=rates["dpo"], max_length=1024,
            reason="Apple GPU (MPS): float32 (mixed precision is not dependable there), gradient checkpointing; "
                   + ("LoRA for a " + size + "." if lora else "full fine-tuning of a " + size + "."))
    lora = not full_ft_fits(hardware.ram_gb, 0.5)
    tiny = model_params is not None and model_params < 50_000_000
    rates = _LORA_LR if lora else _FULL_LR
    return TrainingProfile(
        name="cpu-fp32", dtype="float32", bf16=False, fp16=False, use_cpu=True, gradient_checkpointing=False,
        lora=lora, per_device_train_batch_size=8 if tiny else 2, gradient_accumulation_steps=1 if tiny else 4,
        sft_learning_rate=rates["sft"], dpo_learning_rate=rates["dpo"], max_length=512,
        reason="No GPU: float32 on the CPU with use_cpu=True (TRL's bf16 default fails there), no gradient "
               "checkpointing; " + ("LoRA, since full fine-tuning of a " + size + " would need more than half the RAM."
                                    if lora else "full fine-tuning of a " + size + "."))


def count_parameters(model: Any) -> int:
    """Number of parameters of ``model`` (a loaded model, a model id or a local path), without loading weights.

    >>> count_parameters("smolsynth/tiny") < 1_000_000
    True
    """
    if hasattr(model, "num_parameters"):
        return int(model.num_parameters())
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from smolsynth.models import _from_pretrained

    config = _from_pretrained(AutoConfig, str(model))
    with torch.device("meta"):
        skeleton = AutoModelForCausalLM.from_config(config)
    return int(skeleton.num_parameters())


# ================================================================================================= results
@dataclass
class TrainingResult:
    """What :func:`sft` and :func:`dpo` return.

    ``output_dir`` holds a plain transformers checkpoint (model + tokenizer; LoRA merged in) that
    ``smolsynth.load_model(output_dir)`` loads; pass it as ``model=`` to the next step. ``config`` is the TRL config
    that ran, every default visible. ``log_history`` is the trainer's log, starting with the evaluation at step 0.
    ``metrics`` has ``eval_loss_before``/``eval_loss_after`` (and for DPO every ``eval_rewards/*`` before and after),
    ``train_rows``, ``eval_rows``, ``dropped_rows`` (reason -> count), ``train_steps``, ``examples_per_second``.
    ``model`` is the trained model object only with ``keep_model=True`` (never pass it to :func:`dpo` without a
    ``ref_model``: pass ``output_dir``).
    """

    kind: Literal["sft", "dpo"]
    output_dir: str
    config: Any
    log_history: list[dict[str, Any]]
    metrics: dict[str, Any]
    train_seconds: float
    profile: TrainingProfile
    model: Any = field(default=None, repr=False)

    def _repr_html_(self) -> str:  # a compact card in Jupyter
        rows = "".join(f"<tr><td>{k}</td><td>{_fmt(v)}</td></tr>" for k, v in self.metrics.items())
        return (f"<b>{self.kind.upper()}</b> &rarr; <code>{self.output_dir}</code> "
                f"({self.train_seconds:.1f} s, profile {self.profile.name})<table>{rows}</table>")


def _fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


class ReferenceModelError(RuntimeError):
    """DPO would start with a reference model that is not the policy: rewards/margins are not ~0 at step 0."""


# ================================================================================================= data
SFT_FORMAT = ('a "messages" column: per row a list of {"role", "content"} dicts (optionally a system turn first, '
              'then user/assistant turns, ending with an assistant turn); or "prompt" and "completion" columns')
DPO_FORMAT = ('"prompt" (a list of {"role", "content"} messages ending with a user turn), "chosen" and "rejected" '
              '(each a list with one assistant message); or all three as plain strings')


def _as_dataset(data: Any, what: str) -> Dataset:
    from datasets import Dataset

    if isinstance(data, Dataset):
        return data
    if isinstance(data, list):
        return Dataset.from_list(data)
    if hasattr(data, "to_dict") and hasattr(data, "columns"):  # a pandas DataFrame
        return Dataset.from_pandas(data, preserve_index=False)
    raise TypeError(f"{what}: expected a datasets.Dataset (or a list of dicts / a pandas DataFrame), "
                    f"got {type(data).__name__}.")


def _check_messages(value: Any, *, column: str, row: int, expected: str) -> list[dict[str, str]]:
    if not isinstance(value, list) or not value:
        raise ValueError(f"Column {column!r}, row {row}: expected a non-empty list of messages, got "
                         f"{type(value).__name__} {str(value)[:80]!r}. Expected format: {expected}.")
    out = []
    for m in value:
        if not isinstance(m, Mapping) or not isinstance(m.get("role"), str) or not isinstance(m.get("content"), str):
            raise ValueError(f"Column {column!r}, row {row}: each message must be a dict with string 'role' and "
                             f"'content', got {str(m)[:80]!r}. Expected format: {expected}.")
        out.append({"role": m["role"], "content": m["content"]})
    return out


def validate_sft_dataset(dataset: Any) -> Dataset:
    """Check SFT data and return it as prompt/completion rows (see :func:`messages_to_prompt_completion`).

    Raises ValueError naming the column and the expected format. Extra columns are dropped (a string ``prompt``
    beside ``messages`` makes TRL's format detection depend on the hash seed).

    >>> validate_sft_dataset([{"text": "hi"}])
    Traceback (most recent call last):
    ...
    ValueError: SFT data has no 'messages' column (columns: ['text']). Expected a "messages" column: ...
    """
    ds = _as_dataset(dataset, "SFT data")
    if len(ds) == 0:
        raise ValueError("SFT data is empty.")
    if "messages" in ds.column_names:
        return messages_to_prompt_completion(ds)
    if {"prompt", "completion"} <= set(ds.column_names):
        ds = ds.select_columns(["prompt", "completion"])
        first = ds[0]
        conversational = isinstance(first["prompt"], list)
        for i, row in enumerate(ds):
            for col in ("prompt", "completion"):
                if conversational:
                    _check_messages(row[col], column=col, row=i, expected=SFT_FORMAT)
                elif not isinstance(row[col], str):
                    raise ValueError(f"Column {col!r}, row {i}: mixes strings and message lists. Expected "
                                     f"{SFT_FORMAT}.")
        return ds
    raise ValueError(f"SFT data has no 'messages' column (columns: {ds.column_names}). Expected {SFT_FORMAT}.")


def messages_to_prompt_completion(dataset: Dataset) -> Dataset:
    """Turn a ``messages`` dataset into ``prompt``/``completion`` message lists (all other columns dropped).

    The last message must be the assistant's: it becomes the completion, every turn before it the prompt (system
    turn and earlier exchanges included), so TRL's completion-only loss trains the final answer only.

    >>> from datasets import Dataset
    >>> ds = Dataset.from_list([{"messages": [{"role": "user", "content": "Hi"},
    ...                                       {"role": "assistant", "content": "Hello!"}]}])
    >>> messages_to_prompt_completion(ds)[0]
    {'prompt': [{'role': 'user', 'content': 'Hi'}], 'completion': [{'role': 'assistant', 'content': 'Hello!'}]}
    """
    from datasets import Dataset

    if "messages" not in dataset.column_names:
        raise ValueError(f"No 'messages' column (columns: {dataset.column_names}). Expected {SFT_FORMAT}.")
    rows = []
    for i, value in enumerate(dataset["messages"]):
        msgs = _check_messages(value, column="messages", row=i, expected=SFT_FORMAT)
        if msgs[-1]["role"] != "assistant":
            raise ValueError(f"Column 'messages', row {i}: the last message must be the assistant's answer (it is "
                             f"the completion the model learns), got role {msgs[-1]['role']!r}. Expected "
                             f"{SFT_FORMAT}.")
        if not any(m["role"] == "user" for m in msgs[:-1]):
            raise ValueError(f"Column 'messages', row {i}: no user turn before the assistant's answer. Expected "
                             f"{SFT_FORMAT}.")
        rows.append({"prompt": msgs[:-1], "completion": msgs[-1:]})
    return Dataset.from_list(rows)


def validate_dpo_dataset(dataset: Any) -> tuple[Dataset, dict[str, int]]:
    """Check DPO data; return it with only prompt/chosen/rejected, and the rows dropped by reason.

    Rows whose chosen and rejected answers are identical (a tie in the judge's ratings) teach nothing and are
    dropped and counted (``{"chosen == rejected": n}``). Extra columns (ratings, model names) are dropped.

    >>> validate_dpo_dataset([{"prompt": "Hi", "chosen": "Hello"}])
    Traceback (most recent call last):
    ...
    ValueError: DPO data has no 'rejected' column (columns: ['prompt', 'chosen']). Expected "prompt" ...
    """
    ds = _as_dataset(dataset, "DPO data")
    for col in ("prompt", "chosen", "rejected"):
        if col not in ds.column_names:
            raise ValueError(f"DPO data has no {col!r} column (columns: {ds.column_names}). Expected {DPO_FORMAT}.")
    if len(ds) == 0:
        raise ValueError("DPO data is empty.")
    ds = ds.select_columns(["prompt", "chosen", "rejected"])
    conversational = not isinstance(ds[0]["prompt"], str)
    keep: list[int] = []
    for i, row in enumerate(ds):
        if conversational:
            prompt = _check_messages(row["prompt"], column="prompt", row=i, expected=DPO_FORMAT)
            if prompt[-1]["role"] != "user":
                raise ValueError(f"Column 'prompt', row {i}: the prompt must end with a user turn, got role "
                                 f"{prompt[-1]['role']!r}. Expected {DPO_FORMAT}.")
            answers = []
            for col in ("chosen", "rejected"):
                msgs = _check_messages(row[col], column=col, row=i, expected=DPO_FORMAT)
                if len(msgs) != 1 or msgs[0]["role"] != "assistant":
                    raise ValueError(f"Column {col!r}, row {i}: expected a list with one assistant message, got "
                                     f"roles {[m['role'] for m in msgs]}. Expected {DPO_FORMAT}.")
                answers.append(msgs[0]["content"])
        else:
            for col in ("prompt", "chosen", "rejected"):
                if not isinstance(row[col], str):
                    raise ValueError(f"Column {col!r}, row {i}: a message list in string-format data (row 0 has a "
                                     f"string prompt); never mix the two. Expected {DPO_FORMAT}.")
            answers = [row["chosen"], row["rejected"]]
        if answers[0].strip() != answers[1].strip():
            keep.append(i)
    dropped = {"chosen == rejected": len(ds) - len(keep)} if len(keep) < len(ds) else {}
    if not keep:
        raise ValueError("DPO data: every row has chosen == rejected; there is nothing to learn from.")
    return (ds.select(keep) if dropped else ds), dropped


def _split(ds: Dataset, eval_fraction: float, eval_dataset: Any, seed: int,
           validate: Any) -> tuple[Dataset, Dataset | None]:
    if eval_dataset is not None:
        ev = validate(eval_dataset)
        return ds, (ev[0] if isinstance(ev, tuple) else ev)
    if not 0 <= eval_fraction < 1:
        raise ValueError(f"eval_fraction must be in [0, 1), got {eval_fraction}.")
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

    >>> from smolsynth.hardware import Hardware
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
    with _quiet_warnings():
        return SFTConfig(**_apply_overrides(kwargs, overrides))


def dpo_config(profile: TrainingProfile | None = None, *, output_dir: str, max_steps: int | None = None,
               num_train_epochs: float = 1, beta: float = 0.1, n_train_rows: int = 1000, has_eval: bool = True,
               seed: int = 0, **overrides: Any) -> DPOConfig:
    """The ``DPOConfig`` :func:`dpo` runs with, every profile default written out; ``overrides`` win.

    >>> from smolsynth.hardware import Hardware
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
    with _quiet_warnings():
        return DPOConfig(**_apply_overrides(kwargs, overrides))


# ================================================================================================= quiet runs
@contextlib.contextmanager
def _quiet_warnings() -> Iterator[None]:
    with warnings.catch_warnings():
        for pattern in (r".*`(is_)?gradient_checkpointing\w*` is deprecated",
                        r".*use_cache=True.* is incompatible with gradient checkpointing",
                        r".*torch\.utils\.checkpoint.*use_reentrant",
                        r".*Merge lora module to .* may get different generations",
                        r".*To copy construct from a tensor"):
            warnings.filterwarnings("ignore", message=pattern)
        warnings.filterwarnings("ignore", category=FutureWarning, module=r"(transformers|trl|peft|accelerate)\b")
        yield


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Hide dataset-map and weight-loading progress bars, library warnings and deprecation noise; restore after."""
    import datasets
    import transformers

    bars_on = datasets.utils.logging.is_progress_bar_enabled()
    tf_bars_on = transformers.utils.logging.is_progress_bar_enabled()
    tf_level = transformers.utils.logging.get_verbosity()
    loggers = {name: logging.getLogger(name).level for name in ("trl", "accelerate", "peft")}
    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    for name in loggers:
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        with _quiet_warnings():
            yield
    finally:
        if bars_on:
            datasets.enable_progress_bars()
        if tf_bars_on:
            transformers.utils.logging.enable_progress_bar()
        transformers.utils.logging.set_verbosity(tf_level)
        for name, level in loggers.items():
            logging.getLogger(name).setLevel(level)


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
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    prof = profile or training_profile(model_params=n_params)
    if lora is not None:
        prof = prof.with_lora(lora)
    return target, name, n_params, prof, tok


def _peft_config(profile: TrainingProfile) -> Any:
    if not profile.lora:
        return None
    from peft import LoraConfig

    targets = profile.lora_target_modules
    return LoraConfig(r=profile.lora_r, lora_alpha=profile.lora_alpha, lora_dropout=profile.lora_dropout,
                      target_modules=targets if isinstance(targets, str) else list(targets), task_type="CAUSAL_LM")


def _save(trainer: Any, tokenizer: Any, output_dir: str, lora: bool) -> Any:
    """Save a plain transformers checkpoint (LoRA merged into the weights) with its tokenizer; return the model."""
    model = trainer.model
    if lora and hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    model.save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)
    return model


def _train_and_save(trainer: Any, kind: Literal["sft", "dpo"], *, tokenizer: Any, output_dir: str,
                    profile: TrainingProfile, before: dict[str, Any] | None, metrics: dict[str, Any], t_start: float,
                    keep_model: bool) -> TrainingResult:
    """Train, evaluate after, save the checkpoint and ``smolsynth_training.json``; the :class:`TrainingResult`."""
    t0 = time.perf_counter()
    trainer.train()
    train_seconds = time.perf_counter() - t0
    history = list(trainer.state.log_history)
    after_raw: dict[str, Any] | None = None
    if trainer.eval_dataset is not None and trainer.args.eval_strategy != "no":
        last_eval = next((h for h in reversed(history) if "eval_loss" in h), None)
        if last_eval is not None and last_eval.get("step") == trainer.state.global_step:
            after_raw = last_eval
        else:
            after_raw = trainer.evaluate()
            history = list(trainer.state.log_history)
    if before is not None:
        history.insert(0, {**before, "epoch": 0.0, "step": 0})
        metrics.update({f"{k}_before": float(v) for k, v in before.items()
                        if k == "eval_loss" or k.startswith("eval_rewards/")})
    if after_raw is not None:
        metrics.update({f"{k}_after": float(v) for k, v in after_raw.items()
                        if k == "eval_loss" or k.startswith("eval_rewards/")})
    train_out = next((h for h in reversed(history) if "train_loss" in h), {})
    steps = trainer.state.global_step
    seen = steps * trainer.args.per_device_train_batch_size * trainer.args.gradient_accumulation_steps
    metrics.update(train_loss=train_out.get("train_loss"), train_steps=steps,
                   examples_per_second=round(seen / train_seconds, 2) if train_seconds > 0 else None)
    model = _save(trainer, tokenizer, output_dir, profile.lora)
    metrics["total_seconds"] = round(time.perf_counter() - t_start, 2)
    result = TrainingResult(kind=kind, output_dir=str(output_dir), config=trainer.args, log_history=history,
                            metrics=metrics, train_seconds=round(train_seconds, 3), profile=profile,
                            model=model if keep_model else None)
    with open(Path(output_dir) / "smolsynth_training.json", "w", encoding="utf-8") as fh:
        json.dump({"kind": kind, "metrics": metrics, "log_history": history, "profile": profile.as_dict()},
                  fh, indent=1, default=str)
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
        dataset: a ``datasets.Dataset`` with a ``messages`` column (D6), or ``prompt``/``completion`` columns; a
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
    train_raw, eval_raw = _split_dict(dataset)
    data = validate_sft_dataset(train_raw)  # before any model is loaded
    train_ds, eval_ds = _split(data, eval_fraction, eval_dataset if eval_dataset is not None else eval_raw, seed,
                               validate_sft_dataset)
    with _quiet():
        target, _name, n_params, prof, tok = _resolve(model, profile, lora, tokenizer)
        overrides = dict(config_overrides)
        if not isinstance(target, str):
            overrides.setdefault("model_init_kwargs", None)
        cfg = sft_config(prof, output_dir=output_dir, max_steps=max_steps, num_train_epochs=num_train_epochs,
                         n_train_rows=len(train_ds), has_eval=eval_ds is not None, seed=seed, **overrides)
        trainer = SFTTrainer(model=target, args=cfg, train_dataset=train_ds, eval_dataset=eval_ds,
                             processing_class=tok, peft_config=_peft_config(prof))
        _tidy_callbacks(trainer)
        metrics: dict[str, Any] = {
            "model": _name, "model_params": n_params, "lora": prof.lora, "train_rows": len(trainer.train_dataset),
            "eval_rows": len(trainer.eval_dataset) if trainer.eval_dataset is not None else 0,
            "dropped_rows": _dropped(len(train_ds), len(trainer.train_dataset),
                                     "completion empty after truncation to max_length"),
        }
        before = trainer.evaluate() if eval_ds is not None else None
        result = _train_and_save(trainer, "sft", tokenizer=tok, output_dir=output_dir, profile=prof, before=before,
                                 metrics=metrics, t_start=t_start, keep_model=keep_model)
    del trainer
    _release()
    return result


def _dropped(n_in: int, n_out: int, reason: str, extra: Mapping[str, int] | None = None) -> dict[str, int]:
    out = dict(extra or {})
    if n_out < n_in:
        out[reason] = n_in - n_out
        warnings.warn(f"{n_in - n_out} of {n_in} training rows dropped: {reason}.", stacklevel=3)
    return out


def dpo(dataset: Any, *, model: Any, output_dir: str, max_steps: int | None = None, num_train_epochs: float = 1,
        beta: float = 0.1, eval_fraction: float = 0.1, eval_dataset: Any = None, lora: bool | None = None,
        profile: TrainingProfile | None = None, seed: int = 0, check_start_margin: bool = True,
        start_margin_tolerance: float = START_MARGIN_TOLERANCE, ref_model: Any = None, tokenizer: Any = None,
        keep_model: bool = False, **config_overrides: Any) -> TrainingResult:
    """Direct preference optimisation with TRL's ``DPOTrainer``, starting from a saved SFT checkpoint.

    Args:
        dataset: ``prompt``/``chosen``/``rejected`` message lists (D6); extra columns are dropped, rows with
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
    train_raw, eval_raw = _split_dict(dataset)
    data, dropped = validate_dpo_dataset(train_raw)  # before any model is loaded
    if model is None:
        raise ValueError("dpo() needs model=: the path of the saved SFT checkpoint (sft_result.output_dir).")
    train_ds, eval_ds = _split(data, eval_fraction, eval_dataset if eval_dataset is not None else eval_raw, seed,
                               validate_dpo_dataset)
    check_ds = eval_ds
    if check_start_margin and check_ds is None:
        check_ds = train_ds.select(range(min(8, len(train_ds))))
    with _quiet():
        target, name, n_params, prof, tok = _resolve(model, profile, lora, tokenizer)
        overrides = dict(config_overrides)
        if not isinstance(target, str):
            overrides.setdefault("model_init_kwargs", None)
        cfg = dpo_config(prof, output_dir=output_dir, max_steps=max_steps, num_train_epochs=num_train_epochs,
                         beta=beta, n_train_rows=len(train_ds), has_eval=eval_ds is not None, seed=seed, **overrides)
        ref = ref_model
        if isinstance(ref, (str, os.PathLike)):
            from transformers import AutoModelForCausalLM

            from smolsynth.models import _from_pretrained

            ref = _from_pretrained(AutoModelForCausalLM, str(ref), dtype=_torch_dtype(prof.model_dtype))
        trainer = DPOTrainer(model=target, ref_model=ref, args=cfg, train_dataset=train_ds, eval_dataset=check_ds,
                             processing_class=tok, peft_config=_peft_config(prof))
        _tidy_callbacks(trainer)
        metrics: dict[str, Any] = {
            "model": name, "model_params": n_params, "lora": prof.lora, "beta": cfg.beta,
            "train_rows": len(trainer.train_dataset),
            "eval_rows": len(trainer.eval_dataset) if eval_ds is not None else 0,
            "dropped_rows": _dropped(len(train_ds), len(trainer.train_dataset),
                                     f"prompt alone is >= max_length ({cfg.max_length}) tokens", dropped),
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
        result = _train_and_save(trainer, "dpo", tokenizer=tok, output_dir=output_dir, profile=prof, before=before,
                                 metrics=metrics, t_start=t_start, keep_model=keep_model)
    del trainer
    _release()
    return result


def _torch_dtype(name: str) -> Any:
    import torch

    return getattr(torch, name)


def _check_start(before: Mapping[str, float], *, beta: float, tolerance: float, model: Any, ref_model: Any,
                 trainer: Any) -> str | None:
    """None when the step-0 eval rewards are ~0; else the message of the :class:`ReferenceModelError` to raise."""
    keys = ("eval_rewards/chosen", "eval_rewards/rejected", "eval_rewards/margins")
    values = {k: float(before.get(k, 0.0)) for k in keys}
    limit = tolerance * beta
    worst = max(abs(v) for v in values.values())
    if worst <= limit:
        return None
    in_memory = not isinstance(model, (str, os.PathLike))
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
