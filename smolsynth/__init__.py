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

from smolsynth.hardware import Hardware, Profile, choose_profile, current_profile, detect  # noqa: E402
from smolsynth.models import TINY_MODEL, ModelNotAvailableError, load_model, load_tokenizer, resolve_model  # noqa: E402
from smolsynth.verbosity import import_distilabel, set_verbosity  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "TINY_MODEL",
    "Hardware",
    "ModelNotAvailableError",
    "Profile",
    "choose_profile",
    "current_profile",
    "detect",
    "import_distilabel",
    "load_model",
    "load_tokenizer",
    "resolve_model",
    "set_verbosity",
]
