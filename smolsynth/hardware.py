"""What machine is this, and what should run on it.

``detect()`` reads the facts (CPU / CUDA with compute capability and memory / Apple MPS; Colab, Binder or local).
``choose_profile(hardware)`` turns facts into decisions: dtype, device, default model and batch sizes, with the reason
in words. The two are separate so that tests (and curious learners) can ask "what would a T4 get?" without one::

    >>> from smolsynth.hardware import Hardware, choose_profile
    >>> t4 = Hardware(device="cuda", gpu_name="Tesla T4", capability=(7, 5), gpu_memory_gb=15.0)
    >>> choose_profile(t4).dtype
    'float16'

Rules (DESIGN.md D5): bf16 only when the compute capability is >= 8 (Ampere and newer). A T4 reports
``torch.cuda.is_bf16_supported() == True`` through emulation, so that call is never used. fp16 on older GPUs, fp32 on
CPU (CPU fp16/bf16 matmuls are slow or unsupported on common hardware).
"""

from __future__ import annotations

import os
import sys
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import Literal

Device = Literal["cpu", "cuda", "mps"]
Platform = Literal["colab", "binder", "local"]

CPU_MODEL = "HuggingFaceTB/SmolLM2-360M-Instruct"
SMALL_MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"
GPU_MODEL = "HuggingFaceTB/SmolLM2-1.7B-Instruct"


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
    """Decisions for a machine: where and in which precision to run, which model, how much at once."""

    name: str
    device: Device
    dtype: Literal["float32", "float16", "bfloat16"]
    model: str
    generation_batch_size: int
    train_batch_size: int
    lora: bool
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


def _ram_gb() -> float | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):
        return None


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
    """The profile for ``hw``: dtype, device, default model, batch sizes and the reason, in words."""
    if hw.device == "cuda":
        cap = hw.capability or (0, 0)
        mem = hw.gpu_memory_gb or 0.0
        model = GPU_MODEL if mem >= 12 else CPU_MODEL
        if cap[0] >= 8:
            return Profile("cuda-bf16", "cuda", "bfloat16", model, 64, 8, lora=False, hardware=hw,
                           reason=f"{hw.gpu_name} has compute capability {cap[0]}.{cap[1]} >= 8.0: native bfloat16.")
        return Profile("cuda-fp16", "cuda", "float16", model, 32, 4, lora=True, hardware=hw,
                       reason=f"{hw.gpu_name} has compute capability {cap[0]}.{cap[1]} < 8.0 (T4-class): float16, "
                              "since bfloat16 would be emulated and slow; LoRA for training models above ~0.5B.")
    if hw.device == "mps":
        return Profile("mps", "mps", "float16", CPU_MODEL, 16, 4, lora=True, hardware=hw,
                       reason="Apple GPU through MPS: float16, a small model, LoRA for training.")
    small = hw.platform == "binder" or (hw.ram_gb is not None and hw.ram_gb < 4)
    return Profile("cpu", "cpu", "float32", SMALL_MODEL if small else CPU_MODEL, 8, 2, lora=False, hardware=hw,
                   reason="No GPU: float32 on the CPU (half precision is slow or unsupported there), a small model"
                          + (" sized for ~2 GB of memory (Binder)." if small else "."))


@lru_cache(maxsize=1)
def current_profile() -> Profile:
    """The profile of this machine (detected once per process)."""
    return choose_profile(detect())
