"""Magpie (Xu et al. 2024): a chat model, given only the start of a user turn, writes a user's request.

distilabel's ``Magpie`` task runs through the runner with a row count (``MagpieGenerator`` hangs when
``num_rows % batch_size != 0``; this never does). The pre-query prompt is derived from the model's chat template
(:func:`smolsynth.templates.magpie_prompt`); instructions are sampled at temperature 1.0 / top_p 1.0 and responses
written greedily, as in the paper (distilabel uses one setting for both: the subclass here gives the assistant turns
their own). Filters, each counted: instructions ending with ":", exact and near duplicates, empty turns.

The paper filters further: an LLM tags each instruction's input quality (keeping "good" and "excellent"), a reward
model scores the responses (keeping a reward above -10), embedding near-duplicates are removed and the longest
responses kept. :func:`tag_quality` is the first of those, as a constrained judge step; the duplicate filter here is
word 3-gram Jaccard (no embedding model needed).
"""

from __future__ import annotations

import random
import time
import warnings
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any, Dict, List, Optional, Union

from smolsynth.arguments import check_number, check_texts
from smolsynth.formats import GENERATION, INSTRUCTION, conversation_problem
from smolsynth.rows import Result, Row, as_rows, from_steps, partition
from smolsynth.stats import NearDuplicateIndex, normalize_text

__all__ = ["INPUT_QUALITY", "magpie", "tag_quality"]


@lru_cache(maxsize=None)  # built on first use (importing distilabel is slow), once
def _magpie_class() -> type:
    """distilabel's Magpie with separate generation settings for the assistant turns."""
    from smolsynth.verbosity import import_distilabel, quiet_subclassing

    with quiet_subclassing():
        base = import_distilabel("distilabel.steps.tasks").Magpie

        class MagpieWithResponseSettings(base):  # type: ignore[misc, valid-type]
            """``Magpie`` whose assistant turns use ``llm.generation_kwargs`` updated with
            ``response_generation_kwargs``."""

            response_generation_kwargs: Optional[Dict[str, Any]] = None

            def _generate_conversation_turn(self, role: str, conversations: Any, active_indices: Any) -> Any:
                if role != "assistant" or not self.response_generation_kwargs:
                    return super()._generate_conversation_turn(role, conversations, active_indices)
                saved = self.llm.generation_kwargs
                self.llm.generation_kwargs = {**(saved or {}), **self.response_generation_kwargs}
                try:
                    return super()._generate_conversation_turn(role, conversations, active_indices)
                finally:
                    self.llm.generation_kwargs = saved

        MagpieWithResponseSettings.__module__ = __name__
        MagpieWithResponseSettings.__qualname__ = "MagpieWithResponseSettings"
    return MagpieWithResponseSettings


def _system_prompts(system_prompt: Any, n: int, rng: random.Random) -> Optional[List[str]]:
    """One system prompt per row: the same one, a uniform pick from a list, or a weighted pick from a dict."""
    if system_prompt is None:
        return None
    if isinstance(system_prompt, str):
        if not system_prompt.strip():
            raise ValueError("system_prompt is empty: pass None for no system prompt.")
        return [system_prompt] * n
    if isinstance(system_prompt, Mapping):
        prompts = check_texts("system_prompt (the dict's keys)", list(system_prompt))
        weights = list(system_prompt.values())
        if any(isinstance(w, bool) or not isinstance(w, (int, float)) or w < 0 for w in weights) or sum(weights) <= 0:
            raise ValueError("system_prompt as a dict maps each prompt to a weight >= 0 (not all 0), e.g. "
                             "{'You are a chef.': 0.7, 'You are a nurse.': 0.3}.")
        return rng.choices(prompts, weights=weights, k=n)
    if isinstance(system_prompt, Sequence):
        prompts = check_texts("system_prompt", list(system_prompt))
        return [rng.choice(prompts) for _ in range(n)]
    raise TypeError(f"system_prompt must be a string, a list of strings or a dict prompt -> weight; got a "
                    f"{type(system_prompt).__name__}.")


def _magpie_filter(*, n_turns: int, only_instruction: bool, threshold: float) -> Any:
    """The check of Magpie's filters (empty turns, ``ends_with_colon``, ``duplicate``, ``near_duplicate``), with the
    texts kept so far as its state."""
    kept: List[str] = []
    seen: Dict[str, int] = {}
    index = NearDuplicateIndex(threshold=threshold)

    def check(row: Row) -> Any:
        if "response" in row:  # distilabel's name for the answer; smolsynth's vocabulary says generation
            row = {**{k: v for k, v in row.items() if k != "response"}, GENERATION: row["response"]}
        if n_turns > 1 and not only_instruction:
            conversation = row.get("conversation") or []
            users = [m.get("content") for m in conversation if isinstance(m, dict) and m.get("role") == "user"]
            row = {**row, INSTRUCTION: users[0] if users else None}
            if conversation_problem(conversation) or len(conversation) != 2 * n_turns:
                return "empty_turn", row
        elif not only_instruction and not (isinstance(row.get(GENERATION), str) and row[GENERATION].strip()):
            return "empty_turn", row
        text = (row.get(INSTRUCTION) or "").strip()
        if not text:
            return "empty_turn", row
        if text.endswith(":"):
            return "ends_with_colon", row
        key = normalize_text(text)
        if key in seen:
            return "duplicate", {**row, "duplicate_of": kept[seen[key]]}
        hit = index.match(text)
        if hit is not None:
            return "near_duplicate", {**row, "duplicate_of": kept[hit[0]], "similarity": hit[1]}
        seen[key] = len(kept)
        index.add(text)
        kept.append(text)
        return None, {**row, INSTRUCTION: text}

    return check


def magpie(num_rows: int, *, model: Optional[str] = None, llm: Any = None, n_turns: int = 1,
           only_instruction: bool = False, system_prompt: Union[None, str, Sequence[str], Mapping[str, float]] = None,
           max_new_tokens: int = 256, instruction_temperature: float = 1.0, top_p: float = 1.0,
           response_temperature: float = 0.0, response_max_new_tokens: Optional[int] = None,
           response_repetition_penalty: float = 1.2,
           near_duplicate_threshold: float = 0.7, seed: int = 0, batch_size: Optional[int] = None,
           cache: bool = True, progress: bool = True, allow_truncated: bool = False) -> Result:
    """Generate ``num_rows`` Magpie instructions (and answers), filtered, every drop counted.

    Args:
        num_rows: conversations (or instructions) to generate.
        n_turns: user/assistant exchanges per conversation (``> 1``: a ``conversation`` column).
        only_instruction: generate only the instruction (no answer).
        system_prompt: one string, a list (one picked per row, uniformly) or a dict prompt -> weight (picked per row
            with those weights), seeded by ``seed``; recorded in a ``system_prompt`` column.
        instruction_temperature, top_p: the paper samples instructions at 1.0 / 1.0.
        response_temperature: the paper answers greedily (0.0); a low value (0.2-0.3) varies answers a little.
        response_repetition_penalty: greedy answers of a small model loop until the budget runs out (then they are
            dropped as ``truncated``); 1.2 ends most of SmolLM2-135M's (benchmarks/README.md). 1.0 is off.
        max_new_tokens, response_max_new_tokens: token budgets (answers default to ``max_new_tokens``).
        near_duplicate_threshold: word 3-gram Jaccard at which an instruction counts as a near duplicate.

    Returns:
        A :class:`~smolsynth.rows.Result` with ``instruction`` (the first user turn), ``generation`` (the answer,
        single turn), ``conversation`` (``n_turns > 1``), ``system_prompt`` (when given) and ``model_name``.

    >>> result = magpie(8, model="smolsynth/tiny", max_new_tokens=16)  # doctest: +SKIP
    """
    from smolsynth.generation import llm_for
    from smolsynth.runner import run
    from smolsynth.templates import magpie_prompt
    from smolsynth.verbosity import quiet_distilabel

    check_number("num_rows", num_rows, minimum=0, integer=True)
    check_number("n_turns", n_turns, minimum=1, integer=True)
    check_number("max_new_tokens", max_new_tokens, minimum=1, integer=True)
    check_number("response_max_new_tokens", response_max_new_tokens, minimum=1, integer=True, allow_none=True)
    check_number("instruction_temperature", instruction_temperature, minimum=0.0, maximum=5.0)
    check_number("response_temperature", response_temperature, minimum=0.0, maximum=5.0)
    check_number("response_repetition_penalty", response_repetition_penalty, minimum=0.0, exclusive_minimum=True)
    check_number("top_p", top_p, minimum=0.0, maximum=1.0, exclusive_minimum=True)
    check_number("near_duplicate_threshold", near_duplicate_threshold, minimum=0.0, maximum=1.0)
    started = time.perf_counter()
    prompts = _system_prompts(system_prompt, num_rows, random.Random(seed))
    llm = llm_for(model, llm, seed=seed, max_new_tokens=max_new_tokens, temperature=instruction_temperature,
                  top_p=top_p)
    if getattr(llm, "magpie_problem", None):  # e.g. a server's chat endpoint (smolsynth.servers)
        raise ValueError(f"magpie(llm=...): {llm.magpie_problem}")
    tokenizer = getattr(llm, "tokenizer", None)
    if tokenizer is not None:  # fail now, with the fix, rather than as a dropped batch
        magpie_prompt(tokenizer, [], pre_query_template=getattr(llm, "magpie_pre_query_template", None),
                      chat_template=getattr(llm, "chat_template", None))
    response_kwargs = {"temperature": response_temperature, "max_new_tokens": response_max_new_tokens or
                       max_new_tokens, "repetition_penalty": response_repetition_penalty}
    with quiet_distilabel():
        task = _magpie_class()(llm=llm, n_turns=n_turns, only_instruction=only_instruction, name="magpie",
                               response_generation_kwargs=None if only_instruction else response_kwargs)
    data: Any = [{"system_prompt": p} for p in prompts] if prompts is not None else num_rows
    generated = run(task, data, batch_size=batch_size, cache=cache, progress=progress, desc="magpie",
                    allow_truncated=allow_truncated)
    for row in generated.dropped_rows:  # distilabel's name for the answer; smolsynth's vocabulary says generation
        if "response" in row:
            row[GENERATION] = row.pop("response")
    filtered = partition(generated.rows, _magpie_filter(n_turns=n_turns, only_instruction=only_instruction,
                                                        threshold=near_duplicate_threshold),
                         step="filter (colon, duplicates)")
    return from_steps("magpie", [generated.report, filtered.report], rows=filtered.rows,
                      dropped_rows=generated.dropped_rows + filtered.dropped_rows, rows_in=num_rows, started=started,
                      model=generated.report.model,
                      params={"num_rows": num_rows, "n_turns": n_turns, "system_prompt": system_prompt})


INPUT_QUALITY = ("very poor", "poor", "average", "good", "excellent")
"""The input-quality tags of Magpie's tagger, worst first."""

QUALITY_PROMPT = """Rate the quality of the user query below: how clear, specific and coherent it is.

- very poor: unclear, vague or incoherent; essential information is missing.
- poor: somewhat unclear, or missing important details.
- average: moderately clear and specific; some more information may be needed to answer it well.
- good: clear, specific and well formed; enough context to answer it.
- excellent: very clear, specific and well articulated; everything needed to answer it is there.

User query:
{{ instruction }}

Answer with the rating only, as JSON: {"input_quality": "..."}."""
"""The tagger's prompt (our wording of the scale Magpie's tagger uses; it asks for the rating only)."""


def tag_quality(data: Any, *, keep: Sequence[str] = ("good", "excellent"), model: Optional[str] = None,
                llm: Any = None, seed: int = 0, batch_size: Optional[int] = None, cache: bool = True,
                progress: bool = True) -> Result:
    """Magpie's first filter: an LLM tags each instruction's input quality, and only the ``keep`` tags stay.

    The tagger answers greedily, its decoding constrained to ``{"input_quality": <one of INPUT_QUALITY>}``, so every
    answer parses (on any model; an answer that still cannot be read is dropped as ``unparsed_quality``). Kept rows
    get an ``input_quality`` column; the others are dropped as ``low_input_quality``, with their tag. Magpie tagged
    with Llama-3-8B-Instruct, which writes an explanation before the rating; here the rating comes alone (a small
    model's explanation would cost tokens and be cut off), so it is a cheaper and blunter judgment.

    Returns a :class:`~smolsynth.rows.Result` (``.report.dropped`` counts each reason).

    >>> tagged = tag_quality(magpie(20).dataset)  # doctest: +SKIP
    >>> tagged.report.dropped  # doctest: +SKIP
    """
    import json

    from smolsynth.llm import LocalLLM
    from smolsynth.runner import run
    from smolsynth.verbosity import import_distilabel, quiet_distilabel

    keep = list(keep) if not isinstance(keep, str) else [keep]
    unknown = [k for k in keep if k not in INPUT_QUALITY]
    if unknown or not keep:
        raise ValueError(f"keep={keep!r}: use tags from {list(INPUT_QUALITY)}, e.g. keep=('good', 'excellent').")
    rows = as_rows(data, argument="data")
    if rows and INSTRUCTION not in rows[0]:
        raise ValueError(f"tag_quality() needs an {INSTRUCTION!r} column (columns: {sorted(rows[0])}): pass the rows "
                         "that magpie() returned (its .rows or .dataset).")
    started = time.perf_counter()
    schema = {"type": "object", "properties": {"input_quality": {"enum": list(INPUT_QUALITY)}},
              "required": ["input_quality"]}
    with quiet_distilabel():
        if llm is None:
            llm = LocalLLM(model, seed=seed, structured_output={"format": "json", "schema": schema},
                           generation_kwargs={"max_new_tokens": 32, "temperature": 0.0})
        task = import_distilabel("distilabel.steps.tasks").TextGeneration(
            llm=llm, template=QUALITY_PROMPT, columns=[INSTRUCTION], name="tag_quality",
            output_mappings={"generation": "quality_answer"})
    # the tagger sees the instruction only; its answer is joined back to the row (whose columns it must not touch)
    tagged = run(task, [{INSTRUCTION: r[INSTRUCTION], "_row": i} for i, r in enumerate(rows)], batch_size=batch_size,
                 cache=cache, progress=progress, desc="tag quality",
                 allow_truncated=True)  # 32 tokens hold the JSON; a cut answer fails to parse and is counted

    def check(answered: Row) -> Any:
        row = rows[answered["_row"]]
        try:
            tag = json.loads(answered.get("quality_answer") or "")["input_quality"]
        except (ValueError, KeyError, TypeError):
            return "unparsed_quality", row
        row = {**row, "input_quality": tag}
        return (None if tag in keep else "low_input_quality"), row

    filtered = partition(tagged.rows, check, step=f"keep {', '.join(keep)}")
    not_run = [{**rows[r["_row"]], "reason": r["reason"]} for r in tagged.dropped_rows]
    return from_steps("tag_quality", [tagged.report, filtered.report], rows=filtered.rows,
                      dropped_rows=not_run + filtered.dropped_rows, rows_in=len(rows), started=started,
                      model=tagged.report.model, params={"keep": keep})
