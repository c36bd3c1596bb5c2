"""The three checks every graded exercise gets, shared by the tests/test_exercises_nbNN.py files.

A test file describes its exercises as ``CASES``: for each exercise, ``"exercise"`` (the object), ``"correct"`` (a
builder of the learner's variables), ``"incorrect"`` (name -> (builder, a phrase the feedback must contain)) and
``"not_attempted"`` (a list of builders). Each builder receives the value of the file's fixture (the data the cases
are made from). Then::

    (test_every_exercise_has_test_cases, test_correct_answer_passes,
     test_incorrect_answer_is_explained_without_the_answer, test_not_attempted_answer) = exercise_tests(
        "00_setup", CASES, fixture="generated")
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from smolsynth.exercises import exercises_of
from smolsynth.exercises.solution_code import SOLUTIONS


def exercise_tests(notebook: str, cases: dict[str, dict[str, Any]], *, fixture: str) -> tuple[Callable, ...]:
    """The four test functions for ``cases`` of ``notebook``; the case builders receive fixture ``fixture``."""
    incorrect_ids = [(key, name) for key, case in cases.items() for name in case["incorrect"]]
    not_attempted_ids = [(key, i) for key, case in cases.items() for i in range(len(case["not_attempted"]))]

    def test_every_exercise_has_test_cases() -> None:
        assert {f"{e.notebook}.{e.name}" for e in exercises_of(notebook)} == set(cases)
        for case in cases.values():
            assert case["incorrect"] and case["not_attempted"]

    @pytest.mark.parametrize("key", cases)
    def test_correct_answer_passes(key: str, request: pytest.FixtureRequest) -> None:
        made = request.getfixturevalue(fixture)
        feedback = cases[key]["exercise"].evaluate(**cases[key]["correct"](made))
        assert feedback.status == "correct", feedback

    @pytest.mark.parametrize(("key", "name"), incorrect_ids, ids=str)
    def test_incorrect_answer_is_explained_without_the_answer(key: str, name: str,
                                                              request: pytest.FixtureRequest) -> None:
        made = request.getfixturevalue(fixture)
        case = cases[key]
        answers, reason = case["incorrect"][name]
        feedback = case["exercise"].evaluate(**answers(made))
        assert feedback.status == "incorrect", feedback
        assert reason in feedback.message, feedback.message
        for line in SOLUTIONS[case["exercise"].notebook][case["exercise"].name].splitlines():
            if len(line.strip()) > 20:
                assert line.strip() not in feedback.message, "Incorrect feedback must not give the solution away"

    @pytest.mark.parametrize(("key", "index"), not_attempted_ids, ids=str)
    def test_not_attempted_answer(key: str, index: int, request: pytest.FixtureRequest) -> None:
        made = request.getfixturevalue(fixture)
        feedback = cases[key]["exercise"].evaluate(**cases[key]["not_attempted"][index](made))
        assert feedback.status == "not_attempted", feedback

    return (test_every_exercise_has_test_cases, test_correct_answer_passes,
            test_incorrect_answer_is_explained_without_the_answer, test_not_attempted_answer)


SOURCES = Path(__file__).resolve().parent.parent / "notebooks" / "src"


def source_cells(notebook: str, tag: str) -> dict[str, str]:
    """The cells of ``notebooks/src/<notebook>.py`` tagged ``tag`` ("starter" or "solution"), by exercise name: the
    code a learner's cell runs, to run it as they would."""
    text = (SOURCES / f"{notebook}.py").read_text(encoding="utf-8")
    found = re.findall(r'^# %% exercise="(q\d+)" tags=\["' + tag + r'"\]\n(.*?)(?=^# %%|\Z)', text, re.M | re.S)
    return {name: code.strip() for name, code in found}


@contextlib.contextmanager
def private_home(tmp_path_factory: pytest.TempPathFactory, tiny_path: Path, name: str) -> Iterator[Path]:
    """A fresh SMOLSYNTH_HOME (so no cached result is shared with other tests) that reuses the built tiny model, with
    SMOLSYNTH_MODEL set to it, for a module-scoped fixture; both are restored after."""
    home = tmp_path_factory.mktemp(name) / "home"
    home.mkdir()
    (home / "models").symlink_to(tiny_path.parent, target_is_directory=True)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SMOLSYNTH_HOME", str(home))
        mp.setenv("SMOLSYNTH_MODEL", "smolsynth/tiny")
        yield home


def solution_with(made: dict[str, Any], name: str, **changes: Any) -> dict[str, Any]:
    """The variables of exercise ``name`` as the notebook's solution cell left them (``made["solution"][name]``),
    with ``changes``: the correct answer, or an incorrect one made from it."""
    return {**made["solution"][name], **changes}
