"""The funnel: stages strung together across notebooks, checked so that every row is accounted for, saved beside
a hand-off and read back."""

from __future__ import annotations

import doctest

import pytest

import smolsynth.funnel as funnel_module
from smolsynth.funnel import DROPPED_FILE, FUNNEL_FILE, Funnel, course_funnel
from smolsynth.report import Report
from smolsynth.rows import Result, partition


def _made(n: int) -> Result:
    return partition([{"instruction": f"task {i}"} for i in range(n)], lambda r: None, step="make")


def _drop_first(result: Result, step: str, k: int = 1) -> Result:
    first = {r["instruction"] for r in result.rows[:k]}
    return partition(result.rows, lambda r: "duplicate" if r["instruction"] in first else None, step=step)


def test_a_chain_of_steps_accounts_for_every_row() -> None:
    funnel = Funnel("x")
    made = _made(5)
    funnel.add("01", made, source=True)
    one = _drop_first(made, "dedup", 2)
    funnel.add("07", one)
    assert funnel.check(3) == [] and funnel.rows_made == 5 and funnel.rows_kept == 3
    assert [r["reason"] for r in funnel.dropped_rows] == ["duplicate", "duplicate"]
    assert funnel.dropped_rows[0]["text"] == "task 0" and funnel.dropped_rows[0]["step"] == "dedup"
    assert funnel.check(4) == ["the last stage kept 3 rows, the dataset has 4"]


def test_a_stage_that_loses_rows_silently_is_reported() -> None:
    funnel = Funnel("x")
    funnel.add("01", _made(4), source=True)
    funnel.add("07", Result([{"instruction": "a"}], [], Report("leaky", rows_in=4, rows_out=1)))
    problems = funnel.check()
    assert any("leaky: 4 in != 1 out + 0 dropped" in p for p in problems), problems


def test_a_stage_that_takes_other_rows_than_the_stage_before_kept_is_reported() -> None:
    funnel = Funnel("x")
    made = _made(4)
    funnel.add("01", made, source=True)
    funnel.add("07", _drop_first(_made(6), "dedup"))  # 6 rows in, but the stage before kept 4
    assert any("takes in 6 rows, but the stage before kept 4" in p for p in funnel.check()), funnel.check()


def test_branches_merge_into_the_main_line() -> None:
    funnel = Funnel("x")
    a = _made(3)
    b = partition([{"instruction": "other 0"}, {"instruction": "other 1"}], lambda r: None, step="make")
    funnel.add("01", a, branch="a", source=True)
    funnel.add("01", b, branch="b", source=True)
    merged = _drop_first(Result(a.rows + b.rows), "merge", 1)
    funnel.add("01", merged)
    assert funnel.check(4) == [] and funnel.rows_made == 5
    funnel.add("01", _drop_first(Result(a.rows), "merge", 1))  # a rerun of the cell replaces the stage: 3 in, not 5
    assert any("merge: takes in 3 rows, but the stage before kept 5" in p for p in funnel.check())
    assert sum(s.step == "merge" for s in funnel.stages) == 1


def test_a_source_stage_says_how_many_rows_it_made() -> None:
    made = Result([{"instruction": "a"}, {"instruction": "b"}, {"instruction": "c"}],
                  [{"instruction": "d", "reason": "too_short"}], Report("self_instruct", 2, 3, {"too_short": 1}))
    funnel = Funnel("x")
    funnel.add("01", made, source=True)
    assert funnel.stages[0].made == 2 and funnel.rows_made == 4 and funnel.check(3) == []


def test_dropped_counts_must_match_the_recorded_rows() -> None:
    funnel = Funnel("x")
    funnel.add("01", _made(3), source=True)
    funnel.add("07", Result([{"instruction": "a"}], [{"instruction": "b", "reason": "tie"}],
                            Report("judge", 3, 1, {"tie": 2})))
    assert any("2 rows dropped as 'tie', 1 of them recorded" in p for p in funnel.check()), funnel.check()


def test_save_and_load_round_trip(tmp_path) -> None:
    funnel = Funnel("x")
    made = _made(3)
    funnel.add("01", made, source=True)
    funnel.add("07", _drop_first(made, "dedup"))
    funnel.save(tmp_path)
    assert (tmp_path / FUNNEL_FILE).is_file() and (tmp_path / DROPPED_FILE).is_file()
    back = Funnel.load(tmp_path)
    assert back.name == "x" and back.stages == funnel.stages and back.dropped_rows == funnel.dropped_rows
    assert back.check(2) == [] and len(back.plot().axes) == 1 and "dedup" in back._repr_html_()
    assert Funnel.load(tmp_path / "nothing", "empty").stages == []


def test_handoff_save_refuses_a_funnel_that_does_not_add_up_and_saves_one_that_does(engine_home) -> None:
    from datasets import Dataset

    from smolsynth import handoff
    from smolsynth.course import data_path

    funnel = Funnel("curated")
    made = _made(3)
    funnel.add("01", made, source=True)
    data = Dataset.from_list([{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}])
    with pytest.raises(ValueError, match="does not account for every row.*kept 3 rows, the dataset has 1"):
        handoff.save(data, "curated", model="smolsynth/tiny", funnel=funnel)
    assert not data_path("curated").exists()  # nothing half-saved
    funnel.add("07", _drop_first(made, "dedup", 2))
    handoff.save(data, "curated", model="smolsynth/tiny", funnel=funnel)
    assert course_funnel()["curated"].check(1) == []
    with pytest.raises(TypeError, match="funnel is a list"):
        handoff.save(data, "curated", model="smolsynth/tiny", funnel=[])


def test_add_refuses_what_is_not_a_result() -> None:
    with pytest.raises(TypeError, match="pass what a smolsynth step returned"):
        Funnel("x").add("07", [{"instruction": "a"}])


def test_docstring_examples_run(engine_home) -> None:
    result = doctest.testmod(funnel_module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0
