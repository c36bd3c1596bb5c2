"""The course's funnel: every row that left a dataset, at which step of which notebook, and why, in one table.

Each step returns a :class:`~smolsynth.rows.Result` with its own account (rows in and out, dropped by reason). A
:class:`Funnel` strings those accounts together for one dataset across notebooks: notebook 01 adds its steps and
saves them with its SFT data (``handoff.save(..., funnel=funnel)``), notebook 07 loads that funnel, adds its own
filters, and saves it with the curated data. :func:`course_funnel` reads what the course saved::

    >>> from smolsynth.rows import partition
    >>> funnel = Funnel("demo")
    >>> made = partition([{"text": "hi"}, {"text": ""}, {"text": "hi"}], lambda r: None if r["text"] else "empty_output",
    ...                  step="generate")
    >>> funnel.add("01", made, source=True)
    >>> funnel.add("07", partition(made.rows, lambda r: "duplicate" if r is made.rows[1] else None, step="deduplicate"))
    >>> funnel.table[["notebook", "step", "rows_in", "rows_out", "dropped"]].to_dict("records")[1]
    {'notebook': '07', 'step': 'deduplicate', 'rows_in': 2, 'rows_out': 1, 'dropped': 1}
    >>> funnel.check()
    []

**Every row is accounted for.** :meth:`Funnel.check` returns the broken rules (an empty list when there are none):
in every stage ``rows in = rows out + dropped`` (a ``source`` stage, which makes rows from prompts or a count, may
make more rows than came in, and says how many); a stage takes in exactly the rows the stage before it kept (the
first stage of the main line takes what every branch kept); the last stage kept as many rows as the dataset has; and
the dropped rows saved with it match the counts, reason by reason. Overall: rows made = rows kept + rows dropped.

Branches: notebook 01 makes its data three ways (Magpie, Self-Instruct, Evol-Instruct), each a ``branch`` of
stages, then merges them; stages without a branch are the main line.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from smolsynth.rows import Result, Row, read_jsonl, write_jsonl

__all__ = ["DROPPED_FILE", "FUNNEL_FILE", "Funnel", "Stage", "course_funnel"]

FUNNEL_FILE = "smolsynth_funnel.json"
DROPPED_FILE = "smolsynth_dropped.jsonl"
_TEXT_LIMIT = 500  # characters of each dropped row's text kept in the export (the full row stays in the notebook)


@dataclass
class Stage:
    """One step's account in a funnel: which ``notebook``, ``branch`` ("" = the main line) and ``step``, rows in and
    out, rows dropped by reason, and whether it is a ``source`` (it made rows: ``made`` of them beyond its input)."""

    notebook: str
    step: str
    rows_in: int
    rows_out: int
    dropped: Dict[str, int] = field(default_factory=dict)
    branch: str = ""
    source: bool = False
    made: int = 0

    @property
    def n_dropped(self) -> int:
        return sum(self.dropped.values())


def _text(row: Row) -> str:
    """The text a person recognizes a dropped row by: its instruction, first user turn or prompt."""
    from smolsynth.stats import _text_of

    for column in ("instruction", "messages", "prompt", "text", "input"):
        text = _text_of(row.get(column))
        if text:
            return text[:_TEXT_LIMIT]
    return ""


class Funnel:
    """The stages one dataset went through, and the rows each stage dropped (``dropped_rows``: notebook, step,
    branch, reason, text, and the link to the row it duplicates when there is one). ``name`` is the dataset's."""

    def __init__(self, name: str, stages: Sequence[Stage] = (), dropped_rows: Sequence[Row] = ()) -> None:
        self.name = name
        self.stages: List[Stage] = list(stages)
        self.dropped_rows: List[Row] = [dict(r) for r in dropped_rows]

    # ------------------------------------------------------------------------------------------------- building
    def add(self, notebook: str, result: Result, *, branch: str = "", source: bool = False,
            step: Optional[str] = None) -> None:
        """Add ``result`` (a step's :class:`~smolsynth.rows.Result`) as one stage: its total report and its dropped
        rows. ``source=True`` for a step that makes rows (a generator run on prompts or a row count). Adding the same
        ``notebook`` and ``step`` again (a rerun cell) replaces the stage instead of counting it twice."""
        if not isinstance(result, Result):
            raise TypeError(f"result is a {type(result).__name__}: pass what a smolsynth step returned (a Result), "
                            "e.g. funnel.add('07', exact_duplicates(rows)).")
        report = result.report
        name = step or report.step
        made = max(0, report.rows_out + sum(report.dropped.values()) - report.rows_in) if source else 0
        stage = Stage(str(notebook), name, report.rows_in, report.rows_out, dict(report.dropped), branch, source, made)
        self._remove(stage.notebook, stage.branch, name)
        self.stages.append(stage)
        for row in result.dropped_rows:
            kept = {"notebook": stage.notebook, "branch": branch, "step": name, "reason": row.get("reason"),
                    "text": _text(row)}
            for link in ("duplicate_of", "duplicate_text", "similarity", "contaminated_by", "most_similar"):
                if row.get(link) is not None:
                    kept[link] = row[link] if not isinstance(row[link], str) else row[link][:_TEXT_LIMIT]
            self.dropped_rows.append(kept)

    def _remove(self, notebook: str, branch: str, step: str) -> None:
        key = (notebook, branch, step)
        self.stages = [s for s in self.stages if (s.notebook, s.branch, s.step) != key]
        self.dropped_rows = [r for r in self.dropped_rows if (r["notebook"], r["branch"], r["step"]) != key]

    # ------------------------------------------------------------------------------------------------- numbers
    @property
    def rows_made(self) -> int:
        """Rows that entered the dataset: what its source stages took in and made."""
        starts = [s.rows_in + s.made for s in self.stages if s.source]
        return sum(starts) if starts else (self.stages[0].rows_in if self.stages else 0)

    @property
    def rows_kept(self) -> int:
        """Rows the last stage kept (0 for an empty funnel)."""
        return self.stages[-1].rows_out if self.stages else 0

    @property
    def table(self) -> Any:
        """One row per stage (notebook, branch, step, rows in, made, rows out, dropped, reasons) as a DataFrame."""
        import pandas as pd

        return pd.DataFrame([{"dataset": self.name, "notebook": s.notebook, "branch": s.branch, "step": s.step,
                              "rows_in": s.rows_in, "made": s.made, "rows_out": s.rows_out, "dropped": s.n_dropped,
                              "reasons": ", ".join(f"{k}: {v}" for k, v in sorted(s.dropped.items()))}
                             for s in self.stages],
                            columns=["dataset", "notebook", "branch", "step", "rows_in", "made", "rows_out",
                                     "dropped", "reasons"])

    @property
    def dropped(self) -> Any:
        """Every dropped row (notebook, step, reason, text, links) as a DataFrame."""
        import pandas as pd

        return pd.DataFrame(self.dropped_rows, columns=None if self.dropped_rows else
                            ["notebook", "branch", "step", "reason", "text"])

    def check(self, dataset_rows: Optional[int] = None) -> List[str]:
        """The accounting rules this funnel breaks (see the module docstring); ``dataset_rows``: the row count of the
        dataset it describes, to check the last stage against. An empty list means every row is accounted for."""
        problems: List[str] = []
        counted: Dict[tuple, int] = {}
        for row in self.dropped_rows:
            key = (row["notebook"], row["branch"], row["step"], row["reason"])
            counted[key] = counted.get(key, 0) + 1
        previous: Dict[str, Stage] = {}
        for s in self.stages:
            where = f"{s.notebook} {s.branch + ': ' if s.branch else ''}{s.step}"
            if s.rows_in + s.made != s.rows_out + s.n_dropped:
                problems.append(f"{where}: {s.rows_in} in{f' + {s.made} made' if s.made else ''} != "
                                f"{s.rows_out} out + {s.n_dropped} dropped")
            if s.branch in previous:
                expected = previous[s.branch].rows_out
            elif s.branch == "" and previous:
                expected = sum(p.rows_out for b, p in previous.items() if b)
            else:
                expected = None
            if expected is not None and not s.source and s.rows_in != expected:
                problems.append(f"{where}: takes in {s.rows_in} rows, but the stage before kept {expected}")
            previous[s.branch] = s
            for reason, n in s.dropped.items():
                saved = counted.pop((s.notebook, s.branch, s.step, reason), 0)
                if saved != n:
                    problems.append(f"{where}: {n} rows dropped as {reason!r}, {saved} of them recorded")
        for (notebook, branch, step, reason), n in counted.items():
            problems.append(f"{notebook} {step}: {n} recorded rows dropped as {reason!r} that no stage counts")
        if dataset_rows is not None and self.stages and self.rows_kept != dataset_rows:
            problems.append(f"the last stage kept {self.rows_kept} rows, the dataset has {dataset_rows}")
        if self.stages and self.rows_made != self.rows_kept + len(self.dropped_rows):
            problems.append(f"overall: {self.rows_made} rows made != {self.rows_kept} kept + "
                            f"{len(self.dropped_rows)} dropped")
        return problems

    # ------------------------------------------------------------------------------------------------- showing
    def plot(self, *, title: Optional[str] = None) -> Any:
        """A matplotlib Figure: rows in and rows out of every stage, one bar pair per stage, in order."""
        from matplotlib.figure import Figure

        fig = Figure(figsize=(9, 0.45 * max(4, len(self.stages)) + 1), layout="constrained")
        ax = fig.subplots()
        labels = [f"{s.notebook} {s.branch + ': ' if s.branch else ''}{s.step}" for s in self.stages][::-1]
        y = list(range(len(labels)))
        ax.barh([i + 0.2 for i in y], [s.rows_in + s.made for s in self.stages][::-1], height=0.4,
                color="#c6d4e1", label="rows in (and made)")
        ax.barh([i - 0.2 for i in y], [s.rows_out for s in self.stages][::-1], height=0.4, color="#4c72b0",
                label="rows out")
        ax.set_yticks(y, labels)
        ax.set_xlabel("rows")
        ax.legend(loc="lower right")
        ax.set_title(title or f"{self.name}: {self.rows_made} rows made, {self.rows_kept} kept, "
                              f"{len(self.dropped_rows)} dropped")
        return fig

    def __len__(self) -> int:
        return len(self.stages)

    def __str__(self) -> str:
        return (f"{self.name}: {self.rows_made} rows made -> {self.rows_kept} kept, {len(self.dropped_rows)} dropped\n"
                + self.table.drop(columns=["dataset"]).to_string(index=False))

    __repr__ = __str__

    def _repr_html_(self) -> str:
        import html

        return (f"<p><strong>{html.escape(self.name)}</strong>: {self.rows_made} rows made, {self.rows_kept} kept, "
                f"{len(self.dropped_rows)} dropped</p>" + self.table.drop(columns=["dataset"]).to_html(index=False))

    # ------------------------------------------------------------------------------------------------- files
    def save(self, folder: str | Path) -> Path:
        """Write :data:`FUNNEL_FILE` (the stages) and :data:`DROPPED_FILE` (one dropped row per line) into
        ``folder``; returns the folder. ``handoff.save(..., funnel=)`` calls this next to the data."""
        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        (out / FUNNEL_FILE).write_text(json.dumps({"name": self.name, "stages": [asdict(s) for s in self.stages]},
                                                  indent=1) + "\n", encoding="utf-8")
        write_jsonl(out / DROPPED_FILE, self.dropped_rows)
        return out

    @classmethod
    def load(cls, folder: str | Path, name: Optional[str] = None) -> "Funnel":
        """The funnel saved in ``folder`` (an empty one named ``name`` when none was saved there)."""
        folder = Path(folder)
        if not (folder / FUNNEL_FILE).is_file():
            return cls(name or folder.name)
        data = json.loads((folder / FUNNEL_FILE).read_text(encoding="utf-8"))
        dropped = read_jsonl(folder / DROPPED_FILE) if (folder / DROPPED_FILE).is_file() else []
        return cls(name or data["name"], [Stage(**s) for s in data["stages"]], dropped)


def course_funnel(names: Optional[Sequence[str]] = None) -> Dict[str, Funnel]:
    """The funnels saved with the course's hand-offs (``"sft"``, ``"dpo"``, ``"curated"``, or ``names``), by
    dataset name; a hand-off saved without one is left out.

    >>> course_funnel(["sft"]).keys() <= {"sft"}
    True
    """
    from smolsynth.course import COURSE_DATA, data_path

    out: Dict[str, Funnel] = {}
    for name in names or [n for n in ("sft", "dpo", "curated") if n in COURSE_DATA]:
        folder = data_path(name)
        if (folder / FUNNEL_FILE).is_file():
            out[name] = Funnel.load(folder, name)
    return out
