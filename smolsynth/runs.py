"""Tagged runs: a dataset that generation runs append to, each run's rows tagged so it can be listed, compared and
removed (notebook 06).

Generating data is iterative: a run without guidance, a run with it, a bigger run once the review says the fix works.
:class:`RunDataset` keeps them in one folder::

    data/weather/
      rows.jsonl     every kept row, with "id" ("<run_id>:<n>") and "run_id"
      runs.json      one entry per run: rows kept and dropped (by reason), model, guidance, note, created

A run's rows are appended when it finishes (``append``): nothing is rewritten, and a kernel restart loses nothing
written before. ``remove(run_id)`` takes out exactly that run's rows. ``split()`` keeps a test split that does not move
as runs are added: a row's split is decided by a hash of its text, not by its position.

    >>> import tempfile
    >>> data = RunDataset(tempfile.mkdtemp())
    >>> data.append([{"generation": "Hi", "guidance": "Be brief."}, {"generation": "Hello", "guidance": "Be brief."}])
    'synthetic_run_1'
    >>> data.append([{"generation": "Hey"}])
    'synthetic_run_2'
    >>> len(data), data.remove("synthetic_run_1"), len(data)
    (3, 2, 1)
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

from smolsynth.arguments import check_number, check_path, check_text
from smolsynth.report import count_reasons
from smolsynth.cache import atomic_write
from smolsynth.rows import Result, Row, as_rows, read_jsonl, write_jsonl

__all__ = ["RUN_ID", "RunDataset"]

RUN_ID = "run_id"
"""The column that tags each row with the run that made it."""


class RunDataset:
    """A folder of rows that runs append to (see the module docstring).

    Args:
        folder: where ``rows.jsonl`` and ``runs.json`` live (created when missing; an existing one is opened).
        schema: a JSON Schema every row's ``record`` must validate against (:mod:`smolsynth.records`); a run with
            a row that does not is refused whole, before anything is written.
    """

    def __init__(self, folder: Union[str, os.PathLike], *, schema: Optional[Dict[str, Any]] = None,
                 column: str = "record") -> None:
        check_path("folder", folder)
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.rows_path, self.runs_path = self.folder / "rows.jsonl", self.folder / "runs.json"
        self.column = column
        self._runs: List[Dict[str, Any]] = (json.loads(self.runs_path.read_text(encoding="utf-8"))
                                            if self.runs_path.exists() else [])
        if schema is not None:
            from smolsynth.records import check_schema

            check_schema(schema)
        saved = next((r["schema"] for r in self._runs if r.get("schema")), None)
        if schema is not None and saved is not None and saved != schema:
            raise ValueError(f"schema: {self.folder} holds records of another schema; open it with that schema "
                             "(or schema=None), or pass another folder.")
        self.schema = schema if schema is not None else saved

    # ---------------------------------------------------------------------------------------------- writing
    def append(self, data: Any, *, tag: Optional[str] = None, note: Optional[str] = None) -> str:
        """Append a run's rows (a :class:`~smolsynth.rows.Result`, whose dropped-row counts are recorded too, or
        rows); returns its run id: ``tag`` when given, else ``synthetic_run_<n>``.

        Each row gets ``run_id`` and ``id`` (``"<run_id>:<n>"``). A tag that exists is refused: remove that run
        first, or pick another tag.
        """
        rows = as_rows(data)
        run_id = tag if tag is not None else self._next_id()
        check_text("tag", run_id)
        if run_id in {r["run_id"] for r in self._runs}:
            raise ValueError(f"tag={run_id!r} is a run in {self.folder} already: remove it first "
                             f"(data.remove({run_id!r})) or pass another tag.")
        if not rows:
            raise ValueError("append() got no rows: the run kept nothing (its .report says why); nothing to add.")
        if self.schema is not None:
            from smolsynth.records import validate_records

            checked = validate_records(rows, self.schema, column=self.column)
            if checked.dropped_rows:
                raise ValueError(f"append(): {len(checked.dropped_rows)} row(s) do not validate against this "
                                 f"dataset's schema (the first: {checked.dropped_rows[0]['error']}); append "
                                 "validate_records(...).rows, which holds only valid ones. Nothing was written.")
            rows = checked.rows
        tagged = [{**row, RUN_ID: run_id, "id": f"{run_id}:{i}"} for i, row in enumerate(rows)]
        guidance = sorted({str(r["guidance"]) for r in rows if r.get("guidance")})
        dropped = data.report.dropped if isinstance(data, Result) else {}
        entry = {"run_id": run_id, "rows": len(tagged), "dropped": dict(dropped), "guidance": guidance,
                 "model": (data.report.model if isinstance(data, Result) else None) or
                          ", ".join(sorted({str(r["model_name"]) for r in rows if r.get("model_name")})) or None,
                 "note": note, "created": time.strftime("%Y-%m-%d %H:%M:%S"), "schema": self.schema}
        with open(self.rows_path, "a", encoding="utf-8") as fh:
            for row in tagged:
                fh.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        self._runs.append(entry)
        self._write_runs()
        return run_id

    def remove(self, run_id: str) -> int:
        """Remove every row of the run ``run_id`` and its entry; returns how many rows went."""
        if run_id not in {r["run_id"] for r in self._runs}:
            raise KeyError(f"run_id={run_id!r} is not a run here; the runs are {self.run_ids()}.")
        rows = self.rows()
        kept = [r for r in rows if r[RUN_ID] != run_id]
        write_jsonl(self.rows_path, kept)
        self._runs = [r for r in self._runs if r["run_id"] != run_id]
        self._write_runs()
        return len(rows) - len(kept)

    def _write_runs(self) -> None:
        atomic_write(self.runs_path, json.dumps(self._runs, indent=1, default=str))

    def _next_id(self) -> str:
        numbers = [int(r["run_id"].rsplit("_", 1)[1]) for r in self._runs
                   if r["run_id"].startswith("synthetic_run_") and r["run_id"].rsplit("_", 1)[1].isdigit()]
        return f"synthetic_run_{max(numbers, default=0) + 1}"

    # ---------------------------------------------------------------------------------------------- reading
    def run_ids(self) -> List[str]:
        """The runs, oldest first."""
        return [r["run_id"] for r in self._runs]

    def rows(self, run: Optional[str] = None) -> List[Row]:
        """Every row, or the rows of the run ``run``."""
        if run is not None and run not in self.run_ids():
            raise KeyError(f"run={run!r} is not a run here; the runs are {self.run_ids()}.")
        if not self.rows_path.exists():
            return []
        rows = read_jsonl(self.rows_path)
        return [r for r in rows if run is None or r[RUN_ID] == run]

    def runs(self):
        """One line per run (rows kept, dropped, guidance, model, note, created) as a pandas DataFrame."""
        import pandas as pd

        lines = [{"run_id": r["run_id"], "rows": r["rows"], "dropped": sum(r["dropped"].values()),
                  "guidance": "; ".join(r["guidance"]) or None, "model": r["model"], "note": r["note"],
                  "created": r["created"]} for r in self._runs]
        return pd.DataFrame(lines, columns=["run_id", "rows", "dropped", "guidance", "model", "note", "created"])

    def split(self, *, test_fraction: float = 0.2, column: Optional[str] = None,
              seed: int = 0) -> Tuple[List[Row], List[Row]]:
        """``(train, test)``: a row is in the test split when a hash of its text (``column``, default the record or
        ``generation``) and ``seed`` falls under ``test_fraction``. The same row stays on the same side as runs
        are added or removed."""
        check_number("test_fraction", test_fraction, minimum=0.0, maximum=1.0, exclusive_minimum=True)
        train, test = [], []
        for row in self.rows():
            text = json.dumps(row.get(column or (self.column if self.column in row else "generation")),
                              sort_keys=True, default=str)
            digest = hashlib.sha256(f"{seed}:{text}".encode()).digest()
            (test if int.from_bytes(digest[:8], "big") / 2 ** 64 < test_fraction else train).append(row)
        return train, test

    def __len__(self) -> int:
        return len(self.rows())

    def __repr__(self) -> str:
        return f"RunDataset({str(self.folder)!r}, runs={len(self._runs)}, rows={len(self)})"

    def counts(self) -> Dict[str, int]:
        """Rows per run."""
        return count_reasons({"reason": r[RUN_ID]} for r in self.rows())
