"""smolsynth.rows: the one loop (partition), the one result type (Result), and the conversions every step uses."""

from __future__ import annotations

import time

import pytest

from smolsynth.report import Report
from smolsynth.rows import Result, as_rows, from_steps, partition, to_dataset


def _accounted(result: Result) -> None:
    r = result.report
    assert r.rows_in == r.rows_out + r.dropped_total, r
    assert r.rows_out == len(result.rows) and r.dropped_total == len(result.dropped_rows)


# ------------------------------------------------------------------------------------------------- partition
def test_partition_keeps_drops_and_annotates() -> None:
    def check(row):
        if row["n"] == 0:
            return "zero"  # drop as it is
        if row["n"] < 0:
            return "negative", {**row, "sign": "-"}  # drop an annotated copy
        if row["n"] > 10:
            return None, {**row, "big": True}  # keep an annotated copy
        return None  # keep as it is

    rows = [{"n": 1}, {"n": 0}, {"n": -2}, {"n": 11}, {"n": 0}]
    result = partition(rows, check, step="signs", model="m")
    assert result.rows == [{"n": 1}, {"n": 11, "big": True}]
    assert result.dropped_rows == [{"n": 0, "reason": "zero"}, {"n": -2, "sign": "-", "reason": "negative"},
                                   {"n": 0, "reason": "zero"}]
    assert result.report.step == "signs" and result.report.model == "m"
    assert (result.report.rows_in, result.report.rows_out) == (5, 2)
    assert result.report.dropped == {"zero": 2, "negative": 1}
    _accounted(result)
    assert rows[2] == {"n": -2}, "the input row was changed in place"


def test_partition_runs_checks_in_order_with_state_and_takes_any_iterable() -> None:
    seen: set = set()

    def first_time(row):
        if row["t"] in seen:
            return "duplicate"
        seen.add(row["t"])
        return None

    result = partition(iter([{"t": "a"}, {"t": "b"}, {"t": "a"}]), first_time, step="dedupe")
    assert [r["t"] for r in result.rows] == ["a", "b"] and result.report.dropped == {"duplicate": 1}
    _accounted(result)
    empty = partition([], first_time, step="nothing")
    assert (empty.rows, empty.dropped_rows, empty.report.rows_in) == ([], [], 0)


def test_partition_of_empty_strings_keeps_the_doc_example() -> None:
    result = partition([{"text": "hi"}, {"text": ""}], lambda r: None if r["text"] else "empty_output", step="x")
    assert result.rows == [{"text": "hi"}] and result.report.dropped == {"empty_output": 1}


# ------------------------------------------------------------------------------------------------ from_steps
def test_from_steps_sums_tokens_and_counts_every_dropped_row() -> None:
    a = Report("a", rows_in=3, rows_out=3, input_tokens=10, output_tokens=20, seconds=1.0, cached_rows=2)
    b = Report("b", rows_in=3, rows_out=1, dropped={"tie": 1, "x": 1}, input_tokens=5, output_tokens=7,
               seconds=0.5, compute_seconds=2.0)
    dropped = [{"i": 1, "reason": "tie"}, {"i": 2, "reason": "x"}, {"i": 3, "reason": "tie"}]
    result = from_steps("both", [a, b], rows=[{"i": 0}], dropped_rows=dropped, rows_in=4,
                        started=time.perf_counter(), model="m", params={"seeds": ["s"]})
    r = result.report
    assert (r.step, r.rows_in, r.rows_out, r.model) == ("both", 4, 1, "m")
    assert (r.input_tokens, r.output_tokens) == (15, 27)
    assert r.dropped == {"tie": 2, "x": 1}  # counted from the dropped rows, not copied from the steps
    assert r.cached_rows == 2 and r.compute_seconds == pytest.approx(3.0)  # 1.0 (no compute) + 2.0
    assert r.rows_in == r.rows_out + r.dropped_total
    assert result.steps == [a, b] and result.params == {"seeds": ["s"]}
    assert len(result.funnel) == 2


def test_from_steps_copies_its_inputs() -> None:
    rows, dropped = [{"i": 0}], [{"i": 1, "reason": "r"}]
    result = from_steps("s", [], rows=rows, dropped_rows=dropped, rows_in=2, started=time.perf_counter())
    rows.append({"i": 9})
    dropped.clear()
    assert len(result.rows) == 1 and len(result.dropped_rows) == 1
    assert result.report.compute_seconds is None and result.steps == []


# ---------------------------------------------------------------------------------------------------- Result
def test_result_dataset_and_dropped_are_built_lazily_and_equal_the_rows() -> None:
    result = partition([{"a": 1, "b": "x"}, {"a": 2, "b": "y"}, {"a": -1, "b": "z"}],
                       lambda r: "negative" if r["a"] < 0 else None, step="positive")
    assert "dataset" not in vars(result) and "dropped" not in vars(result)  # nothing built yet
    ds = result.dataset
    assert "dataset" in vars(result) and result.dataset is ds  # built once, then reused
    assert ds.to_list() == result.rows and ds.column_names == ["a", "b"]
    assert result.dropped.to_list() == result.dropped_rows
    assert result.dropped["reason"] == ["negative"]
    assert len(result) == 2


def test_result_funnel_is_its_steps_or_itself() -> None:
    single = partition([{"a": 1}], lambda r: None, step="only")
    assert len(single.funnel) == 1 and "only" in str(single)
    a, b = Report("first", 2, 2), Report("second", 2, 1, {"tie": 1})
    multi = Result([{"a": 1}], [{"a": 2, "reason": "tie"}], Report("total", 2, 1, {"tie": 1}), [a, b])
    assert len(multi.funnel) == 2
    text = str(multi)
    assert "total" in text and "first" in text and "second" in text
    assert repr(multi) == text  # a terminal shows the account, not every row
    html = multi._repr_html_()
    assert "first" in html and "<strong>total</strong>" in html
    assert "<table" in single._repr_html_()


def test_an_empty_result_has_empty_datasets() -> None:
    empty = Result([])
    assert len(empty.dataset) == 0 and len(empty.dropped) == 0 and empty.report.rows_in == 0


# ----------------------------------------------------------------------------------------------------- as_rows
def test_as_rows_takes_every_kind_of_data() -> None:
    import datasets
    import pandas as pd

    rows = [{"instruction": "Hi", "n": 1}, {"instruction": "Bye", "n": 2}]
    assert as_rows(datasets.Dataset.from_list(rows)) == rows
    assert as_rows(pd.DataFrame(rows)) == rows
    assert as_rows(rows) == rows and as_rows(tuple(rows)) == rows
    assert as_rows(iter(rows)) == rows
    result = partition(rows, lambda r: None, step="s")
    copied = as_rows(result)
    assert copied == rows and copied[0] is not result.rows[0]  # copies: a later step cannot change the result
    assert as_rows(3) == [{}, {}, {}] and as_rows(0) == []
    assert as_rows([]) == []


@pytest.mark.parametrize(("data", "error", "match"), [
    (None, TypeError, r"data=None"),
    ("Explain tides.", TypeError, r"data is a str"),
    ({"instruction": "Hi"}, TypeError, r"data is a dict"),
    (["Hi", "Bye"], TypeError, r"data\[0\] is a str, not a dict"),
    ([{"a": 1}, 3], TypeError, r"data\[1\] is a int, not a dict"),
    (True, TypeError, r"data=True is not data"),
    (-1, ValueError, r"data=-1: a row count must be >= 0"),
    (1.5, TypeError, r"data is a float"),
])
def test_as_rows_errors_name_the_argument(data, error, match) -> None:
    with pytest.raises(error, match=match):
        as_rows(data)
    with pytest.raises(error, match=match.replace("data", "pairs", 1)):
        as_rows(data, argument="pairs")


# -------------------------------------------------------------------------------------------------- to_dataset
def test_to_dataset_orders_columns_by_first_appearance_and_fills_gaps() -> None:
    ds = to_dataset([{"a": 1}, {"a": 2, "b": "x"}])
    assert ds.column_names == ["a", "b"] and ds["b"] == [None, "x"]
    assert len(to_dataset([])) == 0


def test_to_dataset_mixes_ints_and_floats_and_takes_none() -> None:
    ds = to_dataset([{"rating": 4}, {"rating": 4.5}, {"rating": None}])
    assert ds["rating"] == [4.0, 4.5, None]


@pytest.mark.parametrize(("rows", "column", "described"), [
    ([{"g": ["a", "b"]}, {"g": "a"}], "g", "a list in row 0, a string in row 1"),
    ([{"x": 1}, {"y": 1}, {"x": "one"}], "x", "a number in row 0, a string in row 2"),
    ([{"r": {"k": 1}}, {"r": [1]}], "r", "a dict in row 0, a list in row 1"),
    ([{"f": True}, {"f": 1}], "f", "a bool in row 0, a number in row 1"),
])
def test_to_dataset_refuses_a_column_of_mixed_kinds_naming_it(rows, column, described) -> None:
    with pytest.raises(TypeError, match=f"Column '{column}' mixes kinds of values") as info:
        to_dataset(rows)
    assert described in str(info.value)


def test_chain_keeps_the_last_rows_every_drop_and_every_report() -> None:
    from smolsynth.rows import chain

    first = partition([{"n": i} for i in range(6)], lambda r: "big" if r["n"] > 3 else None, step="small")
    second = partition(first.rows, lambda r: "odd" if r["n"] % 2 else None, step="even")
    both = chain("small and even", [first, second])
    assert [r["n"] for r in both.rows] == [0, 2]
    assert both.report.rows_in == 6 and both.report.rows_out == 2
    assert both.report.dropped == {"big": 2, "odd": 2}
    assert [s.step for s in both.steps] == ["small", "even"]
    with pytest.raises(TypeError, match="non-empty list of Results"):
        chain("nothing", [])
