"""Run a distilabel task over a dataset in this process: batches, a progress bar, a cache, and an honest account.

distilabel's ``Pipeline`` forks a process per step, reloads models in each and leaves the root logger broken in a
notebook (ARCHITECTURE.md, "Decisions"). In a notebook the same tasks run here instead::

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
  (UltraFeedback), ``chosen_equals_rejected`` (DPO formatting), ``exception: <Type>`` (the whole batch raised),
  and the gates of :mod:`smolsynth.gates`: ``truncated`` (a generation ran out of tokens; ``allow_truncated=True``
  keeps it) and ``template_echo``; add rules for your own task with :func:`register_validator`;
* drops distilabel's ``distilabel_metadata`` column unless ``keep_metadata=True``;
* returns a :class:`RunResult`: ``.dataset`` (kept rows), ``.dropped`` (rows set aside, with ``reason`` and, when
  there is one, ``raw_output`` and ``error``) and ``.report`` (:class:`~smolsynth.report.Report`).

For a distilabel ``Pipeline`` (scripts, Ray), :func:`run_pipeline` runs it and then puts the root logger back as it
was (distilabel leaves a closed queue handler there: "Logging error ... Queue is closed").
"""

from __future__ import annotations

import copy
import json
import os
import random
import sys
import time
import weakref
from contextlib import contextmanager
from typing import Any, Callable, Dict, Iterator, List, Literal, Optional, Tuple, Union

from smolsynth.cache import ResultCache, _default, fingerprint, task_config
from smolsynth.formats import same_answer
from smolsynth.gates import echoes_template, truncated
from smolsynth.report import Report, count_reasons
from smolsynth.rows import Result, Row, as_rows
from smolsynth.verbosity import preserve_logging, quiet_distilabel

RunResult = Result  # the name notebooks and earlier versions used; every step returns a Result

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


def check_row(task: Any, row: Row, *, allow_truncated: bool = False) -> Optional[str]:
    """Why ``row`` (an output of ``task``) must be set aside, or None: the generic rules (no declared output column
    is None or empty; no generation ran out of tokens unless ``allow_truncated``; no output copies its prompt's
    scaffolding, see :mod:`smolsynth.gates`), then the task's registered rules."""
    mapped = getattr(task, "output_mappings", {}) or {}
    outputs = [mapped.get(col, col) for col in _output_columns(task)]
    for col in outputs:
        if col not in row:  # steps declare columns they only write in some configurations
            continue
        value = row[col]
        if value is None:
            return "unparsed_output"
        if isinstance(value, (str, list)) and len(value) == 0 or isinstance(value, str) and not value.strip():
            return "empty_output"
    if not allow_truncated and truncated(row.get(DISTILABEL_METADATA)):
        return "truncated"
    if any(echoes_template(row.get(col)) for col in outputs):
        return "template_echo"
    for cls in type(task).__mro__:
        for fn in _VALIDATORS.get(f"{cls.__module__}.{cls.__qualname__}", []):
            reason = fn(row, task)
            if reason:
                return reason
    return None


@register_validator("distilabel.steps.formatting.dpo.FormatTextGenerationDPO")
def _distinct_pair(row: Row, task: Any) -> Optional[str]:
    """A tie (or missing ratings) makes FormatTextGenerationDPO emit chosen == rejected: useless for DPO."""
    if same_answer(row.get("chosen"), row.get("rejected")):
        return "chosen_equals_rejected"
    return None


# ----------------------------------------------------------------------------------------------- pipelines
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


# ------------------------------------------------------------------------------------------------------- input
def _check_task(task: Any) -> None:
    from smolsynth.verbosity import import_distilabel

    step_mod = import_distilabel("distilabel.steps.base")
    if isinstance(task, step_mod.GeneratorStep):
        raise TypeError(f"{type(task).__name__} is a generator step (it makes rows from nothing); a task here is "
                        "applied to rows. For Magpie, use the Magpie task with a row count: run(Magpie(llm=...), 100).")
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


def split_batch_statistics(rows: List[Row]) -> List[Row]:
    """Give each row of a batch its own generation statistics, and return the rows.

    distilabel's ``EvolInstruct`` and ``EvolQuality`` attach the statistics of the *whole batch* (one entry per row
    and evolution, evolution by evolution) to every row, so one cut-off generation would mark every row of its batch
    ``truncated``. Row ``i`` of ``n`` keeps entries ``i, i + n, ...``: its own, one per evolution.

    >>> rows = [{"distilabel_metadata": {"statistics_evol_0": {"finish_reasons": ["stop", "length"]}}} for _ in "ab"]
    >>> [r["distilabel_metadata"]["statistics_evol_0"]["finish_reasons"] for r in split_batch_statistics(rows)]
    [['stop'], ['length']]
    """
    n = len(rows)
    for i, row in enumerate(rows):
        meta = row.get(DISTILABEL_METADATA)
        if isinstance(meta, dict):
            row[DISTILABEL_METADATA] = {
                key: {name: value[i::n] if isinstance(value, list) else value for name, value in stats.items()}
                if key.startswith("statistics_") and isinstance(stats, dict) else stats
                for key, stats in meta.items()}
    return rows


def _raw_output(row: Row) -> Optional[str]:
    meta = row.get(DISTILABEL_METADATA) or {}
    for key, value in meta.items():
        if key.startswith("raw_output_"):
            return value if isinstance(value, str) or value is None else json.dumps(value, default=_default)
    return None


def _process_batch(task: Any, rows: List[Row], *, keep_metadata: bool, allow_truncated: bool) -> Dict[str, Any]:
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
        reason = check_row(task, row, allow_truncated=allow_truncated)
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


class Batcher:
    """One batch of a task, the way :func:`run` does every batch: from the cache, or seeded, processed, checked and
    stored. :func:`run` and :class:`smolsynth.pipelines.RunnerStep` (the same work inside a distilabel ``Pipeline``)
    both call it, which is why the two give the same rows for the same data and seed.

    ``batcher(index, rows)`` returns ``(payload, was_cached)``; the payload has ``kept``, ``dropped``,
    ``input_tokens``, ``output_tokens``, ``seconds`` and, for a batch that raised (never cached), ``failed``.

    >>> batcher = Batcher(TextGeneration(llm=LocalLLM()))                           # doctest: +SKIP
    >>> payload, was_cached = batcher(0, [{"instruction": "Say hi."}])               # doctest: +SKIP
    >>> payload["kept"][0]["generation"], was_cached                                 # doctest: +SKIP
    ('Hi!', False)
    """

    def __init__(self, task: Any, *, allow_truncated: bool = False, keep_metadata: bool = False, cache: bool = True,
                 cache_dir: Optional[str] = None, force: bool = False) -> None:
        self.task, self.allow_truncated, self.keep_metadata, self.force = task, allow_truncated, keep_metadata, force
        config = {**task_config(task), "allow_truncated": bool(allow_truncated)}
        self.store = ResultCache(fingerprint(config), root=cache_dir, config=config if cache else None, enabled=cache)
        # The sampling seed of a batch comes from its content only. The cache key also holds the weights'
        # fingerprint (file times and inodes, so that retrained weights miss the cache); seeding from it made every
        # fresh home, where the model files are written anew, sample other outputs for the same seed.
        self.content = {k: v for k, v in config.items() if k != "weights"}

    def __call__(self, index: int, rows: List[Row]) -> Tuple[Dict[str, Any], bool]:
        key = self.store.batch_key(index, rows)
        payload = None if self.force else self.store.get(key)
        if payload is not None:
            return payload, True
        _load_once(self.task)
        salt = fingerprint({"config": self.content, "index": index, "rows": [fingerprint(r) for r in rows]})
        with _seeded(salt, getattr(self.task, "llm", None)):
            payload = _process_batch(self.task, rows, keep_metadata=self.keep_metadata,
                                     allow_truncated=self.allow_truncated)
        if not payload.get("failed"):
            self.store.put(key, payload)
        return payload, False


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
    allow_truncated: bool = False,
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
        allow_truncated: keep rows whose generation ran out of ``max_new_tokens`` (default: dropped as
            ``truncated``; a cut-off answer is not training data).
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

    batcher = Batcher(task, allow_truncated=allow_truncated, keep_metadata=keep_metadata, cache=cache,
                      cache_dir=cache_dir, force=force)
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
                payload, was_cached = batcher(index, batch)
                if was_cached:
                    cached_rows += len(batch)
                elif payload.get("failed") and on_error == "raise":
                    raise RuntimeError(f"{step_name}: batch {index} raised "
                                       f"{payload['dropped'][0]['reason']}: {payload['dropped'][0]['error']}")
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
    return Result(kept, dropped, report)


__all__ = ["RunResult", "check_row", "register_validator", "run", "run_pipeline"]


import smolsynth.ultrafeedback  # noqa: E402,F401  (registers UltraFeedback's row check)
