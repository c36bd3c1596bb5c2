"""Headless recipes: the course's steps from a TOML file, without Jupyter (``smolsynth run RECIPE``).

A recipe names a model (optional: the course model by default), a seed and its steps, in order. Each step is one of
:data:`STEPS` and reads the rows of the step before it::

    name = "course"
    seed = 0

    [[step]]
    kind = "magpie"          # instructions from the model's pre-query template
    rows = 8

    [[step]]
    kind = "preferences"     # pooled answers -> UltraFeedback judge -> chosen/rejected pairs
    max_rationale_chars = 80

    [[step]]
    kind = "sft"             # on the chosen answers
    max_steps = 4

    [[step]]
    kind = "dpo"             # from the SFT checkpoint, on the pairs
    max_steps = 4

Every other key of a step is passed to its function (:data:`STEPS` says which), so a step takes the same settings as
in a notebook; an ``sft`` or ``dpo`` step also takes the fields of TRL's ``SFTConfig`` / ``DPOConfig``
(``learning_rate = 5e-4``). A misspelt key is refused with the nearest right one. Everything lands in one folder::

    out/
      recipe.toml        the recipe as it ran (with the --set changes)
      run.json           the run record: versions, model, each step's status, report and output
      1-magpie.jsonl     each generating step's kept rows, and its dropped rows in 1-magpie.dropped.jsonl
      3-sft/             each training step's checkpoint
      summary.md         the table of every step

**Resumable.** A finished step is written once and read back on a restart, never run again. A step killed midway
(kill -9 included) starts again, and its finished batches come back from the content-keyed result cache (the
smolsynth home's ``cache/``): only the unfinished batches are computed. Sampling is seeded from the batches' content,
so the resumed run writes the same rows as an uninterrupted one. A training step killed midway trains again from its
start. Running a changed recipe into a folder refuses, naming the fix.

    >>> [step["kind"] for step in load_recipe("course")["step"]]
    ['magpie', 'preferences', 'sft', 'dpo']
"""

from __future__ import annotations

import copy
import inspect
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Union

from smolsynth.arguments import check_path
from smolsynth.report import Report
from smolsynth.cache import atomic_write
from smolsynth.rows import Row, read_jsonl, write_jsonl

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = ["PILOT_ROWS", "RECIPES", "STEPS", "Estimate", "estimate_recipe", "load_recipe", "run_recipe"]

RECIPES = Path(__file__).parent / "data" / "recipes"
"""The shipped recipes: ``smolsynth run course`` finds ``course.toml`` here."""

RUN_FILE = "run.json"
FORMAT = "smolsynth-run/1"


# ------------------------------------------------------------------------------------------------------ the steps
def _magpie(rows: Optional[List[Row]], ctx: "_Context", rows_: int = 8, **params: Any):
    from smolsynth.instructions import magpie

    params.setdefault("only_instruction", True)
    return magpie(rows_, model=ctx.model, seed=ctx.seed, progress=ctx.progress, **params)


def _answers(rows: Optional[List[Row]], ctx: "_Context", **params: Any):
    from smolsynth.generation import generate

    return generate(rows, model=ctx.model, seed=ctx.seed, progress=ctx.progress, **params)


def _preferences(rows: Optional[List[Row]], ctx: "_Context", **params: Any):
    from smolsynth.preferences import preference_dataset

    return preference_dataset([{"instruction": r["instruction"]} for r in rows], model=ctx.model, seed=ctx.seed,
                              progress=ctx.progress, **params)


def _texts(rows: Optional[List[Row]], ctx: "_Context", rows_: int = 16, **params: Any):
    from smolsynth.classification import generate_texts

    path = ctx.out / f"{ctx.number}-texts.csv"  # appended batch by batch: resumable on its own
    return generate_texts(n=rows_, model=ctx.model, seed=ctx.seed, progress=ctx.progress, path=path, **params)


def _sft_rows(rows: List[Row]):
    from smolsynth.formats import to_sft

    if rows and "messages" in rows[0]:
        return rows
    if rows and "chosen" in rows[0]:  # preference pairs: the chosen answers are the SFT data
        return [{"messages": list(r["prompt"]) + list(r["chosen"])} for r in rows]
    return to_sft(rows).rows


# A training step killed midway resumes from its last checkpoint (see training._train_and_save); one is kept.
CHECKPOINTS = {"save_strategy": "steps", "save_steps": 50, "save_total_limit": 1}


def _sft(rows: Optional[List[Row]], ctx: "_Context", **params: Any):
    from smolsynth.training import sft

    params = {**CHECKPOINTS, "gradient_accumulation_steps": 1, **params}
    return sft(_sft_rows(rows), model=ctx.model, output_dir=str(ctx.out / f"{ctx.number}-sft"), seed=ctx.seed,
               **params)


def _dpo(rows: Optional[List[Row]], ctx: "_Context", **params: Any):
    from smolsynth.training import dpo

    pairs = ctx.latest(lambda r: "chosen" in r and "rejected" in r, "preference pairs (a 'preferences' step)")
    params = {**CHECKPOINTS, "gradient_accumulation_steps": 1, **params}
    return dpo(pairs, model=ctx.checkpoint or ctx.model, output_dir=str(ctx.out / f"{ctx.number}-dpo"),
               seed=ctx.seed, **params)


STEPS: Dict[str, tuple] = {
    "magpie": (_magpie, "smolsynth.instructions.magpie", "instructions (rows = how many)"),
    "answers": (_answers, "smolsynth.generation.generate", "an answer per instruction"),
    "preferences": (_preferences, "smolsynth.preferences.preference_dataset", "chosen/rejected pairs"),
    "texts": (_texts, "smolsynth.classification.generate_texts", "labelled texts (rows = how many)"),
    "sft": (_sft, "smolsynth.training.sft", "an SFT checkpoint, on the latest conversations or chosen answers"),
    "dpo": (_dpo, "smolsynth.training.dpo", "a DPO checkpoint from the SFT step's, on the latest pairs"),
}
"""kind -> (runner, the function whose settings the step takes, what it makes)."""
_TRAINING = ("sft", "dpo")
_FIRST = ("magpie", "texts")  # the kinds that need no rows before them


class _Context:
    def __init__(self, out: Path, model: str, seed: int, progress: bool) -> None:
        self.out, self.model, self.seed, self.progress = out, model, seed, progress
        self.number = 0
        self.outputs: List[List[Row]] = []
        self.checkpoint: Optional[str] = None

    def latest(self, wanted: Callable[[Row], bool], what: str) -> List[Row]:
        for rows in reversed(self.outputs):
            if rows and wanted(rows[0]):
                return rows
        raise ValueError(f"step {self.number} needs {what} before it, and no earlier step made them.")


# ----------------------------------------------------------------------------------------------------- the recipe
def load_recipe(recipe: Union[str, os.PathLike, Mapping[str, Any]], *,
                changes: Sequence[str] = ()) -> Dict[str, Any]:
    """A recipe as a dict, checked: from a TOML file, the name of a shipped recipe (:data:`RECIPES`), or a dict.
    ``changes`` are ``KEY=VALUE`` settings applied first (``seed=1``, ``1.rows=4``: the first step's ``rows``;
    the value is read as TOML, so ``1.system_prompt="Be brief."`` needs the quotes).

    Raises ValueError naming the step, the key and the fix for an unknown kind, an unknown setting or a step that
    lacks the rows it reads, before anything runs.
    """
    if isinstance(recipe, Mapping):
        data = copy.deepcopy(dict(recipe))
    else:
        path = Path(recipe)
        if not path.exists() and (RECIPES / f"{recipe}.toml").exists():
            path = RECIPES / f"{recipe}.toml"
        if not path.exists():
            shipped = sorted(p.stem for p in RECIPES.glob("*.toml"))
            raise FileNotFoundError(f"recipe={str(recipe)!r}: no such file, and no shipped recipe of that name "
                                    f"(shipped: {', '.join(shipped)}).")
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as err:
            raise ValueError(f"recipe {path}: not valid TOML ({err}).") from None
        data.setdefault("name", path.stem)
    for change in changes:
        _apply(data, change)
    steps = data.get("step")
    if not isinstance(steps, list) or not steps:
        raise ValueError("a recipe needs steps: add [[step]] tables, each with a kind, e.g. [[step]] kind = "
                         f"\"magpie\" (kinds: {', '.join(STEPS)}).")
    unknown = sorted(set(data) - {"name", "model", "seed", "step", "description"})
    if unknown:
        raise ValueError(f"recipe: unknown top-level key(s) {unknown}; a recipe has name, description, model, seed "
                         "and [[step]] tables.")
    for number, step in enumerate(steps, start=1):
        kind = step.get("kind")
        if kind not in STEPS:
            raise ValueError(f"step {number}: kind={kind!r} is not one of {', '.join(STEPS)}.")
        if number == 1 and kind not in _FIRST:
            raise ValueError(f"step 1: a {kind!r} step reads the rows of a step before it; start with one of "
                             f"{', '.join(_FIRST)}.")
        if kind == "dpo" and not any(s.get("kind") == "preferences" for s in steps[:number - 1]):
            raise ValueError(f"step {number}: dpo trains on pairs; put a 'preferences' step before it.")
        allowed = _settings(kind)
        extra = sorted(k for k in step if k != "kind" and k not in allowed)
        if extra:
            import difflib

            close = sorted({m for k in extra for m in difflib.get_close_matches(k, allowed, n=2)})
            takes = ((f"did you mean {', '.join(close)}?" if close else "check the name") if len(allowed) > 25
                     else f"it takes {', '.join(sorted(allowed))}")
            raise ValueError(f"step {number} ({kind}): unknown setting(s) {extra}; {takes} (see {STEPS[kind][1]}"
                             f"{' and TRL' + chr(39) + 's config' if kind in _TRAINING else ''}).")
    return data


def _settings(kind: str) -> set:
    """The keys a step of ``kind`` accepts: its function's keyword arguments, minus what the recipe sets."""
    import importlib

    runner, target, _ = STEPS[kind]
    module, name = target.rsplit(".", 1)
    fn = getattr(importlib.import_module(module), name)
    names = {p.name for p in inspect.signature(fn).parameters.values()
             if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}
    own = {p.name for p in inspect.signature(runner).parameters.values() if p.kind is p.KEYWORD_ONLY
           or p.name.endswith("_")}
    names |= {n.rstrip("_") for n in own}
    if kind == "answers":  # generate() passes LocalLLM, run and generation settings through **kwargs
        from smolsynth.generation import _LLM_FIELDS, _RUN_FIELDS
        names |= set(_LLM_FIELDS) | set(_RUN_FIELDS) | {"top_p", "top_k", "repetition_penalty", "stop"}
    if kind in _TRAINING:  # sft()/dpo() pass the rest to TRL's config: learning_rate, per_device_train_batch_size, ...
        import dataclasses

        import trl

        names |= {f.name for f in dataclasses.fields(trl.SFTConfig if kind == "sft" else trl.DPOConfig)}
    return names - {"model", "seed", "progress", "output_dir", "path", "llm", "dataset", "data", "instructions",
                    "num_rows", "n", "self"}


def _apply(data: Dict[str, Any], change: str) -> None:
    key, sep, raw = change.partition("=")
    if not sep or not key.strip():
        raise ValueError(f"--set {change!r}: write KEY=VALUE, e.g. seed=1 or 1.rows=4 (step 1's rows).")
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw  # a bare word: a string
    parts = key.strip().split(".")
    if len(parts) == 2 and parts[0].isdigit():
        steps = data.get("step") or []
        index = int(parts[0]) - 1
        if not 0 <= index < len(steps):
            raise ValueError(f"--set {change!r}: the recipe has steps 1 to {len(steps)}.")
        steps[index][parts[1]] = value
    elif len(parts) == 1:
        data[parts[0]] = value
    else:
        raise ValueError(f"--set {change!r}: KEY is a top-level key (seed) or <step number>.<setting> (1.rows).")


# ------------------------------------------------------------------------------------------------------ running
def run_recipe(recipe: Union[str, os.PathLike, Mapping[str, Any]], out: Union[str, os.PathLike], *,
               changes: Sequence[str] = (), model: Optional[str] = None, progress: bool = True) -> Dict[str, Any]:
    """Run ``recipe`` into the folder ``out`` (resuming what an earlier run there finished); returns the run record
    (also in ``out/run.json``) and prints the summary table.

    >>> run_recipe("course", "runs/course", changes=["1.rows=4"])  # doctest: +SKIP
    """
    import smolsynth
    from smolsynth.cache import fingerprint
    from smolsynth.models import resolve_model

    check_path("out", out)
    data = load_recipe(recipe, changes=changes)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model_id = resolve_model(model or data.get("model") or None, offline_fallback=True)
    seed = int(data.get("seed", 0))
    key = fingerprint({"recipe": data, "model": model_id})
    record_path = out / RUN_FILE
    record = json.loads(record_path.read_text(encoding="utf-8")) if record_path.exists() else None
    if record is not None and record.get("key") != key:
        raise ValueError(f"out={str(out)!r} holds a run of another recipe or model ({record.get('name')!r} on "
                         f"{record.get('model')!r}): pass another folder, or delete this one to start over.")
    if record is None:
        record = {"format": FORMAT, "key": key, "name": data.get("name"), "model": model_id, "seed": seed,
                  "smolsynth": smolsynth.__version__, "started": time.strftime("%Y-%m-%d %H:%M:%S"), "steps": []}
        atomic_write(out / "recipe.toml", _to_toml(data))
    ctx = _Context(out, model_id, seed, progress)
    reports: List[Report] = []
    print(f"smolsynth run {data.get('name')}: {len(data['step'])} steps on {model_id} -> {out}/")
    for number, step in enumerate(data["step"], start=1):
        ctx.number = number
        kind = step["kind"]
        params = {("rows_" if k == "rows" else k): v for k, v in step.items() if k != "kind"}
        done = next((s for s in record["steps"] if s["number"] == number and s["status"] == "done"), None)
        if done is not None:
            print(f"step {number} ({kind}): done before, read back from {done['output']}")
            reports.append(Report(**{k: v for k, v in done["report"].items() if k != "tokens_per_second"}))
            if kind in _TRAINING:
                ctx.checkpoint = done["output"] if kind == "sft" else ctx.checkpoint
            else:
                ctx.outputs.append(read_jsonl(out / done["output"]))
            continue
        started = time.perf_counter()
        rows = ctx.outputs[-1] if ctx.outputs else None
        result = STEPS[kind][0](rows, ctx, **params)
        reports.append(result.report)
        entry = {"number": number, "kind": kind, "status": "done", "report": _report_dict(result.report),
                 "seconds": round(time.perf_counter() - started, 1)}
        if kind in _TRAINING:
            entry["output"] = result.output_dir
            entry["metrics"] = result.metrics
            entry["train_seconds"] = round(result.train_seconds, 2)
            if kind == "sft":
                ctx.checkpoint = result.output_dir
        else:
            name = f"{number}-{kind}.jsonl"
            write_jsonl(out / name, result.rows)
            write_jsonl(out / f"{number}-{kind}.dropped.jsonl", result.dropped_rows)
            entry["output"] = name
            ctx.outputs.append(read_jsonl(out / name))  # what a resumed run reads: the same for both
        record["steps"] = [s for s in record["steps"] if s["number"] != number] + [entry]
        atomic_write(record_path, json.dumps(record, indent=1, default=str))
    record["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
    atomic_write(record_path, json.dumps(record, indent=1, default=str))
    table = str(Report.combine(reports))
    atomic_write(out / "summary.md", f"# {data.get('name')}\n\nModel: `{model_id}`, seed {seed}.\n\n```\n{table}\n```\n")
    print(table)
    return record


def _report_dict(report: Report) -> Dict[str, Any]:
    return json.loads(json.dumps(report.as_dict(), default=str))


def _to_toml(data: Mapping[str, Any]) -> str:
    """The recipe as TOML again (top-level scalars, then the [[step]] tables): what ran, for the record."""
    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return repr(v)
        if isinstance(v, str):
            return json.dumps(v, ensure_ascii=False)
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(value(x) for x in v) + "]"
        if isinstance(v, Mapping):
            return "{" + ", ".join(f"{json.dumps(str(k))} = {value(x)}" for k, x in v.items()) + "}"
        raise TypeError(f"cannot write {type(v).__name__} as TOML")

    lines = [f"{k} = {value(v)}" for k, v in data.items() if k != "step"]
    for step in data["step"]:
        lines += ["", "[[step]]"] + [f"{k} = {value(v)}" for k, v in step.items()]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------------ the estimate
PILOT_ROWS = 10
"""Rows of the first step in the pilot run that :func:`estimate_recipe` extrapolates from."""
STEP_COST_ROWS = {1: 26, 2: 20}
"""A batch of ``b`` rows costs about ``1 + b / STEP_COST_ROWS[threads]`` times a batch of one row on a CPU: the
decoding steps are the fixed part (the weights are read once a step, whatever the batch), each row adds its prefill
and its share of the steps (finished rows leave the batch). Fitted on SmolLM2-135M, Magpie and answers at 10, 20 and
40 rows in one batch each: k = 23 and 18 at 2 torch threads, 30 and 22 at 1 (``benchmarks/bench_estimate.py
--fit``; benchmarks/README.md)."""
T4_SPEEDUP = 3.5
"""Tokens per second of a Colab T4 on the GPU profile's default model (SmolLM2-1.7B, fp16) over this 2-core CPU's on
SmolLM2-135M: an estimate from memory bandwidth, not a measurement (notebooks/manifest.toml says why)."""


class Estimate:
    """What :func:`estimate_recipe` expects of the full run: per step, rows in and out, tokens and minutes; in all,
    minutes and the peak memory of the process; and the pilot it came from."""

    def __init__(self, name: str, steps: List[Dict[str, Any]], peak_memory_gb: float, pilot_rows: int,
                 pilot_seconds: float) -> None:
        self.name, self.steps, self.peak_memory_gb = name, steps, peak_memory_gb
        self.pilot_rows, self.pilot_seconds = pilot_rows, pilot_seconds

    @property
    def minutes(self) -> float:
        return round(sum(s["minutes"] for s in self.steps), 1)

    @property
    def tokens(self) -> int:
        return int(sum(s["tokens"] for s in self.steps))

    def __str__(self) -> str:
        lines = [f"Estimate for {self.name} (from a pilot of {self.pilot_rows} rows, {self.pilot_seconds:.0f} s):",
                 f"{'step':<22}{'rows in':>9}{'rows out':>10}{'tokens':>10}{'minutes':>9}"]
        for s in self.steps:
            lines.append(f"{s['step']:<22}{s['rows_in']:>9.0f}{s['rows_out']:>10.0f}{s['tokens']:>10.0f}"
                         f"{s['minutes']:>9.1f}")
        lines.append(f"total: about {self.minutes} minutes, {self.tokens} tokens, peak memory about "
                     f"{self.peak_memory_gb:.1f} GB on this machine")
        generation = sum(s["minutes"] for s in self.steps if s["kind"] not in _TRAINING + ("load",))
        lines.append(f"on a Colab T4 (fp16, SmolLM2-1.7B): generation about {generation / T4_SPEEDUP:.1f} minutes "
                     f"instead of {generation:.1f} (an estimate: {T4_SPEEDUP}x the tokens per second, not measured)")
        return "\n".join(lines)

    __repr__ = __str__


def _batch_cost(rows: float, batch: int) -> float:
    """Decoding cost of ``rows`` sequences in batches of ``batch``, in single-sequence steps (see STEP_COST_ROWS)."""
    import math

    import torch

    if rows <= 0:
        return 0.0
    k = STEP_COST_ROWS[min(max(torch.get_num_threads(), 1), 2)]
    full, rest = divmod(math.ceil(rows), batch)
    return full * (1 + batch / k) + (1 + rest / k if rest else 0.0)


def estimate_recipe(recipe: Union[str, os.PathLike, Mapping[str, Any]], *, changes: Sequence[str] = (),
                    model: Optional[str] = None, pilot_rows: int = PILOT_ROWS) -> Estimate:
    """Run a pilot of the recipe (its first step on ``pilot_rows`` rows, training steps for 2 steps) in a scratch
    folder, and extrapolate it to the full run: rows through each step by the pilot's keep rates, tokens in
    proportion, minutes by the batches a CPU decodes (:data:`STEP_COST_ROWS`), training by its seconds per step.
    Returns an :class:`Estimate` (print it). Nothing of the pilot is kept but the result cache.

    >>> print(estimate_recipe("instructions", changes=["1.rows=200"]))  # doctest: +SKIP
    """
    import contextlib
    import io
    import math
    import resource
    import tempfile

    from smolsynth.llm import default_batch_size
    from smolsynth.models import resolve_model

    data = load_recipe(recipe, changes=changes)
    steps = data["step"]
    full_rows = float(steps[0].get("rows", 8 if steps[0]["kind"] == "magpie" else 16))
    pilot = copy.deepcopy(data)
    pilot["step"][0]["rows"] = int(min(full_rows, pilot_rows))
    for step in pilot["step"]:
        if step["kind"] in _TRAINING:
            step["max_steps"] = min(int(step.get("max_steps") or 2), 2)
        else:
            step["cache"] = False  # the pilot's time is what it measures: nothing from the cache
    model_id = resolve_model(model or data.get("model") or None, offline_fallback=True)
    batch = default_batch_size(model_id)
    from smolsynth.llm import LocalLLM

    loading = time.perf_counter()
    LocalLLM(model_id).load()  # once per process, in the pilot as in the run: counted once, not extrapolated
    load_seconds = time.perf_counter() - loading
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="smolsynth-pilot-") as scratch, \
            contextlib.redirect_stdout(io.StringIO()):
        record = run_recipe(pilot, Path(scratch) / "run", model=model_id, progress=False)
    pilot_seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20  # KB -> GB (Linux)
    rows_in = full_rows
    out: List[Dict[str, Any]] = [{"step": "load the model", "kind": "load", "rows_in": 0, "rows_out": 0, "tokens": 0,
                                  "minutes": load_seconds / 60}]
    for step, done in zip(steps, record["steps"]):
        report = done["report"]
        tokens = report["input_tokens"] + report["output_tokens"]
        if step["kind"] in _TRAINING:
            full_steps = int(step.get("max_steps") or 0) or math.ceil(
                (done["metrics"].get("train_steps") or 1) * rows_in / max(report["rows_in"], 1))
            per_step = done.get("train_seconds", report["seconds"]) / max(done["metrics"].get("train_steps") or 1, 1)
            overhead = max(report["seconds"] - done.get("train_seconds", report["seconds"]), 0.0)
            out.append({"step": report["step"], "kind": step["kind"], "rows_in": rows_in, "rows_out": rows_in,
                        "tokens": 0, "minutes": (overhead + per_step * full_steps) / 60})
            continue
        scale = rows_in / max(report["rows_in"], 1)
        keep = report["rows_out"] / max(report["rows_in"], 1)
        cost = _batch_cost(rows_in, batch) / max(_batch_cost(report["rows_in"], batch), 1e-9)
        out.append({"step": report["step"], "kind": step["kind"], "rows_in": rows_in, "rows_out": rows_in * keep,
                    "tokens": tokens * scale, "minutes": report["seconds"] * cost / 60})
        rows_in = rows_in * keep
    return Estimate(str(data.get("name")), out, peak, pilot["step"][0]["rows"], pilot_seconds)
