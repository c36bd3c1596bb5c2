"""Bad input stops at the door: the checks every public function runs on its arguments before any work.

Each check raises an error that names the argument, the value it got and what to pass instead, so a learner never
meets Python's bare "'NoneType' object is not iterable" from deep inside a library, and no model is loaded for a
call that cannot succeed::

    >>> check_number("temperature", -0.5, minimum=0.0)
    Traceback (most recent call last):
    ...
    ValueError: temperature=-0.5 is out of range: it must be >= 0.0 (e.g. temperature=0.0).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Dict, List, Optional

__all__ = ["check_choice", "check_columns", "check_number", "check_path", "check_text", "check_texts"]


def check_number(name: str, value: Any, *, minimum: Optional[float] = None, maximum: Optional[float] = None,
                 integer: bool = False, exclusive_minimum: bool = False, allow_none: bool = False) -> None:
    """``value`` must be a number (an int when ``integer``) within ``[minimum, maximum]`` (``> minimum`` when
    ``exclusive_minimum``); None passes only with ``allow_none``.

    >>> check_number("max_steps", 0, minimum=1, integer=True)
    Traceback (most recent call last):
    ...
    ValueError: max_steps=0 is out of range: it must be >= 1 (e.g. max_steps=1).
    """
    if value is None and allow_none:
        return
    kind = "an integer" if integer else "a number"
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not isinstance(value, int)):
        example = minimum if minimum is not None else 1
        raise TypeError(f"{name}={value!r} is not {kind}: pass {kind}, e.g. {name}={_example(example, integer)}.")
    if value != value:  # NaN
        raise ValueError(f"{name}=nan is not a number.")
    low_bad = minimum is not None and (value <= minimum if exclusive_minimum else value < minimum)
    high_bad = maximum is not None and value > maximum
    if low_bad or high_bad:
        bounds = []
        if minimum is not None:
            bounds.append(f"{'>' if exclusive_minimum else '>='} {minimum}")
        if maximum is not None:
            bounds.append(f"<= {maximum}")
        example = maximum if high_bad else minimum
        if exclusive_minimum and low_bad:
            example = minimum + (1 if integer else 0.1)
        raise ValueError(f"{name}={value!r} is out of range: it must be {' and '.join(bounds)} "
                         f"(e.g. {name}={_example(example, integer)}).")


def _example(value: Any, integer: bool) -> str:
    if integer:
        return str(int(value))
    return repr(round(float(value), 6))


def check_text(name: str, value: Any) -> str:
    """``value`` must be a non-empty string; returns it.

    >>> check_text("system_prompt", "")
    Traceback (most recent call last):
    ...
    ValueError: system_prompt='' is empty: pass some text, or leave it out.
    """
    if not isinstance(value, str):
        raise TypeError(f"{name} is a {type(value).__name__} ({str(value)[:60]!r}): pass a string.")
    if not value.strip():
        raise ValueError(f"{name}={value!r} is empty: pass some text, or leave it out.")
    return value


def check_texts(name: str, values: Any, *, minimum: int = 1) -> List[str]:
    """``values`` must be a list (or tuple) of at least ``minimum`` non-empty strings; returns it as a list.

    >>> check_texts("seeds", "Explain tides.")
    Traceback (most recent call last):
    ...
    TypeError: seeds must be a list of strings, e.g. seeds=['Explain photosynthesis.', ...]; got a str.
    """
    if isinstance(values, str) or not isinstance(values, Sequence):
        raise TypeError(f"{name} must be a list of strings, e.g. {name}=['Explain photosynthesis.', ...]; got a "
                        f"{type(values).__name__}.")
    for i, value in enumerate(values):
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"{name}[{i}] is {value!r}: every item must be a non-empty string.")
    if len(values) < minimum:
        raise ValueError(f"{name} has {len(values)} item(s); at least {minimum} are needed.")
    return list(values)


def check_path(name: str, value: Any) -> None:
    """``value`` must be a folder path: a non-empty string or an ``os.PathLike``.

    >>> check_path("output_dir", None)
    Traceback (most recent call last):
    ...
    TypeError: output_dir=None: pass a folder path, e.g. output_dir='out/run'.
    """
    import os

    if not (isinstance(value, os.PathLike) or (isinstance(value, str) and value.strip())):
        raise TypeError(f"{name}={value!r}: pass a folder path, e.g. {name}='out/run'.")


def check_choice(name: str, value: Any, choices: Sequence[Any]) -> None:
    """``value`` must be one of ``choices``.

    >>> check_choice("rule", "best", ["best-vs-worst"])
    Traceback (most recent call last):
    ...
    ValueError: rule='best' is not one of 'best-vs-worst'.
    """
    if value not in choices:
        raise ValueError(f"{name}={value!r} is not one of {', '.join(map(repr, choices))}.")


def check_columns(rows: List[Dict[str, Any]], columns: Sequence[str], *, fn: str, made_by: str) -> None:
    """Every row must have ``columns``; ``fn`` names the function, ``made_by`` what makes such rows.

    >>> check_columns([{"instruction": "Hi"}], ["generations"], fn="judge", made_by="pool_responses()")
    Traceback (most recent call last):
    ...
    ValueError: judge() needs the column(s) ['generations'], but row 0 has ['instruction']: pass the rows that pool_responses() returned (its .rows or .dataset).
    """
    if not rows:
        raise ValueError(f"{fn}() got no rows: pass the rows that {made_by} returned (its .rows or .dataset).")
    for i, row in enumerate(rows):
        missing = [c for c in columns if c not in row]
        if missing:
            raise ValueError(f"{fn}() needs the column(s) {missing}, but row {i} has {sorted(row)}: pass the rows "
                             f"that {made_by} returned (its .rows or .dataset).")


def check_text_column(rows: List[Dict[str, Any]], column: str, *, fn: str) -> List[str]:
    """Every row must hold a string in ``column``; returns those strings. ``fn`` names the function.

    >>> check_text_column([{"text": "Hi"}], "instruction", fn="deduplicate")
    Traceback (most recent call last):
    ...
    ValueError: deduplicate() reads the rows' 'instruction' texts, but row 0 has None there: pass column=<a text column> (row 0 has ['text']).
    """
    check_text("column", column)
    for i, row in enumerate(rows):
        if not isinstance(row.get(column), str):
            raise ValueError(f"{fn}() reads the rows' {column!r} texts, but row {i} has {row.get(column)!r} there: "
                             f"pass column=<a text column> (row {i} has {sorted(row)}).")
    return [row[column] for row in rows]
