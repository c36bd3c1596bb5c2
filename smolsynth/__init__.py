"""smolsynth: build synthetic datasets with LLMs, then train on them (the package behind the smolsynth course).

The package is thin: prompts and parsers come from distilabel's tasks, local inference from transformers, training
from TRL, data from datasets. What smolsynth adds is what a notebook on a laptop or a free GPU needs: one model switch
(``SMOLSYNTH_MODEL``, or ``model=``; ``"smolsynth/tiny"`` is a tiny offline model built on your machine), hardware
profiles, quiet defaults, and an account of every row it drops.

    >>> import smolsynth
    >>> smolsynth.current_profile().dtype in {"float32", "float16", "bfloat16"}
    True

Importing smolsynth is cheap and side-effect free: it imports neither torch nor distilabel, and it changes no
logger or exception hook (see :mod:`smolsynth.verbosity`).
"""

from smolsynth.verbosity import apply_default_environment as _apply_default_environment

_apply_default_environment()

from importlib import import_module as _import_module  # noqa: E402
from typing import Any as _Any  # noqa: E402

from smolsynth.hardware import Hardware, Profile, choose_profile, current_profile, detect  # noqa: E402
from smolsynth.models import TINY_MODEL, ModelNotAvailableError, load_model, load_tokenizer, resolve_model  # noqa: E402
from smolsynth.report import Report, ReportTable  # noqa: E402
from smolsynth.verbosity import import_distilabel, set_verbosity  # noqa: E402

__version__ = "0.1.0"

# Imported on first use (``smolsynth.generate`` ...), because these modules import distilabel, torch or TRL.
_LAZY = {
    "generate": "smolsynth.generation",
    "LocalLLM": "smolsynth.llm",
    "clear_model_cache": "smolsynth.models",
    "magpie_prompt": "smolsynth.templates",
    "ultrafeedback_regex": "smolsynth.ultrafeedback",
    "ultrafeedback_schema": "smolsynth.ultrafeedback",
    "judge": "smolsynth.ultrafeedback",
    "run": "smolsynth.runner",
    "run_pipeline": "smolsynth.runner",
    "register_validator": "smolsynth.runner",
    "Result": "smolsynth.rows",
    "partition": "smolsynth.rows",
    "to_sft": "smolsynth.formats",
    "validate_sft_dataset": "smolsynth.formats",
    "validate_dpo_dataset": "smolsynth.formats",
    "restore_logging": "smolsynth.verbosity",
    "magpie": "smolsynth.instructions",
    "self_instruct": "smolsynth.instructions",
    "evol_instruct": "smolsynth.instructions",
    "filter_instructions": "smolsynth.instructions",
    "dataset_stats": "smolsynth.stats",
    "pool_responses": "smolsynth.preferences",
    "evolve_quality": "smolsynth.preferences",
    "binarize": "smolsynth.preferences",
    "position_bias": "smolsynth.preferences",
    "preference_dataset": "smolsynth.preferences",
    "sft": "smolsynth.training",
    "dpo": "smolsynth.training",
    "training_profile": "smolsynth.training",
    "TrainingProfile": "smolsynth.training",
    "TrainingResult": "smolsynth.training",
    "ReferenceModelError": "smolsynth.training",
    "compare_answers": "smolsynth.evaluation",
    "plot_training": "smolsynth.evaluation",
    "training_summary": "smolsynth.evaluation",
}


def __getattr__(name: str) -> _Any:
    if name in _LAZY:
        value = getattr(_import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'smolsynth' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "TINY_MODEL",
    "Hardware",
    "ModelNotAvailableError",
    "Profile",
    "Report",
    "ReportTable",
    "choose_profile",
    "current_profile",
    "detect",
    "import_distilabel",
    "load_model",
    "load_tokenizer",
    "resolve_model",
    "set_verbosity",
    *_LAZY,
]
