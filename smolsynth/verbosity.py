"""How much the libraries underneath say, set once for learners.

distilabel, transformers and datasets are chatty: ~95 INFO lines per distilabel run, pydantic warnings at import,
and distilabel installs rich tracebacks (with local variables) for the whole interpreter when imported. smolsynth
keeps notebooks readable:

* ``import smolsynth`` changes no logger, handler or excepthook; it only sets defaults for environment variables the
  libraries read (``TRANSFORMERS_VERBOSITY=error``, ``DISTILABEL_LOG_LEVEL=ERROR``, ...), and never overrides
  one you set yourself.
* distilabel is imported through :func:`import_distilabel`, which stops it from installing its traceback hook,
  hides its import-time pydantic warnings, and sets the ``distilabel`` logger to ``$DISTILABEL_LOG_LEVEL``
  (smolsynth's runner counts every failure itself, so distilabel's own warnings, such as "Step hasn't received a
  pipeline" for every task used outside a Pipeline, are noise by default).
* :func:`set_verbosity` changes the level afterwards::

    >>> import smolsynth
    >>> smolsynth.set_verbosity("info")     # see everything the libraries log
    >>> smolsynth.set_verbosity("warning")  # back to the default
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
import warnings
from types import ModuleType

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}

DEFAULT_ENV = {
    "TRANSFORMERS_VERBOSITY": "error",
    "DISTILABEL_LOG_LEVEL": "ERROR",
    "TOKENIZERS_PARALLELISM": "false",
    "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "DISABLE_MLFLOW_INTEGRATION": "TRUE",
    "WANDB_DISABLED": "true",
}


def apply_default_environment() -> None:
    """Set learner-friendly defaults for the libraries' environment variables, keeping any the user already set."""
    for key, value in DEFAULT_ENV.items():
        os.environ.setdefault(key, value)


def set_verbosity(level: str = "warning") -> None:
    """Set how much transformers, datasets and distilabel log: "debug", "info", "warning" (default) or "error"."""
    if level not in _LEVELS:
        raise ValueError(f"level={level!r} is not one of {sorted(_LEVELS)}; e.g. set_verbosity('info').")
    os.environ["DISTILABEL_LOG_LEVEL"] = level.upper()
    os.environ["TRANSFORMERS_VERBOSITY"] = level
    for name in ("distilabel", "datasets", "transformers", "trl", "accelerate", "httpx", "huggingface_hub"):
        logging.getLogger(name).setLevel(_LEVELS[level])
    if "transformers" in sys.modules:
        sys.modules["transformers"].logging.set_verbosity(_LEVELS[level])
    if "datasets" in sys.modules:
        sys.modules["datasets"].logging.set_verbosity(_LEVELS[level])


def import_distilabel(module: str = "distilabel") -> ModuleType:
    """Import ``module`` (a distilabel module) without its side effects on the interpreter.

    distilabel's ``__init__`` calls ``rich.traceback.install(show_locals=True)``, which replaces ``sys.excepthook``
    (and IPython's traceback display) for everything, and pydantic warns about its field definitions. Both are
    suppressed here; the module is returned.

    >>> tasks = import_distilabel("distilabel.steps.tasks")
    >>> tasks.TextGeneration.__name__
    'TextGeneration'
    """
    if "distilabel" not in sys.modules:
        import rich.traceback

        original_install = rich.traceback.install
        rich.traceback.install = lambda *args, **kwargs: None  # type: ignore[assignment]
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                importlib.import_module("distilabel")
        finally:
            rich.traceback.install = original_install
        level = os.environ.get("DISTILABEL_LOG_LEVEL", "ERROR").lower()
        logging.getLogger("distilabel").setLevel(_LEVELS.get(level, logging.ERROR))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return importlib.import_module(module)
