"""Self-Instruct (Wang et al. 2022): grow a pool of instructions from a few seeds, round after round, with the paper's
filters.

distilabel's ``SelfInstruct`` task is only the prompt (and it splits the answer on newlines, numbering kept). The
paper's loop is here: each prompt shows 8 instructions, 6 seeds and 2 from the generated pool (fewer from the pool
while it is small, the gap filled with seeds, as in the authors' code), shuffled; a new instruction is kept only if
its ROUGE-L F (no stemming) against the seeds and the pool is <= 0.7, and it passes the rule filters
(:func:`instruction_rule`). Every removed candidate is counted with its reason.

    >>> r = filter_instructions(["Write a poem about the sea.", "Write a poem about the sea, please."],
    ...                         references=["Explain how tides work."])
    >>> r.report.dropped, [row["instruction"] for row in r.rows]
    ({'too_similar': 1}, ['Write a poem about the sea.'])
"""

from __future__ import annotations

import random
import re
import string
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

from smolsynth.arguments import check_number, check_texts
from smolsynth.formats import INSTRUCTION
from smolsynth.rows import Result, Row, as_rows, from_steps, partition

__all__ = ["BOOTSTRAP_HEADER", "SELF_INSTRUCT_BLOCKLIST", "bootstrap_context", "filter_instructions",
           "instruction_rule", "rouge_l", "self_instruct", "strip_numbering"]

SELF_INSTRUCT_BLOCKLIST: Tuple[str, ...] = ("image", "images", "graph", "graphs", "picture", "pictures", "file",
                                            "files", "map", "maps", "draw", "plot", "go to")
"""Self-Instruct drops instructions that mention these (a text model cannot see or produce them)."""

BOOTSTRAP_HEADER = "Examples of queries this application receives (write new, different ones):"
"""The line above the example instructions in every Self-Instruct prompt's context (the header the model sees)."""

_NUMBERING = re.compile(
    r"^\s*(?:\*\*)?(?:(?:task|query|instruction|question|prompt)\s*#?\d+\s*[:.)-]|\(?\d{1,3}[.)]|\d{1,3}\s*[-:]|"
    r"[-*•·–]|#{1,6})(?:\*\*)?\s+", re.IGNORECASE)


def strip_numbering(text: str) -> str:
    """``text`` without a leading list marker: ``1.``, ``2)``, ``(3)``, ``4 -``, ``Task 5:``, ``-``, ``*``, ``•``.

    distilabel's SelfInstruct splits the model's answer on newlines and keeps these.

    >>> [strip_numbering(t) for t in ["1. Name a bird.", "- Name a tree.", "Task 3: Sort this.", "3.5 kg is heavy?"]]
    ['Name a bird.', 'Name a tree.', 'Sort this.', '3.5 kg is heavy?']
    """
    previous = None
    text = text.strip()
    while previous != text:  # "1. - Name a bird." loses both markers
        previous, text = text, _NUMBERING.sub("", text, count=1).strip()
    return text


_SCORER: Any = None


def rouge_l(a: str, b: str) -> float:
    """ROUGE-L F-measure between two texts, without stemming (``rouge-score``, the implementation the Self-Instruct
    authors used). Symmetric; 1.0 for the same words in the same order.

    >>> rouge_l("Write a poem about the sea.", "Write a poem about the sea.")
    1.0
    >>> round(rouge_l("Write a poem about the sea.", "Write a story about the forest."), 3)  # 4 of 6 words
    0.667
    """
    global _SCORER
    if _SCORER is None:
        from rouge_score import rouge_scorer

        _SCORER = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    return float(_SCORER.score(a, b)["rougeL"].fmeasure)


def instruction_rule(text: str, *, min_words: int = 4, max_words: int = 150,
                     blocklist: Sequence[str] = SELF_INSTRUCT_BLOCKLIST) -> Optional[str]:
    """Which of Self-Instruct's rule filters removes ``text`` (a reason), or None to keep it.

    Reasons: ``empty``, ``too_short`` (fewer than ``min_words`` words: the paper drops <= 3), ``too_long`` (more
    than ``max_words``: > 150), ``blocked_keyword`` (mentions image/graph/picture/file/map/draw/plot/"go to", as a
    whole word), ``write_a_program`` (starts with "Write a program"), ``starts_with_punctuation``,
    ``starts_with_non_ascii``.

    >>> instruction_rule("Draw a map of your town for a visitor."), instruction_rule("Explain why the sky is blue.")
    ('blocked_keyword', None)
    """
    text = text.strip()
    if not text:
        return "empty"
    words = len(text.split())
    if words < min_words:
        return "too_short"
    if words > max_words:
        return "too_long"
    lowered = text.lower()
    if any(re.search(rf"\b{re.escape(word.lower())}\b", lowered) for word in blocklist):
        return "blocked_keyword"
    if text.startswith("Write a program"):
        return "write_a_program"
    if text[0] in string.punctuation:
        return "starts_with_punctuation"
    if not text[0].isascii():
        return "starts_with_non_ascii"
    return None


def filter_instructions(candidates: Any, *, references: Sequence[str] = (), column: str = INSTRUCTION,
                        rouge_threshold: float = 0.7, min_words: int = 4, max_words: int = 150,
                        blocklist: Sequence[str] = SELF_INSTRUCT_BLOCKLIST, step: str = "filter") -> Result:
    """Self-Instruct's filters, in the paper's order: the rules of :func:`instruction_rule`, then novelty.

    A candidate is kept only if its ROUGE-L F against every reference (seeds and the pool so far) and every candidate
    kept before it is ``<= rouge_threshold``; otherwise it is dropped as ``too_similar``, with ``max_rouge_l`` and
    ``most_similar`` saying against what. Kept rows get ``max_rouge_l`` and ``most_similar`` too. ``candidates`` is a
    list of strings or rows with ``column``. ROUGE-L costs one comparison per (candidate, reference) pair.
    """
    check_number("rouge_threshold", rouge_threshold, minimum=0.0, maximum=1.0)
    check_number("min_words", min_words, minimum=0, integer=True)
    check_number("max_words", max_words, minimum=1, integer=True)
    if isinstance(candidates, (list, tuple)) and all(isinstance(c, str) for c in candidates):
        rows = [{column: c} for c in candidates]
    else:
        rows = as_rows(candidates, argument="candidates")
    if isinstance(references, str) or references is None:
        raise TypeError(f"references={references!r}: pass a list of strings (the seeds and the pool so far), or [].")
    pool = check_texts("references", list(references), minimum=0)

    def novel(row: Row) -> Any:
        text = row.get(column)
        if not isinstance(text, str):
            return "empty"
        reason = instruction_rule(text, min_words=min_words, max_words=max_words, blocklist=blocklist)
        if reason:
            return reason
        best, closest = 0.0, None
        for other in pool:
            score = rouge_l(other, text)
            if score > best:
                best, closest = score, other
        out = {**row, column: text.strip(), "max_rouge_l": round(best, 4), "most_similar": closest}
        if best > rouge_threshold + 1e-9:  # 0.7 exactly is kept (floating point: 0.7000000000000001)
            return "too_similar", out
        pool.append(text.strip())
        return None, out

    return partition(rows, novel, step=step)


def _split_instructions(rows: List[Row], round_no: int) -> List[Row]:
    """One row per instruction of distilabel's SelfInstruct output, numbering stripped."""
    return [{INSTRUCTION: strip_numbering(text), "raw": text, "context": row.get("input"), "round": round_no}
            for row in rows for text in row.get("instructions") or []]


def bootstrap_context(examples: Sequence[str]) -> str:
    """The context of one Self-Instruct prompt, exactly as :func:`self_instruct` sends it: :data:`BOOTSTRAP_HEADER`,
    then one example instruction per line. distilabel's ``SelfInstruct`` task puts it into its prompt.

    >>> print(bootstrap_context(["Name a bird.", "Sort these numbers: 3, 1, 2."]))
    Examples of queries this application receives (write new, different ones):
    Name a bird.
    Sort these numbers: 3, 1, 2.
    """
    return BOOTSTRAP_HEADER + "\n" + "\n".join(examples)


def _contexts(seeds: Sequence[str], pool: Sequence[str], rng: random.Random, n: int, seed_examples: int,
              pool_examples: int) -> List[str]:
    """``n`` prompt contexts: ``pool_examples`` pool instructions (fewer while the pool is small) and seeds up to
    ``seed_examples + pool_examples`` in all, shuffled (:func:`bootstrap_context`)."""
    contexts = []
    for _ in range(n):
        from_pool = rng.sample(list(pool), min(pool_examples, len(pool)))
        n_seeds = min(len(seeds), seed_examples + pool_examples - len(from_pool))
        examples = rng.sample(list(seeds), n_seeds) + from_pool
        rng.shuffle(examples)
        contexts.append(bootstrap_context(examples))
    return contexts


def self_instruct(seeds: Sequence[str], *, rounds: int = 2, prompts_per_round: int = 8, num_instructions: int = 5,
                  seed_examples: int = 6, pool_examples: int = 2, max_instructions: Optional[int] = None,
                  model: Optional[str] = None, llm: Any = None, application_description: str = "AI assistant",
                  criteria: Optional[str] = None, rouge_threshold: float = 0.7, max_new_tokens: int = 256,
                  temperature: float = 0.7, top_p: float = 1.0, presence_penalty: float = 0.0, seed: int = 0,
                  batch_size: Optional[int] = None, cache: bool = True, progress: bool = True,
                  allow_truncated: bool = False) -> Result:
    """The Self-Instruct paper's bootstrap loop, with distilabel's ``SelfInstruct`` prompt.

    Each round builds ``prompts_per_round`` prompts; each shows ``seed_examples`` seed instructions and
    ``pool_examples`` generated ones (fewer while the pool is small), shuffled, as the prompt's context. The model
    writes ``num_instructions`` new ones per prompt; they are split into rows, numbering stripped, and filtered
    (:func:`filter_instructions`: rules, then ROUGE-L against the seeds and the whole pool). Kept instructions join the
    pool for the next round. With ``max_instructions`` the loop stops once the pool has that many; extra ones are
    dropped as ``over_max``. The paper sampled GPT-3 at temperature 0.7, ``top_p`` 0.5 and a presence penalty of 2
    (``presence_penalty=2.0, top_p=0.5`` reproduces that); the defaults here keep ``top_p`` at 1.0 and the presence
    penalty off, because on a 135M model the paper's settings keep fewer instructions (measured in
    ``benchmarks/README.md``).

    Returns a :class:`~smolsynth.rows.Result`: rows of the generated pool (``instruction``, ``round``,
    ``max_rouge_l``, ``most_similar``, ``context``, ``raw``), every removed candidate with its reason in
    ``.dropped_rows``, two reports per round in ``.steps`` (generation, filter), and ``.params["seeds"]``.

    >>> result = self_instruct(SEEDS, rounds=2, prompts_per_round=4, model="smolsynth/tiny")  # doctest: +SKIP
    >>> result.funnel  # doctest: +SKIP
    """
    from smolsynth.generation import llm_for
    from smolsynth.runner import run
    from smolsynth.verbosity import import_distilabel, quiet_distilabel

    seeds = check_texts("seeds", seeds)
    for name, value in (("rounds", rounds), ("prompts_per_round", prompts_per_round),
                        ("num_instructions", num_instructions), ("seed_examples", seed_examples),
                        ("max_new_tokens", max_new_tokens)):
        check_number(name, value, minimum=1, integer=True)
    check_number("pool_examples", pool_examples, minimum=0, integer=True)
    check_number("max_instructions", max_instructions, minimum=1, integer=True, allow_none=True)
    check_number("temperature", temperature, minimum=0.0, maximum=5.0)
    check_number("top_p", top_p, minimum=0.0, maximum=1.0, exclusive_minimum=True)
    check_number("presence_penalty", presence_penalty, minimum=-2.0, maximum=2.0)
    check_number("rouge_threshold", rouge_threshold, minimum=0.0, maximum=1.0)
    started = time.perf_counter()
    rng = random.Random(seed)
    sampling = {"top_p": top_p} if top_p != 1.0 else {}
    if presence_penalty:
        sampling["presence_penalty"] = presence_penalty  # only when set: the cache key of default runs is unchanged
    llm = llm_for(model, llm, seed=seed, max_new_tokens=max_new_tokens, temperature=temperature, **sampling)
    kwargs: Dict[str, Any] = {"num_instructions": num_instructions, "application_description": application_description}
    if criteria is not None:
        kwargs["criteria_for_query_generation"] = criteria
    with quiet_distilabel():
        task = import_distilabel("distilabel.steps.tasks").SelfInstruct(llm=llm, name="self_instruct", **kwargs)
    pool: List[Row] = []
    dropped: List[Row] = []
    steps = []
    candidates_total = 0
    for round_no in range(1, rounds + 1):
        if max_instructions is not None and len(pool) >= max_instructions:
            break
        prompts = [{"input": context} for context in _contexts(
            seeds, [p[INSTRUCTION] for p in pool], rng, prompts_per_round, seed_examples, pool_examples)]
        generated = run(task, prompts, batch_size=batch_size, cache=cache, progress=progress,
                        desc=f"self_instruct round {round_no}", allow_truncated=allow_truncated)
        generated.report.step = f"round {round_no}: generate"
        dropped.extend({**r, "round": round_no} for r in generated.dropped_rows)
        candidates = _split_instructions(generated.rows, round_no)
        candidates_total += len(candidates) + generated.report.dropped_total
        filtered = filter_instructions(candidates, references=seeds + [p[INSTRUCTION] for p in pool],
                                       rouge_threshold=rouge_threshold, step=f"round {round_no}: filter")
        new = filtered.rows
        if max_instructions is not None and len(pool) + len(new) > max_instructions:
            room = max_instructions - len(pool)
            dropped.extend({**r, "reason": "over_max"} for r in new[room:])
            filtered.report.dropped = {**filtered.report.dropped, "over_max": len(new) - room}
            filtered.report.rows_out = room
            new = new[:room]
        pool.extend(new)
        dropped.extend(filtered.dropped_rows)
        steps += [generated.report, filtered.report]
    return from_steps("self_instruct", steps, rows=pool, dropped_rows=dropped, rows_in=candidates_total,
                      started=started, model=getattr(llm, "model_name", None), params={"seeds": list(seeds)})
