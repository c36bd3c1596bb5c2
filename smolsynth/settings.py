"""Every ``SMOLSYNTH_*`` environment variable, defined in one place.

=========================  ===============================================================================
variable                   meaning
=========================  ===============================================================================
``SMOLSYNTH_MODEL``        the model every call uses when no ``model=`` is given (a hub id, a local folder,
                           ``smolsynth/tiny`` for the tiny offline model CI runs on); see
                           :mod:`smolsynth.models`
``SMOLSYNTH_HOME``         where smolsynth keeps built models, cached results and the course's hand-off
                           folders (default ``~/.cache/smolsynth``); see :func:`smolsynth_home`
``SMOLSYNTH_COURSE_HOME``  the course's hand-off folders alone (default ``<SMOLSYNTH_HOME>/course``), e.g. a
                           Google Drive folder that outlives a Colab runtime
                           (:func:`smolsynth.course.use_drive` sets it); see :func:`course_home`
``SMOLSYNTH_FAST``         ``1``: fast mode, the notebooks' parameters (rows, training steps; token budgets on
                           the tiny model only) shrink for a quick run; see :func:`smolsynth.course.fast_mode`
``SMOLSYNTH_STRICT``       ``1``: strict checks, an exercise that is not attempted or incorrect raises instead
                           of only saying so (CI runs the solution notebooks this way)
=========================  ===============================================================================

(The test suite also reads ``SMOLSYNTH_CHROMIUM``, the browser for its JupyterLab test; the package does not.)

A flag is on when it is set to ``1``, ``true``, ``yes`` or ``on`` (any case). This module imports nothing heavy.

    >>> is_fast({"SMOLSYNTH_FAST": "yes"}), is_strict({})
    (True, False)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

MODEL_ENV = "SMOLSYNTH_MODEL"
"""Environment variable: the default model (a hub id, a folder, or ``smolsynth/tiny``)."""

HOME_ENV = "SMOLSYNTH_HOME"
"""Environment variable: the folder for built models, cached results and hand-offs (default ``~/.cache/smolsynth``)."""

COURSE_HOME_ENV = "SMOLSYNTH_COURSE_HOME"
"""Environment variable: the folder of the course's hand-off folders (default ``<SMOLSYNTH_HOME>/course``); the
model cache stays in ``SMOLSYNTH_HOME``."""

FAST_ENV = "SMOLSYNTH_FAST"
"""Environment variable: ``1`` runs every notebook in fast mode (few rows, few training steps; short answers on the
tiny model)."""

STRICT_ENV = "SMOLSYNTH_STRICT"
"""Environment variable: ``1`` makes a failing exercise check raise (CI runs the solution notebooks this way)."""

_TRUE = {"1", "true", "yes", "on"}


def smolsynth_home() -> Path:
    """The folder where smolsynth keeps built models and cached results (``$SMOLSYNTH_HOME``, else
    ``~/.cache/smolsynth``)."""
    return Path(os.environ.get(HOME_ENV) or Path.home() / ".cache" / "smolsynth").expanduser()


def course_home() -> Path:
    """The folder that holds the course's hand-off folders (``$SMOLSYNTH_COURSE_HOME``, else
    ``<smolsynth_home()>/course``); :func:`smolsynth.course.data_path` puts each hand-off in it."""
    chosen = os.environ.get(COURSE_HOME_ENV, "").strip()
    return Path(chosen).expanduser() if chosen else smolsynth_home() / "course"


def env_flag(name: str, environ: Mapping[str, str] | None = None) -> bool:
    """True when the environment variable ``name`` is set to 1/true/yes/on (any case).

    >>> env_flag("SMOLSYNTH_FAST", {"SMOLSYNTH_FAST": "True"}), env_flag("SMOLSYNTH_FAST", {})
    (True, False)
    """
    return (environ if environ is not None else os.environ).get(name, "").strip().lower() in _TRUE


def is_fast(environ: Mapping[str, str] | None = None) -> bool:
    """Is fast mode on (``SMOLSYNTH_FAST=1``)?"""
    return env_flag(FAST_ENV, environ)


def is_strict(environ: Mapping[str, str] | None = None) -> bool:
    """Are exercise checks strict (``SMOLSYNTH_STRICT=1``)?"""
    return env_flag(STRICT_ENV, environ)


__all__ = ["COURSE_HOME_ENV", "FAST_ENV", "HOME_ENV", "MODEL_ENV", "STRICT_ENV", "course_home", "env_flag", "is_fast",
           "is_strict", "smolsynth_home"]
