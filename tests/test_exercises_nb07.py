"""Every exercise of notebook 07 with a correct, several incorrect and a not-attempted answer, on real results: the
notebook's own solution and starter cells run as a learner would run them, the planted duplicates through real
datasketch MinHash-LSH, and a learner's own rows deduplicated, decontaminated, scored by the tiny model and
Deita-selected with the tiny encoder. Incorrect feedback never contains the answer."""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import pytest

from exercise_harness import exercise_tests, private_home, solution_with, source_cells

from smolsynth.dedup import planted_duplicates
from smolsynth.distillation import HELD_OUT_PROMPTS
from smolsynth.exercises import ____, nb07
from smolsynth.exercises.solution_code import SOLUTIONS
from smolsynth.stats import normalize_text

NOTEBOOK = "07_curation"
TINY_ENCODER = "smolsynth/tiny-encoder"

MY_ROWS = [{"instruction": text, "generation": f"An answer about {text.lower()}"} for text in (
    "How do I repot a cactus without getting pricked?", "how do I repot a cactus without getting pricked",
    "Which houseplants survive in a dark bathroom?", "Why are the leaves of my basil turning yellow?",
    "How often should I water a snake plant in winter?", "What is the easiest vegetable to grow on a balcony?",
    "Can I use coffee grounds as fertilizer?", "How do I get rid of fungus gnats in potted plants?",
    "When should I prune my rose bushes?", "Is it safe to keep lilies in a home with cats?",
    "How deep should I plant tulip bulbs?", "What does it mean when a succulent gets leggy?",
    "How can I tell if my orchid needs water?")]
BUDGET = 6
EXTRA_ROW = {"instruction": "Should I mist my fern every day?", "generation": "Only in dry rooms."}
CONTAMINATED_ROWS = MY_ROWS + [  # three requests that contain an evaluation prompt of notebooks 03 and 04
    {"instruction": f"Quick question from my garden club: {prompt.lower()}", "generation": "A short answer."}
    for prompt in HELD_OUT_PROMPTS[:3]]


def _namespace() -> dict[str, Any]:
    """What the notebook has defined by its section 10: the names its exercise cells use."""
    import pandas as pd

    import smolsynth
    from smolsynth.contamination import decontaminate
    from smolsynth.dedup import deduplicate, minhash_duplicates, planted_duplicates
    from smolsynth.funnel import Funnel
    from smolsynth.selection import deita_scores, deita_select

    return {"____": ____, "ex": nb07, "normalize_text": normalize_text, "pd": pd, "SEED": 0,
            "planted": planted_duplicates(seed=0), "minhash_duplicates": minhash_duplicates, "Funnel": Funnel,
            "deduplicate": deduplicate, "decontaminate": decontaminate, "deita_scores": deita_scores,
            "deita_select": deita_select, "model_id": smolsynth.resolve_model()}


def _run_cells(cells: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Each exercise's variables after running its cell in the notebook's namespace."""
    out = {}
    for name, code in cells.items():
        namespace = _namespace()
        exec(compile(code, f"<{NOTEBOOK} {name}>", "exec"), namespace)
        out[name] = {var: namespace[var] for var in getattr(nb07, name).variables}
    return out


def _dedup(texts):
    seen, keep = set(), []
    for i, text in enumerate(texts):
        if normalize_text(text) not in seen:
            seen.add(normalize_text(text))
            keep.append(i)
    return keep


def _curate(rows, budget, *, decontaminate_rows=None, column="instruction", steps=("dedup", "clean", "scored",
                                                                                      "selected"), split=False):
    """A learner's pipeline on ``rows``, every step's result added to the funnel named in ``steps``. The tiny
    encoder's vectors are all alike, so the embedding step is skipped and Deita's threshold is 1.0: then the budget
    decides, and the checks have rows to count. ``decontaminate_rows``: decontaminate these instead of the
    deduplicated rows (a step that does not take in what the step before kept)."""
    from smolsynth.contamination import decontaminate
    from smolsynth.dedup import deduplicate, exact_duplicates, minhash_duplicates
    from smolsynth.funnel import Funnel
    from smolsynth.selection import deita_scores, deita_select

    funnel = Funnel("mine")
    results = {}
    if split:  # exact, then MinHash: two stages where `deduplicate` makes one
        exact = exact_duplicates(rows)
        funnel.add("07", exact, source=True)
        results["dedup"] = minhash_duplicates(exact)
        funnel.add("07", results["dedup"])
    else:
        results["dedup"] = deduplicate(rows, embedding_threshold=None)
    results["clean"] = decontaminate(results["dedup"] if decontaminate_rows is None else decontaminate_rows,
                                     column=column)
    results["scored"] = deita_scores(results["clean"], model="smolsynth/tiny", progress=False)
    results["selected"] = deita_select(results["scored"], budget, threshold=1.0, encoder=TINY_ENCODER)
    for i, name in enumerate(steps):
        if not (split and name == "dedup"):
            funnel.add("07", results[name], source=i == 0)
    return {"my_rows": rows, "my_budget": budget, "my_funnel": funnel, "my_selected": results["selected"],
            "scored": results["scored"]}


@pytest.fixture(scope="module")
def made(tmp_path_factory, tiny_path) -> dict[str, Any]:
    """What a learner's cells would hold, made once on the tiny model in a private smolsynth home."""
    from smolsynth.dedup import exact_duplicates, minhash_duplicates
    from smolsynth.selection import deita_select

    with private_home(tmp_path_factory, tiny_path, "nb07"):
        planted = planted_duplicates()
        made = {
            "solution": _run_cells(source_cells(NOTEBOOK, "solution")),
            "starter": _run_cells(source_cells(NOTEBOOK, "starter")),
            "minhash": {t: minhash_duplicates(planted, threshold=t) for t in (0.2, 0.3, 0.5, 0.6, 0.7, 0.9)},
            "minhash_part": minhash_duplicates(planted[:20], threshold=0.5),
            "exact": exact_duplicates(planted),
            "own": _curate(MY_ROWS, BUDGET),
            "split": _curate(MY_ROWS, BUDGET, split=True),
            "three_stages": _curate(MY_ROWS, BUDGET, steps=("dedup", "scored", "selected")),
            "skipping": _curate(MY_ROWS, BUDGET, decontaminate_rows=MY_ROWS),
            "answers_decontaminated": _curate(CONTAMINATED_ROWS, len(CONTAMINATED_ROWS) - 1, column="generation"),
            "foreign": deita_select([{"instruction": f"Someone else's question {i}", "deita_score": i}
                                     for i in range(8)], BUDGET, threshold=1.0, encoder=TINY_ENCODER),
        }
        scored = made["own"]["scored"]
        made["over_budget"] = deita_select(scored, len(MY_ROWS) - 2, threshold=1.0, encoder=TINY_ENCODER)
        made["one_less"] = deita_select(scored, BUDGET - 1, threshold=1.0, encoder=TINY_ENCODER)
    assert len(made["own"]["my_selected"].rows) == BUDGET, made["own"]["my_selected"].report
    assert len(made["over_budget"].rows) > BUDGET, made["over_budget"].report
    return made


# ------------------------------------------------------------------------------------------------- answers
_q1, _q2, _q3 = (functools.partial(solution_with, name=name) for name in ("q1", "q2", "q3"))


def _own(m, key="own", **kw):
    answer = {k: v for k, v in m[key].items() if k in nb07.q3.variables}
    return {**answer, **kw}


def _no_params(result):
    return dataclasses.replace(result, params={})


CASES: dict[str, dict[str, Any]] = {
    "07_curation.q1": {
        "exercise": nb07.q1,
        "correct": _q1,
        "incorrect": {
            "keeps everything": (lambda m: _q1(m, my_dedup=lambda texts: list(range(len(texts)))),
                                 "Case 3 of 6 (the same text twice)"),
            "exact text only": (lambda m: _q1(m, my_dedup=lambda texts: [
                i for i, t in enumerate(texts) if t not in texts[:i]]), "Case 4 of 6 (case, punctuation"),
            "lower case only": (lambda m: _q1(m, my_dedup=lambda texts: [
                i for i, t in enumerate(texts) if t.lower() not in [u.lower() for u in texts[:i]]]),
                "returned [0, 1, 2]; it should return [0, 2]"),
            "keeps the last copy": (lambda m: _q1(m, my_dedup=lambda texts: sorted(
                {normalize_text(t): i for i, t in enumerate(texts)}.values())), "Case 3 of 6"),
            "returns texts": (lambda m: _q1(m, my_dedup=lambda texts: [texts[i] for i in _dedup(texts)]),
                              "return a list of the indices to keep"),
            "raises": (lambda m: _q1(m, my_dedup=lambda texts: [texts.index(t) for t in texts[0]]),
                       "raised IndexError"),
            "not a function": (lambda m: _q1(m, my_dedup=[0, 2]), "should be a function"),
        },
        "not_attempted": [lambda m: m["starter"]["q1"], lambda m: {"my_dedup": ____}],
    },
    "07_curation.q2": {
        "exercise": nb07.q2,
        "correct": _q2,
        "incorrect": {
            "distilabel's 0.9": (lambda m: _q2(m, my_threshold=0.9, my_minhash=m["minhash"][0.9]),
                                 "finds 10% of the reworded copies (1 of 10); find at least 80%: the threshold is "
                                 "too high"),
            "the course's 0.7": (lambda m: _q2(m, my_threshold=0.7, my_minhash=m["minhash"][0.7]),
                                 "finds 70% of the reworded copies (7 of 10)"),
            "too low": (lambda m: _q2(m, my_threshold=0.2, my_minhash=m["minhash"][0.2]),
                        "drops 1 original row(s) as duplicates of other originals"),
            "result of another threshold": (lambda m: _q2(m, my_threshold=0.5, my_minhash=m["minhash"][0.6]),
                                            "made with threshold 0.6, but `my_threshold` is 0.5"),
            "exact deduplication": (lambda m: _q2(m, my_minhash=m["exact"]),
                                    "the step 'exact duplicates', not of `minhash_duplicates`"),
            "part of the planted rows": (lambda m: _q2(m, my_minhash=m["minhash_part"]),
                                         "ran over 20 rows, not over the 47 planted rows"),
            "not a number": (lambda m: _q2(m, my_threshold="0.5"), "it should be a number in (0, 1]"),
            "zero": (lambda m: _q2(m, my_threshold=0), "it should be a number in (0, 1]"),
            "the kept rows": (lambda m: _q2(m, my_minhash=m["minhash"][0.5].rows), "`my_minhash` is a list"),
        },
        "not_attempted": [lambda m: m["starter"]["q2"], lambda m: {k: ____ for k in nb07.q2.variables},
                          lambda m: _q2(m, my_minhash=____)],
    },
    "07_curation.q3": {
        "exercise": nb07.q3,
        "correct": _q3,
        "incorrect": {
            "fewer than 12 rows": (lambda m: _own(m, my_rows=MY_ROWS[:10]), "has 10 row(s); write at least 12"),
            "not a list": (lambda m: _own(m, my_rows=tuple(MY_ROWS)), "`my_rows` is a tuple"),
            "a row without its answer": (lambda m: _own(m, my_rows=MY_ROWS[:-1] + [{"instruction": "Why?"}]),
                                         "Row 12 of `my_rows`"),
            "the course's planted rows": (lambda m: _own(m, my_rows=[
                {"instruction": r["instruction"], "generation": "An answer."} for r in planted_duplicates()[:12]]),
                "12 instruction(s) of `my_rows` come from the course's planted set"),
            "budget as large as the data": (lambda m: _own(m, my_budget=len(MY_ROWS)),
                                            "it should be a whole number between 1 and 12"),
            "budget not a number": (lambda m: _own(m, my_budget="6"), "`my_budget` is '6'"),
            "budget not respected": (lambda m: _own(m, my_selected=m["over_budget"]),
                                     f"selected with a budget of {len(MY_ROWS) - 2}, but `my_budget` is {BUDGET}"),
            "more rows than the budget": (lambda m: _own(m, my_selected=_no_params(m["over_budget"])),
                                          f"holds {len(MY_ROWS) - 2} rows, more than `my_budget` ({BUDGET})"),
            "the scored rows": (lambda m: _own(m, my_selected=m["own"]["scored"]),
                                "the step 'deita_scores', not of `deita_select`"),
            "a bare list": (lambda m: _own(m, my_selected=m["own"]["my_selected"].rows), "`my_selected` is a list"),
            "someone else's rows": (lambda m: _own(m, my_selected=m["foreign"]),
                                    f"{BUDGET} row(s) of `my_selected` are not in `my_rows`"),
            "the funnel's table": (lambda m: _own(m, my_funnel=m["own"]["my_funnel"].table),
                                   "`my_funnel` is a DataFrame"),
            "a step left out of the funnel": (lambda m: _own(m, "three_stages"),
                                              "`my_funnel` has 3 stage(s) (deduplicate, deita_scores, deita select"),
            "a funnel of other rows": (lambda m: _own(m, my_rows=MY_ROWS + [EXTRA_ROW]),
                                       "`my_funnel` starts with 13 rows, but `my_rows` has 14"),
            "a step that skips the one before": (lambda m: _own(m, "skipping"),
                                                 "does not account for every row: 07 decontaminate (8-grams): takes "
                                                 "in 13 rows, but the stage before kept 12"),
            "the funnel of another selection": (lambda m: _own(m, my_budget=BUDGET - 1, my_selected=m["one_less"]),
                                                f"the last stage kept {BUDGET} rows, the dataset has {BUDGET - 1}"),
            "the answers decontaminated": (lambda m: _own(m, "answers_decontaminated"),
                                           "overlap an evaluation prompt"),
        },
        "not_attempted": [lambda m: m["starter"]["q3"], lambda m: {k: ____ for k in nb07.q3.variables},
                          lambda m: _q3(m, my_selected=____), lambda m: _own(m, my_rows=MY_ROWS + [____])],
    },
}


(test_every_exercise_has_test_cases, test_correct_answer_passes,
 test_incorrect_answer_is_explained_without_the_answer, test_not_attempted_answer) = exercise_tests(
    NOTEBOOK, CASES, fixture="made")


# ------------------------------------------------------------------------------------------------- beyond the harness
def test_the_solutions_are_the_notebooks_cells() -> None:
    cells = source_cells(NOTEBOOK, "solution")
    assert set(cells) == {e.name for e in nb07.EXERCISES} == set(source_cells(NOTEBOOK, "starter"))
    for name, code in cells.items():
        assert SOLUTIONS[NOTEBOOK][name].strip() == code


@pytest.mark.parametrize("key", ["own", "split"])
def test_other_correct_curations_pass(made: dict[str, Any], key: str) -> None:
    """Not only the notebook's solution: Deita's budget deciding, and exact + MinHash as two stages."""
    feedback = nb07.q3.evaluate(**_own(made, key))
    assert feedback.status == "correct", feedback
    assert f"{len(MY_ROWS)} rows in, {BUDGET} selected" in feedback.message


@pytest.mark.parametrize(("threshold", "status"), [(0.2, "incorrect"), (0.3, "correct"), (0.5, "correct"),
                                                   (0.6, "correct"), (0.7, "incorrect"), (0.9, "incorrect")])
def test_every_threshold_is_judged_by_its_measured_recall(made: dict[str, Any], threshold: float, status: str) -> None:
    """On the planted set: 0.2 drops an original; 0.3-0.5 find 10 reworded copies of 10, 0.6 finds 8 (the 80% asked
    for), 0.7 finds 7 and 0.9 one."""
    feedback = nb07.q2.evaluate(my_threshold=threshold, my_minhash=made["minhash"][threshold])
    assert feedback.status == status, feedback


def test_the_solution_feedback_reports_what_it_measured(made: dict[str, Any]) -> None:
    assert "At 0.5, MinHash finds 100% of the reworded copies" in nb07.q2.evaluate(**_q2(made)).message
    assert "all 6 hidden cases" in nb07.q1.evaluate(**_q1(made)).message
    selected = made["solution"]["q3"]["my_selected"]
    assert f"{len(MY_ROWS)} rows in, {len(selected.rows)} selected" in nb07.q3.evaluate(**_q3(made)).message


def test_the_starters_name_every_variable_not_attempted(made: dict[str, Any]) -> None:
    for exercise in nb07.EXERCISES:
        feedback = exercise.evaluate(**made["starter"][exercise.name])
        assert feedback.status == "not_attempted", feedback
        assert all(f"`{var}`" in feedback.message for var in exercise.variables), feedback.message


@pytest.mark.parametrize("exercise", nb07.EXERCISES, ids=lambda e: e.name)
def test_hints_and_solution_render(exercise, capsys: pytest.CaptureFixture) -> None:
    exercise._hints_shown = 0
    for n, hint in enumerate(exercise.hints, start=1):
        exercise.hint()
        shown = capsys.readouterr().out
        assert shown.startswith("💡 Hint") and f"({n} of {len(exercise.hints)}) {hint}" in shown
    exercise.hint()  # past the last one: the last hint again, pointing to the solution
    assert "`solution()` shows a worked solution" in capsys.readouterr().out
    exercise._hints_shown = 0
    exercise.solution()
    shown = capsys.readouterr().out
    assert shown.startswith("📖 Solution") and SOLUTIONS[NOTEBOOK][exercise.name] in shown
    html = exercise.evaluate(**{var: ____ for var in exercise.variables})._repr_html_()
    assert "data-status='not_attempted'" in html and exercise.title in html


def test_docstring_examples_run(monkeypatch: pytest.MonkeyPatch) -> None:
    import doctest

    monkeypatch.setenv("SMOLSYNTH_MODEL", "smolsynth/tiny")
    result = doctest.testmod(nb07, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0
