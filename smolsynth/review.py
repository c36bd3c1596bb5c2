"""Review generated rows by hand, in the notebook: accept, reject, rate, edit, and keep the best as few-shot examples.

A :class:`Review` is the review's *state*, apart from any view: for each row a status (``pending``, ``accepted`` or
``rejected``), a rating on the scale (1-5 ``"stars"`` or ``"pass_fail"``), an edited text and a note. Every action
takes one id or a list of ids, so that one call (or one click in the panel) applies to all selected rows. With a
``path`` every action saves the state at once (a JSON file of the state only, written atomically), and a Review made
again on the same rows and path carries on where the last one stopped::

    >>> rows = [{"id": 1, "generation": "Tea is a drink."}, {"id": 2, "generation": "Tea is a rock."}]
    >>> review = Review(rows)
    >>> review.accept(1); review.rate(1, 5); review.reject(2)
    >>> review.counts()
    {'pending': 0, 'accepted': 1, 'rejected': 1, 'rated': 1, 'edited': 0}
    >>> [(r["id"], r["review_status"], r["rating"]) for r in review.reviewed()]
    [(1, 'accepted', 5)]

:meth:`Review.panel` is the view: a :class:`ReviewPanel` of ipywidgets that shows one row at a time, with buttons,
rating toggles, a selection for bulk actions, a find/replace fix, a filter and a one-line command box for the
keyboard (``a`` accept, ``r`` reject, ``1``-``5`` or ``p``/``f`` rate, ``n`` next, ``k`` previous, then Enter).
Where widgets do not render, ``print(review.text())`` shows the same state as a table.
"""

from __future__ import annotations

import hashlib
import html
import json
import numbers
import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

from smolsynth.cache import atomic_write
from smolsynth.arguments import check_choice, check_number, check_text, check_text_column
from smolsynth.rows import Row, as_rows

__all__ = ["RATING_SCALES", "STATUSES", "Review", "ReviewPanel"]

STATUSES = ("pending", "accepted", "rejected")
"""A row's review status: not looked at yet, kept, or set aside."""
RATING_SCALES: Dict[str, tuple] = {"stars": (1, 2, 3, 4, 5), "pass_fail": ("pass", "fail")}
"""The ratings on each scale, lowest first for stars (``"fail"`` ranks below ``"pass"``)."""
FORMAT = "smolsynth-review/1"
"""The ``format`` field of a saved review file."""
_DEFAULT_MIN = {"stars": 4, "pass_fail": "pass"}
_RANK = {"pass": 1, "fail": 0}

Ids = Union[Any, Sequence[Any]]
"""One row id, or a list (tuple, set) of ids."""


def _fresh() -> Dict[str, Any]:
    return {"status": "pending", "rating": None, "edit": None, "note": None}


def _check_file(name: str, value: Any) -> Path:
    """``value`` must be a file path (a non-empty string or an ``os.PathLike``); returns it as a Path."""
    if not (isinstance(value, os.PathLike) or (isinstance(value, str) and value.strip())):
        raise TypeError(f"{name}={value!r}: pass a file path, e.g. {name}='review.json'.")
    return Path(value)


class Review:
    """The review state of ``rows``: a status, a rating, an edited text and a note for each row.

    Args:
        rows: a list of dicts, a ``datasets.Dataset`` or a :class:`~smolsynth.rows.Result` (its kept rows). A row's
            id is its ``"id"`` column when every row has one (a string or an integer) and no two are alike, else its
            index. A ``"run_id"`` column (the generation run that made the row) can be filtered on.
        path: a JSON file. When given, every action saves the state there at once; when the file exists, the state
            is restored from it (refused, with the reason, if it was saved for other rows, column or scale).
        column: the text column shown and edited (``"generation"``).
        scale: ``"stars"`` (ratings 1..5) or ``"pass_fail"`` (ratings ``"pass"`` / ``"fail"``).

    Ids may be given as they are or as their string (``1`` or ``"1"``). Rows are never changed: :meth:`reviewed`
    returns copies with the edits applied.

    >>> review = Review([{"generation": "Rain falls."}, {"generation": "Rain rises."}], scale="pass_fail")
    >>> review.ids, review.fix([0, 1], "Rain", "Snow"), review.current_text(1)
    ([0, 1], 2, 'Snow rises.')
    """

    def __init__(self, rows: Any, *, path: Union[str, os.PathLike, None] = None, column: str = "generation",
                 scale: str = "stars") -> None:
        check_text("column", column)
        check_choice("scale", scale, tuple(RATING_SCALES))
        self.path: Optional[Path] = None if path is None else _check_file("path", path)
        items = as_rows(rows, argument="rows")
        if not items:
            raise ValueError("rows is empty: pass the generated rows to review (a list of dicts, a Dataset or the "
                             "result of a step).")
        if any(column not in row for row in items):
            i = next(i for i, row in enumerate(items) if column not in row)
            raise ValueError(f"column={column!r} is not a column of the rows: row {i} has {sorted(items[i])}; pass "
                             f"column=<the text column to review>.")
        check_text_column(items, column, fn="Review")
        self.column, self.scale = column, scale
        self._rows: List[Row] = [dict(row) for row in items]
        raw = [row.get("id") for row in items]
        usable = all((isinstance(v, str) or isinstance(v, numbers.Integral)) and not isinstance(v, bool) for v in raw)
        keys = [str(v) for v in raw] if usable else []
        if usable and len(set(keys)) == len(keys):
            self.identity = "id"
            self.ids: List[Any] = [v if isinstance(v, str) else int(v) for v in raw]
        else:
            self.identity = "index"
            self.ids = list(range(len(items)))
        self._keys = [str(i) for i in self.ids]
        self._position = {key: i for i, key in enumerate(self._keys)}
        self._state: Dict[str, Dict[str, Any]] = {key: _fresh() for key in self._keys}
        if self.path is not None and self.path.exists():
            self._restore(self.path)

    # ------------------------------------------------------------------------------------------------- loading
    @classmethod
    def load(cls, rows: Any, path: Union[str, os.PathLike], *, column: Optional[str] = None,
             scale: Optional[str] = None) -> "Review":
        """The review saved at ``path``, restored on ``rows`` (the rows it was saved for); later actions save there.

        ``column`` and ``scale`` default to the saved ones. Returns the :class:`Review`; raises FileNotFoundError
        when there is no such file, and ValueError when it was saved for other rows, column or scale.

        >>> import tempfile, os
        >>> file = os.path.join(tempfile.mkdtemp(), "review.json")
        >>> Review([{"generation": "Hi."}], path=file).accept(0)
        >>> Review.load([{"generation": "Hi."}], file).counts()["accepted"]
        1
        """
        file = _check_file("path", path)
        if not file.exists():
            raise FileNotFoundError(f"path={str(path)!r}: no such file. Review(rows, path={str(path)!r}) starts a "
                                    "new review that saves there.")
        saved = cls._read(file)
        return cls(rows, path=file, column=column or saved.get("column", "generation"),
                   scale=scale or saved.get("scale", "stars"))

    @staticmethod
    def _read(file: Path) -> Dict[str, Any]:
        try:
            saved = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise ValueError(f"path={str(file)!r} is not a saved review ({err}): pass another path, or delete the "
                             "file to start over.") from None
        if not isinstance(saved, dict) or saved.get("format") != FORMAT or not isinstance(saved.get("state"), dict):
            raise ValueError(f"path={str(file)!r} is not a saved review (no {FORMAT!r} state in it): pass another "
                             "path, or delete the file to start over.")
        return saved

    def _restore(self, file: Path) -> None:
        saved = self._read(file)
        for field, mine in (("column", self.column), ("scale", self.scale)):
            if saved.get(field) != mine:
                raise ValueError(f"path={str(file)!r} holds a review with {field}={saved.get(field)!r}, not "
                                 f"{field}={mine!r}: pass {field}={saved.get(field)!r} (or another path for a new "
                                 "review).")
        if saved.get("fingerprint") != self.fingerprint():
            raise ValueError(f"path={str(file)!r} holds the review of other rows ({saved.get('rows')} rows, "
                             f"fingerprint {saved.get('fingerprint')}; these {len(self)} rows have "
                             f"{self.fingerprint()}): pass the rows it was saved for, or another path to start a "
                             "new review.")
        allowed = RATING_SCALES[self.scale]
        for key, entry in saved["state"].items():
            if key not in self._state or not isinstance(entry, dict) or entry.get("status") not in STATUSES \
                    or (entry.get("rating") is not None and entry.get("rating") not in allowed):
                raise ValueError(f"path={str(file)!r} has a broken entry for id {key!r} ({entry!r}): fix or delete "
                                 "the file.")
            self._state[key] = {field: entry.get(field, default) for field, default in _fresh().items()}

    def fingerprint(self) -> str:
        """A short hash of the rows' ids and original texts: a saved review only loads against the same rows.

        >>> Review([{"generation": "Hi."}]).fingerprint() == Review([{"generation": "Hi!"}]).fingerprint()
        False
        """
        data = json.dumps([[key, row[self.column]] for key, row in zip(self._keys, self._rows)], ensure_ascii=False)
        return "sha256:" + hashlib.sha256(data.encode("utf-8")).hexdigest()[:16]

    # ------------------------------------------------------------------------------------------------- saving
    def save(self, path: Union[str, os.PathLike, None] = None) -> Path:
        """Write the state (ids -> status, rating, edit, note; the column, scale and rows' fingerprint) as JSON to
        ``path`` (default: the review's own path), atomically. Returns the file's Path.

        >>> import tempfile, os, json
        >>> file = Review([{"generation": "Hi."}]).save(os.path.join(tempfile.mkdtemp(), "r.json"))
        >>> json.loads(file.read_text())["state"]
        {'0': {'status': 'pending', 'rating': None, 'edit': None, 'note': None}}
        """
        file = self.path if path is None else _check_file("path", path)
        if file is None:
            raise ValueError("save() needs a path: pass save(path='review.json'), or Review(rows, path=...) to save "
                             "after every action.")
        data = {"format": FORMAT, "column": self.column, "scale": self.scale, "identity": self.identity,
                "rows": len(self), "fingerprint": self.fingerprint(), "counts": self.counts(),
                "state": {key: dict(self._state[key]) for key in self._keys}}
        file.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(file, json.dumps(data, indent=1, ensure_ascii=False))
        return file

    def _changed(self) -> None:
        if self.path is not None:
            self.save()

    # ------------------------------------------------------------------------------------------------- look-ups
    def __len__(self) -> int:
        return len(self._rows)

    def _key(self, row_id: Any, argument: str = "id") -> str:
        key = str(row_id)
        if isinstance(row_id, bool) or key not in self._position:
            shown = ", ".join(map(repr, self.ids[:5])) + (", ..." if len(self.ids) > 5 else "")
            kind = "its 'id' column" if self.identity == "id" else "its index (the rows have no distinct 'id' column)"
            raise ValueError(f"{argument}={row_id!r} is not a row of this review: a row's id is {kind}; the ids are "
                             f"{shown}.")
        return key

    def _keys_of(self, ids: Ids, argument: str = "ids") -> List[str]:
        """The keys of one id or a list of ids (all checked before anything is done), in the review's order."""
        many = isinstance(ids, (list, tuple, set, frozenset))
        keys = {self._key(i, argument) for i in ids} if many else {self._key(ids, argument)}
        return [key for key in self._keys if key in keys]

    def row(self, row_id: Any) -> Row:
        """A copy of the row ``row_id`` as it was given (no edit applied).

        >>> Review([{"id": "a", "generation": "Hi."}]).row("a")
        {'id': 'a', 'generation': 'Hi.'}
        """
        return dict(self._rows[self._position[self._key(row_id)]])

    def state(self, row_id: Any) -> Dict[str, Any]:
        """The review state of ``row_id``: a dict of ``status``, ``rating``, ``edit`` (None or the edited text) and
        ``note``.

        >>> Review([{"generation": "Hi."}]).state(0)
        {'status': 'pending', 'rating': None, 'edit': None, 'note': None}
        """
        return dict(self._state[self._key(row_id)])

    def current_text(self, row_id: Any) -> str:
        """The text of ``row_id`` with its edit applied (the original text when not edited).

        >>> review = Review([{"generation": "Hi."}]); review.edit(0, "Hello."); review.current_text(0)
        'Hello.'
        """
        key = self._key(row_id)
        edit = self._state[key]["edit"]
        return self._rows[self._position[key]][self.column] if edit is None else edit

    @property
    def runs(self) -> List[Any]:
        """The distinct ``run_id`` values of the rows, in order of first appearance (empty without that column).

        >>> Review([{"generation": "a", "run_id": "r1"}, {"generation": "b", "run_id": "r1"}]).runs
        ['r1']
        """
        return list(dict.fromkeys(row["run_id"] for row in self._rows if row.get("run_id") is not None))

    # ------------------------------------------------------------------------------------------------- actions
    def _set(self, ids: Ids, **fields: Any) -> None:
        for key in self._keys_of(ids):
            self._state[key].update(fields)
        self._changed()

    def accept(self, ids: Ids) -> None:
        """Mark one row or every row in a list as accepted (kept). Returns None.

        >>> review = Review([{"generation": "a"}, {"generation": "b"}]); review.accept([0, 1])
        >>> review.counts()["accepted"]
        2
        """
        self._set(ids, status="accepted")

    def reject(self, ids: Ids) -> None:
        """Mark one row or every row in a list as rejected (set aside). Returns None.

        >>> review = Review([{"generation": "a"}]); review.reject(0); review.state(0)["status"]
        'rejected'
        """
        self._set(ids, status="rejected")

    def reset(self, ids: Ids) -> None:
        """Put one row or every row in a list back as it started: pending, no rating, no edit, no note. Returns None.

        >>> review = Review([{"generation": "a"}]); review.accept(0); review.reset(0); review.state(0)["status"]
        'pending'
        """
        self._set(ids, **_fresh())

    def _check_rating(self, name: str, value: Any, *, exact: bool = True) -> None:
        """``value`` must be a rating on the review's scale (with ``exact``, one of the scale's own values)."""
        if self.scale == "pass_fail":
            check_choice(name, value, RATING_SCALES["pass_fail"])
            return
        if isinstance(value, bool) or not isinstance(value, (numbers.Integral if exact else numbers.Real)):
            kind = "an integer" if exact else "a number"
            raise ValueError(f"{name}={value!r} is not a rating on scale='stars': pass {kind} from 1 to 5, e.g. "
                             f"{name}=5 (scale='pass_fail' rates 'pass' or 'fail').")
        check_number(name, int(value) if exact else float(value), minimum=1, maximum=5, integer=exact)

    def rate(self, ids: Ids, value: Union[int, str, None]) -> None:
        """Give one row or every row in a list the rating ``value``: 1..5 on ``"stars"``, ``"pass"`` or ``"fail"``
        on ``"pass_fail"``; None removes the rating. Returns None.

        >>> review = Review([{"generation": "a"}]); review.rate(0, 6)
        Traceback (most recent call last):
        ...
        ValueError: value=6 is out of range: it must be >= 1 and <= 5 (e.g. value=5).
        """
        if value is not None:
            self._check_rating("value", value)
        self._set(ids, rating=value)

    def note(self, ids: Ids, text: Optional[str]) -> None:
        """Attach the note ``text`` to one row or every row in a list (None or "" removes it). Returns None.

        >>> review = Review([{"generation": "a"}]); review.note(0, "too short"); review.state(0)["note"]
        'too short'
        """
        if text is not None and not isinstance(text, str):
            raise TypeError(f"text is a {type(text).__name__}: pass a string, or None to remove the note.")
        self._set(ids, note=text or None)

    def edit(self, row_id: Any, text: str) -> None:
        """Replace the text of the one row ``row_id`` with ``text`` (the original stays in the row; text equal to
        the original removes the edit). Returns None.

        >>> review = Review([{"generation": "Hi."}]); review.edit(0, "Hello."); review.state(0)["edit"]
        'Hello.'
        """
        if isinstance(row_id, (list, tuple, set, frozenset)):
            raise TypeError(f"edit() changes one row: pass one id, not {row_id!r} (fix(ids, old, new) changes many).")
        key = self._key(row_id)
        check_text("text", text)
        original = self._rows[self._position[key]][self.column]
        self._state[key]["edit"] = None if text == original else text
        self._changed()

    def fix(self, ids: Ids, old: str, new: str) -> int:
        """Replace ``old`` with ``new`` in the current text of one row or every row in a list (one find/replace for
        all selected rows). Returns how many rows changed.

        >>> review = Review([{"generation": "colour"}, {"generation": "color"}])
        >>> review.fix([0, 1], "colour", "color")
        1
        """
        keys = self._keys_of(ids)
        check_text("old", old)
        if not isinstance(new, str):
            raise TypeError(f"new is a {type(new).__name__}: pass the replacement text (a string; '' deletes old).")
        fixed: Dict[str, str] = {}
        for key in keys:
            text = self.current_text(self.ids[self._position[key]])
            if old in text:
                fixed[key] = text.replace(old, new)
                if not fixed[key].strip():
                    raise ValueError(f"fix(old={old!r}, new={new!r}) would leave id {key} with no text: pass a "
                                     "narrower old, or reject the row.")
        for key, text in fixed.items():  # all checked first: a refused fix changes no row
            original = self._rows[self._position[key]][self.column]
            self._state[key]["edit"] = None if text == original else text
        if fixed:
            self._changed()
        return len(fixed)

    # ------------------------------------------------------------------------------------------------- queries
    def _rank(self, rating: Any) -> float:
        return float(_RANK[rating] if self.scale == "pass_fail" else rating)

    def filter(self, *, status: Optional[str] = None, min_rating: Union[int, str, None] = None,
               rating: Union[int, str, None] = None, run: Any = None) -> List[Any]:
        """The ids of the rows with that ``status``, a rating of at least ``min_rating`` (``"pass"`` on pass/fail),
        exactly ``rating``, and made by the generation run ``run`` (their ``run_id``); None leaves a condition out.
        Returns a list of ids in the rows' order.

        >>> review = Review([{"generation": "a"}, {"generation": "b"}]); review.rate(1, 4)
        >>> review.filter(min_rating=4), review.filter(status="pending")
        ([1], [0, 1])
        """
        if status is not None:
            check_choice("status", status, STATUSES)
        if min_rating is not None:
            self._check_rating("min_rating", min_rating, exact=False)
        if rating is not None:
            self._check_rating("rating", rating)
        if run is not None and run not in self.runs:
            known = ", ".join(map(repr, self.runs)) or "none: the rows have no 'run_id' column"
            raise ValueError(f"run={run!r} is not a run of these rows: the runs (their 'run_id') are {known}.")
        out = []
        for row_id, key, row in zip(self.ids, self._keys, self._rows):
            entry = self._state[key]
            if status is not None and entry["status"] != status:
                continue
            if min_rating is not None and (entry["rating"] is None
                                           or self._rank(entry["rating"]) < self._rank(min_rating)):
                continue
            if rating is not None and entry["rating"] != rating:
                continue
            if run is not None and row.get("run_id") != run:
                continue
            out.append(row_id)
        return out

    def counts(self) -> Dict[str, int]:
        """How many rows are pending, accepted, rejected, rated and edited. Returns a dict of those five counts.

        >>> Review([{"generation": "a"}]).counts()
        {'pending': 1, 'accepted': 0, 'rejected': 0, 'rated': 0, 'edited': 0}
        """
        entries = list(self._state.values())
        out = {status: sum(e["status"] == status for e in entries) for status in STATUSES}
        out["rated"] = sum(e["rating"] is not None for e in entries)
        out["edited"] = sum(e["edit"] is not None for e in entries)
        return out

    def reviewed(self, *, status: Optional[str] = "accepted", min_rating: Union[int, str, None] = None) -> List[Row]:
        """Copies of the rows with that ``status`` (None: every row) and a rating of at least ``min_rating``, with
        the edits applied to the text column (the original text kept in ``original_<column>`` when edited), plus
        ``review_status`` and ``rating`` columns (and ``review_note`` where there is a note). Returns a list of dicts.

        >>> review = Review([{"generation": "Hi."}]); review.edit(0, "Hello."); review.accept(0)
        >>> review.reviewed()
        [{'generation': 'Hello.', 'original_generation': 'Hi.', 'review_status': 'accepted', 'rating': None}]
        """
        out = []
        for row_id in self.filter(status=status, min_rating=min_rating):
            key = str(row_id)
            entry, row = self._state[key], dict(self._rows[self._position[key]])
            if entry["edit"] is not None:
                row[f"original_{self.column}"] = row[self.column]
                row[self.column] = entry["edit"]
            row["review_status"], row["rating"] = entry["status"], entry["rating"]
            if entry["note"]:
                row["review_note"] = entry["note"]
            out.append(row)
        return out

    def few_shot(self, k: int = 3, *, min_rating: Union[int, str, None] = None) -> List[Row]:
        """Up to ``k`` accepted rows rated at least ``min_rating`` (default 4 on stars, ``"pass"`` on pass/fail), in
        the rows' order, with edits applied: examples to put in the prompt of the next generation step. Returns a
        list of dicts (as :meth:`reviewed`).

        >>> review = Review([{"generation": "Good."}, {"generation": "Fine."}]); review.accept([0, 1])
        >>> review.rate(0, 5); review.rate(1, 3); [r["generation"] for r in review.few_shot()]
        ['Good.']
        """
        check_number("k", k, minimum=1, integer=True)
        threshold = _DEFAULT_MIN[self.scale] if min_rating is None else min_rating
        return self.reviewed(status="accepted", min_rating=threshold)[:k]

    # ------------------------------------------------------------------------------------------------- views
    def _summary(self) -> str:
        c = self.counts()
        return (f"Review of {len(self)} rows ({self.column!r}, {self.scale}): {c['accepted']} accepted, "
                f"{c['rejected']} rejected, {c['pending']} pending; {c['rated']} rated, {c['edited']} edited")

    def text(self, limit: int = 20) -> str:
        """The review as a plain-text table (id, status, rating, the first 70 characters of the current text; ``*``
        marks an edited row), at most ``limit`` rows: the fallback where widgets do not render. Returns the string.

        >>> print(Review([{"id": 7, "generation": "Hi."}]).text())
        Review of 1 rows ('generation', stars): 0 accepted, 0 rejected, 1 pending; 0 rated, 0 edited
        id  status   rating  text
        7   pending  -       Hi.
        """
        check_number("limit", limit, minimum=1, integer=True)
        table = [("id", "status", "rating", "text")]
        for row_id in self.ids[:limit]:
            entry = self._state[str(row_id)]
            shown = " ".join(self.current_text(row_id).split())
            shown = shown if len(shown) <= 70 else shown[:69] + "…"
            table.append((str(row_id), entry["status"], "-" if entry["rating"] is None else str(entry["rating"]),
                          ("* " if entry["edit"] is not None else "") + shown))
        widths = [max(len(line[i]) for line in table) for i in range(3)]
        lines = [self._summary()] + ["  ".join(cell.ljust(w) for cell, w in zip(line[:3], widths)) + "  " + line[3]
                                     for line in table]
        if len(self) > limit:
            lines.append(f"... {len(self) - limit} more rows (text(limit={len(self)}) shows them all)")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.text()

    __repr__ = __str__

    def _repr_html_(self) -> str:
        cells = []
        for row_id in self.ids[:20]:
            entry = self._state[str(row_id)]
            rating = "" if entry["rating"] is None else entry["rating"]
            cells.append(f"<tr><td>{html.escape(str(row_id))}</td><td>{entry['status']}</td><td>{rating}</td>"
                         f"<td style='text-align:left'>{html.escape(self.current_text(row_id)[:200])}</td></tr>")
        more = f"<p>... {len(self) - 20} more rows</p>" if len(self) > 20 else ""
        return (f"<div class='smolsynth-review'><p>{html.escape(self._summary())}</p><table><tr><th>id</th>"
                f"<th>status</th><th>rating</th><th>text</th></tr>{''.join(cells)}</table>{more}</div>")

    def panel(self, *, advance: bool = False) -> "ReviewPanel":
        """The review panel (ipywidgets) over this review: one row at a time, with buttons, ratings, a selection, a
        find/replace fix, a filter and a command box; with ``advance`` the Accept and Reject buttons also move on to
        the next row (the command box always does). Returns a :class:`ReviewPanel`; display it (the last line of a
        cell). Raises ImportError, pointing to :meth:`text`, where ipywidgets is not installed.
        """
        return ReviewPanel(self, advance=advance)


# ----------------------------------------------------------------------------------------------------------- panel
_FILTERS_FIXED = (("all rows", "all"), ("pending", "pending"), ("accepted", "accepted"), ("rejected", "rejected"))


class ReviewPanel:
    """The ipywidgets view over a :class:`Review`. It keeps no review state of its own, only the cursor (the row
    shown) and the selection (the ids ticked for bulk actions): every click calls the Review, which saves.

    Shown: the row's text in an editable ``Textarea``, an id/run/status/rating line, **Accept**, **Reject**, rating
    toggles (1..5 or pass/fail), **Save edit**, **Previous**, **Next**, a *select* checkbox for the row shown,
    *apply to selected* (Accept, Reject, ratings and the fix then act on every ticked row), a find/replace **Fix**,
    a filter and a command box: type ``a`` (accept), ``r`` (reject), ``1``..``5`` or ``p``/``f`` (rate), ``n``/``j``
    (next) or ``k`` (previous), several at once if you like (``a5``), then Enter; an action typed there moves on to
    the next row (a click on Accept or Reject does with ``advance=True``).
    Every widget has a CSS class ``smolsynth-review-<name>`` (``-accept``, ``-reject``, ``-rating``, ``-text``, ...).

    >>> panel = Review([{"generation": "a"}, {"generation": "b"}]).panel()
    >>> panel.accept_button.click(); panel.current, panel.review.state(0)["status"]
    (0, 'accepted')
    >>> panel.run_command("n r"); panel.review.state(1)["status"]
    'rejected'

    """

    def __init__(self, review: Review, *, advance: bool = False) -> None:
        try:
            import ipywidgets as w
        except ImportError:
            raise ImportError("Review.panel() needs ipywidgets (pip install 'ipywidgets>=8'); without it, "
                              "print(review.text()) shows the review and review.accept(...), .reject(...), "
                              ".rate(...) change it.") from None
        if not isinstance(review, Review):
            raise TypeError(f"review is a {type(review).__name__}: pass a Review (or call review.panel()).")
        self.review, self.advance = review, bool(advance)
        self.selected: List[Any] = []
        self._visible: List[Any] = list(review.ids)
        self._position = 0
        self._showing = False
        scale = RATING_SCALES[review.scale]

        def classed(widget: Any, name: str) -> Any:
            widget.add_class(f"smolsynth-review-{name}")
            return widget

        self.info = classed(w.HTML(), "info")
        self.text_area = classed(w.Textarea(layout=w.Layout(width="100%", height="9em")), "text")
        self.accept_button = classed(w.Button(description="Accept", button_style="success", icon="check"), "accept")
        self.reject_button = classed(w.Button(description="Reject", button_style="danger", icon="times"), "reject")
        self.save_button = classed(w.Button(description="Save edit", icon="save"), "save")
        self.previous_button = classed(w.Button(description="Previous", icon="arrow-left"), "previous")
        self.next_button = classed(w.Button(description="Next", icon="arrow-right"), "next")
        self.rating_buttons = classed(w.ToggleButtons(options=[(str(v), v) for v in scale], value=None,
                                                      style={"button_width": "3.2em"}), "rating")
        self.select_box = classed(w.Checkbox(description="select", indent=False,
                                             layout=w.Layout(width="7em")), "select")
        self.apply_selected = classed(w.Checkbox(description="apply to selected", indent=False,
                                                 layout=w.Layout(width="11em")), "apply-selected")
        self.select_all_button = classed(w.Button(description="Select shown", layout=w.Layout(width="10em")),
                                         "select-all")
        self.clear_selection_button = classed(w.Button(description="Clear selection",
                                                       layout=w.Layout(width="10em")), "clear-selection")
        self.find_text = classed(w.Text(placeholder="find", layout=w.Layout(width="14em")), "find")
        self.replace_text = classed(w.Text(placeholder="replace with", layout=w.Layout(width="14em")), "replace")
        self.fix_button = classed(w.Button(description="Fix", icon="wrench"), "fix")
        runs = [(f"run {run}", f"run:{run}") for run in review.runs]
        best = "pass" if review.scale == "pass_fail" else ">= 4"
        self.filter_dropdown = classed(w.Dropdown(options=[*_FILTERS_FIXED, (f"rated {best}", "rated"), *runs],
                                                  value="all", description="show", layout=w.Layout(width="16em")),
                                       "filter")
        keys = "p pass, f fail" if review.scale == "pass_fail" else "1-5 rate"
        self.command = classed(w.Text(placeholder=f"a accept, r reject, {keys}, n next, k previous; Enter",
                                      continuous_update=False, layout=w.Layout(width="26em")), "command")
        self.message = classed(w.HTML(), "message")

        self.accept_button.on_click(lambda _: self._act("accept"))
        self.reject_button.on_click(lambda _: self._act("reject"))
        self.save_button.on_click(lambda _: self._save_edit())
        self.previous_button.on_click(lambda _: self.move(-1))
        self.next_button.on_click(lambda _: self.move(1))
        self.fix_button.on_click(lambda _: self._fix())
        self.select_all_button.on_click(lambda _: self._select_shown())
        self.clear_selection_button.on_click(lambda _: self._clear_selection())
        self.rating_buttons.observe(self._on_rating, names="value")
        self.select_box.observe(self._on_select, names="value")
        self.filter_dropdown.observe(self._on_filter, names="value")
        self.command.observe(self._on_command, names="value")

        self.widget = classed(w.VBox([
            self.info, self.text_area,
            w.HBox([self.accept_button, self.reject_button, self.rating_buttons]),
            w.HBox([self.previous_button, self.next_button, self.save_button]),
            w.HBox([self.select_box, self.apply_selected, self.select_all_button, self.clear_selection_button]),
            w.HBox([self.find_text, self.replace_text, self.fix_button]),
            w.HBox([self.filter_dropdown, self.command]),
            self.message,
        ]), "panel")
        self._show()

    # --------------------------------------------------------------------------------------------- cursor
    @property
    def current(self) -> Optional[Any]:
        """The id of the row shown (None when the filter shows no row)."""
        return self._visible[self._position] if self._visible else None

    def targets(self) -> List[Any]:
        """The ids an action applies to: the selected rows when *apply to selected* is ticked and some are, else the
        row shown. Returns a list of ids (empty when no row is shown)."""
        if self.apply_selected.value and self.selected:
            return list(self.selected)
        return [] if self.current is None else [self.current]

    def move(self, step: int) -> None:
        """Show the row ``step`` places on in the filtered rows (negative: back), stopping at either end."""
        if self._visible:
            self._position = min(max(self._position + step, 0), len(self._visible) - 1)
        self._show()

    def _refilter(self) -> None:
        """Recompute the filtered rows after a change; stay on the row shown if it still qualifies, else show the
        one that took its place."""
        current = self.current
        self._visible = self._filtered()
        if current in self._visible:
            self._position = self._visible.index(current)
        self._position = min(self._position, max(len(self._visible) - 1, 0))

    def _filtered(self) -> List[Any]:
        choice = self.filter_dropdown.value
        if choice == "all":
            return list(self.review.ids)
        if choice == "rated":
            return self.review.filter(min_rating=_DEFAULT_MIN[self.review.scale])
        if choice.startswith("run:"):
            run = next(r for r in self.review.runs if f"run:{r}" == choice)
            return self.review.filter(run=run)
        return self.review.filter(status=choice)

    # --------------------------------------------------------------------------------------------- rendering
    def _show(self, message: str = "") -> None:
        self._showing = True
        try:
            row_id = self.current
            review = self.review
            c = review.counts()
            totals = (f"{c['accepted']} accepted · {c['rejected']} rejected · {c['pending']} pending · "
                      f"{c['rated']} rated · {c['edited']} edited · {len(self.selected)} selected")
            buttons = (self.accept_button, self.reject_button, self.save_button, self.fix_button, self.text_area,
                       self.rating_buttons, self.select_box, self.previous_button, self.next_button)
            for widget in buttons:
                widget.disabled = row_id is None
            if row_id is None:
                self.info.value = f"<b>No row matches this filter.</b> {totals}"
                self.text_area.value = ""
                self.rating_buttons.value = None
                self.select_box.value = False
            else:
                state, row = review.state(row_id), review.row(row_id)
                run = row.get("run_id")
                parts = [f"row {self._position + 1} of {len(self._visible)}", f"id {html.escape(str(row_id))}"]
                if run is not None:
                    parts.append(f"run {html.escape(str(run))}")
                parts.append(f"status <b data-status='{state['status']}'>{state['status']}</b>")
                parts.append(f"rating {'-' if state['rating'] is None else state['rating']}")
                if state["edit"] is not None:
                    parts.append("edited")
                self.info.value = " · ".join(parts) + f"<br><small>{totals}</small>"
                self.text_area.value = review.current_text(row_id)
                self.rating_buttons.value = state["rating"]
                self.select_box.value = row_id in self.selected
                self.previous_button.disabled = self._position == 0
                self.next_button.disabled = self._position >= len(self._visible) - 1
            self.message.value = html.escape(message)
        finally:
            self._showing = False

    def _report(self, err: Exception) -> None:
        self._show()
        self.message.value = f"<span style='color:#b00'>{html.escape(str(err))}</span>"

    # --------------------------------------------------------------------------------------------- handlers
    def _act(self, action: str, value: Any = None, *, ids: Optional[List[Any]] = None,
             advance: Optional[bool] = None) -> None:
        """Apply ``action`` (accept, reject, rate) to ``ids`` (default: the targets), then show the next row with
        ``advance`` (default: the panel's ``advance``)."""
        advance = self.advance if advance is None else advance
        ids = self.targets() if ids is None else ids
        if not ids:
            return
        try:
            if action == "rate":
                self.review.rate(ids, value)
            else:
                getattr(self.review, action)(ids)
        except (TypeError, ValueError) as err:
            self._report(err)
            return
        done = {"accept": "accepted", "reject": "rejected", "rate": f"rated {value}"}[action]
        self._refilter()
        if advance and len(ids) == 1 and self.current == ids[0]:
            self.move(1)
        self._show(f"{done}: {', '.join(map(str, ids))}")

    def _save_edit(self) -> None:
        row_id = self.current
        if row_id is None:
            return
        try:
            self.review.edit(row_id, self.text_area.value)
        except (TypeError, ValueError) as err:
            self._report(err)
            return
        self._refilter()
        self._show(f"saved the edit of {row_id}")

    def _fix(self) -> None:
        try:
            changed = self.review.fix(self.targets(), self.find_text.value, self.replace_text.value)
        except (TypeError, ValueError) as err:
            self._report(err)
            return
        self._refilter()
        self._show(f"fixed {changed} row(s)")

    def _on_rating(self, change: Dict[str, Any]) -> None:
        if self._showing or change["new"] is None:
            return
        self._act("rate", change["new"], advance=False)

    def _on_select(self, change: Dict[str, Any]) -> None:
        if self._showing or self.current is None:
            return
        if change["new"] and self.current not in self.selected:
            self.selected.append(self.current)
        elif not change["new"] and self.current in self.selected:
            self.selected.remove(self.current)
        self._show()

    def _select_shown(self) -> None:
        self.selected = list(dict.fromkeys([*self.selected, *self._visible]))
        self.apply_selected.value = True
        self._show(f"{len(self.selected)} selected")

    def _clear_selection(self) -> None:
        self.selected = []
        self._show("selection cleared")

    def _on_filter(self, change: Dict[str, Any]) -> None:
        self._visible = self._filtered()
        self._position = 0
        self._show()

    def _on_command(self, change: Dict[str, Any]) -> None:
        typed = change["new"]
        if not typed.strip():
            return
        self.run_command(typed)
        self.command.value = ""

    def run_command(self, typed: str) -> None:
        """Run the keys ``typed`` (as if typed in the command box and Enter pressed): ``a`` accept, ``r`` reject,
        ``1``..``5`` or ``p``/``f`` rate, ``n``/``j`` next, ``k`` previous. An action moves on to the next row
        unless a move is typed too. Unknown keys do nothing but say so."""
        keys = [key for key in typed.lower() if not key.isspace()]
        rating_keys = ({str(v): v for v in RATING_SCALES["stars"]} if self.review.scale == "stars"
                       else {"p": "pass", "f": "fail"})
        unknown = [key for key in keys if key not in "arnjk" and key not in rating_keys]
        if unknown:
            self._show()
            self.message.value = (f"<span style='color:#b00'>unknown key(s) {html.escape(''.join(unknown))}: type a "
                                  f"(accept), r (reject), {'/'.join(rating_keys)} (rate), n or j (next), k "
                                  "(previous)</span>")
            return
        acted = moved = False
        targets = self.targets()  # the keys up to a move act on the same rows, even when one takes them off the filter
        for key in keys:
            if key in "nj" or key == "k":
                self.move(1 if key in "nj" else -1)
                targets, moved = self.targets(), True
            else:
                self._act({"a": "accept", "r": "reject"}.get(key, "rate"), rating_keys.get(key), ids=targets,
                          advance=False)
                acted = True
        if acted and not moved and len(targets) == 1 and self.current == targets[0]:
            self.move(1)

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)

    def __repr__(self) -> str:
        return f"ReviewPanel(current={self.current!r}, selected={self.selected!r})\n{self.review.text()}"
