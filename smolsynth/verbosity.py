"""How much the libraries underneath say: every quieting measure of smolsynth lives here.

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
* around the work itself: :func:`quiet_distilabel` (distilabel's loggers while the runner accounts for failures),
  :func:`preserve_logging` (the root logger after a distilabel ``Pipeline``), :func:`no_progress_bars` (datasets'
  and transformers' per-file bars), :func:`quiet_training` (TRL runs: warnings and library logs at ERROR).
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
from collections.abc import Iterator
from contextlib import contextmanager
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


# ---------------------------------------------------------------------------------------- around distilabel
_DISTILABEL_LOGGERS = ("distilabel", "argilla.client.feedback.dataset.local.mixins", "datasets", "httpx",
                       "openai._base_client", "httpcore.http11", "httpcore.connection", "urllib3.connectionpool",
                       "filelock", "fsspec", "asyncio", "sentence_transformers.SentenceTransformer", "faiss.loader",
                       "argilla.sdk")


@contextmanager
def preserve_logging() -> Iterator[None]:
    """Put the root logger (handlers, level) and the loggers distilabel touches back as they were afterwards.

    distilabel's ``Pipeline.run`` replaces the root logger's handlers with a ``QueueHandler`` and closes the queue
    at the end; every later log line in the kernel then prints "Logging error ... Queue is closed".
    """
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    others = {name: (logging.getLogger(name).level, logging.getLogger(name).disabled) for name in _DISTILABEL_LOGGERS}
    try:
        yield
    finally:
        for handler in list(root.handlers):
            if handler not in handlers:
                root.removeHandler(handler)
        for handler in handlers:
            if handler not in root.handlers:
                root.addHandler(handler)
        root.setLevel(level)
        for name, (lvl, disabled) in others.items():
            logging.getLogger(name).setLevel(lvl)
            logging.getLogger(name).disabled = disabled


def restore_logging(level: int = logging.WARNING) -> int:
    """Repair the root logger after a distilabel ``Pipeline`` run made without :func:`run_pipeline`.

    Removes the queue handlers distilabel left there (their queue is closed: every later log line would print
    "Logging error") and sets the root level back to ``level`` (Python's default, WARNING; distilabel raises it).
    Returns how many handlers were removed.
    """
    from logging.handlers import QueueHandler

    root = logging.getLogger()
    stale = [h for h in root.handlers if isinstance(h, QueueHandler)]
    for handler in stale:
        root.removeHandler(handler)
    root.setLevel(level)
    return len(stale)


@contextmanager
def quiet_distilabel(level: int = logging.ERROR) -> Iterator[None]:
    """Silence distilabel's loggers inside the block (the runner accounts for every failure itself)."""
    logger = logging.getLogger("distilabel")
    previous = logger.level
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.setLevel(previous)




@contextmanager
def quiet_subclassing() -> Iterator[None]:
    """Around subclassing a distilabel task: pydantic's note on distilabel's RuntimeParameter typing (about
    distilabel, not about anything a learner can act on) and distilabel's loggers stay quiet."""
    with quiet_distilabel(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


# ------------------------------------------------------------------------------------------- progress bars
@contextmanager
def no_progress_bars() -> Iterator[None]:
    """Hide datasets' and transformers' own progress bars inside the block (a bar per small file, per
    ``Dataset.map`` and per weight load is noise in a learner's cell); restore them after."""
    import datasets
    import transformers

    bars_on = datasets.utils.logging.is_progress_bar_enabled()
    tf_bars_on = transformers.utils.logging.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()
    try:
        yield
    finally:
        if bars_on:
            datasets.enable_progress_bars()
        if tf_bars_on:
            transformers.utils.logging.enable_progress_bar()


# ------------------------------------------------------------------------------------------------ training
_TRAINING_NOISE = (r".*`(is_)?gradient_checkpointing\w*` is deprecated",
                   r".*use_cache=True.* is incompatible with gradient checkpointing",
                   r".*torch\.utils\.checkpoint.*use_reentrant",
                   r".*Merge lora module to .* may get different generations",
                   r".*To copy construct from a tensor")


@contextmanager
def quiet_warnings() -> Iterator[None]:
    """Hide the deprecation and advisory warnings transformers, TRL, PEFT and accelerate print for every run."""
    with warnings.catch_warnings():
        for pattern in _TRAINING_NOISE:
            warnings.filterwarnings("ignore", message=pattern)
        warnings.filterwarnings("ignore", category=FutureWarning, module=r"(transformers|trl|peft|accelerate)\b")
        yield


@contextmanager
def quiet_training() -> Iterator[None]:
    """Around a TRL run: no dataset-map or weight-loading bars, library warnings at ERROR, no deprecation noise."""
    import transformers

    tf_level = transformers.utils.logging.get_verbosity()
    loggers = {name: logging.getLogger(name).level for name in ("trl", "accelerate", "peft")}
    transformers.utils.logging.set_verbosity_error()
    for name in loggers:
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        with no_progress_bars(), quiet_warnings():
            yield
    finally:
        transformers.utils.logging.set_verbosity(tf_level)
        for name, level in loggers.items():
            logging.getLogger(name).setLevel(level)
