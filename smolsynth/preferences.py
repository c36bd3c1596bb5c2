"""Preference data for DPO: candidates from several generators, EvolQuality rewrites, an UltraFeedback judge whose
every judgment parses, and chosen/rejected pairs that TRL's ``DPOTrainer`` reads as they are.

The path, one function per step (each returns a :class:`PreferenceResult`: ``.dataset``, ``.dropped`` with a
``reason`` per row, ``.report``, and ``.steps``, the reports of the runs underneath)::

    instructions ─► pool_responses ─► evolve_quality (optional) ─► judge ─► binarize ─► DPO dataset
                    2+ generators      rewrites as extra             UltraFeedback    prompt / chosen / rejected
                    (models recorded)  candidates                    ratings+rationales

    >>> from smolsynth.preferences import binarize, evolve_quality, judge, pool_responses     # doctest: +SKIP
    >>> pooled = pool_responses(["Name a colour.", "Why is the sky blue?"])                  # doctest: +SKIP
    >>> judged = judge(evolve_quality(pooled.dataset).dataset)                                # doctest: +SKIP
    >>> pairs = binarize(judged.dataset)                                                      # doctest: +SKIP
    >>> pairs.dataset.column_names[:3]                                                        # doctest: +SKIP
    ['prompt', 'chosen', 'rejected']

**Candidates.** :func:`pool_responses` asks every generator (a model, or one model with another system prompt or
temperature when only one fits in memory) for an answer to each instruction; ``generations[i]`` was written by
``models[i]``. Different models are loaded one at a time. :func:`evolve_quality` adds Deita's EvolQuality rewrites
(helpfulness, relevance, deepening, creativity, details) of a candidate as extra candidates.

**Judge.** :func:`judge` runs distilabel's ``UltraFeedback`` task (its prompts and its parser, unchanged) with the
overall rating or one of the four aspects (instruction-following, honesty, truthfulness, helpfulness), or all four
(``aspect="all"``: each candidate then gets its four ratings, and binarization uses their mean, as
``ultrafeedback_binarized`` does). Decoding is constrained by the engine to the exact text each aspect's parser reads
(:func:`smolsynth.llm.ultrafeedback_regex`, one section per candidate), so every judgment parses into exactly one
rating (1-5) per candidate, on any model, the tiny random one included. Rationales are kept.

**Pairs.** A judged row holds an ``instruction``, its candidate ``generations`` and one ``ratings`` entry per
candidate (an int, or a list of aspect ratings whose mean is used). :func:`binarize` (and the plain-Python
:func:`binarize_rows` under it) turns each row into one pair::

    prompt   = [{"role": "user", "content": instruction}]        (a system turn first, when the row has one)
    chosen   = [{"role": "assistant", "content": best candidate}]
    rejected = [{"role": "assistant", "content": another candidate}]

plus ``chosen_rating``, ``rejected_rating`` (and ``chosen_model``, ``rejected_model`` when the row has ``models``;
``chosen_rationale``, ``rejected_rationale`` when it has ``rationales``). The rule is always named by the caller:

``best-vs-random``        chosen = highest rating; rejected = a random other candidate. This is the rule of
                          ``ultrafeedback_binarized`` (Zephyr); when the random pick ties with the best, the row is
                          dropped (reason ``tie``) rather than teaching the model a preference that is not there.
``best-vs-worst``         chosen = highest, rejected = lowest; all ratings equal -> dropped (``tie``).
``best-vs-random-lower``  chosen = highest, rejected = a random candidate rated strictly lower; none -> ``tie``.
                          The default of :func:`binarize`: it loses a row only when all its candidates tie.

Other drops, each counted by reason: fewer than two rated candidates (``missing_ratings``), a ratings list whose
length differs from the candidates' (``wrong_number_of_ratings``), chosen and rejected with the same text
(``identical_texts``). Randomness is seeded per row, so the same input and seed give the same pairs.

    >>> pairs, dropped = binarize_rows([{"instruction": "Hi", "generations": ["a", "b"], "ratings": [5, 2]}],
    ...                                rule="best-vs-worst")
    >>> pairs[0]["chosen"], pairs[0]["rejected"], dropped
    ([{'role': 'assistant', 'content': 'a'}], [{'role': 'assistant', 'content': 'b'}], [])

**Position bias.** :func:`position_bias` judges a sample again with the candidates in reverse order and reports how
often the preferred candidate changes: a judge that looks at the answers, not at their order, rarely flips.

Defaults, and why: the judge samples at temperature 0.7 (a greedy small judge tends to give every candidate the same
rating: all ties, no pairs); two pooled generators plus two EvolQuality rewrites give four candidates per prompt,
and ``best-vs-random-lower`` then loses a prompt only when all four tie.
"""

from __future__ import annotations

import hashlib
import html
import random
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from smolsynth.report import Report, ReportTable, count_reasons
from smolsynth.runner import RunResult, as_rows, to_dataset

Rule = Literal["best-vs-random", "best-vs-worst", "best-vs-random-lower"]
RULES: tuple[str, ...] = ("best-vs-random", "best-vs-worst", "best-vs-random-lower")
DEFAULT_RULE: Rule = "best-vs-random-lower"
"""The rule :func:`binarize` applies when none is named (see the module docstring for why)."""

ASPECTS: tuple[str, ...] = ("instruction-following", "honesty", "truthfulness", "helpfulness")
"""UltraFeedback's four aspects, in the order ``judge(aspect="all")`` lists each candidate's ratings."""
JUDGE_ASPECTS: tuple[str, ...] = ("overall-rating", *ASPECTS, "all")

EVOL_DIRECTIONS: tuple[str, ...] = ("helpfulness", "relevance", "deepening", "creativity", "details")
"""EvolQuality's five rewrite directions (Deita), as named in distilabel's ``MUTATION_TEMPLATES`` (upper case)."""
DEFAULT_EVOL_DIRECTIONS: tuple[str, ...] = ("helpfulness", "deepening")

JUDGE_TEMPERATURE = 0.7


# ------------------------------------------------------------------------------------------------------ results
@dataclass
class PreferenceResult(RunResult):
    """A :class:`~smolsynth.runner.RunResult` (``dataset``, ``dropped``, ``report``) plus ``steps``: the reports of
    the runs underneath (one per generator, rewrite direction or judged aspect), so every candidate is accounted for.
    """

    steps: list[Report] = field(default_factory=list)

    @property
    def table(self) -> ReportTable:
        """The runs underneath, then this step's own report, as one table."""
        return Report.combine([*self.steps, self.report])


def _result(step: str, rows_in: int, kept: list[dict[str, Any]], dropped: list[dict[str, Any]], steps: list[Report],
            started: float, model: str | None = None) -> PreferenceResult:
    report = Report(step, rows_in=rows_in, rows_out=len(kept), dropped=count_reasons(dropped),
                    input_tokens=sum(r.input_tokens for r in steps), output_tokens=sum(r.output_tokens for r in steps),
                    seconds=round(time.perf_counter() - started, 3),
                    cached_rows=min(rows_in, max((r.cached_rows for r in steps), default=0)),
                    compute_seconds=round(sum(r.compute_seconds or r.seconds for r in steps), 3) if steps else None,
                    model=model)
    return PreferenceResult(dataset=to_dataset(kept), dropped=to_dataset(dropped), report=report, steps=steps)


def _tasks() -> Any:
    from smolsynth.verbosity import import_distilabel

    return import_distilabel("distilabel.steps.tasks")


def _run_kwargs(progress: bool, cache: bool, cache_dir: str | None) -> dict[str, Any]:
    return {"progress": progress, "cache": cache, "cache_dir": cache_dir}


def _require(rows: list[dict[str, Any]], columns: Sequence[str], fn: str, made_by: str) -> None:
    if not rows:
        raise ValueError(f"{fn}() got no rows: pass the dataset that {made_by} returned (its .dataset).")
    missing = [c for c in columns if c not in rows[0]]
    if missing:
        raise ValueError(f"{fn}() needs the column(s) {missing}, but the data has {sorted(rows[0])}: pass the "
                         f"dataset that {made_by} returned (its .dataset).")
    for i, row in enumerate(rows):
        if "generations" in columns and not isinstance(row.get("generations"), (list, tuple)):
            raise ValueError(f"{fn}(): row {i} has 'generations' = {type(row.get('generations')).__name__}; it must "
                             "be a list of candidate answers, as pool_responses() makes it.")


# ---------------------------------------------------------------------------------------------------- pooling
@dataclass(frozen=True)
class Generator:
    """One source of candidate answers: a model, and optionally a system prompt and a temperature of its own.

    ``model=None`` is the course model (``$SMOLSYNTH_MODEL`` or the hardware profile's). ``name`` labels its answers
    in the ``models`` column (default: the model id, plus the name or system prompt when needed to tell apart).

    >>> Generator(system_prompt="Answer briefly.", temperature=0.7, name="concise").label("smolsynth/tiny")
    'smolsynth/tiny (concise)'
    """

    model: str | None = None
    system_prompt: str | None = None
    temperature: float = 0.7
    name: str | None = None
    max_new_tokens: int | None = None

    def label(self, model_id: str) -> str:
        """How this generator's answers are labelled in ``models``."""
        return f"{model_id} ({self.name})" if self.name else model_id


DEFAULT_GENERATORS: tuple[Generator, ...] = (
    Generator(system_prompt="You are a helpful assistant. Answer briefly and precisely.", temperature=0.7,
              name="concise"),
    Generator(system_prompt="You are a helpful assistant. Explain your answer step by step.", temperature=1.0,
              name="detailed"),
)
"""Two "models" from one set of weights (two system prompts and temperatures): the recipe when only one model fits
in memory. Pass real different models when you can: pooling is about diverse candidates."""


def _as_generator(spec: Any, index: int) -> Generator:
    if isinstance(spec, Generator):
        return spec
    if isinstance(spec, str):
        return Generator(model=spec)
    if isinstance(spec, dict):
        unknown = set(spec) - {"model", "system_prompt", "temperature", "name", "max_new_tokens"}
        if unknown:
            raise ValueError(f"generators[{index}] has unknown keys {sorted(unknown)}; a generator takes model, "
                             "system_prompt, temperature, name, max_new_tokens.")
        return Generator(**spec)
    raise TypeError(f"generators[{index}] is a {type(spec).__name__}: pass a model id (str), a dict or a "
                    "Generator(model=..., system_prompt=..., temperature=...).")


def _instruction_rows(instructions: Any) -> list[dict[str, Any]]:
    if isinstance(instructions, str):
        instructions = [instructions]
    items = list(instructions) if isinstance(instructions, (list, tuple)) else None
    if items is not None and all(isinstance(i, str) for i in items):
        rows = [{"instruction": i} for i in items]
    else:
        rows = as_rows(instructions)
        if rows and "instruction" not in rows[0]:
            raise ValueError(f"instructions: the rows have no 'instruction' column (columns: {sorted(rows[0])}); "
                             "pass a list of strings or rows with an 'instruction'.")
    if not rows:
        raise ValueError("instructions is empty: pass at least one instruction, e.g. ['Explain recursion.'].")
    for i, row in enumerate(rows):
        if not isinstance(row.get("instruction"), str) or not row["instruction"].strip():
            raise ValueError(f"instructions[{i}] is empty or not a string: every instruction must be text.")
    return rows


def pool_responses(instructions: Any, generators: Sequence[Any] | None = None, *, max_new_tokens: int = 256,
                   seed: int = 0, one_model_at_a_time: bool | None = None, progress: bool = True,
                   cache: bool = True, cache_dir: str | None = None) -> PreferenceResult:
    """One answer per generator for every instruction: the candidates a judge will compare.

    Args:
        instructions: a list of strings, or rows / a Dataset with an ``instruction`` column (other columns are kept).
        generators: two or more model ids, dicts or :class:`Generator`; default :data:`DEFAULT_GENERATORS` (the
            course model with two system prompts and temperatures).
        max_new_tokens: token budget per answer (a generator's own ``max_new_tokens`` wins).
        seed: sampling seed (the same inputs and seed give the same answers).
        one_model_at_a_time: free a model from memory before loading the next (``None``: when the generators use
            more than one model). Generators of the same model run together, so each model loads once.

    Returns:
        A :class:`PreferenceResult` whose rows have ``generations`` (one per generator that answered) and ``models``
        (who wrote each, same order) and ``sources`` (``"pool"`` for each). A generator that failed on a row leaves
        that candidate out (its own report in ``.steps`` counts it); a row left with fewer than two candidates is
        dropped (``fewer_than_two_candidates``).

    >>> pooled = pool_responses(["Name a colour."], ["smolsynth/tiny", {"model": "smolsynth/tiny",
    ...                         "temperature": 1.2, "name": "hot"}], max_new_tokens=8)     # doctest: +SKIP
    >>> pooled.dataset[0]["models"]                                                         # doctest: +SKIP
    ['smolsynth/tiny', 'smolsynth/tiny (hot)']
    """
    from smolsynth.llm import LocalLLM, clear_model_cache
    from smolsynth.models import resolve_model
    from smolsynth.runner import quiet_distilabel, run

    started = time.perf_counter()
    rows = _instruction_rows(instructions)
    specs = [_as_generator(g, i) for i, g in enumerate(DEFAULT_GENERATORS if generators is None else generators)]
    if len(specs) < 2:
        raise ValueError(f"pool_responses() needs two or more generators (got {len(specs)}): preference pairs compare "
                         "answers. With one model, vary it: e.g. generators=[{'temperature': 0.7}, "
                         "{'temperature': 1.0, 'system_prompt': 'Explain step by step.'}].")
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens={max_new_tokens} must be >= 1.")
    model_ids = [resolve_model(g.model) for g in specs]
    labels = [g.label(m) for g, m in zip(specs, model_ids)]
    if len(set(labels)) < len(labels):  # same model twice without names: number them so each answer is traceable
        labels = [f"{lab} #{i + 1}" if labels.count(lab) > 1 else lab for i, lab in enumerate(labels)]
    distinct = list(dict.fromkeys(model_ids))
    unload = len(distinct) > 1 if one_model_at_a_time is None else one_model_at_a_time
    order = sorted(range(len(specs)), key=lambda k: (distinct.index(model_ids[k]), k))
    tasks = _tasks()
    answers: list[dict[int, str]] = [{} for _ in specs]
    steps: list[Report] = []
    for position, k in enumerate(order):
        g = specs[k]
        if unload and position > 0 and model_ids[k] != model_ids[order[position - 1]]:
            clear_model_cache()  # one model in memory at a time
        llm = LocalLLM(model_ids[k], seed=seed, generation_kwargs={
            "max_new_tokens": g.max_new_tokens or max_new_tokens, "temperature": g.temperature})
        with quiet_distilabel():
            task = tasks.TextGeneration(llm=llm, system_prompt=g.system_prompt)
        result = run(task, [{"instruction": r["instruction"], "_row": i} for i, r in enumerate(rows)],
                     desc=f"answers: {labels[k]}", **_run_kwargs(progress, cache, cache_dir))
        steps.append(result.report)
        answers[k] = {row["_row"]: row["generation"] for row in result.dataset}
        del task, llm  # nothing here holds the model any more: clear_model_cache() can free it
    if unload and len(distinct) > 1:
        clear_model_cache()
    kept, dropped = [], []
    for i, row in enumerate(rows):
        have = [k for k in range(len(specs)) if i in answers[k]]
        out = {**row, "generations": [answers[k][i] for k in have], "models": [labels[k] for k in have],
               "sources": ["pool"] * len(have)}
        if len(have) < 2:
            dropped.append({**out, "reason": "fewer_than_two_candidates"})
        else:
            kept.append(out)
    return _result(f"pool_responses ({len(specs)} generators)", len(rows), kept, dropped, steps, started,
                   model=", ".join(distinct))


# --------------------------------------------------------------------------------------------------- evolving
def evolve_quality(data: Any, directions: Sequence[str] = DEFAULT_EVOL_DIRECTIONS, *, source: int | str = 0,
                   model: str | None = None, max_new_tokens: int = 256, temperature: float = 0.7, seed: int = 0,
                   progress: bool = True, cache: bool = True, cache_dir: str | None = None) -> PreferenceResult:
    """Add EvolQuality rewrites of a candidate as extra candidates (Deita's response evolution, distilabel's task).

    Each direction (``"helpfulness"``, ``"relevance"``, ``"deepening"``, ``"creativity"``, ``"details"``) is one run
    of distilabel's ``EvolQuality`` with that single rewrite prompt, so every new candidate says how it was made.

    Args:
        data: pooled rows (``instruction``, ``generations``; ``models`` and ``sources`` when present).
        directions: the rewrite directions, one new candidate per direction per rewritten answer.
        source: which candidate to rewrite: its index (default 0, the first generator's answer) or ``"each"``.
        model: the model that rewrites (default: the course model).

    Returns:
        A :class:`PreferenceResult` with the same rows, each with the rewrites appended to ``generations``;
        ``models`` gets ``"<model> (EvolQuality <direction> of #<n>)"`` and ``sources`` ``"evol:<direction>"``. A
        rewrite that failed (empty output) is left out and counted in ``.steps``; no row is dropped.

    >>> evolved = evolve_quality(pooled.dataset, ["helpfulness"])   # doctest: +SKIP
    >>> evolved.dataset[0]["sources"]                                # doctest: +SKIP
    ['pool', 'pool', 'evol:helpfulness']
    """
    from smolsynth.llm import LocalLLM
    from smolsynth.models import resolve_model
    from smolsynth.runner import quiet_distilabel, run

    started = time.perf_counter()
    rows = as_rows(data)
    _require(rows, ["instruction", "generations"], "evolve_quality", "pool_responses()")
    if isinstance(directions, str):
        directions = [directions]
    bad = [d for d in directions if d.lower() not in EVOL_DIRECTIONS]
    if bad or not directions:
        raise ValueError(f"directions={list(directions)!r}: use one or more of {', '.join(EVOL_DIRECTIONS)}.")
    if not (source == "each" or (isinstance(source, int) and source >= 0)):
        raise ValueError(f"source={source!r}: the index of the candidate to rewrite (0 = the first) or 'each'.")
    model_id = resolve_model(model)
    from smolsynth.verbosity import import_distilabel

    templates = import_distilabel("distilabel.steps.tasks.evol_quality.utils").MUTATION_TEMPLATES
    llm = LocalLLM(model_id, seed=seed, generation_kwargs={"max_new_tokens": max_new_tokens,
                                                           "temperature": temperature})
    inputs = []
    for i, row in enumerate(rows):
        n = len(row["generations"])
        for c in (range(n) if source == "each" else [source] if source < n else []):
            if isinstance(row["generations"][c], str) and row["generations"][c].strip():
                inputs.append({"instruction": row["instruction"], "response": row["generations"][c], "_row": i,
                               "_from": c})
    new: list[list[tuple[int, str, str]]] = [[] for _ in rows]  # per row: (from, direction, text)
    steps: list[Report] = []
    for direction in (d.lower() for d in directions):
        key = direction.upper()
        with quiet_distilabel():
            task = _tasks().EvolQuality(llm=llm, num_evolutions=1, mutation_templates={key: templates[key]}, seed=seed)
        result = run(task, inputs, desc=f"EvolQuality: {direction}", **_run_kwargs(progress, cache, cache_dir))
        steps.append(result.report)
        for out in result.dataset:
            new[out["_row"]].append((out["_from"], direction, out["evolved_response"]))
    kept = []
    for i, row in enumerate(rows):
        n = len(row["generations"])
        models = list(row.get("models") or [None] * n)
        sources = list(row.get("sources") or ["pool"] * n)
        out = {**row, "generations": list(row["generations"]), "models": models, "sources": sources}
        for c, direction, text in sorted(new[i], key=lambda t: (t[0], EVOL_DIRECTIONS.index(t[1]))):
            out["generations"].append(text)
            out["models"].append(f"{model_id} (EvolQuality {direction} of #{c + 1})")
            out["sources"].append(f"evol:{direction}")
        kept.append(out)
    return _result(f"evolve_quality ({', '.join(d.lower() for d in directions)})", len(rows), kept, [], steps,
                   started, model=model_id)


# ------------------------------------------------------------------------------------------------------ judging
def judge_tokens(n_candidates: int, aspect: str = "overall-rating", max_rationale_chars: int = 200) -> int:
    """The default token budget of one judgment: enough for ``n_candidates`` sections with full rationales
    (truthfulness and helpfulness have two rationales per candidate). The engine closes the structure anyway when
    the budget runs out, so a judgment always parses; a short budget only cuts rationales.

    >>> judge_tokens(2), judge_tokens(2, "truthfulness")
    (280, 560)
    """
    per = 40 + max_rationale_chars // 2
    return n_candidates * per * (2 if aspect in ("truthfulness", "helpfulness") else 1)


def _judge_one_aspect(rows: list[dict[str, Any]], aspect: str, *, model_id: str, max_new_tokens: int | None,
                      temperature: float, max_rationale_chars: int, seed: int, progress: bool, cache: bool,
                      cache_dir: str | None) -> tuple[dict[int, dict[str, Any]], dict[int, str], list[Report]]:
    """Judge every row on one aspect, grouped by candidate count (one grammar per count). Returns the outputs and
    the drop reasons by row index, and the runs' reports."""
    from smolsynth.llm import LocalLLM, ultrafeedback_regex
    from smolsynth.runner import quiet_distilabel, run

    groups: dict[int, list[dict[str, Any]]] = {}
    for i, row in enumerate(rows):
        groups.setdefault(len(row["generations"]), []).append(
            {"instruction": row["instruction"], "generations": list(row["generations"]), "_row": i})
    outputs: dict[int, dict[str, Any]] = {}
    reasons: dict[int, str] = {}
    steps: list[Report] = []
    for n, group in sorted(groups.items()):
        if n == 0:
            reasons.update({r["_row"]: "no_candidates" for r in group})
            continue
        grammar = ultrafeedback_regex(n, aspect=aspect, max_rationale_chars=max_rationale_chars)
        llm = LocalLLM(model_id, seed=seed, structured_output={"format": "regex", "schema": grammar},
            generation_kwargs={"max_new_tokens": max_new_tokens or judge_tokens(n, aspect, max_rationale_chars),
                               "temperature": temperature})
        with quiet_distilabel():
            task = _tasks().UltraFeedback(aspect=aspect, llm=llm)
        desc = f"judge: {aspect}" + (f" ({n} candidates)" if len(groups) > 1 else "")
        result = run(task, group, desc=desc, **_run_kwargs(progress, cache, cache_dir))
        steps.append(result.report)
        for out in result.dataset:
            if "rationales-for-ratings" in out:  # typed aspects: ``rationales`` explain the type, not the rating
                out["type_rationales"] = out.pop("rationales")
                out["rationales"] = out.pop("rationales-for-ratings")
            outputs[out["_row"]] = out
        for out in result.dropped:
            reasons[out["_row"]] = f"{aspect}: {out['reason']}"
    return outputs, reasons, steps


def judge(data: Any, aspect: str = "overall-rating", *, model: str | None = None,
          temperature: float = JUDGE_TEMPERATURE, max_new_tokens: int | None = None, max_rationale_chars: int = 200, seed: int = 0, progress: bool = True,
          cache: bool = True, cache_dir: str | None = None) -> PreferenceResult:
    """Rate every candidate with distilabel's ``UltraFeedback`` task, decoding constrained so that it always parses.

    Args:
        data: rows with ``instruction`` and ``generations`` (what :func:`pool_responses` / :func:`evolve_quality`
            return); other columns (``models``, ``sources``, ...) are kept.
        aspect: ``"overall-rating"`` (Argilla's one holistic rating), one of ``"instruction-following"``,
            ``"honesty"``, ``"truthfulness"``, ``"helpfulness"``, or ``"all"`` (the four aspects, four judgments).
        model: the judge model (default: the course model).
        temperature: sampling temperature of the judge (0 = greedy; see the module docstring for the default).
        max_new_tokens: budget per judgment (default :func:`judge_tokens` for the row's candidate count).
        max_rationale_chars: the longest rationale the grammar allows.

    Returns:
        A :class:`PreferenceResult`; each row gains ``ratings`` (one int 1-5 per candidate; with ``"all"``, per
        candidate the list of its four aspect ratings in :data:`ASPECTS` order), ``rationales`` (one string per
        candidate), ``judge_model``, and for ``"all"`` the per-aspect columns ``ratings_<aspect>`` /
        ``rationales_<aspect>`` (and ``types_<aspect>`` for truthfulness and helpfulness). Truthfulness and
        helpfulness also rate a *type* (of hallucination / informativeness): ``types`` (None when the judge wrote
        "None") and ``type_rationales``; ``rationales`` always explain the ratings (distilabel's
        ``rationales-for-ratings`` for these two aspects).
        Rows the runner sets aside (it checks one rating per candidate, none missing) are dropped with the reason.

    >>> judged = judge(pooled.dataset)              # doctest: +SKIP
    >>> len(judged.dataset[0]["ratings"]) == len(judged.dataset[0]["generations"])   # doctest: +SKIP
    True
    """
    from smolsynth.models import resolve_model

    started = time.perf_counter()
    if aspect not in JUDGE_ASPECTS:
        raise ValueError(f"aspect={aspect!r}: use one of {', '.join(JUDGE_ASPECTS)}.")
    if temperature < 0:
        raise ValueError(f"temperature={temperature} must be >= 0.")
    if max_rationale_chars < 1:
        raise ValueError(f"max_rationale_chars={max_rationale_chars} must be >= 1.")
    rows = as_rows(data)
    _require(rows, ["instruction", "generations"], "judge", "pool_responses() or evolve_quality()")
    model_id = resolve_model(model)
    judged_columns = {"ratings", "rationales", "types", "type_rationales", "rationales-for-ratings", "judge_model",
                      *(f"{c}_{a}" for c in ("ratings", "rationales", "types") for a in ASPECTS)}
    base = [{k: v for k, v in row.items() if k not in judged_columns} for row in rows]
    settings = dict(model_id=model_id, max_new_tokens=max_new_tokens, temperature=temperature,
                    max_rationale_chars=max_rationale_chars, seed=seed, progress=progress, cache=cache,
                    cache_dir=cache_dir)
    steps: list[Report] = []
    kept, dropped = [], []
    if aspect != "all":
        outputs, reasons, steps = _judge_one_aspect(base, aspect, **settings)
        for i, row in enumerate(base):
            if i in reasons or i not in outputs:
                dropped.append({**row, "reason": reasons.get(i, "unparsed_output")})
                continue
            out = {k: v for k, v in outputs[i].items() if k not in ("_row", "model_name", "instruction", "generations")}
            kept.append({**row, **out, "judge_model": model_id})
    else:
        per_aspect = {}
        for a in ASPECTS:
            outputs, reasons, reports = _judge_one_aspect(base, a, **settings)
            per_aspect[a] = (outputs, reasons)
            steps.extend(reports)
        for i, row in enumerate(base):
            failed = [per_aspect[a][1].get(i, f"{a}: unparsed_output") for a in ASPECTS if i not in per_aspect[a][0]]
            if failed:
                dropped.append({**row, "reason": failed[0]})
                continue
            out = dict(row)
            for a in ASPECTS:
                out[f"ratings_{a}"] = per_aspect[a][0][i]["ratings"]
                out[f"rationales_{a}"] = per_aspect[a][0][i]["rationales"]
                if "types" in per_aspect[a][0][i]:
                    out[f"types_{a}"] = per_aspect[a][0][i]["types"]
            n = len(row["generations"])
            out["ratings"] = [[out[f"ratings_{a}"][c] for a in ASPECTS] for c in range(n)]
            out["rationales"] = ["\n".join(f"{a}: {out[f'rationales_{a}'][c]}" for a in ASPECTS) for c in range(n)]
            out["judge_model"] = model_id
            kept.append(out)
    return _result(f"judge ({aspect})", len(rows), kept, dropped, steps, started, model=model_id)


def ratings_table(data: Any) -> Any:
    """One row per judged candidate, as a pandas DataFrame: ``row``, ``candidate`` (index), ``model``, ``source``,
    ``rating`` (the mean for ``aspect="all"``), the text's length in characters and the rationale. Handy to compare
    rating distributions (``.groupby("source")["rating"].describe()``).

    >>> ratings_table([{"instruction": "Hi", "generations": ["a", "bb"], "ratings": [4, 2]}])["rating"].tolist()
    [4.0, 2.0]
    """
    import pandas as pd

    records = []
    for i, row in enumerate(as_rows(data)):
        generations, ratings = row.get("generations") or [], row.get("ratings") or []
        models = row.get("models") or [None] * len(generations)
        sources = row.get("sources") or [None] * len(generations)
        rationales = row.get("rationales") or [None] * len(generations)
        for c, text in enumerate(generations):
            rating = _score(ratings[c]) if c < len(ratings) else None
            records.append({"row": i, "candidate": c, "model": models[c] if c < len(models) else None,
                            "source": sources[c] if c < len(sources) else None, "rating": rating,
                            "length": len(text or ""),
                            "rationale": rationales[c] if c < len(rationales) else None})
    return pd.DataFrame.from_records(records, columns=["row", "candidate", "model", "source", "rating", "length",
                                                       "rationale"])


# ------------------------------------------------------------------------------------------------ binarization
def _score(rating: Any) -> float | None:
    """One number per candidate: an int rating as is, a list of aspect ratings as their mean, None if missing."""
    if rating is None:
        return None
    if isinstance(rating, (list, tuple)):
        values = [r for r in rating if r is not None]
        return sum(values) / len(values) if values and len(values) == len(rating) else None
    return float(rating)


def _row_rng(seed: int, index: int, instruction: str) -> random.Random:
    digest = hashlib.sha256(f"{seed}\x00{index}\x00{instruction}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def binarize_rows(rows: Iterable[dict[str, Any]], *, rule: Rule = "best-vs-random", seed: int = 0,
                  ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Apply ``rule`` to judged rows. Returns ``(pairs, dropped)``; every dropped row carries a ``reason``."""
    if rule not in RULES:
        raise ValueError(f"rule={rule!r} is not a binarization rule; use one of {', '.join(RULES)}.")
    pairs: list[dict[str, Any]] = []
    dropped: list[dict[str, Any]] = []
    for index, row in enumerate(rows):
        missing = [c for c in ("instruction", "generations", "ratings") if c not in row]
        if missing:
            raise ValueError(f"row {index} lacks the column(s) {missing}: binarize needs 'instruction', "
                             "'generations' (list of candidates) and 'ratings' (one per candidate).")
        generations: Sequence[str] = row["generations"] or []
        ratings: Sequence[Any] = row["ratings"] or []
        models: Sequence[str] | None = row.get("models")
        rationales: Sequence[Any] | None = row.get("rationales")

        def drop(reason: str) -> None:
            dropped.append({**row, "reason": reason})

        if len(ratings) != len(generations):
            drop("wrong_number_of_ratings")
            continue
        scored = [(i, s) for i, s in enumerate(map(_score, ratings)) if s is not None and generations[i] is not None]
        if len(scored) < 2:
            drop("missing_ratings")
            continue
        rng = _row_rng(seed, index, str(row["instruction"]))
        best_score = max(s for _, s in scored)
        best = rng.choice([i for i, s in scored if s == best_score])  # ties for best broken at random, seeded
        others = [(i, s) for i, s in scored if i != best]
        if rule == "best-vs-random":
            rejected = rng.choice(others)[0]
        elif rule == "best-vs-worst":
            worst_score = min(s for _, s in others)
            rejected = rng.choice([i for i, s in others if s == worst_score])
        else:
            lower = [i for i, s in others if s < best_score]
            rejected = rng.choice(lower) if lower else others[0][0]
        scores = dict(scored)
        if scores[rejected] >= scores[best]:
            drop("tie")
            continue
        if generations[best].strip() == generations[rejected].strip():
            drop("identical_texts")
            continue
        prompt = ([{"role": "system", "content": row["system_prompt"]}] if row.get("system_prompt") else [])
        prompt.append({"role": "user", "content": row["instruction"]})
        pair = {"prompt": prompt,
                "chosen": [{"role": "assistant", "content": generations[best]}],
                "rejected": [{"role": "assistant", "content": generations[rejected]}],
                "chosen_rating": scores[best], "rejected_rating": scores[rejected]}
        if models is not None and len(models) == len(generations):
            pair.update(chosen_model=models[best], rejected_model=models[rejected])
        if rationales is not None and len(rationales) == len(generations):
            pair.update(chosen_rationale=rationales[best], rejected_rationale=rationales[rejected])
        pairs.append(pair)
    return pairs, dropped


def binarize(data: Any, rule: Rule = DEFAULT_RULE, *, seed: int = 0) -> PreferenceResult:
    """Judged rows -> DPO pairs (``prompt`` / ``chosen`` / ``rejected`` message lists) by the named ``rule``.

    See the module docstring for the three rules and the drop reasons (``tie``, ``identical_texts``,
    ``missing_ratings``, ``wrong_number_of_ratings``); every dropped row is in ``.dropped`` with its reason and
    counted in ``.report``. No pair has chosen == rejected. Extra columns: ``chosen_rating``, ``rejected_rating``,
    ``chosen_model``, ``rejected_model``, ``chosen_rationale``, ``rejected_rationale`` (when the rows have them);
    TRL's ``DPOTrainer`` ignores them (:func:`smolsynth.training.dpo` drops them).

    >>> result = binarize([{"instruction": "Hi", "generations": ["a", "b", "c"], "ratings": [5, 5, 2]}])
    >>> result.dataset[0]["rejected"], result.report.step
    ([{'role': 'assistant', 'content': 'c'}], 'binarize (best-vs-random-lower)')
    """
    started = time.perf_counter()
    if rule not in RULES:
        raise ValueError(f"rule={rule!r} is not a binarization rule; use one of {', '.join(RULES)}.")
    rows = as_rows(data)
    pairs, dropped = binarize_rows(rows, rule=rule, seed=seed)
    return _result(f"binarize ({rule})", len(rows), pairs, dropped, [], started)


# ------------------------------------------------------------------------------------------------ position bias
def _preferred(ratings: Sequence[Any]) -> int | None:
    """The index of the single best-rated candidate, or None when the best rating is shared (or missing)."""
    scores = [_score(r) for r in ratings]
    if not scores or any(s is None for s in scores):
        return None
    best = max(scores)
    winners = [i for i, s in enumerate(scores) if s == best]
    return winners[0] if len(winners) == 1 else None


@dataclass(repr=False)
class PositionBias:
    """What :func:`position_bias` found.

    Attributes:
        compared: rows with a single preferred candidate in both orders.
        changed: of those, rows whose preferred candidate changed when the order was reversed.
        flip_rate: ``changed / compared`` (0.0 when nothing could be compared).
        first_shown_wins: how often the preferred candidate was the one shown first, over both orders of the
            compared rows (about ``1 / n_candidates`` for a judge with no position bias).
        ties: rows where one of the two orders had no single preferred candidate.
        rows: per row: ``forward_ratings``, ``reverse_ratings`` (mapped back to the original order),
            ``forward_preferred``, ``reverse_preferred``, ``changed``.
        report: the account of the re-judging (rows dropped by the judge included).
    """

    compared: int
    changed: int
    flip_rate: float
    first_shown_wins: float
    ties: int
    rows: Any
    report: Report
    steps: list[Report] = field(default_factory=list)

    def __str__(self) -> str:
        return (f"Position bias: the preferred candidate changed in {self.changed} of {self.compared} rows when the "
                f"candidates were shown in reverse order (flip rate {self.flip_rate:.0%}); the candidate shown first "
                f"was preferred {self.first_shown_wins:.0%} of the time; {self.ties} row(s) had a tie for best.")

    __repr__ = __str__  # a terminal or nbval log shows the same sentence as the notebook

    def _repr_html_(self) -> str:
        return f"<p>{html.escape(str(self))}</p>"


def position_bias(data: Any, *, sample: int = 20, aspect: str = "overall-rating", seed: int = 0,
                  **judge_kwargs: Any) -> PositionBias:
    """Judge a sample again with the candidates in reverse order; report how often the preferred one changes.

    Args:
        data: judged rows (with ``ratings``: used as the forward judgment) or unjudged ones (judged both ways here).
        sample: how many rows to re-judge (a seeded random sample; all rows when there are fewer).
        aspect: the judge's aspect (use the one your ratings came from).
        judge_kwargs: passed to :func:`judge` (``model``, ``temperature``, ``max_new_tokens``, ...).

    Returns:
        A :class:`PositionBias` with ``flip_rate``, ``first_shown_wins`` and the per-row ``rows``.

    >>> bias = position_bias(judged.dataset, sample=10)   # doctest: +SKIP
    >>> print(bias)                                        # doctest: +SKIP
    Position bias: the preferred candidate changed in 3 of 9 rows ...
    """
    started = time.perf_counter()
    if sample < 1:
        raise ValueError(f"sample={sample} must be >= 1 (rows to judge again).")
    rows = as_rows(data)
    _require(rows, ["instruction", "generations"], "position_bias", "judge()")
    picked = sorted(random.Random(seed).sample(range(len(rows)), min(sample, len(rows))))
    chosen = [rows[i] for i in picked]
    steps: list[Report] = []
    if all("ratings" in r for r in chosen):
        forward = chosen
    else:
        result = judge(chosen, aspect, seed=seed, **judge_kwargs)
        steps.append(result.report)
        forward = list(result.dataset)
    reversed_rows = [{"instruction": r["instruction"], "generations": list(r["generations"])[::-1], "_pos": k}
                     for k, r in enumerate(forward)]
    backward = judge(reversed_rows, aspect, seed=seed + 1, **judge_kwargs)
    steps.append(backward.report)
    reverse_by_pos = {r["_pos"]: list(r["ratings"])[::-1] for r in backward.dataset}
    details, compared, changed, ties, first_wins = [], 0, 0, 0, 0
    for k, row in enumerate(forward):
        if k not in reverse_by_pos:
            continue
        n = len(row["generations"])
        f_pref, r_pref = _preferred(row["ratings"]), _preferred(reverse_by_pos[k])
        flip = None
        if f_pref is None or r_pref is None:
            ties += 1
        else:
            compared += 1
            flip = f_pref != r_pref
            changed += int(flip)
            first_wins += int(f_pref == 0) + int(r_pref == n - 1)  # shown first: index 0 forward, n-1 reversed
        details.append({"instruction": row["instruction"], "generations": list(row["generations"]),
                        "forward_ratings": list(row["ratings"]), "reverse_ratings": reverse_by_pos[k],
                        "forward_preferred": f_pref, "reverse_preferred": r_pref, "changed": flip})
    report = Report("position_bias", rows_in=len(forward), rows_out=len(details),
                    dropped=dict(backward.report.dropped), input_tokens=sum(r.input_tokens for r in steps),
                    output_tokens=sum(r.output_tokens for r in steps),
                    seconds=round(time.perf_counter() - started, 3), model=backward.report.model)
    return PositionBias(compared=compared, changed=changed, flip_rate=changed / compared if compared else 0.0,
                        first_shown_wins=first_wins / (2 * compared) if compared else 0.0, ties=ties,
                        rows=to_dataset(details), report=report, steps=steps)


__all__ = ["ASPECTS", "DEFAULT_EVOL_DIRECTIONS", "DEFAULT_GENERATORS", "DEFAULT_RULE", "EVOL_DIRECTIONS", "Generator",
           "JUDGE_ASPECTS", "PositionBias", "PreferenceResult", "RULES", "Rule", "binarize", "binarize_rows",
           "evolve_quality", "judge", "judge_tokens", "pool_responses", "position_bias", "ratings_table"]
