"""The grading core: statuses, feedback that never gives the answer, strict mode, hints, solutions, lookup."""

from __future__ import annotations

import pytest

from smolsynth.exercises import Exercise, ExerciseFailed, Feedback, Level, ____, all_exercises, expect
from smolsynth.exercises.solution_code import SOLUTIONS


class Double(Exercise):
    notebook, name, title, level = "demo", "q9", "Double a number", Level.DEFAULT
    variables = ("doubled", "label")
    hints = ("Multiply by two.", "21 * 2 is what `doubled` should hold.")

    def _check(self, doubled, label):
        expect(isinstance(doubled, int), "`doubled` should be a whole number.")
        expect(doubled == 42, "`doubled` is not twice 21 yet.")
        expect(label.upper() == label, "`label` should be in capitals.")  # .upper() on a non-str raises
        return "42 it is."


@pytest.fixture()
def double() -> Double:
    return Double()


def test_statuses(double: Double) -> None:
    assert double.evaluate(doubled=42, label="X").status == "correct"
    assert double.evaluate(doubled=42, label="X").message == "42 it is."
    assert double.evaluate(doubled=41, label="X").status == "incorrect"
    assert double.evaluate(doubled=____, label="X").status == "not_attempted"
    assert double.evaluate(doubled=[1, ____], label="X").status == "not_attempted"  # a blank inside a list
    assert double.evaluate(doubled=0, label="X").status == "incorrect"  # 0 is an answer, not a blank


def test_not_attempted_names_what_to_do(double: Double) -> None:
    fb = double.evaluate({}, label=____)
    assert fb.status == "not_attempted"
    assert "`label`" in fb.message and "`doubled`" in fb.message and "run the exercise cell" in fb.message


def test_checker_crash_is_incorrect_not_an_exception(double: Double) -> None:
    fb = double.evaluate(doubled=42, label=None)  # None.upper() raises AttributeError inside the checker
    assert fb.status == "incorrect" and "AttributeError" in fb.message


def test_unknown_variable_is_reported(double: Double) -> None:
    fb = double.evaluate(doubled=42, label="X", dubled=1)
    assert fb.status == "incorrect" and "`dubled`" in fb.message


def test_check_reads_the_callers_globals(double: Double, capsys: pytest.CaptureFixture[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SMOLSYNTH_STRICT", raising=False)
    namespace = {"double": double, "doubled": 42, "label": "OK"}
    exec("double.check()", namespace)
    assert "Correct" in capsys.readouterr().out
    namespace["doubled"] = ____
    exec("double.check()", namespace)
    assert "Not attempted" in capsys.readouterr().out
    exec("double.check(doubled=41)", namespace)  # explicit values win over the namespace
    assert "Incorrect" in capsys.readouterr().out


def test_check_never_raises_unless_strict(double: Double, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("SMOLSYNTH_STRICT", raising=False)
    assert double.check(doubled=41, label="X") is None
    assert double.check(doubled=____, label=____) is None
    assert double.check(doubled=42, label=None) is None
    monkeypatch.setenv("SMOLSYNTH_STRICT", "1")
    with pytest.raises(ExerciseFailed) as wrong:
        double.check(doubled=41, label="X")
    assert wrong.value.feedback.status == "incorrect"
    assert isinstance(wrong.value, AssertionError)
    with pytest.raises(ExerciseFailed) as blank:
        double.check(doubled=____, label="X")
    assert blank.value.feedback.status == "not_attempted"
    double.check(doubled=42, label="X")  # a correct answer passes in strict mode too
    assert "Correct" in capsys.readouterr().out


def test_hints_are_revealed_one_at_a_time(double: Double, capsys: pytest.CaptureFixture[str]) -> None:
    double.hint()
    first = capsys.readouterr().out
    assert "(1 of 2) Multiply by two." in first and "21 * 2" not in first
    double.hint()
    second = capsys.readouterr().out
    assert "(2 of 2)" in second and "last hint" in second
    double.hint()  # past the end: the last hint again
    assert "(2 of 2)" in capsys.readouterr().out
    double.hint(1)
    assert "(1 of 2)" in capsys.readouterr().out


def test_feedback_renders_html_and_text() -> None:
    fb = Feedback("incorrect", "Exercise q1 · 🐢 · <Demo>", "`x` is <b>wrong</b>", code="print('<hi>')")
    html = fb._repr_html_()
    assert "data-status='incorrect'" in html and "smolsynth-feedback" in html
    assert "&lt;b&gt;wrong&lt;/b&gt;" in html and "<code>x</code>" in html and "&lt;Demo&gt;" in html
    assert "&lt;hi&gt;" in html
    assert str(fb).startswith("❌ Incorrect (Exercise q1 · 🐢 · <Demo>): `x` is <b>wrong</b>")


def test_placeholder_is_a_singleton_and_reads_as_blank() -> None:
    from smolsynth.exercises.core import Placeholder

    assert Placeholder() is ____ and repr(____) == "____" and not ____


def test_levels_carry_emoji_and_meaning() -> None:
    assert [level.value for level in Level] == ["🐢", "🐕", "🦁"]
    assert str(Level.OWN) == "🦁 your own use case"


def test_every_exercise_is_complete() -> None:
    exercises = all_exercises()
    assert exercises, "the registry found no exercise module"
    for ex in exercises:
        assert isinstance(ex.level, Level)
        assert ex.title and ex.variables and len(ex.hints) >= 2, f"{ex!r} needs a title, variables and 2+ hints"
        assert ex.solution_code() == SOLUTIONS[ex.notebook][ex.name]
        assert ex.level.value in ex.label
