"""Rows in, rows out: the one loop every step of smolsynth is made of, and the one result type it returns.

A step takes rows (dicts of columns), keeps some and sets the others aside with a ``reason``. Nothing is dropped
silently (see ARCHITECTURE.md, "Nothing silent"): every step returns a :class:`Result` with the kept rows, the
dropped rows (each with its ``reason``), a :class:`~smolsynth.report.Report` that counts them, and, for a step made
of several steps, the report of each (``.steps``, shown together as ``.funnel``)::

    >>> from smolsynth.rows import partition
    >>> result = partition([{"text": "hi"}, {"text": ""}], lambda row: None if row["text"] else "empty_output",
    ...                    step="non-empty")
    >>> result.rows, result.report.dropped
    ([{'text': 'hi'}], {'empty_output': 1})

Inside the package steps hand each other ``result.rows`` (plain lists): ``result.dataset`` and ``result.dropped``
(``datasets.Dataset``) are built on first use, for the learner.
"""

from __future__ import annotations

import html
import time
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

from smolsynth.report import Report, ReportTable, count_reasons

Row = Dict[str, Any]
Verdict = Union[None, str, Tuple[Optional[str], Row]]
"""What a check returns for one row: None (keep it as it is), a reason (drop it), or ``(reason or None, row)`` to
keep or drop an annotated copy of the row."""

__all__ = ["Result", "Row", "Verdict", "as_rows", "chain", "from_steps", "partition", "read_jsonl", "to_dataset",
           "write_jsonl"]


# ------------------------------------------------------------------------------------------------- conversions
def as_rows(data: Any, *, argument: str = "data") -> List[Row]:
    """Rows as a list of dicts, from a ``datasets.Dataset``, a pandas DataFrame, a list of dicts, a
    :class:`Result` (its kept rows) or a row count (that many empty rows).

    Anything else raises a TypeError that names ``argument`` and the fix.

    >>> as_rows([{"instruction": "Hi"}]), as_rows(2)
    ([{'instruction': 'Hi'}], [{}, {}])
    """
    if data is None:
        raise TypeError(f"{argument}=None: pass a datasets.Dataset, a list of row dicts, or the result of an "
                        "earlier step.")
    if isinstance(data, Result):
        return [dict(r) for r in data.rows]
    if isinstance(data, bool):
        raise TypeError(f"{argument}={data} is not data: pass a datasets.Dataset, a list of dicts, or a row count.")
    if isinstance(data, int):
        if data < 0:
            raise ValueError(f"{argument}={data}: a row count must be >= 0.")
        return [{} for _ in range(data)]
    if hasattr(data, "to_list") and hasattr(data, "column_names"):  # datasets.Dataset
        return data.to_list()
    if hasattr(data, "to_dict") and hasattr(data, "columns"):  # pandas.DataFrame
        return data.to_dict("records")
    if isinstance(data, (str, dict)):
        raise TypeError(f"{argument} is a {type(data).__name__}: pass a list of row dicts "
                        "([{'instruction': ...}, ...]) or a Dataset.")
    try:
        rows = list(data)
    except TypeError:
        raise TypeError(f"{argument} is a {type(data).__name__}: pass a datasets.Dataset or a list of row dicts.") \
            from None
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise TypeError(f"{argument}[{i}] is a {type(row).__name__}, not a dict: every row must be a dict of "
                            "columns, e.g. [{'instruction': 'Write a haiku.'}].")
    return rows


def _kind(value: Any) -> Optional[str]:
    if value is None:
        return None
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "list"
    if isinstance(value, dict):
        return "dict"
    return type(value).__name__


def to_dataset(rows: Sequence[Row]):
    """A ``datasets.Dataset`` of ``rows`` (columns in order of first appearance; an empty Dataset for no rows).

    A column whose values mix kinds (a list in one row, a string in another) cannot be stored by Arrow: it raises a
    TypeError naming the column and the rows, rather than silently turning the column into text.

    >>> to_dataset([{"a": 1}, {"a": 2, "b": "x"}]).column_names
    ['a', 'b']
    """
    import datasets

    if not rows:
        return datasets.Dataset.from_dict({})
    columns: Dict[str, None] = {}
    for row in rows:
        columns.update(dict.fromkeys(row))
    table = {col: [row.get(col) for row in rows] for col in columns}
    for col, values in table.items():
        kinds = {k: i for i, k in reversed(list(enumerate(map(_kind, values)))) if k is not None}
        if len(kinds) > 1 and set(kinds) != {"number"}:
            described = ", ".join(f"a {k} in row {i}" for k, i in sorted(kinds.items(), key=lambda kv: kv[1]))
            raise TypeError(f"Column {col!r} mixes kinds of values ({described}): a Dataset column holds one kind. "
                            "Make the values alike (e.g. json.dumps the odd ones) or drop the column first.")
    return datasets.Dataset.from_dict(table)


# ------------------------------------------------------------------------------------------------------- result
@dataclass(eq=False)
class Result:
    """What every step returns.

    Attributes:
        rows: the kept rows (a list of dicts).
        dropped_rows: the rows set aside, each with a ``reason`` (and, where there is one, what it was about:
            ``raw_output``, ``error``, ``most_similar``, ...).
        report: the account of this step (rows in and out, dropped by reason, tokens, seconds).
        steps: the reports of the steps underneath, in order (empty for a single step).
        params: the inputs that decide the result (e.g. the seed instructions), for checks and records.
        intermediate: rows of the steps underneath, by name, where a step keeps them (e.g.
            :func:`~smolsynth.preferences.preference_dataset` keeps its ``candidates`` and ``judged`` rows).

    ``dataset`` and ``dropped`` are the same rows as ``datasets.Dataset`` objects; ``funnel`` is the table of the
    steps (or of this step alone).
    """

    rows: List[Row]
    dropped_rows: List[Row] = field(default_factory=list)
    report: Report = field(default_factory=lambda: Report("step"))
    steps: List[Report] = field(default_factory=list)
    params: Dict[str, Any] = field(default_factory=dict)
    intermediate: Dict[str, List[Row]] = field(default_factory=dict)

    @cached_property
    def dataset(self):
        """The kept rows as a ``datasets.Dataset``."""
        return to_dataset(self.rows)

    @cached_property
    def dropped(self):
        """The dropped rows (with ``reason``) as a ``datasets.Dataset``."""
        return to_dataset(self.dropped_rows)

    @property
    def funnel(self) -> ReportTable:
        """The report of every step underneath (or of this step alone) as one table."""
        return Report.combine(self.steps or [self.report])

    def __len__(self) -> int:
        return len(self.rows)

    def __str__(self) -> str:
        return f"{self.report}\n\n{self.funnel}" if self.steps else str(self.report)

    __repr__ = __str__  # a terminal (or nbval's log) shows the account, not every row

    def _repr_html_(self) -> str:
        if not self.steps:
            return self.report._repr_html_()
        return self.funnel._repr_html_() + f"<p><strong>total</strong>: {html.escape(str(self.report))}</p>"


# ------------------------------------------------------------------------------------------------- the one loop
def partition(rows: Iterable[Row], check: Callable[[Row], Verdict], *, step: str,
              model: Optional[str] = None) -> Result:
    """Apply ``check`` to every row: keep it, or set it aside with the reason ``check`` gives.

    ``check(row)`` returns None (keep the row), a reason string (drop it), or ``(reason or None, new_row)`` to keep
    or drop an annotated copy. A check may keep state (a growing pool, a set of seen texts): rows are checked in order.

    >>> partition([{"n": 1}, {"n": -1}], lambda r: None if r["n"] > 0 else ("negative", {**r, "sign": "-"}),
    ...           step="positive").dropped_rows
    [{'n': -1, 'sign': '-', 'reason': 'negative'}]
    """
    started = time.perf_counter()
    kept: List[Row] = []
    dropped: List[Row] = []
    n_in = 0
    for row in rows:
        n_in += 1
        verdict = check(row)
        reason, out = (verdict if isinstance(verdict, tuple) else (verdict, row))
        if reason:
            dropped.append({**out, "reason": reason})
        else:
            kept.append(out)
    report = Report(step, rows_in=n_in, rows_out=len(kept), dropped=count_reasons(dropped),
                    seconds=round(time.perf_counter() - started, 3), model=model)
    return Result(kept, dropped, report)


def from_steps(step: str, steps: Sequence[Report], *, rows: List[Row], dropped_rows: List[Row], rows_in: int,
               started: float, model: Optional[str] = None, params: Optional[Dict[str, Any]] = None) -> Result:
    """The result of a step made of several steps: one total report (tokens summed over ``steps``, every dropped
    row counted by reason) over the steps' own reports.

    >>> r = from_steps("two", [Report("a", 2, 2), Report("b", 2, 1, {"tie": 1})], rows=[{"x": 1}],
    ...                dropped_rows=[{"x": 2, "reason": "tie"}], rows_in=2, started=time.perf_counter())
    >>> r.report.dropped, len(r.funnel)
    ({'tie': 1}, 2)
    """
    steps = list(steps)
    cached = [r.cached_rows for r in steps if r.rows_in]
    report = Report(step, rows_in=rows_in, rows_out=len(rows), dropped=count_reasons(dropped_rows),
                    input_tokens=sum(r.input_tokens for r in steps), output_tokens=sum(r.output_tokens for r in steps),
                    seconds=round(time.perf_counter() - started, 3),
                    cached_rows=min(rows_in, max(cached, default=0)),
                    compute_seconds=round(sum(r.compute_seconds or r.seconds for r in steps), 3) if steps else None,
                    model=model)
    return Result(list(rows), list(dropped_rows), report, steps, dict(params or {}))


def chain(step: str, results: Sequence[Result]) -> Result:
    """Steps that ran one after the other, each on the rows the one before kept, as one result: the last step's
    rows, every step's dropped rows (each kept its ``reason``), every step's report in ``.steps``.

    >>> positive = partition([{"n": 1}, {"n": -1}, {"n": 2}], lambda r: None if r["n"] > 0 else "negative",
    ...                      step="positive")
    >>> even = partition(positive.rows, lambda r: "odd" if r["n"] % 2 else None, step="even")
    >>> both = chain("positive and even", [positive, even])
    >>> both.rows, both.report.rows_in, both.report.dropped
    ([{'n': 2}], 3, {'negative': 1, 'odd': 1})
    """
    results = list(results)
    if not results or not all(isinstance(r, Result) for r in results):
        raise TypeError("chain() takes a non-empty list of Results, in the order the steps ran.")
    return from_steps(step, [r.report for r in results], rows=results[-1].rows,
                      dropped_rows=[row for r in results for row in r.dropped_rows],
                      rows_in=results[0].report.rows_in, started=time.perf_counter() - sum(r.report.seconds
                                                                                           for r in results),
                      model=next((r.report.model for r in results if r.report.model), None))


def write_jsonl(path: Any, rows: Sequence[Row]) -> None:
    """Write ``rows`` to ``path`` as JSON Lines, atomically (:func:`smolsynth.cache.atomic_write`)."""
    import json
    from pathlib import Path

    from smolsynth.cache import atomic_write

    atomic_write(Path(path), "".join(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in rows))


def read_jsonl(path: Any) -> List[Row]:
    """The rows of a JSON Lines file (blank lines skipped)."""
    import json
    from pathlib import Path

    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
