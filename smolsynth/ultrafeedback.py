"""UltraFeedback knowledge: the format its parser reads, as a regex and as a JSON schema for constrained decoding.

distilabel's ``UltraFeedback`` task parses one ``#### Output for Text i`` section per candidate (or, with
``use_default_structured_output=True``, a JSON object with ``ratings`` and ``rationales``). A small judge rarely writes
either by itself; decoding constrained to :func:`ultrafeedback_regex` / :func:`ultrafeedback_schema` makes every
judgment parse into exactly one rating per candidate.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

from smolsynth.arguments import check_choice, check_number
from smolsynth.formats import GENERATIONS, INSTRUCTION, RATINGS, RATIONALES, candidate_rows
from smolsynth.report import Report
from smolsynth.rows import Result, Row, from_steps

ASPECTS: tuple = ("instruction-following", "honesty", "truthfulness", "helpfulness")
"""UltraFeedback's four aspects, in the order ``judge(aspect="all")`` lists each candidate's ratings."""
JUDGE_ASPECTS: tuple = ("overall-rating", *ASPECTS, "all")
JUDGE_TEMPERATURE = 0.7
"""The judge's default sampling temperature."""

__all__ = ["ASPECTS", "JUDGE_ASPECTS", "JUDGE_TEMPERATURE", "JudgeSanity", "judge", "judge_llm", "judge_probes",
           "judge_sanity", "judge_tokens", "ultrafeedback_regex", "ultrafeedback_schema"]


def ultrafeedback_regex(n_generations: int, *, aspect: str = "overall-rating", max_rationale_chars: int = 300) -> str:
    """A regex for the text UltraFeedback's parser expects, with exactly ``n_generations`` rated sections.

    Use it as ``LocalLLM(structured_output={"format": "regex", "schema": ultrafeedback_regex(2)})`` with the default
    ``UltraFeedback`` task: every judgment then parses into one rating (1-5) per candidate.

    >>> import re
    >>> bool(re.fullmatch(ultrafeedback_regex(1), "#### Output for Text 1\\nRating: 4\\nRationale: Clear and correct."))
    True
    """
    if n_generations < 1:
        raise ValueError(f"n_generations={n_generations} must be >= 1 (one section per candidate).")
    # a rationale is words: it opens with a letter, has at least 12 characters (or the whole budget when smaller) and
    # no brackets. A small judge otherwise copies the template's placeholders ("[Rationale for the rating in short
    # sentences]", "2. [Rationale]") or writes the candidate's number as its reason.
    shortest = min(12, max_rationale_chars) - 1
    rationale = f"[A-Za-z][^\\n#\\[\\]]{{{shortest},{max_rationale_chars - 1}}}"
    sections = []
    for i in range(1, n_generations + 1):
        head = f"#### Output for Text {i}\\n"
        if aspect in ("helpfulness", "truthfulness"):
            body = f"Type: (None|[1-3](, [1-3]){{0,2}})\\nRationale: {rationale}\\nRating: [1-5]\\nRationale: {rationale}"
        elif aspect == "honesty":  # its prompt allows "N/A" (creative writing); the parser reads it as no rating
            body = f"Rating: ([1-5]|N/A)\\nRationale: {rationale}"
        elif aspect in ("instruction-following", "overall-rating"):
            body = f"Rating: [1-5]\\nRationale: {rationale}"
        else:
            raise ValueError(f"aspect={aspect!r} is not an UltraFeedback aspect.")
        sections.append(head + body)
    return "\\n\\n".join(sections)


def ultrafeedback_schema(n_generations: int, *, max_rationale_chars: int = 300) -> Dict[str, Any]:
    """JSON schema of UltraFeedback's structured judgment with exactly ``n_generations`` ratings (1-5) and
    rationales; use with ``UltraFeedback(use_default_structured_output=True)`` and
    ``LocalLLM(structured_output={"format": "json", "schema": ultrafeedback_schema(n)})``."""
    if n_generations < 1:
        raise ValueError(f"n_generations={n_generations} must be >= 1.")
    return {
        "type": "object",
        "properties": {
            "ratings": {"type": "array", "items": {"type": "integer", "minimum": 1, "maximum": 5},
                        "minItems": n_generations, "maxItems": n_generations},
            "rationales": {"type": "array", "items": {"type": "string", "maxLength": max_rationale_chars},
                           "minItems": n_generations, "maxItems": n_generations},
        },
        "required": ["ratings", "rationales"],
    }


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


def judge_llm(n_candidates: int, aspect: str = "overall-rating", *, model: str | None = None, llm: Any = None,
              max_new_tokens: int | None = None, temperature: float = JUDGE_TEMPERATURE,
              max_rationale_chars: int = 200, seed: int = 0) -> Any:
    """The LLM of an ``UltraFeedback`` task that rates ``n_candidates`` answers per row: decoding constrained to
    :func:`ultrafeedback_regex`, with a budget of :func:`judge_tokens` (or ``max_new_tokens``).

    It is what :func:`judge` gives each ``UltraFeedback`` task it runs; use it to build the task yourself, for a
    distilabel pipeline (:func:`smolsynth.pipelines.build_pipeline`). Returns a :class:`~smolsynth.llm.LocalLLM` on
    ``model`` or, given ``llm`` (a :class:`~smolsynth.servers.ServerLLM`, say), a copy of it with the grammar and the
    budget (``llm`` itself is left as it was).

    >>> judge_llm(2, model="smolsynth/tiny").generation_kwargs
    {'max_new_tokens': 280, 'temperature': 0.7}
    """
    check_number("n_candidates", n_candidates, minimum=1, integer=True)
    spec = {"format": "regex", "schema": ultrafeedback_regex(n_candidates, aspect=aspect,
                                                             max_rationale_chars=max_rationale_chars)}
    kwargs = {"max_new_tokens": max_new_tokens or judge_tokens(n_candidates, aspect, max_rationale_chars),
              "temperature": temperature}
    if llm is not None:
        return llm.model_copy(update={"structured_output": spec,
                                      "generation_kwargs": {**llm.generation_kwargs, **kwargs}})
    from smolsynth.llm import LocalLLM

    return LocalLLM(model, seed=seed, structured_output=spec, generation_kwargs=kwargs)


def _judge_one_aspect(rows: list[dict[str, Any]], aspect: str, *, model_id: str, max_new_tokens: int | None,
                      temperature: float, max_rationale_chars: int, seed: int, progress: bool, cache: bool,
                      cache_dir: str | None, llm: Any = None
                      ) -> tuple[dict[int, dict[str, Any]], dict[int, dict[str, Any]], list[Report]]:
    """Judge every row on one aspect, grouped by candidate count (one grammar per count). Returns the outputs, the
    rows set aside (the judge's output and the ``reason``) by row index, and the runs' reports."""
    from smolsynth.runner import run
    from smolsynth.verbosity import import_distilabel, quiet_distilabel

    groups: dict[int, list[dict[str, Any]]] = {}
    for i, row in enumerate(rows):
        groups.setdefault(len(row["generations"]), []).append(
            {"instruction": row["instruction"], "generations": list(row["generations"]), "_row": i})
    outputs: dict[int, dict[str, Any]] = {}
    aside: dict[int, dict[str, Any]] = {}
    steps: list[Report] = []
    for n, group in sorted(groups.items()):
        if n == 0:
            aside.update({r["_row"]: {"reason": "no_candidates"} for r in group})
            continue
        constrained = judge_llm(n, aspect, model=model_id, llm=llm, max_new_tokens=max_new_tokens,
                                temperature=temperature, max_rationale_chars=max_rationale_chars, seed=seed)
        with quiet_distilabel():
            task = import_distilabel("distilabel.steps.tasks").UltraFeedback(aspect=aspect, llm=constrained)
        desc = f"judge: {aspect}" + (f" ({n} candidates)" if len(groups) > 1 else "")
        result = run(task, group, desc=desc, progress=progress, cache=cache, cache_dir=cache_dir)
        steps.append(result.report)
        for out in result.rows:
            if "rationales-for-ratings" in out:  # typed aspects: ``rationales`` explain the type, not the rating
                out["type_rationales"] = out.pop("rationales")
                out["rationales"] = out.pop("rationales-for-ratings")
            outputs[out["_row"]] = out
        for out in result.dropped_rows:  # keep what the judge wrote: a drop must be inspectable
            aside[out["_row"]] = {**{k: v for k, v in out.items() if k not in ("_row", "instruction", "generations")},
                                  "reason": f"{aspect}: {out['reason']}"}
    return outputs, aside, steps


def judge(data: Any, aspect: str = "overall-rating", *, model: str | None = None,
          temperature: float = JUDGE_TEMPERATURE, max_new_tokens: int | None = None, max_rationale_chars: int = 200,
          seed: int = 0, progress: bool = True, cache: bool = True, cache_dir: str | None = None,
          llm: Any = None) -> Result:
    """Rate every candidate with distilabel's ``UltraFeedback`` task, decoding constrained so that it always parses.

    Args:
        data: rows with ``instruction`` and ``generations`` (what :func:`~smolsynth.preferences.pool_responses` /
            :func:`~smolsynth.preferences.evolve_quality` return); other columns are kept.
        aspect: ``"overall-rating"`` (Argilla's one holistic rating), one of ``"instruction-following"``,
            ``"honesty"``, ``"truthfulness"``, ``"helpfulness"``, or ``"all"`` (the four aspects, four judgments).
        model: the judge model (default: the course model).
        temperature: sampling temperature of the judge (0 = greedy).
        max_new_tokens: budget per judgment (default :func:`judge_tokens` for the row's candidate count).
        max_rationale_chars: the longest rationale the grammar allows.
        llm: a judge LLM to use instead of ``model`` (e.g. a :class:`~smolsynth.servers.ServerLLM`); it gets the
            grammar as its structured output. A server that cannot constrain to it judges freely, and the row check
            drops (and counts) every judgment that does not parse.

    Returns:
        A :class:`~smolsynth.rows.Result`; each row gains ``ratings`` (one int 1-5 per candidate; with ``"all"``, per
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
    check_choice("aspect", aspect, JUDGE_ASPECTS)
    check_number("temperature", temperature, minimum=0.0, maximum=5.0)
    check_number("max_new_tokens", max_new_tokens, minimum=1, integer=True, allow_none=True)
    check_number("max_rationale_chars", max_rationale_chars, minimum=1, integer=True)
    rows = candidate_rows(data, "judge", "pool_responses() or evolve_quality()")
    model_id = llm.model_name if llm is not None else resolve_model(model)
    judged_columns = {"ratings", "rationales", "types", "type_rationales", "rationales-for-ratings", "judge_model",
                      *(f"{c}_{a}" for c in ("ratings", "rationales", "types") for a in ASPECTS)}
    base = [{k: v for k, v in row.items() if k not in judged_columns} for row in rows]
    settings = dict(model_id=model_id, max_new_tokens=max_new_tokens, temperature=temperature,
                    max_rationale_chars=max_rationale_chars, seed=seed, progress=progress, cache=cache,
                    cache_dir=cache_dir, llm=llm)
    steps: list[Report] = []
    kept, dropped = [], []
    if aspect != "all":
        outputs, aside, steps = _judge_one_aspect(base, aspect, **settings)
        for i, row in enumerate(base):
            if i in aside or i not in outputs:
                dropped.append({**row, **aside.get(i, {"reason": "unparsed_output"})})
                continue
            out = {k: v for k, v in outputs[i].items() if k not in ("_row", "model_name", "instruction", "generations")}
            kept.append({**row, **out, "judge_model": model_id})
    else:
        per_aspect = {}
        for a in ASPECTS:
            outputs, aside, reports = _judge_one_aspect(base, a, **settings)
            per_aspect[a] = (outputs, aside)
            steps.extend(reports)
        for i, row in enumerate(base):
            failed = [per_aspect[a][1].get(i, {"reason": f"{a}: unparsed_output"}) for a in ASPECTS
                      if i not in per_aspect[a][0]]
            if failed:
                dropped.append({**row, **failed[0]})
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
    return from_steps(f"judge ({aspect})", steps, rows=kept, dropped_rows=dropped, rows_in=len(rows), started=started,
                      model=model_id)


# ---------------------------------------------------------------------------------------------- row checks
def _one_rating_per_generation(row: Row, task: Any) -> Optional[str]:
    """UltraFeedback returns as many ratings as sections it parsed ([None] for 2 generations on bad output)."""
    generations = row.get((getattr(task, "input_mappings", {}) or {}).get(GENERATIONS, GENERATIONS))
    ratings = row.get(RATINGS)
    if not isinstance(ratings, list) or generations is None:
        return "unparsed_output"
    if len(ratings) != len(generations):
        return "wrong_number_of_ratings"
    rationales = row.get(RATIONALES) or [None] * len(ratings)
    if any(r is None and (task.aspect != "honesty" or rationales[i] is None) for i, r in enumerate(ratings)):
        return "unparsed_rating"  # honesty's "N/A" (a None rating with a rationale) is an answer, not a failure
    return None


def _register() -> None:
    from smolsynth.runner import register_validator

    register_validator("distilabel.steps.tasks.ultrafeedback.UltraFeedback")(_one_rating_per_generation)


_register()


# ---------------------------------------------------------------------------------------------- judge sanity
@dataclass(repr=False)
class JudgeSanity:
    """What :func:`judge_sanity` measured: how often the judge rates the good answer of a probe above the bad one.

    Attributes:
        agreement: per presentation order (``"good_first"``, ``"bad_first"``), the share of probes where the good
            answer got the strictly higher rating (ties count as misses).
        ties: per order, the share of probes rated equal.
        by_kind: per kind of bad answer (off-topic, cut-off, refusal, wrong fact), the agreement over both orders.
        rows: one row per probe and order with both ratings.
        report: the account of the judge runs.
    """

    agreement: Dict[str, float]
    ties: Dict[str, float]
    by_kind: Dict[str, float]
    rows: List[Row]
    report: Report

    def __str__(self) -> str:
        a, t = self.agreement, self.ties
        return (f"Judge sanity on {len({r['probe'] for r in self.rows})} hand-written probes: the good answer was rated higher "
                f"{a['good_first']:.0%} of the time when shown first and {a['bad_first']:.0%} when shown second "
                f"(ties {t['good_first']:.0%} / {t['bad_first']:.0%}; a coin would score about 40%).")

    __repr__ = __str__

    def _repr_html_(self) -> str:
        import html

        kinds = "".join(f"<tr><td>{html.escape(k)}</td><td>{v:.0%}</td></tr>" for k, v in self.by_kind.items())
        return f"<p>{html.escape(str(self))}</p><table><tr><th>bad answer</th><th>agreement</th></tr>{kinds}</table>"


def judge_probes() -> List[Row]:
    """The probe set shipped with smolsynth: instructions with a clearly good and a clearly bad answer (off-topic,
    cut off, a refusal, a wrong fact), written by hand, not generated."""
    from pathlib import Path

    from smolsynth.rows import read_jsonl

    return read_jsonl(Path(__file__).parent / "data" / "judge_probes.jsonl")


def judge_sanity(*, model: Optional[str] = None, aspect: str = "overall-rating", temperature: float = 0.0,
                 max_rationale_chars: int = 200, probes: Optional[List[Row]] = None, seed: int = 0,
                 progress: bool = True, cache: bool = True) -> JudgeSanity:
    """Judge every probe twice, good answer first and good answer second; report the agreement in each order.

    A judge worth using rates the good answer higher in both orders; one that prefers whatever comes first scores
    high in one order and low in the other (position bias). Greedy by default (``temperature=0``), so the two orders
    differ by the order alone.

    >>> print(judge_sanity(model="smolsynth/tiny"))  # doctest: +SKIP
    Judge sanity on 12 hand-written probes: the good answer was rated higher ...
    """
    started = time.perf_counter()
    probes = judge_probes() if probes is None else probes
    rows = []
    for i, p in enumerate(probes):
        rows.append({INSTRUCTION: p[INSTRUCTION], GENERATIONS: [p["good"], p["bad"]], "_probe": i, "_order": "good_first"})
        rows.append({INSTRUCTION: p[INSTRUCTION], GENERATIONS: [p["bad"], p["good"]], "_probe": i, "_order": "bad_first"})
    judged = judge(rows, aspect, model=model, temperature=temperature, max_rationale_chars=max_rationale_chars,
                   seed=seed, progress=progress, cache=cache)
    details = []
    for r in judged.rows:
        good, bad = (r[RATINGS][0], r[RATINGS][1]) if r["_order"] == "good_first" else (r[RATINGS][1], r[RATINGS][0])
        details.append({"probe": r["_probe"], "order": r["_order"], "kind": probes[r["_probe"]].get("kind"),
                        "good_rating": good, "bad_rating": bad})

    def share(order: str, test: Any) -> float:
        mine = [d for d in details if d["order"] == order]
        return round(sum(test(d) for d in mine) / len(mine), 3) if mine else 0.0

    def wins(d: Row) -> bool:
        return d["good_rating"] is not None and d["bad_rating"] is not None and d["good_rating"] > d["bad_rating"]

    kinds: Dict[str, List[bool]] = {}
    for d in details:
        kinds.setdefault(str(d["kind"]), []).append(wins(d))
    report = Report("judge_sanity", rows_in=len(rows), rows_out=len(details), dropped=dict(judged.report.dropped),
                    input_tokens=judged.report.input_tokens, output_tokens=judged.report.output_tokens,
                    seconds=round(time.perf_counter() - started, 3), model=judged.report.model)
    return JudgeSanity(agreement={o: share(o, wins) for o in ("good_first", "bad_first")},
                       ties={o: share(o, lambda d: d["good_rating"] == d["bad_rating"]) for o in ("good_first",
                                                                                                   "bad_first")},
                       by_kind={k: round(sum(v) / len(v), 3) for k, v in sorted(kinds.items())}, rows=details,
                       report=report)
