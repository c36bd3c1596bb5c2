"""What a step did, in numbers: rows in and out, rows dropped and why, tokens, time, throughput.

Every run of a task returns a :class:`Report` (ARCHITECTURE.md, "Nothing silent"). In Jupyter it renders as a small table,
in a terminal as text; :meth:`Report.combine` puts the reports of several steps in one table (a funnel)::

    >>> from smolsynth.report import Report
    >>> r = Report("text_generation", rows_in=10, rows_out=8, dropped={"unparsed_output": 2},
    ...            input_tokens=200, output_tokens=400, seconds=2.0)
    >>> r.tokens_per_second
    200.0
    >>> print(r)
    text_generation: 10 rows in -> 8 out; dropped 2 (unparsed_output: 2); tokens 200 in / 400 out; 2.0 s, 200 tokens/s
"""

from __future__ import annotations

import html
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, Iterable, List, Optional


def count_reasons(dropped: Iterable[Dict[str, Any]]) -> Dict[str, int]:
    """Rows set aside, counted by their ``reason`` (the ``dropped`` field of a :class:`Report`).

    >>> count_reasons([{"reason": "tie"}, {"reason": "tie"}, {"reason": "missing_ratings"}])
    {'tie': 2, 'missing_ratings': 1}
    """
    counts: Dict[str, int] = {}
    for row in dropped:
        counts[row["reason"]] = counts.get(row["reason"], 0) + 1
    return counts


@dataclass
class Report:
    """The account of one step.

    Attributes:
        step: the step's name.
        rows_in: input rows.
        rows_out: rows kept (with ``num_generations > 1`` there can be more than ``rows_in``).
        dropped: reason -> number of rows set aside (``unparsed_output``, ``wrong_number_of_ratings``,
            ``exception: TypeError``, ...).
        input_tokens, output_tokens: tokens read and written by the model for these rows (cached rows included).
        seconds: wall-clock time of this call (instant when everything came from the cache).
        cached_rows: input rows whose results came from the cache.
        compute_seconds: time spent generating the results, when they were computed (cached batches included).
        model: the model's id, when the step has one.
    """

    step: str
    rows_in: int = 0
    rows_out: int = 0
    dropped: Dict[str, int] = field(default_factory=dict)
    input_tokens: int = 0
    output_tokens: int = 0
    seconds: float = 0.0
    cached_rows: int = 0
    compute_seconds: Optional[float] = None
    model: Optional[str] = None

    @property
    def dropped_total(self) -> int:
        """Rows set aside, all reasons together."""
        return sum(self.dropped.values())

    @property
    def tokens_per_second(self) -> float:
        """Output tokens per second of generation (of the original computation for cached results)."""
        seconds = self.compute_seconds if self.compute_seconds is not None else self.seconds
        return round(self.output_tokens / seconds, 1) if seconds > 0 else 0.0

    def as_dict(self) -> Dict[str, Any]:
        """The report as a plain dict (with ``tokens_per_second``)."""
        return {**asdict(self), "tokens_per_second": self.tokens_per_second}

    @staticmethod
    def combine(reports: Iterable["Report"]) -> "ReportTable":
        """Several steps' reports as one table (a funnel of a pipeline)."""
        return ReportTable(list(reports))

    def _dropped_text(self) -> str:
        if not self.dropped:
            return "none"
        return ", ".join(f"{reason}: {n}" for reason, n in sorted(self.dropped.items(), key=lambda kv: -kv[1]))

    def __str__(self) -> str:
        text = f"{self.step}: {self.rows_in} rows in -> {self.rows_out} out; "
        text += f"dropped {self.dropped_total}" + (f" ({self._dropped_text()})" if self.dropped else "")
        text += f"; tokens {self.input_tokens} in / {self.output_tokens} out; {self.seconds:.1f} s"
        text += f", {self.tokens_per_second:g} tokens/s"
        if self.cached_rows:
            text += f"; {self.cached_rows} of {self.rows_in} rows from the cache"
        return text

    def _repr_html_(self) -> str:
        return ReportTable([self])._repr_html_()


_COLUMNS = ["step", "rows in", "rows out", "dropped", "tokens in", "tokens out", "seconds", "tokens/s", "cached"]


def _cells(r: Report) -> List[str]:
    dropped = str(r.dropped_total) + (f" ({r._dropped_text()})" if r.dropped else "")
    return [r.step, str(r.rows_in), str(r.rows_out), dropped, str(r.input_tokens), str(r.output_tokens),
            f"{r.seconds:.1f}", f"{r.tokens_per_second:g}", f"{r.cached_rows}/{r.rows_in}" if r.cached_rows else ""]


@dataclass
class ReportTable:
    """Reports of several steps, shown as one table (HTML in Jupyter, aligned text in a terminal).

    >>> t = Report.combine([Report("a", 4, 4), Report("b", 4, 3, {"unparsed_output": 1})])
    >>> print(t.reports[1].dropped)
    {'unparsed_output': 1}
    """

    reports: List[Report]

    def __iter__(self):
        return iter(self.reports)

    def __len__(self) -> int:
        return len(self.reports)

    def __str__(self) -> str:
        rows = [_COLUMNS] + [_cells(r) for r in self.reports]
        widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS))]
        lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{html.escape(c)}</th>" for c in _COLUMNS)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in _cells(r)) + "</tr>"
                       for r in self.reports)
        return f'<table class="smolsynth-report"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'

    def to_pandas(self):
        """The table as a pandas DataFrame (one row per step)."""
        import pandas as pd

        return pd.DataFrame([r.as_dict() for r in self.reports])
