"""The grading core: exercises that check a learner's variables and answer with feedback written for a learner.

An exercise is a subclass of :class:`Exercise` with its metadata (title, level, the variables it reads, hints) and a
``_check`` method that judges the values with :func:`expect`. In a notebook::

    my_answer = ____          # the learner replaces ____ with an answer
    ex.q1.check()             # Correct / Not attempted / Incorrect, with a reason (never the answer)
    ex.q1.hint()              # the first hint; call again for the next one
    ex.q1.solution()          # a worked solution

Three promises: ``check()`` never raises in a learner's notebook (a crash in the checker itself becomes an
"Incorrect" with an explanation); Incorrect feedback explains what is wrong without giving the answer; with
``SMOLSYNTH_STRICT=1`` a check that is not Correct raises :class:`ExerciseFailed`, so CI notices a solution that
stopped passing.

    >>> class Double(Exercise):
    ...     notebook, name, title, level = "demo", "q1", "Double a number", Level.DEFAULT
    ...     variables = ("doubled",)
    ...     hints = ("Multiply by two.",)
    ...     def _check(self, doubled):
    ...         expect(isinstance(doubled, int), "`doubled` should be a whole number (an int).")
    ...         expect(doubled == 42, "`doubled` is not twice 21 yet.")
    >>> Double().evaluate(doubled=____).status
    'not_attempted'
    >>> Double().evaluate(doubled=41).message
    '`doubled` is not twice 21 yet.'
    >>> Double().evaluate(doubled=42).status
    'correct'
"""

from __future__ import annotations

import copy
import enum
import html
import inspect
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Literal, Sequence

from smolsynth.course import STRICT_ENV, is_strict

__all__ = ["Case", "Exercise", "ExerciseFailed", "Feedback", "Incorrect", "Level", "Placeholder", "____", "expect",
           "run_cases"]


class Placeholder:
    """The type of ``____``: the blank a learner replaces. A variable still holding it means "not attempted"."""

    _instance: ClassVar[Placeholder | None] = None

    def __new__(cls) -> Placeholder:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "____"

    def __bool__(self) -> bool:
        return False


____ = Placeholder()
"""Replace me: the placeholder in starter code. ``check()`` reports "Not attempted" while a variable holds it."""


class Level(enum.Enum):
    """How far an exercise asks you to go (the smol-course levels)."""

    DEFAULT = "🐢"
    VARIANT = "🐕"
    OWN = "🦁"

    @property
    def label(self) -> str:
        """The level's meaning in words."""
        return {"🐢": "the default path", "🐕": "your own seed data or a variant technique",
                "🦁": "your own use case"}[self.value]

    def __str__(self) -> str:
        return f"{self.value} {self.label}"


Status = Literal["correct", "incorrect", "not_attempted", "hint", "solution"]

_STYLE: dict[str, tuple[str, str, str]] = {  # status -> (heading, accent colour, background)
    "correct": ("✅ Correct", "#1a7f37", "#dafbe1"),
    "incorrect": ("❌ Incorrect", "#cf222e", "#ffebe9"),
    "not_attempted": ("✏️ Not attempted", "#9a6700", "#fff8c5"),
    "hint": ("💡 Hint", "#0969da", "#ddf4ff"),
    "solution": ("📖 Solution", "#6639ba", "#fbefff"),
}


@dataclass(frozen=True, repr=False)
class Feedback:
    """What ``check()``, ``hint()`` and ``solution()`` show: a status, a message, optional code. Renders as a coloured
    box in Jupyter (``_repr_html_``) and as plain text elsewhere (``str``)."""

    status: Status
    exercise: str
    message: str
    code: str | None = None

    @property
    def heading(self) -> str:
        return _STYLE[self.status][0]

    @property
    def passed(self) -> bool:
        return self.status == "correct"

    def __str__(self) -> str:
        text = f"{self.heading} ({self.exercise}): {self.message}"
        return text + (f"\n\n{self.code}" if self.code else "")

    __repr__ = __str__  # plain-text frontends (a terminal, nbval logs) show the same words as the HTML box

    def _repr_html_(self) -> str:
        heading, accent, background = _STYLE[self.status]
        code = (f"<pre style='margin:0.5em 0 0 0;background:#fff;padding:0.5em'><code>{html.escape(self.code)}"
                f"</code></pre>" if self.code else "")
        return (f"<div class='smolsynth-feedback smolsynth-feedback-{self.status}' data-status='{self.status}' "
                f"style='border-left:4px solid {accent};background:{background};color:#1f2328;"
                f"padding:0.5em 0.8em;margin:0.3em 0'>"
                f"<strong style='color:{accent}'>{html.escape(heading)}</strong> "
                f"<span style='opacity:0.7'>{html.escape(self.exercise)}</span><br>"
                f"{_markdown_code(html.escape(self.message))}{code}</div>")


def _markdown_code(text: str) -> str:
    """Turn `backticked` words into <code> (the only markup feedback messages use)."""
    parts = text.split("`")
    return "".join(f"<code>{part}</code>" if i % 2 else part for i, part in enumerate(parts))


class Incorrect(Exception):
    """Raised by :func:`expect` inside a checker: the answer is wrong, for the reason given (written for a learner)."""


class ExerciseFailed(AssertionError):
    """Strict mode only (``SMOLSYNTH_STRICT=1``): a check that did not pass. Carries the :class:`Feedback`."""

    def __init__(self, feedback: Feedback) -> None:
        super().__init__(f"{feedback} [strict mode: {STRICT_ENV}=1]")
        self.feedback = feedback


def expect(condition: object, reason: str) -> None:
    """Inside ``_check``: if ``condition`` is false, the answer is Incorrect because of ``reason``.

    Write ``reason`` for the learner: what is wrong and why it matters, never the expected answer.
    """
    if not condition:
        raise Incorrect(reason)


@dataclass(frozen=True)
class Case:
    """One hidden case of an exercise where the learner writes a function: what it tests (shown when it fails), the
    arguments it is called with (deep-copied for each call) and the value it must return."""

    description: str
    args: tuple[Any, ...]
    expected: Any
    kwargs: Mapping[str, Any] = field(default_factory=dict)


def run_cases(fn: Any, name: str, cases: Sequence[Case], *, read: Callable[[Any, Case], Any] = lambda got, case: got,
              same: Callable[[Any, Any], bool] = lambda got, expected: got == expected,
              show: Callable[[Any], str] = repr) -> int:
    """Inside ``_check``: call the learner's function ``fn`` (their variable ``name``) on every case, in order; the
    first case it gets wrong, or raises on, makes the answer Incorrect, with the case's number and description, what
    the function returned and what it should have. ``read`` turns a return value into the comparable form (it may
    call :func:`expect` to explain a wrong type), ``same`` compares, ``show`` prints. Returns the number of cases.

    >>> run_cases(lambda x: 2 * x, "double", [Case("zero", (0,), 0), Case("two", (2,), 4)])
    2
    >>> run_cases(lambda x: x + x + 1, "double", [Case("zero", (0,), 0)])
    Traceback (most recent call last):
    ...
    smolsynth.exercises.core.Incorrect: Case 1 of 1 (zero): `double(0)` returned 1; it should return 0.
    """
    expect(callable(fn), f"`{name}` should be a function (a `def` or a `lambda`); it is a {type(fn).__name__}.")
    for number, case in enumerate(cases, start=1):
        args = ", ".join([_short(a) for a in case.args] + [f"{k}={_short(v)}" for k, v in case.kwargs.items()])
        where = f"Case {number} of {len(cases)} ({case.description}): `{name}({args})`"
        try:
            got = fn(*copy.deepcopy(case.args), **copy.deepcopy(dict(case.kwargs)))
        except Exception as err:  # the learner's bug, reported as such
            raise Incorrect(f"{where} raised {type(err).__name__}: {err}") from None
        try:
            got = read(got, case)
        except Incorrect as wrong:
            raise Incorrect(f"{where}: {wrong}") from None
        if not same(got, case.expected):
            raise Incorrect(f"{where} returned {show(got)}; it should return {show(case.expected)}.")
    return len(cases)


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 4] + " ..."


def dataset_of(value: Any, name: str, made_by: str) -> Any:
    """The ``datasets.Dataset`` of a :class:`~smolsynth.rows.Result` (its ``.dataset``: the kept rows) or the Dataset
    itself; Incorrect otherwise, with a reason naming the learner's variable ``name`` and the function ``made_by``
    that should have made it."""
    dataset = getattr(value, "dataset", value)
    expect(hasattr(dataset, "column_names") and hasattr(dataset, "__len__"),
           f"`{name}` should be what `{made_by}` returns (a result with `.rows`, `.dataset` and `.report`); "
           f"it is a {type(value).__name__}.")
    return dataset


def rows_of(value: Any) -> list[dict]:
    """Rows as a list of dicts, from a Result (its kept ``.rows``), a ``datasets.Dataset``, a pandas DataFrame or a
    list of dicts (an empty list for None)."""
    if value is None:
        return []
    if isinstance(getattr(value, "rows", None), list) and hasattr(value, "report"):  # a smolsynth Result
        return [dict(r) for r in value.rows]
    if hasattr(value, "to_list") and hasattr(value, "column_names"):  # datasets.Dataset
        return value.to_list() if len(value) else []
    if hasattr(value, "to_dict") and hasattr(value, "columns"):  # pandas.DataFrame
        return value.to_dict("records")
    return list(value)


def dropped_count(value: Any) -> int:
    """How many input rows a result set aside: ``len(result.dropped_rows)`` for a Result, 0 for a bare Dataset."""
    rows = getattr(value, "dropped_rows", None)
    if rows is not None:
        return len(rows)
    dropped = getattr(value, "dropped", None)
    if dropped is None:
        return 0
    return dropped if isinstance(dropped, int) else len(dropped)


def _holds_placeholder(value: Any, depth: int = 0) -> bool:
    if value is ____:
        return True
    if depth < 2 and isinstance(value, (list, tuple, set, frozenset)):
        return any(_holds_placeholder(item, depth + 1) for item in value)
    if depth < 2 and isinstance(value, dict):
        return any(_holds_placeholder(item, depth + 1) for item in (*value.keys(), *value.values()))
    return False


def _in_ipython() -> bool:
    shell = sys.modules.get("IPython")
    return bool(shell and shell.get_ipython())


def _show(feedback: Feedback) -> None:
    if _in_ipython():
        from IPython.display import display

        display(feedback)
    else:
        print(feedback)


def _caller_namespace() -> Mapping[str, Any]:
    """The globals of the first frame outside this package: the notebook's (IPython user namespace) or a script's."""
    frame = inspect.currentframe()
    try:
        while frame is not None and str(frame.f_globals.get("__name__", "")).startswith("smolsynth.exercises"):
            frame = frame.f_back
        return frame.f_globals if frame is not None else {}
    finally:
        del frame


class Exercise:
    """Base class of every exercise. Subclasses set the class attributes and implement ``_check``.

    ``_check(**values)`` receives one keyword per name in ``variables`` and calls :func:`expect` for every rule;
    it may return a string, shown with "Correct" (e.g. what the answer shows). Everything else is done here.
    """

    notebook: ClassVar[str]
    """The notebook's stem in the manifest, e.g. ``"00_setup"``."""
    name: ClassVar[str]
    """The exercise's name in its module, e.g. ``"q1"`` (the notebook calls ``ex.q1.check()``)."""
    title: ClassVar[str]
    level: ClassVar[Level]
    variables: ClassVar[tuple[str, ...]]
    """The learner's variables this exercise reads, by name."""
    hints: ClassVar[tuple[str, ...]]

    def __init__(self) -> None:
        self._hints_shown = 0

    # -------------------------------------------------------------------------------------------------- identity
    @property
    def label(self) -> str:
        """How feedback names the exercise, e.g. ``"Exercise q1 · 🐢 · Your first dataset"``."""
        return f"Exercise {self.name} · {self.level.value} · {self.title}"

    def __repr__(self) -> str:
        return f"<{self.label}: check(), hint(), solution()>"

    # ---------------------------------------------------------------------------------------------------- grading
    def _check(self, **values: Any) -> str | None:
        raise NotImplementedError

    def evaluate(self, namespace: Mapping[str, Any] | None = None, **values: Any) -> Feedback:
        """Judge the answer and return the :class:`Feedback`, without displaying it or raising.

        Values given as keywords win; the other variables are looked up in ``namespace``. A variable that is missing
        or still holds ``____`` makes the answer "Not attempted". Any error inside the checker becomes "Incorrect".
        """
        unknown = sorted(set(values) - set(self.variables))
        if unknown:
            return Feedback("incorrect", self.label, f"This exercise reads {_names(self.variables)}; it got "
                                                     f"{_names(unknown)} too. Check the spelling of the names.")
        namespace = namespace or {}
        resolved: dict[str, Any] = {}
        missing: list[str] = []
        blank: list[str] = []
        for var in self.variables:
            if var in values:
                resolved[var] = values[var]
            elif var in namespace:
                resolved[var] = namespace[var]
            else:
                missing.append(var)
                continue
            if _holds_placeholder(resolved[var]):
                blank.append(var)
        if missing or blank:
            parts = []
            if blank:
                parts.append(f"replace `____` in {_names(blank)} with your answer")
            if missing:
                parts.append(f"define {_names(missing)} (did you run the exercise cell above?)")
            message = " and ".join(parts)
            return Feedback("not_attempted", self.label, message[0].upper() + message[1:] + ", then run this check "
                                                                                            "again.")
        try:
            note = self._check(**resolved)
        except Incorrect as wrong:
            return Feedback("incorrect", self.label, str(wrong))
        except Exception as err:  # a checker must never crash the learner's notebook
            return Feedback("incorrect", self.label, "Checking your answer raised "
                                                     f"{type(err).__name__}: {err}. Look at the types of "
                                                     f"{_names(self.variables)}: are they what the exercise asks for?")
        return Feedback("correct", self.label, note or "Well done.")

    def check(self, **values: Any) -> None:
        """Check your answer and show the feedback. Your variables are read from the notebook, or pass them by name,
        e.g. ``check(my_instructions=[...])``. Never raises, unless strict mode (``SMOLSYNTH_STRICT=1``) is on."""
        feedback = self.evaluate(_caller_namespace(), **values)
        _show(feedback)
        if is_strict() and not feedback.passed:
            raise ExerciseFailed(feedback)

    # ---------------------------------------------------------------------------------------------- hints, solution
    def hint(self, n: int | None = None) -> None:
        """Show the next hint (or hint ``n``, counting from 1). Each call reveals one more."""
        if not self.hints:
            _show(Feedback("hint", self.label, "This exercise has no hints; try `solution()`."))
            return
        if n is None:
            self._hints_shown = min(self._hints_shown + 1, len(self.hints))
            n = self._hints_shown
        n = max(1, min(n, len(self.hints)))
        more = (" Call `hint()` again for the next one." if n < len(self.hints)
                else " That was the last hint; `solution()` shows a worked solution.")
        _show(Feedback("hint", self.label, f"({n} of {len(self.hints)}) {self.hints[n - 1]}{more}"))

    def solution_code(self) -> str:
        """The worked solution's code, as written in the notebook's source."""
        from smolsynth.exercises.solution_code import SOLUTIONS

        return SOLUTIONS[self.notebook][self.name]

    def solution(self) -> None:
        """Show a worked solution. Try the hints first: you learn more from a near miss than from a copy."""
        _show(Feedback("solution", self.label, "One way to solve it (yours may differ and still be correct):",
                       code=self.solution_code()))


def _names(names: Any) -> str:
    listed = [f"`{n}`" for n in names]
    return listed[0] if len(listed) == 1 else ", ".join(listed[:-1]) + " and " + listed[-1]
