"""What machine is this, and what should run on it: the inference profile and the training profile.

``detect()`` reads the facts (CPU / CUDA with compute capability and memory / Apple MPS; Colab, Binder or local).
``choose_profile(hardware)`` turns facts into decisions: dtype, device, default model and generation batch size, with
the reason in words. The two are separate so that tests (and curious learners) can ask "what would a T4 get?" without one::

    >>> from smolsynth.hardware import Hardware, choose_profile
    >>> t4 = Hardware(device="cuda", gpu_name="Tesla T4", capability=(7, 5), gpu_memory_gb=15.0)
    >>> choose_profile(t4).dtype
    'float16'

Rules (ARCHITECTURE.md, "Decisions"): bf16 only when the compute capability is >= 8 (Ampere and newer). A T4 reports
``torch.cuda.is_bf16_supported() == True`` through emulation, so that call is never used. fp16 on older GPUs, fp32 on
CPU (CPU fp16/bf16 matmuls are slow or unsupported on common hardware).
"""

from __future__ import annotations

import dataclasses
import os
import sys
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import Any, Literal

Device = Literal["cpu", "cuda", "mps"]
Platform = Literal["colab", "binder", "local"]

CPU_MODEL = "HuggingFaceTB/SmolLM2-360M-Instruct"  # small GPUs (< 12 GB) and Apple MPS
SMALL_MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"
GPU_MODEL = "HuggingFaceTB/SmolLM2-1.7B-Instruct"
CPU_GENERATION_BATCH = 64
"""Sequences per batch on a CPU with >= 12 GB of memory (see :func:`choose_profile` for the measurement behind it);
32 with less, 8 on Binder."""


@dataclass(frozen=True)
class Hardware:
    """Facts about the machine. Build one by hand to ask what another machine would get."""

    device: Device = "cpu"
    gpu_name: str | None = None
    capability: tuple[int, int] | None = None
    gpu_memory_gb: float | None = None
    cpu_count: int = 1
    ram_gb: float | None = None
    platform: Platform = "local"


@dataclass(frozen=True)
class Profile:
    """Decisions for a machine: where and in which precision to run, which model, how much to generate at once.

    Training has its own profile (:func:`training_profile`: precision, batch sizes, LoRA, learning rates).
    """

    name: str
    device: Device
    dtype: Literal["float32", "float16", "bfloat16"]
    model: str
    generation_batch_size: int
    reason: str
    hardware: Hardware = field(default_factory=Hardware)

    def as_dict(self) -> dict:
        return asdict(self)


def _platform() -> Platform:
    if "google.colab" in sys.modules or os.environ.get("COLAB_RELEASE_TAG"):
        return "colab"
    if any(os.environ.get(v) for v in ("BINDER_REPO_URL", "BINDER_LAUNCH_HOST", "BINDER_REQUEST")):
        return "binder"
    return "local"


def _ram_gb(cgroup_root: str | os.PathLike[str] = "/sys/fs/cgroup") -> float | None:
    """The memory this process may use, in GiB: the host's RAM, or the container's cgroup limit when that is smaller
    (Binder's limit is far below its host's RAM). None when neither can be read.

    Reads cgroup v2 ``<cgroup_root>/memory.max`` (``max``: no limit), else cgroup v1
    ``<cgroup_root>/memory/memory.limit_in_bytes`` (a huge number: no limit).
    """
    try:
        host: float | None = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):
        host = None
    limit: float | None = None
    for relative in ("memory.max", os.path.join("memory", "memory.limit_in_bytes")):
        try:
            with open(os.path.join(os.fspath(cgroup_root), relative), encoding="ascii") as handle:
                text = handle.read().strip()
        except (OSError, UnicodeDecodeError):
            continue
        if text.isdigit() and 0 < int(text) < 2**60:  # v1 writes ~2**63 for "no limit"; v2 writes "max"
            limit = int(text) / 2**30
        break  # the first file that exists decides (v2 before v1)
    if host is None or limit is None:
        return host if limit is None else limit
    return min(host, limit)


def detect() -> Hardware:
    """Read the facts of this machine. Imports torch (about a second); never touches the network."""
    import torch

    common = dict(cpu_count=os.cpu_count() or 1, ram_gb=_ram_gb(), platform=_platform())
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        return Hardware(device="cuda", gpu_name=props.name, capability=(props.major, props.minor),
                        gpu_memory_gb=round(props.total_memory / 2**30, 1), **common)
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return Hardware(device="mps", gpu_name="Apple GPU (MPS)", **common)
    return Hardware(device="cpu", **common)


def choose_profile(hw: Hardware) -> Profile:
    """The profile for ``hw``: dtype, device, default model, generation batch size and the reason, in words."""
    if hw.device == "cuda":
        cap = hw.capability or (0, 0)
        mem = hw.gpu_memory_gb or 0.0
        model = GPU_MODEL if mem >= 12 else CPU_MODEL
        if cap[0] >= 8:
            return Profile("cuda-bf16", "cuda", "bfloat16", model, 64, hardware=hw,
                           reason=f"{hw.gpu_name} has compute capability {cap[0]}.{cap[1]} >= 8.0: native bfloat16.")
        return Profile("cuda-fp16", "cuda", "float16", model, 32, hardware=hw,
                       reason=f"{hw.gpu_name} has compute capability {cap[0]}.{cap[1]} < 8.0 (T4-class): float16, "
                              "since bfloat16 would be emulated and slow.")
    if hw.device == "mps":
        return Profile("mps", "mps", "float16", CPU_MODEL, 16, hardware=hw,
                       reason="Apple GPU through MPS: float16, a small model.")
    small = hw.platform == "binder" or (hw.ram_gb is not None and hw.ram_gb < 4)
    # A CPU decoding step reads every weight from memory once, whatever the batch, so rows are nearly free until the
    # matrix products turn compute-bound. SmolLM2-135M, 2-core dev machine, 64 prompts x 48 tokens (benchmarks/
    # README.md): 169 tokens/s in batches of 32, 186 in one of 64 (a bare decoding step: 132 ms at 32, 205 ms at 64,
    # 355 ms at 128). The cost is memory: 64 judge prompts of ~1,200 tokens hold ~3.5 GB of KV cache, so 64 needs
    # >= 12 GB (Colab's CPU runtime has 12.7), 32 below that, and Binder's ~2 GB keeps batches of 8.
    batch = 8 if small else (CPU_GENERATION_BATCH if (hw.ram_gb or 0) >= 12 else 32)
    # The smallest real model on every CPU: the course generates, judges and trains on it in a lesson's time
    # (SmolLM2-360M has 2.7x the parameters, and a CPU step, decoding or training, costs about that much more).
    return Profile("cpu", "cpu", "float32", SMALL_MODEL, batch, hardware=hw,
                   reason="No GPU: float32 on the CPU (half precision is slow or unsupported there), the smallest "
                          "real model, so that generation and training fit a lesson"
                          + (", in batches sized for ~2 GB of memory (Binder)." if small else "."))


@lru_cache(maxsize=1)
def current_profile() -> Profile:
    """The profile of this machine (detected once per process)."""
    return choose_profile(detect())


# ================================================================================================= training
LORA_THRESHOLD_PARAMS = 500_000_000
"""On a T4-class GPU (and on MPS), models above this many parameters train with LoRA by default."""


_FULL_LR = {"sft": 2e-5, "dpo": 1e-6}
_LORA_LR = {"sft": 2e-4, "dpo": 5e-6}
_BYTES_PER_TRAINED_PARAM = 16  # fp32 weights + grads + two AdamW moments


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

    Rules (ARCHITECTURE.md, "Decisions"):

    * **CPU**: float32, ``use_cpu=True``, no gradient checkpointing. LoRA for every real model (50M parameters and
      up: less memory, faster steps, no second copy as DPO's reference); the tiny test model trains fully unless that
      would not fit in half the RAM (~16 bytes per trained parameter). Batch 8 for tiny models, else 4, one batch
      per optimizer step.
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
    tiny = model_params is not None and model_params < 50_000_000
    # A real model on a CPU trains with LoRA: no gradients or Adam state for the frozen weights (less memory, faster
    # steps), and DPO's reference is the same weights with the adapters off instead of a second copy.
    lora = not tiny or not full_ft_fits(hardware.ram_gb, 0.5)
    rates = _LORA_LR if lora else _FULL_LR
    return TrainingProfile(
        name="cpu-fp32", dtype="float32", bf16=False, fp16=False, use_cpu=True, gradient_checkpointing=False,
        lora=lora, per_device_train_batch_size=8 if tiny else 4, gradient_accumulation_steps=1,
        sft_learning_rate=rates["sft"], dpo_learning_rate=rates["dpo"], max_length=512,
        reason="No GPU: float32 on the CPU with use_cpu=True (TRL's bf16 default fails there), no gradient "
               "checkpointing; " + ("LoRA on a " + size + ": the frozen weights need no gradients or optimizer "
                                    "state, and DPO's reference is the model with its adapters off."
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


