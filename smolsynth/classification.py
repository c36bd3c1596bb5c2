"""Text-classification data: labelled texts written by a model, checked for duplicates and label conflicts,
re-labelled, and a small encoder trained on them and tested on real text (notebook 05).

The method, in the order the functions run::

    assign(labels, n)            a label per row, balanced and seeded, with a category/type, difficulty and clarity
                                 drawn at random per row: the model cannot write the same text for every row
      └─► generate_texts(...)    a model writes, for each row, its reasoning and then a text for the assigned label
                                 (JSON-constrained: every row parses), several generators, appended to a CSV file
                                 batch by batch and resumed from it after an interruption
            ├─► duplicates_by_generator(...)   exact and near duplicate rate per generator
            ├─► label_conflicts(...) / resolve_conflicts(...)   the same (or near-same) text under two labels
            ├─► relabel(...) / agreement(...)  a second pass labels every text, constrained to the label set:
            │                                  agreement rate and confusion matrix
            └─► split(...) ─► train_classifier(...) ─► evaluate_classifier(...) on the synthetic test split and
                                 on 80 messages written apart from the generator (real_messages()): the gap is the lesson

Why not distilabel's ``GenerateTextClassificationData`` (from "Improving Text Embeddings with Large Language Models",
Wang et al. 2024)? It asks the model to invent an example *and choose its label* from a task description: the
labels' balance is then the model's whim, there are no label descriptions, no category to steer the topic, and no
reasoning field. :class:`WriteLabelledText` keeps its knobs (the paper's difficulty and clarity values, sampled per
row) and assigns the label instead. The re-labelling pass is distilabel's own ``TextClassification`` task (label
descriptions in the prompt), with its output constrained to the label set.

    >>> [row["label"] for row in assign({"a": "first", "b": "second"}, 4, seed=0)]
    ['a', 'a', 'b', 'b']
"""

from __future__ import annotations

import csv
import io
import json
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from smolsynth.arguments import check_number, check_text
from smolsynth.grammar import length_pattern
from smolsynth.preferences import Generator
from smolsynth.report import Report, count_reasons
from smolsynth.rows import Result, Row, as_rows
from smolsynth.stats import near_duplicates, normalize_text
from smolsynth.verbosity import import_distilabel

__all__ = ["CLARITIES", "DEFAULT_WRITERS", "DIFFICULTIES", "SUPPORT_CATEGORIES", "SUPPORT_LABELS", "SUPPORT_TASK",
           "UNCLEAR", "WRITTEN_CHARS", "Classifier", "ClassifierEvaluation", "LabelAgreement", "WriteLabelledText",
           "agreement", "assign", "check_labels", "duplicates_by_generator", "evaluate_classifier", "generate_texts",
           "label_conflicts", "plot_balance", "real_messages", "relabel", "resolve_conflicts", "split",
           "train_classifier"]

# ------------------------------------------------------------------------------------------------ the course's task
SUPPORT_TASK = "A customer writes to the support team of an online store"
"""Who writes the course's texts, to whom: the prompt goes on "... about their <type> (<category>)"."""

SUPPORT_LABELS: Dict[str, str] = {
    "billing": "charges, invoices, refunds and payment methods: anything about the customer's money",
    "delivery": "where an order is: late, lost or stolen parcels, tracking, shipping addresses and delivery dates",
    "product_issue": "something the customer received is broken, damaged, missing parts, the wrong item, or not as "
                     "described",
    "account": "logging in, passwords, the email or profile on the account, newsletters, and closing the account",
}
"""The course's labels, each with the one-line description the prompts show (and ``real_messages`` follows)."""

SUPPORT_CATEGORIES: Dict[str, List[str]] = {
    "electronics": ["headphones", "laptop", "phone charger"],
    "home and kitchen": ["blender", "sofa", "coffee maker"],
    "clothing": ["winter jacket", "running shoes", "jeans"],
    "toys and games": ["board game", "kids' bike", "puzzle"],
    "beauty": ["shampoo", "perfume", "hair dryer"],
}
"""Categories and their types (what the message is about), drawn at random per row for diversity."""

DIFFICULTIES = ("high school", "college", "PhD")
"""The education level a text requires, as in Wang et al. 2024 (distilabel's ``GenerateTextClassificationData``)."""

CLARITIES = ("clear", "understandable with some effort", "ambiguous")
"""How clear a text is, as in Wang et al. 2024. The default is "clear" alone: an ambiguous text under an assigned
label is a label conflict in the making; pass ``clarities=CLARITIES`` to include hard cases on purpose.

Neither knob is on by default for difficulty: on SmolLM2-135M the sentence "It requires high school level education
to comprehend" made texts *about* education ("This is a high school level educational text"); pass
``difficulties=DIFFICULTIES`` with a larger model."""

UNCLEAR = "unclear"
"""What the re-labelling pass may answer when no label fits (distilabel's ``default_label``)."""

DEFAULT_WRITERS: Tuple[Generator, ...] = (Generator(temperature=1.0, name="T=1.0"),
                                          Generator(temperature=0.7, name="T=0.7"))
"""Two writers from one set of weights (sampling at 1.0 and at 0.7): what fits on a laptop. Published duplicate rates
differ far more between *models* (0.04%, 7% and 94.6% for three 7-9B models, same prompts): pass
``Generator(model=...)`` entries with other models when you can."""

TEXT_CHARS = 360
REASONING_CHARS = 200
_DATA = Path(__file__).parent / "data"


def check_labels(labels: Any, *, argument: str = "labels") -> Dict[str, str]:
    """``labels`` as a dict label -> one-line description, or a ValueError that says what to fix.

    >>> check_labels({"spam": "unwanted ads", "ham": "a message a person wants"})["spam"]
    'unwanted ads'
    """
    if not isinstance(labels, Mapping) or len(labels) < 2:
        raise ValueError(f"{argument}= should be a dict of at least two labels, each with a one-line description, "
                         f"e.g. {{'billing': 'charges and refunds', 'delivery': 'where an order is'}}; got {labels!r}.")
    out: Dict[str, str] = {}
    for label, description in labels.items():
        if not isinstance(label, str) or not label.strip() or label != label.strip():
            raise ValueError(f"{argument}: the label {label!r} should be a non-empty string without surrounding "
                             "spaces.")
        if label == UNCLEAR:
            raise ValueError(f"{argument}: {UNCLEAR!r} is reserved for the re-labelling pass's 'no label fits'; "
                             "rename that label.")
        if not isinstance(description, str) or not description.strip() or "\n" in description.strip():
            raise ValueError(f"{argument}[{label!r}] should be a one-line description of the label (what texts "
                             f"with it are about); got {description!r}.")
        out[label] = description.strip()
    return out


def _check_categories(categories: Any) -> Dict[str, List[str]]:
    if not isinstance(categories, Mapping) or not categories:
        raise ValueError("categories= should be a dict category -> list of types, e.g. {'electronics': "
                         f"['headphones', 'laptop'], 'clothing': ['jeans']}}; got {categories!r}.")
    out: Dict[str, List[str]] = {}
    for category, types in categories.items():
        check_text("categories (a category)", category)
        if isinstance(types, str) or not isinstance(types, Sequence) or not types \
                or not all(isinstance(t, str) and t.strip() for t in types):
            raise ValueError(f"categories[{category!r}] should be a non-empty list of types (strings); got {types!r}.")
        out[category] = [t.strip() for t in types]
    return out


# ------------------------------------------------------------------------------------------------------ assignment
def assign(labels: Mapping[str, str], n: int, *, categories: Optional[Mapping[str, Sequence[str]]] = None,
           difficulties: Sequence[str] = (), clarities: Sequence[str] = CLARITIES[:1],
           seed: int = 0) -> List[Row]:
    """``n`` rows to write, each with an ``id``, a ``label`` (every label ``n // len(labels)`` times, the remainder
    drawn without repeats, all shuffled), and a ``category``/``type``, ``difficulty`` and ``clarity`` drawn at random
    per row (``difficulty`` is None when ``difficulties`` is empty). The same arguments give the same rows.

    >>> assign({"a": "first", "b": "second"}, 3, categories={"pets": ["cat"]}, seed=1)[0]["type"]
    'cat'
    """
    labels = check_labels(labels)
    check_number("n", n, minimum=1, integer=True)
    categories = _check_categories(categories if categories is not None else SUPPORT_CATEGORIES)
    for name, values, example in (("difficulties", difficulties, DIFFICULTIES[:2]), ("clarities", clarities,
                                                                                     CLARITIES[:2])):
        if isinstance(values, str) or not all(isinstance(v, str) and v.strip() for v in values) \
                or (name == "clarities" and not values):
            raise ValueError(f"{name}= should be a list of strings, e.g. {list(example)}; got {values!r}.")
    rng = random.Random(seed)
    names = list(labels)
    drawn = names * (n // len(names)) + rng.sample(names, n % len(names))
    rng.shuffle(drawn)
    rows = []
    for i, label in enumerate(drawn):
        category = rng.choice(sorted(categories))
        rows.append({"id": i, "label": label, "category": category, "type": rng.choice(categories[category]),
                     "difficulty": rng.choice(list(difficulties)) if difficulties else None,
                     "clarity": rng.choice(list(clarities))})
    return rows


# ------------------------------------------------------------------------------------------------- the writing task
_PROMPT = """{task} about their {type} ({category}). The message is about {description}.

Write the message, in the first person, {clarity} and short.{difficulty}
Answer in JSON: first "reasoning": one sentence on why the message is about {label}, then "text": the message."""


WRITTEN_CHARS = r'[^\[\]{}<>*_"\\\x00-\x1f]'
"""The characters a written field may hold: no brackets, braces, angle brackets, ``*``, ``_``, quotes, backslashes or
control characters. Without this SmolLM2-135M writes placeholders (``[customer's benefit here]``: 2 of 15 kept texts,
2026-12-02); a customer's message has no use for them (``#`` stays allowed: "order #1234"), and without quotes and
backslashes a JSON string's length is its text's length."""


def _bounded(low: int, high: int) -> Tuple[str, int]:
    """A pattern for ``low`` to ``high`` characters of :data:`WRITTEN_CHARS` (see :func:`smolsynth.grammar.length_pattern`)."""
    return length_pattern(WRITTEN_CHARS, low, high)


def text_schema(*, text_chars: int = TEXT_CHARS, reasoning_chars: int = REASONING_CHARS) -> Dict[str, Any]:
    """The JSON schema every written row follows: ``reasoning`` first, then ``text``, each held by a pattern to
    :data:`WRITTEN_CHARS` and to a length (``minLength``/``maxLength`` say which; the engine compiles the pattern).

    >>> [(f["minLength"], f["maxLength"]) for f in text_schema()["properties"].values()]
    [(21, 200), (21, 360)]
    """
    def field(low: int, high: int) -> Dict[str, Any]:
        pattern, low = _bounded(low, high)
        return {"type": "string", "minLength": low, "maxLength": high, "pattern": pattern}

    return {"type": "object", "properties": {"reasoning": field(10, reasoning_chars), "text": field(12, text_chars)},
            "required": ["reasoning", "text"]}


def _task_class():
    from smolsynth.verbosity import quiet_subclassing

    Task = import_distilabel("distilabel.steps.tasks").Task
    with quiet_subclassing():
        return _define(Task)


def _define(Task: Any) -> type:
    class WriteLabelledText(Task):
        """A distilabel Task: write a text for an assigned label (see the module docstring).

        Input columns: ``label``, ``category``, ``type``, ``difficulty``, ``clarity``. Output columns:
        ``reasoning``, ``text`` (None when the output does not parse), ``model_name``.
        """

        task_description: str = SUPPORT_TASK
        labels: Dict[str, str] = dict(SUPPORT_LABELS)
        system_prompt: Optional[str] = None

        @property
        def inputs(self) -> List[str]:
            return ["label", "category", "type", "difficulty", "clarity"]

        @property
        def outputs(self) -> List[str]:
            return ["reasoning", "text", "model_name"]

        def format_input(self, input: Dict[str, Any]) -> List[Dict[str, str]]:
            level = input.get("difficulty")
            content = _PROMPT.format(task=self.task_description, description=self.labels[input["label"]],
                                     difficulty=f" It requires {level} level education to comprehend." if level
                                     else "", **{k: input[k] for k in ("label", "category", "type", "clarity")})
            messages = [{"role": "user", "content": content}]
            if self.system_prompt:
                messages.insert(0, {"role": "system", "content": self.system_prompt})
            return messages

        def format_output(self, output: Optional[str], input: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
            try:
                parsed = json.loads(output or "")
                reasoning, text = parsed["reasoning"].strip(), parsed["text"].strip()
            except (ValueError, KeyError, TypeError, AttributeError):
                return {"reasoning": None, "text": None}
            return {"reasoning": reasoning, "text": text}

    WriteLabelledText.__module__ = __name__
    WriteLabelledText.__qualname__ = "WriteLabelledText"
    return WriteLabelledText


def __getattr__(name: str) -> Any:  # WriteLabelledText subclasses distilabel's Task: built on first use
    if name == "WriteLabelledText":
        cls = _task_class()
        globals()[name] = cls
        from smolsynth.runner import register_validator

        register_validator(cls)(_text_finished)
        return cls
    raise AttributeError(name)


def _text_finished(row: Row, task: Any) -> Optional[str]:
    """A text without a word is ``empty_output``; a text (or reasoning) as long as its schema allows was cut there by
    the grammar (its ``maxLength`` in the LLM's schema, :func:`text_schema`), and one whose JSON the engine closed
    because the token budget ran out (finish reason ``"closed"``) may be cut anywhere: both are ``truncated``."""
    from smolsynth.gates import truncated
    from smolsynth.runner import DISTILABEL_METADATA

    if not normalize_text(row.get("text") or ""):
        return "empty_output"
    if truncated(row.get(DISTILABEL_METADATA), reasons=("closed",)):
        return "truncated"
    schema = (getattr(task.llm, "structured_output", None) or {}).get("schema") or {}
    for column, spec in schema.get("properties", {}).items():
        limit = spec.get("maxLength")
        if limit and len(row.get(column) or "") >= limit - 1:
            return "truncated"
    return None


# ----------------------------------------------------------------------------------------- the resumable CSV file
_COLUMNS = ("id", "label", "category", "type", "difficulty", "clarity", "generator", "model_name", "reasoning", "text")


class _Journal:
    """``path`` (the kept rows, CSV) plus ``path.dropped.jsonl`` and ``path.progress``: one line per finished batch
    with the byte sizes of both files after it. Only what a journal line covers counts as written; on resume, both
    files are cut back to the last line (a batch cut off by kill -9 is computed again, whole)."""

    def __init__(self, path: Path, config_key: str) -> None:
        self.path = path
        self.dropped_path = path.with_name(path.name + ".dropped.jsonl")
        self.progress_path = path.with_name(path.name + ".progress")
        self.done: Dict[str, Tuple[int, int]] = {}
        if self.progress_path.exists():
            lines = self.progress_path.read_text(encoding="utf-8").split("\n")
            entries = [json.loads(line) for line in lines[:-1] if line.strip()]  # the last piece: unfinished
            if entries and entries[0].get("config") != config_key:
                raise ValueError(f"path={str(path)!r} holds a run with other settings (labels, generators, seed, "
                                 "...): pass another path, or delete the file and its .progress/.dropped.jsonl "
                                 "files to start over.")
            self.done = {e["batch"]: (e["kept_bytes"], e["dropped_bytes"]) for e in entries[1:]}
            kept_bytes, dropped_bytes = (max(v) for v in zip(*self.done.values())) if self.done else (0, 0)
            _cut(self.path, kept_bytes)
            _cut(self.dropped_path, dropped_bytes)
            self.progress_path.write_text("\n".join(lines[:len(entries)]) + "\n", encoding="utf-8")
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            for p in (self.path, self.dropped_path):
                p.unlink(missing_ok=True)
            self.progress_path.write_text(json.dumps({"config": config_key}) + "\n", encoding="utf-8")

    def read(self) -> Tuple[List[Row], List[Row]]:
        kept: List[Row] = []
        if self.path.exists() and self.path.stat().st_size:
            with open(self.path, newline="", encoding="utf-8") as fh:
                # CSV has no None: an empty cell is None again (a kept row's text and reasoning are never empty)
                kept = [{**{k: v if v != "" else None for k, v in r.items()}, "id": int(r["id"])}
                        for r in csv.DictReader(fh)]
        dropped = [json.loads(line) for line in self.dropped_path.read_text(encoding="utf-8").splitlines()
                   if line.strip()] if self.dropped_path.exists() else []
        return kept, dropped

    def append(self, batch: str, kept: List[Row], dropped: List[Row]) -> None:
        new = not self.path.exists() or self.path.stat().st_size == 0
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=_COLUMNS, extrasaction="ignore", lineterminator="\n")
        if new:
            writer.writeheader()
        writer.writerows(kept)
        _append(self.path, buffer.getvalue())
        _append(self.dropped_path, "".join(json.dumps(r, default=str) + "\n" for r in dropped))
        entry = {"batch": batch, "kept_bytes": self.path.stat().st_size,
                 "dropped_bytes": self.dropped_path.stat().st_size}
        _append(self.progress_path, json.dumps(entry) + "\n")
        self.done[batch] = (entry["kept_bytes"], entry["dropped_bytes"])


def _append(path: Path, text: str) -> None:
    with open(path, "a", encoding="utf-8", newline="") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())


def _cut(path: Path, size: int) -> None:
    if path.exists():
        with open(path, "r+b") as fh:
            fh.truncate(size)


# ------------------------------------------------------------------------------------------------------ generation
def generate_texts(
    labels: Mapping[str, str] = SUPPORT_LABELS,
    n: int = 48,
    *,
    task: str = SUPPORT_TASK,
    categories: Optional[Mapping[str, Sequence[str]]] = None,
    difficulties: Sequence[str] = (),
    clarities: Sequence[str] = CLARITIES[:1],
    generators: Sequence[Generator] = DEFAULT_WRITERS,
    model: Optional[str] = None,
    path: Optional[str | os.PathLike] = None,
    max_new_tokens: int = 192,
    text_chars: int = TEXT_CHARS,
    reasoning_chars: int = REASONING_CHARS,
    seed: int = 0,
    batch_size: int = 8,
    progress: bool = True,
    cache: bool = True,
    cache_dir: Optional[str] = None,
    allow_truncated: bool = False,
) -> Result:
    """Write ``n`` labelled texts: :func:`assign` the rows, then each generator (in turn, row ``i`` to generator
    ``i % len(generators)``) writes its rows with :class:`WriteLabelledText`, JSON-constrained.

    Args:
        labels: label -> one-line description (each row's prompt shows its assigned label's description).
        n: rows to write (some may be dropped: ``.report`` says why).
        task: who writes to whom, completed by "about their <type> (<category>)": e.g.
            ``"A customer writes to the support team of an online store"``, ``"A diner reviews a restaurant"``.
        categories: category -> types the texts are about (default :data:`SUPPORT_CATEGORIES`).
        difficulties, clarities: the knobs drawn per row.
        generators: who writes: :class:`~smolsynth.preferences.Generator` entries (a model, a system prompt,
            sampling settings); default two temperatures of the course model.
        model: the course model (``$SMOLSYNTH_MODEL`` or the hardware profile's) for generators without one.
        path: a ``.csv`` file the kept rows are appended to, batch by batch (dropped rows go to
            ``<path>.dropped.jsonl``, progress to ``<path>.progress``). Calling again with the same path and
            settings resumes: finished batches are read back, not written again. ``.parquet`` is not appendable:
            write ``result.dataset.to_parquet(...)`` at the end.
        max_new_tokens: token budget per row (reasoning and text together).
        text_chars, reasoning_chars: the longest text and reasoning the grammar allows; one that reaches its
            limit was cut there and is dropped as ``truncated``.
        seed: the assignment's seed and the sampling seed.
        batch_size: rows per batch (per model call, and per append to ``path``).
        allow_truncated: keep rows dropped as ``truncated`` (cut off by a length limit or the token budget). Never
            for data: the tiny random model's texts never end by themselves, so only its plumbing runs need it.

    Returns:
        A :class:`~smolsynth.rows.Result` whose rows have ``id``, ``label``, ``category``, ``type``,
        ``difficulty``, ``clarity``, ``generator``, ``model_name``, ``reasoning`` and ``text``.

    >>> generate_texts(n=8, path="texts.csv").dataset.to_pandas().label.value_counts()  # doctest: +SKIP
    """
    from smolsynth.cache import fingerprint
    from smolsynth.llm import LocalLLM
    from smolsynth.models import resolve_model
    from smolsynth.runner import run
    from smolsynth.verbosity import quiet_distilabel

    labels = check_labels(labels)
    check_text("task", task)
    check_number("max_new_tokens", max_new_tokens, minimum=16, integer=True)
    check_number("batch_size", batch_size, minimum=1, integer=True)
    check_number("text_chars", text_chars, minimum=60, integer=True)
    check_number("reasoning_chars", reasoning_chars, minimum=60, integer=True)
    if isinstance(generators, Generator) or not generators or not all(isinstance(g, Generator) for g in generators):
        raise ValueError("generators= should be a non-empty list of smolsynth.preferences.Generator, e.g. "
                         "[Generator(temperature=1.0, name='hot'), Generator(model='Qwen/Qwen2.5-0.5B-Instruct')].")
    if path is not None and Path(path).suffix.lower() != ".csv":
        raise ValueError(f"path={str(path)!r} should be a .csv file (appended to batch by batch); for Parquet, write "
                         "result.dataset.to_parquet(...) when the run is done.")
    rows = assign(labels, n, categories=categories, difficulties=difficulties, clarities=clarities, seed=seed)
    course_model = resolve_model(model)
    writers = [(g, g.model or course_model) for g in generators]
    names = [g.label(m) for g, m in writers]
    if len(set(names)) < len(names):
        raise ValueError(f"generators= has two writers with the same label {names}: give them different names "
                         "(Generator(name=...)) so their rows can be told apart.")
    schema = text_schema(text_chars=text_chars, reasoning_chars=reasoning_chars)
    settings = dict(labels=labels, task=task, rows=rows, writers=[(vars(g), m) for g, m in writers],
                    max_new_tokens=max_new_tokens, schema=schema, seed=seed, batch_size=batch_size,
                    allow_truncated=allow_truncated)
    journal = _Journal(Path(path), fingerprint(settings)) if path is not None else None

    Writer = __getattr__("WriteLabelledText")
    started = time.perf_counter()
    kept: List[Row] = []
    dropped: List[Row] = []
    tokens = [0, 0]
    resumed = 0
    done_kept, done_dropped = journal.read() if journal else ([], [])
    by_id = {r["id"]: r for r in done_kept + done_dropped}

    from tqdm.auto import tqdm

    bar = tqdm(total=len(rows), desc="generate_texts", unit="row", disable=not progress, leave=True)
    try:
        for g, ((generator, writer_model), name) in enumerate(zip(writers, names)):
            mine = [{**r, "generator": name} for r in rows if r["id"] % len(writers) == g]
            with quiet_distilabel():
                llm = LocalLLM(writer_model, seed=seed, structured_output={"format": "json", "schema": schema},
                               generation_kwargs={"max_new_tokens": generator.max_new_tokens or max_new_tokens,
                                                  "temperature": generator.temperature,
                                                  "repetition_penalty": generator.repetition_penalty})
                writer = Writer(llm=llm, task_description=task, labels=labels, system_prompt=generator.system_prompt)
            for start in range(0, len(mine), batch_size):
                batch = mine[start:start + batch_size]
                key = f"{g}:{start}"
                if journal and key in journal.done:
                    old = [by_id[r["id"]] for r in batch if r["id"] in by_id]
                    kept += [r for r in old if "reason" not in r]
                    dropped += [r for r in old if "reason" in r]
                    resumed += len(batch)
                    bar.update(len(batch))
                    continue
                result = run(writer, batch, batch_size=batch_size, progress=False, cache=cache, cache_dir=cache_dir,
                             desc=f"write ({name})")
                cut = [r for r in result.dropped_rows if allow_truncated and r["reason"] == "truncated"]
                new_kept = [{c: r.get(c) for c in _COLUMNS} for r in sorted(result.rows + cut, key=lambda r: r["id"])]
                new_dropped = [{**{c: r.get(c) for c in _COLUMNS if c in r}, "reason": r["reason"],
                                **({"error": r["error"]} if "error" in r else {})}
                               for r in result.dropped_rows if r not in cut]
                if journal:
                    journal.append(key, new_kept, new_dropped)
                kept += new_kept
                dropped += new_dropped
                tokens[0] += result.report.input_tokens
                tokens[1] += result.report.output_tokens
                bar.update(len(batch))
    finally:
        bar.close()
    kept.sort(key=lambda r: r["id"])
    report = Report("generate_texts", rows_in=len(rows), rows_out=len(kept), dropped=count_reasons(dropped),
                    input_tokens=tokens[0], output_tokens=tokens[1], seconds=round(time.perf_counter() - started, 3),
                    cached_rows=resumed, model=", ".join(sorted({m for _, m in writers})))
    return Result(kept, dropped, report, params={"labels": labels, "task": task, "n": n, "seed": seed,
                                                 "generators": names, "path": str(path) if path else None})


# -------------------------------------------------------------------------------------- duplicates and conflicts
def _texts(data: Any, fn: str) -> List[Row]:
    rows = as_rows(data.rows if isinstance(data, Result) else data, argument="data")
    missing = [i for i, r in enumerate(rows) if not isinstance(r.get("text"), str) or not isinstance(r.get("label"),
                                                                                                    str)]
    if missing:
        raise ValueError(f"{fn}(): row {missing[0]} has no 'text' and 'label' strings; pass the result of "
                         "generate_texts(...) (or rows with 'text' and 'label').")
    return rows


def duplicates_by_generator(data: Any, *, threshold: float = 0.7):
    """Per generator: rows, exact duplicates (same text after :func:`~smolsynth.stats.normalize_text`) and near
    duplicates (word 3-gram Jaccard similarity ``>= threshold`` with an earlier text of the same generator), as a
    DataFrame with rates in percent, one row per generator plus ``all``.

    >>> duplicates_by_generator([{"text": "Hi there", "label": "a", "generator": "g"}] * 2)["exact %"].tolist()
    [50.0, 50.0]
    """
    import pandas as pd

    rows = _texts(data, "duplicates_by_generator")
    groups: Dict[str, List[str]] = {}
    for r in rows:
        groups.setdefault(str(r.get("generator", "all")), []).append(r["text"])
    table = []
    for name, texts in [*sorted(groups.items()), ("all", [r["text"] for r in rows])]:
        if name == "all" and len(groups) == 1 and "all" in groups:
            continue
        seen: set = set()
        exact = 0
        for t in texts:
            exact += normalize_text(t) in seen
            seen.add(normalize_text(t))
        near = sum(m is not None for m in near_duplicates(texts, threshold=threshold))
        table.append({"generator": name, "rows": len(texts), "exact %": round(100 * exact / max(len(texts), 1), 2),
                      "near %": round(100 * near / max(len(texts), 1), 2)})
    return pd.DataFrame(table)


def label_conflicts(data: Any, *, threshold: float = 0.7):
    """Pairs of rows whose texts are the same or nearly so (word 3-gram Jaccard ``>= threshold``; 1.0 with
    ``threshold=1.0`` means the same text after normalization) but whose labels differ: a classifier cannot learn
    both. Returns a DataFrame with ``id_a``, ``label_a``, ``text_a``, ``id_b``, ``label_b``, ``text_b``,
    ``similarity``; ids are the rows' ``id`` (or their position).

    >>> rows = [{"text": "Where is my parcel?", "label": "delivery"}, {"text": "where is my parcel", "label": "billing"}]
    >>> label_conflicts(rows)[["label_a", "label_b", "similarity"]].values.tolist()
    [['delivery', 'billing', 1.0]]
    """
    import pandas as pd

    from smolsynth.stats import _shingles, _words

    rows = _texts(data, "label_conflicts")
    check_number("threshold", threshold, minimum=0.0, maximum=1.0, exclusive_minimum=True)
    normal = [normalize_text(r["text"]) for r in rows]
    grams = [_shingles(_words(r["text"]), 3) for r in rows]
    found = []
    for j in range(len(rows)):
        for i in range(j):
            if rows[i]["label"] == rows[j]["label"]:
                continue
            if normal[i] == normal[j]:
                sim = 1.0
            else:
                union = grams[i] | grams[j]
                sim = len(grams[i] & grams[j]) / len(union) if union else 0.0
            if sim >= threshold:
                found.append({"id_a": rows[i].get("id", i), "label_a": rows[i]["label"], "text_a": rows[i]["text"],
                              "id_b": rows[j].get("id", j), "label_b": rows[j]["label"], "text_b": rows[j]["text"],
                              "similarity": round(sim, 3)})
    return pd.DataFrame(found, columns=["id_a", "label_a", "text_a", "id_b", "label_b", "text_b", "similarity"])


def resolve_conflicts(data: Any, conflicts: Any = None, *, how: str = "drop") -> Result:
    """Remove label conflicts. ``how="drop"`` drops every row in a conflict (neither label can be trusted);
    ``how="keep_agreeing"`` keeps a conflicting row when the re-labelling pass (``predicted_label``, from
    :func:`relabel`) agrees with its label, and drops the others. Dropped rows have reason ``label_conflict`` and
    ``conflicts_with`` (the other row's id).

    >>> rows = [{"id": 0, "text": "Where is my parcel?", "label": "delivery"},
    ...         {"id": 1, "text": "where is my parcel", "label": "billing"}, {"id": 2, "text": "Hi", "label": "a"}]
    >>> [r["id"] for r in resolve_conflicts(rows).rows]
    [2]
    """
    from smolsynth.arguments import check_choice

    check_choice("how", how, ["drop", "keep_agreeing"])
    rows = _texts(data, "resolve_conflicts")
    if conflicts is None:
        conflicts = label_conflicts(rows)
    if how == "keep_agreeing" and any("predicted_label" not in r for r in rows):
        raise ValueError("resolve_conflicts(how='keep_agreeing') needs a 'predicted_label' per row: pass the result of "
                         "relabel(...), or use how='drop'.")
    partner: Dict[Any, Any] = {}
    for c in conflicts.to_dict("records"):
        partner.setdefault(c["id_a"], c["id_b"])
        partner.setdefault(c["id_b"], c["id_a"])

    kept: List[Row] = []
    removed: List[Row] = []
    for i, row in enumerate(rows):
        key = row.get("id", i)
        if key not in partner or (how == "keep_agreeing" and row["predicted_label"] == row["label"]):
            kept.append(row)
        else:
            removed.append({**row, "reason": "label_conflict", "conflicts_with": partner[key]})
    return Result(kept, removed, Report(f"resolve_conflicts ({how})", rows_in=len(rows), rows_out=len(kept),
                                        dropped=count_reasons(removed)))


# ------------------------------------------------------------------------------------------------ re-labelling
def relabel(data: Any, labels: Mapping[str, str] = SUPPORT_LABELS, *, task: str = SUPPORT_TASK,
            model: Optional[str] = None, llm: Any = None, seed: int = 0, batch_size: int = 8,
            progress: bool = True, cache: bool = True, cache_dir: Optional[str] = None) -> Result:
    """Label every text again with distilabel's ``TextClassification`` (the label descriptions in its prompt),
    greedy, its answer constrained to ``{"labels": <one of the labels, or "unclear">}``. Adds ``predicted_label``.
    ``llm=`` brings your own LLM (used as it is: give it the constraint yourself).

    >>> relabel(generate_texts(n=8)).dataset.to_pandas()[["label", "predicted_label"]]  # doctest: +SKIP
    """
    from smolsynth.llm import LocalLLM
    from smolsynth.runner import run
    from smolsynth.verbosity import quiet_distilabel

    labels = check_labels(labels)
    rows = _texts(data, "relabel")
    schema = {"type": "object", "properties": {"labels": {"enum": [*labels, UNCLEAR]}}, "required": ["labels"]}
    tasks = import_distilabel("distilabel.steps.tasks")
    with quiet_distilabel():
        if llm is None:
            llm = LocalLLM(model, seed=seed, structured_output={"format": "json", "schema": schema},
                           generation_kwargs={"max_new_tokens": 24, "temperature": 0.0})
        classify = tasks.TextClassification(llm=llm, available_labels=labels, default_label=UNCLEAR,
                                            query_title="message",
                                            context=f"{task} about something they bought or use.",
                                            output_mappings={"labels": "predicted_label"})
    result = run(classify, rows, batch_size=batch_size, progress=progress, cache=cache, cache_dir=cache_dir,
                 desc="relabel")
    return result


@dataclass(repr=False)
class LabelAgreement:
    """How often the re-labelling pass gave a text its assigned label.

    Attributes:
        rate: the share of rows where ``predicted_label == label``.
        rows: rows compared.
        confusion: a DataFrame, assigned label (rows) x predicted label (columns), counts.
    """

    rate: float
    rows: int
    confusion: Any

    def plot(self, title: str = "assigned vs re-labelled"):
        """The confusion matrix as a heatmap (a matplotlib Figure)."""
        return _heatmap(self.confusion, title, xlabel="predicted by the re-labelling pass", ylabel="assigned")

    def __str__(self) -> str:
        return f"agreement {self.rate:.0%} on {self.rows} rows\n{self.confusion}"

    __repr__ = __str__

    def _repr_html_(self) -> str:
        return f"<p><strong>agreement {self.rate:.0%}</strong> on {self.rows} rows</p>" + self.confusion._repr_html_()


def agreement(data: Any) -> LabelAgreement:
    """Agreement rate and confusion matrix between ``label`` and ``predicted_label`` (the result of :func:`relabel`).

    >>> agreement([{"text": "x", "label": "a", "predicted_label": "a"},
    ...            {"text": "y", "label": "a", "predicted_label": "b"}]).rate
    0.5
    """
    import pandas as pd

    rows = _texts(data, "agreement")
    if not rows or any("predicted_label" not in r for r in rows):
        raise ValueError("agreement() needs rows with 'label' and 'predicted_label': pass the result of relabel(...).")
    assigned = [r["label"] for r in rows]
    predicted = [r["predicted_label"] for r in rows]
    confusion = pd.crosstab(pd.Series(assigned, name="assigned"), pd.Series(predicted, name="predicted"))
    return LabelAgreement(rate=sum(a == p for a, p in zip(assigned, predicted)) / len(rows), rows=len(rows),
                          confusion=confusion)


def _heatmap(table: Any, title: str, *, xlabel: str, ylabel: str):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(1.2 + 0.9 * len(table.columns), 1.0 + 0.6 * len(table.index)))
    ax.imshow(table.values, cmap="Blues")
    ax.set_xticks(range(len(table.columns)), [str(c) for c in table.columns], rotation=30, ha="right")
    ax.set_yticks(range(len(table.index)), [str(i) for i in table.index])
    for (i, j), value in _cells(table):
        ax.text(j, i, str(value), ha="center", va="center")
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    fig.tight_layout()
    plt.close(fig)
    return fig


def _cells(table: Any):
    for i in range(table.shape[0]):
        for j in range(table.shape[1]):
            yield (i, j), int(table.values[i, j])


def plot_balance(data: Any, *, title: str = "rows per label"):
    """A bar chart of rows per label (a matplotlib Figure); one bar per generator when rows have ``generator``."""
    import matplotlib.pyplot as plt
    import pandas as pd

    rows = _texts(data, "plot_balance")
    frame = pd.DataFrame(rows)
    counts = (frame.groupby(["label", "generator"]).size().unstack(fill_value=0) if "generator" in frame
              else frame["label"].value_counts().sort_index().to_frame("rows"))
    fig, ax = plt.subplots(figsize=(6, 3))
    counts.plot.bar(ax=ax, stacked=True, rot=0)
    ax.set(title=title, xlabel="", ylabel="rows")
    fig.tight_layout()
    plt.close(fig)
    return fig


# ------------------------------------------------------------------------------------------ training and testing
def real_messages() -> List[Row]:
    """80 customer-service messages (20 per label of :data:`SUPPORT_LABELS`; typos, curt and chatty ones, order
    numbers), the stand-in for the texts a classifier meets: the test of whether synthetic training data transfers.
    Plainly: they were written one by one for this course by an AI assistant, not collected from people and not made
    by smolsynth's generator; replace them with real messages (``text``, ``label``) when you have some. Rows have
    ``text`` and ``label``."""
    with open(_DATA / "support_messages.csv", newline="", encoding="utf-8") as fh:
        return [{"text": r["text"], "label": r["label"]} for r in csv.DictReader(fh)]


def split(data: Any, *, test_fraction: float = 0.2, seed: int = 0) -> Tuple[List[Row], List[Row]]:
    """A stratified train/test split: per label, ``test_fraction`` of its rows (at least one when the label has two
    or more) go to the test rows. Returns ``(train_rows, test_rows)``.

    >>> train, test = split([{"text": str(i), "label": "ab"[i % 2]} for i in range(10)], test_fraction=0.2)
    >>> len(train), len(test)
    (8, 2)
    """
    check_number("test_fraction", test_fraction, minimum=0.0, maximum=0.9, exclusive_minimum=True)
    rows = _texts(data, "split")
    rng = random.Random(seed)
    train: List[Row] = []
    test: List[Row] = []
    for label in sorted({r["label"] for r in rows}):
        mine = [r for r in rows if r["label"] == label]
        rng.shuffle(mine)
        k = max(1, round(test_fraction * len(mine))) if len(mine) > 1 else 0
        test += mine[:k]
        train += mine[k:]
    return train, test


@dataclass(repr=False)
class Classifier:
    """A fine-tuned text classifier, saved in ``path``.

    Attributes:
        path: the folder (model, tokenizer, ``id2label``): ``pipeline("text-classification", model=path)`` loads it.
        labels: the labels, in the order of the model's outputs.
        encoder: what it was fine-tuned from.
        log_history: the Trainer's logged losses.
        minutes: training time.
    """

    path: Path
    labels: List[str]
    encoder: str
    log_history: List[Dict[str, Any]] = field(default_factory=list)
    minutes: float = 0.0

    @property
    def pipeline(self):
        """``transformers.pipeline("text-classification")`` on the saved model (loaded once)."""
        if getattr(self, "_pipeline", None) is None:
            from transformers import pipeline

            from smolsynth.verbosity import quiet_training

            with quiet_training():
                self._pipeline = pipeline("text-classification", model=str(self.path), device=-1)
        return self._pipeline

    def predict(self, texts: Sequence[str]) -> List[str]:
        """The predicted label of each text."""
        return [out["label"] for out in self.pipeline(list(texts), batch_size=32, truncation=True)]

    def __str__(self) -> str:
        return f"Classifier({len(self.labels)} labels, from {self.encoder}, {self.minutes:.1f} min) at {self.path}"

    __repr__ = __str__


def train_classifier(train: Any, *, labels: Optional[Sequence[str]] = None, output_dir: str | os.PathLike,
                     encoder: Optional[str] = None, epochs: float = 8, learning_rate: float = 1e-4,
                     batch_size: int = 16, max_length: int = 128, seed: int = 0) -> Classifier:
    """Fine-tune an encoder (:func:`smolsynth.encoders.resolve_encoder`: all-MiniLM-L6-v2, or the tiny one on the
    tiny model) for sequence classification with transformers' ``Trainer``, and save it in ``output_dir``.

    Args:
        train: rows with ``text`` and ``label`` (e.g. the train part of :func:`split`).
        labels: the label set (default: the labels in ``train``, sorted); a label of ``train`` outside it is an error.
        output_dir: where the model is saved (replaced if it exists).
        encoder: an encoder id or folder (default: :func:`~smolsynth.encoders.resolve_encoder`).
        epochs, learning_rate, batch_size: the Trainer's settings. A small encoder on a few hundred texts needs
            several epochs; 1e-4 suits MiniLM's size (BERT-base is usually tuned at 2e-5 to 5e-5).
        max_length: longer texts are truncated (messages are short).

    Returns:
        A :class:`Classifier` (``.pipeline`` is ``pipeline("text-classification")`` on it).
    """
    import datasets
    import torch
    from transformers import (AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding, Trainer,
                              TrainingArguments)

    from smolsynth.encoders import encoder_path, resolve_encoder
    from smolsynth.training import _tidy_callbacks
    from smolsynth.verbosity import quiet_training

    rows = _texts(train, "train_classifier")
    if not rows:
        raise ValueError("train_classifier(): train= has no rows; generate some first (generate_texts).")
    names = sorted({r["label"] for r in rows}) if labels is None else list(labels)
    outside = sorted({r["label"] for r in rows} - set(names))
    if outside:
        raise ValueError(f"train_classifier(): train= has labels {outside} that are not in labels={names}.")
    check_number("epochs", epochs, minimum=0.0, exclusive_minimum=True)
    check_number("learning_rate", learning_rate, minimum=0.0, exclusive_minimum=True)
    check_number("batch_size", batch_size, minimum=1, integer=True)
    chosen = resolve_encoder(encoder=encoder)
    source = encoder_path(chosen)
    out = Path(output_dir)
    started = time.perf_counter()
    with quiet_training():
        tokenizer = AutoTokenizer.from_pretrained(source)
        model = AutoModelForSequenceClassification.from_pretrained(
            source, num_labels=len(names), id2label=dict(enumerate(names)),
            label2id={n: i for i, n in enumerate(names)})
        data = datasets.Dataset.from_dict({"text": [r["text"] for r in rows],
                                           "label": [names.index(r["label"]) for r in rows]})
        data = data.map(lambda b: tokenizer(b["text"], truncation=True, max_length=max_length), batched=True,
                        remove_columns=["text"])
        steps_per_epoch = -(-len(rows) // batch_size)
        args = TrainingArguments(output_dir=str(out / "trainer"), num_train_epochs=epochs,
                                 learning_rate=learning_rate, per_device_train_batch_size=batch_size,
                                 warmup_steps=max(1, int(0.1 * epochs * steps_per_epoch)), weight_decay=0.01,
                                 logging_steps=1, save_strategy="no", report_to=[], seed=seed,
                                 use_cpu=not torch.cuda.is_available(), disable_tqdm=False)
        trainer = Trainer(model=model, args=args, train_dataset=data, processing_class=tokenizer,
                          data_collator=DataCollatorWithPadding(tokenizer))
        _tidy_callbacks(trainer)  # one progress bar; the logged losses are not printed as dicts
        trainer.train()
        trainer.save_model(str(out))
    return Classifier(path=out, labels=names, encoder=chosen, log_history=list(trainer.state.log_history),
                      minutes=round((time.perf_counter() - started) / 60, 2))


@dataclass(repr=False)
class ClassifierEvaluation:
    """A classifier's accuracy on labelled texts.

    Attributes:
        name: what was tested (e.g. ``"synthetic test split"``, ``"real messages"``).
        accuracy: the share of texts whose predicted label is their label.
        rows: texts tested.
        confusion: label (rows) x prediction (columns), counts.
        predictions: the predicted label of each text, in order.
    """

    name: str
    accuracy: float
    rows: int
    confusion: Any
    predictions: List[str]

    def plot(self):
        """The confusion matrix as a heatmap (a matplotlib Figure)."""
        return _heatmap(self.confusion, self.name, xlabel="predicted", ylabel="true label")

    def __str__(self) -> str:
        return f"{self.name}: accuracy {self.accuracy:.0%} on {self.rows} texts"

    __repr__ = __str__


def evaluate_classifier(classifier: Classifier, data: Any, *, name: str = "test") -> ClassifierEvaluation:
    """Predict every text of ``data`` (rows with ``text`` and ``label``) and compare with its label.

    >>> evaluate_classifier(clf, real_messages(), name="real messages").accuracy  # doctest: +SKIP
    0.45
    """
    import pandas as pd

    if not isinstance(classifier, Classifier):
        raise TypeError(f"classifier= should be what train_classifier(...) returns; got {type(classifier).__name__}.")
    rows = _texts(data, "evaluate_classifier")
    if not rows:
        raise ValueError("evaluate_classifier(): data= has no rows.")
    predictions = classifier.predict([r["text"] for r in rows])
    truth = [r["label"] for r in rows]
    confusion = pd.crosstab(pd.Series(truth, name="label"), pd.Series(predictions, name="predicted"))
    return ClassifierEvaluation(name=name, accuracy=sum(t == p for t, p in zip(truth, predictions)) / len(rows),
                                rows=len(rows), confusion=confusion, predictions=predictions)
