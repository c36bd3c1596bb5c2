"""Run a distilabel task over a dataset in this process: batches, a progress bar, a cache, and an honest account.

distilabel's ``Pipeline`` forks a process per step, reloads models in each and leaves the root logger broken in a
notebook (DESIGN.md D2). In a notebook the same tasks run here instead::

    >>> from smolsynth.llm import LocalLLM
    >>> from smolsynth.runner import run
    >>> from distilabel.steps.tasks import TextGeneration  # doctest: +SKIP
    >>> task = TextGeneration(llm=LocalLLM("smolsynth/tiny", generation_kwargs={"max_new_tokens": 16}))  # doctest: +SKIP
    >>> result = run(task, [{"instruction": "Name a colour."}, {"instruction": "Name a fruit."}])  # doctest: +SKIP
    >>> result.dataset, result.report  # doctest: +SKIP

What :func:`run` does:

* checks the input (the task's required columns, ``batch_size``) before any expensive work;
* loads the task once (later calls reuse it, and :class:`~smolsynth.llm.LocalLLM` reuses the loaded model);
* cuts the rows into batches, calls ``task.process`` per batch (input/output mappings applied), one tqdm bar;
* seeds every batch from its content (LLM sampling, ``random`` and ``numpy``), so results are reproducible;
* stores each finished batch in the content-keyed cache (:mod:`smolsynth.cache`): reruns are instant, a change
  recomputes, an interrupted run resumes;
* checks every output row and sets aside, with a ``reason``, the ones that failed: ``unparsed_output`` (distilabel
  set an output column to None), ``empty_output``, ``wrong_number_of_ratings`` / ``unparsed_rating``
  (UltraFeedback), ``chosen_equals_rejected`` (DPO formatting), ``exception: <Type>`` (the whole batch raised);
  add rules for your own task with :func:`register_validator`;
* drops distilabel's ``distilabel_metadata`` column unless ``keep_metadata=True``;
* returns a :class:`RunResult`: ``.dataset`` (kept rows), ``.dropped`` (rows set aside, with ``reason`` and, when
  there is one, ``raw_output`` and ``error``) and ``.report`` (:class:`~smolsynth.report.Report`).

For a distilabel ``Pipeline`` (scripts, Ray), :func:`run_pipeline` runs it and then puts the root logger back as it
was (distilabel leaves a closed queue handler there: "Logging error ... Queue is closed").
"""

from __future__ import annotations

import copy
import json
import logging
import os
import random
import sys
import time
import weakref
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterator, List, Literal, Optional, Tuple, Union

from smolsynth.cache import ResultCache, _default, fingerprint, task_config
from smolsynth.report import Report, count_reasons

Row = Dict[str, Any]
Validator = Callable[[Row, Any], Optional[str]]

DISTILABEL_METADATA = "distilabel_metadata"
_VALIDATORS: Dict[str, List[Validator]] = {}
_LOADED_TASKS: Dict[int, Any] = {}


# ------------------------------------------------------------------------------------------------- validators
def register_validator(task_class: Union[type, str]) -> Callable[[Validator], Validator]:
    """Register a row check for a task class (and its subclasses); a class or its ``"module.QualName"``.

    The check receives an output row and the task, and returns a reason (a short snake_case string) to set the row
    aside, or None to keep it. Checks run after the generic one (no output column is None or empty).

    >>> @register_validator("my_tasks.Haiku")
    ... def three_lines(row, task):
    ...     return None if len(row["haiku"].splitlines()) == 3 else "not_three_lines"
    """
    key = task_class if isinstance(task_class, str) else f"{task_class.__module__}.{task_class.__qualname__}"

    def decorate(fn: Validator) -> Validator:
        _VALIDATORS.setdefault(key, []).append(fn)
        return fn

    return decorate


def _output_columns(task: Any) -> Dict[str, bool]:
    try:
        outputs = task.get_outputs()
    except Exception:  # a step without declared outputs
        return {}
    return {col: bool(req) for col, req in outputs.items() if col != "model_name"}


def check_row(task: Any, row: Row) -> Optional[str]:
    """Why ``row`` (an output of ``task``) must be set aside, or None: the generic rule (no declared output column
    is None or empty), then the task's registered rules."""
    mapped = getattr(task, "output_mappings", {}) or {}
    for col in _output_columns(task):
        col = mapped.get(col, col)
        if col not in row:  # steps declare columns they only write in some configurations
            continue
        value = row[col]
        if value is None:
            return "unparsed_output"
        if isinstance(value, (str, list)) and len(value) == 0 or isinstance(value, str) and not value.strip():
            return "empty_output"
    for cls in type(task).__mro__:
        for fn in _VALIDATORS.get(f"{cls.__module__}.{cls.__qualname__}", []):
            reason = fn(row, task)
            if reason:
                return reason
    return None


@register_validator("distilabel.steps.tasks.ultrafeedback.UltraFeedback")
def _one_rating_per_generation(row: Row, task: Any) -> Optional[str]:
    """UltraFeedback returns as many ratings as sections it parsed ([None] for 2 generations on bad output)."""
    generations = row.get((getattr(task, "input_mappings", {}) or {}).get("generations", "generations"))
    ratings = row.get("ratings")
    if not isinstance(ratings, list) or generations is None:
        return "unparsed_output"
    if len(ratings) != len(generations):
        return "wrong_number_of_ratings"
    if any(r is None for r in ratings):
        return "unparsed_rating"
    return None


@register_validator("distilabel.steps.formatting.dpo.FormatTextGenerationDPO")
def _distinct_pair(row: Row, task: Any) -> Optional[str]:
    """A tie (or missing ratings) makes FormatTextGenerationDPO emit chosen == rejected: useless for DPO."""
    if row.get("chosen") is not None and row.get("chosen") == row.get("rejected"):
        return "chosen_equals_rejected"
    return None


# ----------------------------------------------------------------------------------------------------- logging
_DISTILABEL_LOGGERS = ("distilabel", "argilla.client.feedback.dataset.local.mixins", "datasets", "httpx",
                       "openai._base_client", "httpcore.http11", "httpcore.connection", "urllib3.connectionpool",
                       "filelock", "fsspec", "asyncio", "sentence_transformers.SentenceTransformer", "faiss.loader",
                       "argilla.sdk")


@contextmanager
def preserve_logging() -> Iterator[None]:
    """Put the root logger (handlers, level) and the loggers distilabel touches back as they were afterwards.

    distilabel's ``Pipeline.run`` replaces the root logger's handlers with a ``QueueHandler`` and closes the queue
    at the end; every later log line in the kernel then prints "Logging error ... Queue is closed".
    """
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    others = {name: (logging.getLogger(name).level, logging.getLogger(name).disabled) for name in _DISTILABEL_LOGGERS}
    try:
        yield
    finally:
        for handler in list(root.handlers):
            if handler not in handlers:
                root.removeHandler(handler)
        for handler in handlers:
            if handler not in root.handlers:
                root.addHandler(handler)
        root.setLevel(level)
        for name, (lvl, disabled) in others.items():
            logging.getLogger(name).setLevel(lvl)
            logging.getLogger(name).disabled = disabled


def restore_logging(level: int = logging.WARNING) -> int:
    """Repair the root logger after a distilabel ``Pipeline`` run made without :func:`run_pipeline`.

    Removes the queue handlers distilabel left there (their queue is closed: every later log line would print
    "Logging error") and sets the root level back to ``level`` (Python's default, WARNING; distilabel raises it).
    Returns how many handlers were removed.
    """
    from logging.handlers import QueueHandler

    root = logging.getLogger()
    stale = [h for h in root.handlers if isinstance(h, QueueHandler)]
    for handler in stale:
        root.removeHandler(handler)
    root.setLevel(level)
    return len(stale)


@contextmanager
def quiet_distilabel(level: int = logging.ERROR) -> Iterator[None]:
    """Silence distilabel's loggers inside the block (the runner accounts for every failure itself)."""
    logger = logging.getLogger("distilabel")
    previous = logger.level
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.setLevel(previous)


_FORK_GUARD = {"active": False, "registered": False}


def _single_threaded_torch_in_child() -> None:
    if _FORK_GUARD["active"] and "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)


def run_pipeline(pipeline: Any, **kwargs: Any) -> Any:
    """``pipeline.run(**kwargs)``, made safe for a notebook; returns distilabel's ``Distiset``.

    * Afterwards the logging state of before the run is restored (see :func:`preserve_logging`).
    * distilabel forks one process per step. If this process already ran a model on the CPU (the runner, a cell
      with ``generate``), a forked child that runs torch with several OpenMP threads hangs forever; the children of
      this pipeline run torch single-threaded instead (each step is its own process, so little is lost).

    >>> distiset = run_pipeline(pipeline, use_cache=False)  # doctest: +SKIP
    """
    if not _FORK_GUARD["registered"] and hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_single_threaded_torch_in_child)
        _FORK_GUARD["registered"] = True
    _FORK_GUARD["active"] = True
    try:
        with preserve_logging():
            return pipeline.run(**kwargs)
    finally:
        _FORK_GUARD["active"] = False


# ------------------------------------------------------------------------------------------------------ result
@dataclass
class RunResult:
    """What :func:`run` returns: kept rows, rows set aside (with ``reason``), and the report."""

    dataset: Any
    dropped: Any
    report: Report

    def __str__(self) -> str:
        return str(self.report)

    def _repr_html_(self) -> str:
        return self.report._repr_html_()


# ------------------------------------------------------------------------------------------------------- input
def as_rows(data: Any) -> List[Row]:
    """Rows as a list of dicts, from a Dataset, a pandas DataFrame, a list of dicts, or a row count (empty rows).

    Raises a TypeError naming the fix for anything else. ``as_rows(2)`` is ``[{}, {}]``.
    """
    if isinstance(data, bool):
        raise TypeError("data=True/False is not data: pass a datasets.Dataset, a list of dicts, or a row count.")
    if isinstance(data, int):
        if data < 0:
            raise ValueError(f"data={data}: a row count must be >= 0.")
        return [{} for _ in range(data)]
    if hasattr(data, "to_list") and hasattr(data, "column_names"):  # datasets.Dataset
        return data.to_list()
    if hasattr(data, "to_dict") and hasattr(data, "columns"):  # pandas.DataFrame
        return data.to_dict("records")
    if isinstance(data, dict):
        raise TypeError("data is a dict: pass a list of row dicts ([{'instruction': ...}, ...]) or a Dataset.")
    rows = list(data)
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise TypeError(f"data[{i}] is a {type(row).__name__}, not a dict: every row must be a dict of "
                            "columns, e.g. [{'instruction': 'Write a haiku.'}].")
    return rows


def _check_task(task: Any) -> None:
    from smolsynth.verbosity import import_distilabel

    step_mod = import_distilabel("distilabel.steps.base")
    if isinstance(task, step_mod.GeneratorStep):
        raise TypeError(f"{type(task).__name__} is a generator step (it makes rows from nothing); run() applies a "
                        "task to rows. For Magpie, use the Magpie task with a row count: run(Magpie(llm=...), 100).")
    if not isinstance(task, step_mod._Step):
        raise TypeError(f"task must be a distilabel Task or Step instance, not {type(task).__name__}: e.g. "
                        "TextGeneration(llm=LocalLLM()).")


def _check_columns(task: Any, rows: List[Row]) -> None:
    try:
        inputs = task.get_inputs()
    except Exception:
        return
    mappings = getattr(task, "input_mappings", {}) or {}
    present = set().union(*(r.keys() for r in rows)) if rows else set()
    for col, required in inputs.items():
        if not required:
            continue
        source = mappings.get(col, col)
        missing = [i for i, r in enumerate(rows) if source not in r]
        if missing:
            name = type(task).__name__
            raise ValueError(
                f"{name} needs the column {source!r} in every row, but row {missing[0]} "
                f"({len(missing)} of {len(rows)} rows) has none; the data has columns {sorted(present)}. Rename a "
                f"column (dataset.rename_column('prompt', {source!r})) or map one: "
                f"{name}(..., input_mappings={{{col!r}: 'prompt'}}).")


def _default_batch_size(task: Any) -> int:
    llm = getattr(task, "llm", None)
    per_call = getattr(llm, "effective_batch_size", None)
    if per_call is None:
        return 256 if llm is not None else 1000
    generations = max(1, int(getattr(task, "num_generations", 1) or 1))
    return max(1, per_call * 4 // generations)


# --------------------------------------------------------------------------------------------------- batching
@contextmanager
def _seeded(salt: str, llm: Any) -> Iterator[None]:
    """Seed Python's and NumPy's global RNGs (tasks draw from them) and the LLM from ``salt``; restore after."""
    import numpy as np

    seed = int(fingerprint(salt)[:8], 16)
    py_state, np_state = random.getstate(), np.random.get_state()
    random.seed(seed)
    np.random.seed(seed)
    try:
        if llm is not None and hasattr(llm, "seeded"):
            with llm.seeded(salt):
                yield
        else:
            yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)


def _usage(llm: Any) -> Optional[Tuple[int, int]]:
    usage = getattr(llm, "usage", None)
    if isinstance(usage, dict):
        return usage.get("input_tokens", 0), usage.get("output_tokens", 0)
    return None


def _tokens_from_metadata(rows: List[Row]) -> Tuple[int, int]:
    n_in = n_out = 0
    for row in rows:
        meta = row.get(DISTILABEL_METADATA) or {}
        for key, stats in meta.items():
            if key.startswith("statistics_") and isinstance(stats, dict):
                for name, target in (("input_tokens", 0), ("output_tokens", 1)):
                    value = stats.get(name)
                    total = sum(v for v in value if isinstance(v, int)) if isinstance(value, list) else \
                        value if isinstance(value, int) else 0
                    if target == 0:
                        n_in += total
                    else:
                        n_out += total
    return n_in, n_out


def _raw_output(row: Row) -> Optional[str]:
    meta = row.get(DISTILABEL_METADATA) or {}
    for key, value in meta.items():
        if key.startswith("raw_output_"):
            return value if isinstance(value, str) or value is None else json.dumps(value, default=_default)
    return None


def _process_batch(task: Any, rows: List[Row], *, keep_metadata: bool) -> Dict[str, Any]:
    llm = getattr(task, "llm", None)
    before = _usage(llm)
    started = time.perf_counter()
    try:
        outputs: List[Row] = []
        for chunk in task.process_applying_mappings(copy.deepcopy(rows)):
            outputs.extend(chunk)
    except Exception as err:  # the whole batch failed: every row aside, with the error; never cached
        reason = f"exception: {type(err).__name__}"
        return {"kept": [], "dropped": [{**row, "reason": reason, "error": str(err)} for row in rows],
                "input_tokens": 0, "output_tokens": 0, "seconds": time.perf_counter() - started, "failed": True}
    seconds = time.perf_counter() - started
    after = _usage(llm)
    if before is not None and after is not None:
        n_in, n_out = after[0] - before[0], after[1] - before[1]
    else:
        n_in, n_out = _tokens_from_metadata(outputs)
    kept, dropped = [], []
    for row in outputs:
        reason = check_row(task, row)
        if reason:
            aside = {k: v for k, v in row.items() if k != DISTILABEL_METADATA}
            dropped.append({**aside, "reason": reason, "raw_output": _raw_output(row)})
            continue
        if not keep_metadata:
            row = {k: v for k, v in row.items() if k != DISTILABEL_METADATA}
        kept.append(row)
    payload = {"kept": kept, "dropped": dropped, "input_tokens": n_in, "output_tokens": n_out, "seconds": seconds}
    # what is returned is exactly what a cached rerun reads back (tuples become lists, and so on)
    return json.loads(json.dumps(payload, default=_default, ensure_ascii=False))


def to_dataset(rows: List[Row]):
    """A ``datasets.Dataset`` of ``rows`` (columns in order of first appearance; an empty Dataset for no rows).

    A column whose values mix types (a list in one row, a string in another) is stored as JSON text.
    """
    import datasets

    if not rows:
        return datasets.Dataset.from_dict({})
    columns: Dict[str, None] = {}
    for row in rows:
        columns.update(dict.fromkeys(row))
    table = {col: [row.get(col) for row in rows] for col in columns}
    try:
        return datasets.Dataset.from_dict(table)
    except Exception:  # a column Arrow cannot type (a list in one row, a string in another): that column as JSON
        for col, values in table.items():
            try:
                datasets.Dataset.from_dict({col: values})
            except Exception:
                table[col] = [None if v is None else json.dumps(v, default=_default) for v in values]
        return datasets.Dataset.from_dict(table)


def _load_once(task: Any) -> None:
    entry = _LOADED_TASKS.get(id(task))
    current = entry() if isinstance(entry, weakref.ref) else entry
    if current is task:
        return
    task.load()
    try:
        _LOADED_TASKS[id(task)] = weakref.ref(task, lambda _ref, key=id(task): _LOADED_TASKS.pop(key, None))
    except TypeError:
        _LOADED_TASKS[id(task)] = task


# --------------------------------------------------------------------------------------------------------- run
def run(
    task: Any,
    data: Any,
    *,
    batch_size: Optional[int] = None,
    cache: bool = True,
    force: bool = False,
    desc: Optional[str] = None,
    keep_metadata: bool = False,
    progress: bool = True,
    on_error: Literal["drop", "raise"] = "drop",
    cache_dir: Optional[str] = None,
) -> RunResult:
    """Apply a distilabel ``task`` to ``data`` in this process and account for every row.

    Args:
        task: a distilabel Task (e.g. ``TextGeneration(llm=LocalLLM())``) or any non-generator Step.
        data: a ``datasets.Dataset``, a list of row dicts, a pandas DataFrame, or a row count for tasks that need
            no input column (``run(Magpie(llm=LocalLLM()), 100)``).
        batch_size: rows per ``task.process`` call and per cache file; default: 4 model batches.
        cache: read and write the content-keyed cache (``False``: neither).
        force: recompute even if cached (and overwrite the cache).
        desc: the progress bar's label and the report's step name (default: the task's name).
        keep_metadata: keep distilabel's ``distilabel_metadata`` column (raw prompts and outputs).
        progress: show the progress bar.
        on_error: ``"drop"`` sets a batch that raised aside (reason ``exception: <Type>``); ``"raise"`` re-raises.
        cache_dir: where the cache lives (default ``smolsynth_home()/cache``).

    Returns:
        A :class:`RunResult` with ``.dataset``, ``.dropped`` and ``.report``.

    >>> result = run(TextGeneration(llm=LocalLLM()), [{"instruction": "Hi"}])  # doctest: +SKIP
    >>> print(result.report)  # doctest: +SKIP
    text_generation_0: 1 rows in -> 1 out; dropped 0; ...
    """
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int)
                                   or batch_size <= 0):
        raise ValueError(f"batch_size={batch_size!r} must be a positive integer (rows per batch), e.g. "
                         "batch_size=32, or None for the default.")
    if on_error not in ("drop", "raise"):
        raise ValueError(f"on_error={on_error!r} must be 'drop' or 'raise'.")
    _check_task(task)
    rows = as_rows(data)
    _check_columns(task, rows)
    size = batch_size or _default_batch_size(task)
    step_name = desc or getattr(task, "name", None) or type(task).__name__
    started = time.perf_counter()

    config = task_config(task)
    store = ResultCache(fingerprint(config), root=cache_dir, config=config if cache else None, enabled=cache)
    batches = [rows[i:i + size] for i in range(0, len(rows), size)]
    kept: List[Row] = []
    dropped: List[Row] = []
    n_in = n_out = cached_rows = 0
    compute = 0.0

    from tqdm.auto import tqdm

    with preserve_logging(), quiet_distilabel():
        bar = tqdm(total=len(rows), desc=step_name, unit="row", disable=not progress, leave=True)
        try:
            for index, batch in enumerate(batches):
                key = store.batch_key(index, batch)
                payload = None if force else store.get(key)
                if payload is not None:
                    cached_rows += len(batch)
                else:
                    _load_once(task)
                    with _seeded(key, getattr(task, "llm", None)):
                        payload = _process_batch(task, batch, keep_metadata=keep_metadata)
                    if payload.pop("failed", False):
                        if on_error == "raise":
                            raise RuntimeError(f"{step_name}: batch {index} raised "
                                               f"{payload['dropped'][0]['reason']}: {payload['dropped'][0]['error']}")
                    else:
                        store.put(key, payload)
                kept.extend(payload["kept"])
                dropped.extend(payload["dropped"])
                n_in += payload["input_tokens"]
                n_out += payload["output_tokens"]
                compute += payload["seconds"]
                bar.update(len(batch))
        finally:
            bar.close()

    llm = getattr(task, "llm", None)
    report = Report(step=step_name, rows_in=len(rows), rows_out=len(kept), dropped=count_reasons(dropped), input_tokens=n_in,
                    output_tokens=n_out, seconds=round(time.perf_counter() - started, 3), cached_rows=cached_rows,
                    compute_seconds=round(compute, 3), model=getattr(llm, "model_name", None) if llm else None)
    return RunResult(dataset=to_dataset(kept), dropped=to_dataset(dropped), report=report)


__all__ = ["RunResult", "check_row", "preserve_logging", "quiet_distilabel", "register_validator", "restore_logging",
           "run", "run_pipeline"]
