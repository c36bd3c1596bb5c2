"""Graded exercises for the course notebooks: one module per notebook (``nb00`` for ``00_setup``, ...).

In a notebook::

    from smolsynth.exercises import ____, nb00 as ex
    my_instructions = ____     # replace ____ with your answer
    ex.q1.check()              # Correct / Not attempted / Incorrect, with a reason
    ex.q1.hint()               # one hint at a time
    ex.q1.solution()           # a worked solution

The registry below finds every ``nbNN`` module, so tests and the notebook build can walk all exercises:

    >>> [e.name for e in exercises_of("00_setup")]
    ['q1', 'q2']

Importing this package is cheap: exercise modules import torch or distilabel only inside their checks.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from types import ModuleType

from smolsynth.exercises.core import (Case, Exercise, ExerciseFailed, Feedback, Incorrect, Level, Placeholder, ____,
                                     expect, run_cases)

__all__ = ["Case", "Exercise", "ExerciseFailed", "Feedback", "Incorrect", "Level", "Placeholder", "____", "all_exercises",
           "exercise_modules", "exercises_of", "expect", "run_cases"]

_MODULE_NAME = re.compile(r"^nb\d\d$")


def exercise_modules() -> dict[str, ModuleType]:
    """Every exercise module, keyed by the notebook stem it declares in ``NOTEBOOK`` (e.g. ``"00_setup"``)."""
    modules: dict[str, ModuleType] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if _MODULE_NAME.match(info.name):
            module = importlib.import_module(f"{__name__}.{info.name}")
            modules[module.NOTEBOOK] = module
    return modules


def exercises_of(notebook: str) -> list[Exercise]:
    """The exercises of one notebook (by stem), in the order the module lists them in ``EXERCISES``."""
    return list(exercise_modules()[notebook].EXERCISES)


def all_exercises() -> list[Exercise]:
    """Every exercise of the course, notebook by notebook."""
    return [ex for module in exercise_modules().values() for ex in module.EXERCISES]
