"""Deduplication three ways, each with a maintained library, each returning a :class:`~smolsynth.rows.Result`.
A row is a duplicate of a row kept before it when:

* :func:`exact_duplicates`: their normalized texts are equal (a hash set). Finds exact copies (case, punctuation,
  spacing).
* :func:`minhash_duplicates`: MinHash-LSH (``datasketch``) estimates the Jaccard similarity of their sets of word
  3-grams at or above ``threshold``. Finds reworded copies (a few words changed, added or removed).
* :func:`embedding_duplicates`: the cosine similarity of their sentence embeddings (``sentence-transformers``,
  all-MiniLM-L6-v2) is at or above ``threshold``. Finds paraphrases (other words, the same request).

Each walks the rows in order and keeps the first row of every cluster: a later row is compared with the rows kept so
far, and dropped when one is close enough. A dropped row says which row it duplicates: ``duplicate_of`` (that row's
index in the input), ``duplicate_text`` and ``similarity``; every kept row counts its ``duplicates``.
:func:`deduplicate` runs the three in order, cheapest first. :func:`duplicate_rates` gives the rate per generator
model. :func:`planted_duplicates` is a small dataset with known duplicates of each kind, to measure a method's recall
before trusting it::

    >>> rows = [{"instruction": "Write a poem about tea."}, {"instruction": "write a poem about TEA"},
    ...         {"instruction": "Explain how rain forms."}]
    >>> result = exact_duplicates(rows)
    >>> [r["instruction"] for r in result.rows], result.dropped_rows[0]["duplicate_of"]
    (['Write a poem about tea.', 'Explain how rain forms.'], 0)

**Thresholds.** distilabel's ``MinHashDedup`` defaults to 128 permutations and threshold 0.9; smolsynth uses 128
permutations and **0.7**. Instructions are short: in a 15-word instruction (13 word 3-grams) one changed word in the
middle removes 3 of them and adds 3 new ones, a Jaccard of 10/16 = 0.63, and adding two words at the end gives
13/15 = 0.87. At 0.9 only the lightest edits count as duplicates: on the planted set 0.9 finds 1 reworded copy in
10, 0.7 finds 5-7 (as the seed changes), 0.5 finds 9-10, and none of them drops an original (0.7 is also
:func:`smolsynth.stats.near_duplicates`' exact-Jaccard default; lower it when your data's rewordings matter more
than its templated-but-different requests). The embedding threshold is **0.75**: with all-MiniLM-L6-v2 the
planted paraphrases score 0.67-0.89 with their original, while the most similar pair of different requests scores
0.51 (at 0.75, 6 paraphrases of 8 are found). Measure on your data
(notebook 07 shows how) before you change either.
"""

from __future__ import annotations

import random
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from smolsynth.arguments import check_number, check_text, check_text_column
from smolsynth.formats import INSTRUCTION, MODEL_NAME, REASON
from smolsynth.rows import Result, Row, as_rows, from_steps, partition
from smolsynth.stats import _shingles, _words, normalize_text

__all__ = ["DEDUP_REASONS", "EMBEDDING_THRESHOLD", "MINHASH_THRESHOLD", "NUM_PERM", "deduplicate",
           "duplicate_rates", "embedding_duplicates", "exact_duplicates", "minhash_duplicates", "planted_duplicates"]

MINHASH_THRESHOLD = 0.7
"""The estimated word 3-gram Jaccard similarity at or above which two rows are near duplicates (see above)."""
NUM_PERM = 128
"""MinHash permutations (distilabel's default): the estimate's standard error is about 0.04 at Jaccard 0.7."""
EMBEDDING_THRESHOLD = 0.75
"""The cosine similarity (all-MiniLM-L6-v2) at or above which two rows are paraphrases (see above)."""
DEDUP_REASONS = ("duplicate", "minhash_duplicate", "semantic_duplicate")
"""The drop reasons of the three methods, in the order :func:`deduplicate` runs them."""

Match = Optional[Tuple[int, float]]  # (position of the kept row it duplicates, similarity), or None


# ------------------------------------------------------------------------------------------------- the one walk
def _text_rows(data: Any, column: str, fn: str) -> Tuple[List[Row], List[str]]:
    """The rows (a list of strings is a list of ``{column: text}`` rows) and their ``column`` texts."""
    check_text("column", column)
    items = list(data) if isinstance(data, (list, tuple)) else None
    if items is not None and items and all(isinstance(x, str) for x in items):
        rows = [{column: x} for x in items]
    else:
        rows = as_rows(data, argument="data")
    return rows, check_text_column(rows, column, fn=fn)


class _Walk:
    """One pass that keeps the first row of every cluster. ``match(i)`` compares row ``i`` with the rows kept so far
    and returns ``(position of the kept row, similarity)`` or None; ``keep(i)`` registers a kept row. ``origins``
    are the rows' indices in the original input: dropped rows link to the kept row by that index."""

    def __init__(self, rows: List[Row], texts: List[str], origins: Sequence[int]) -> None:
        self.rows, self.texts, self.origins = rows, texts, list(origins)
        self.kept: List[int] = []  # origins of the kept rows, in order
        self.dropped: List[int] = []  # origins of the dropped rows, in order

    def run(self, match: Callable[[int], Match], keep: Callable[[int], None], *, step: str, reason: str) -> Result:
        def check(i: int) -> Any:
            found = match(i)
            if found is None:
                keep(i)
                self.kept.append(self.origins[i])
                return None, self.rows[i]
            j, similarity = found
            self.dropped.append(self.origins[i])
            return reason, {**self.rows[i], "duplicate_of": self.origins[j], "duplicate_text": self.texts[j],
                            "similarity": round(float(similarity), 3)}

        return partition(range(len(self.rows)), check, step=step)

    def next(self, result: Result) -> "_Walk":
        """The walk over the rows this one kept (for the next method)."""
        texts = {origin: text for origin, text in zip(self.origins, self.texts)}
        return _Walk(result.rows, [texts[o] for o in self.kept], self.kept)


def _exact(walk: _Walk) -> Result:
    seen: Dict[str, int] = {}

    def match(i: int) -> Match:
        j = seen.get(normalize_text(walk.texts[i]))
        return None if j is None else (j, 1.0)

    def keep(i: int) -> None:
        seen[normalize_text(walk.texts[i])] = i

    return walk.run(match, keep, step="exact duplicates", reason="duplicate")


def _minhash(walk: _Walk, *, threshold: float, num_perm: int, n: int, seed: int) -> Result:
    from datasketch import MinHash, MinHashLSH

    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    hashes: Dict[int, Any] = {}

    def match(i: int) -> Match:
        shingles = _shingles(_words(walk.texts[i]), n)
        if not shingles:  # no words: nothing to compare (the exact step catches empty duplicates)
            hashes[i] = None
            return None
        hashes[i] = MinHash(num_perm=num_perm, seed=seed)
        hashes[i].update_batch([" ".join(gram).encode("utf-8") for gram in sorted(shingles)])
        scored = [(hashes[i].jaccard(hashes[int(j)]), -int(j)) for j in lsh.query(hashes[i])]
        best = max(scored, default=None)  # the most similar kept row; of equals, the earliest
        return None if best is None or best[0] < threshold else (-best[1], best[0])

    def keep(i: int) -> None:
        if hashes[i] is not None:
            lsh.insert(str(i), hashes[i])

    return walk.run(match, keep, step=f"minhash duplicates ({threshold})", reason="minhash_duplicate")


def _embedding(walk: _Walk, *, threshold: float, encoder: Optional[str], model: Optional[str]) -> Result:
    import numpy as np

    vectors = None
    if walk.texts:
        from smolsynth.encoders import embed

        vectors = embed(walk.texts, encoder=encoder, model=model)
    kept: List[int] = []

    def match(i: int) -> Match:
        if not kept:
            return None
        similarities = vectors[kept] @ vectors[i]
        best = int(np.argmax(similarities))
        return (kept[best], float(similarities[best])) if similarities[best] >= threshold else None

    return walk.run(match, kept.append, step=f"embedding duplicates ({threshold})", reason="semantic_duplicate")


def _finish(name: str, walks: List[_Walk], results: List[Result], texts: List[str], params: Dict[str, Any],
            started: float) -> Result:
    """One result over the methods that ran: every dropped row linked to the row kept for its cluster at the end,
    every kept row with its ``duplicates`` count."""
    parent = {origin: row["duplicate_of"] for walk, result in zip(walks, results)
              for origin, row in zip(walk.dropped, result.dropped_rows)}

    def root(origin: int) -> int:
        while origin in parent:
            origin = parent[origin]
        return origin

    dropped: List[Row] = []
    counts: Dict[int, int] = {}
    for walk, result in zip(walks, results):
        for origin, row in zip(walk.dropped, result.dropped_rows):
            kept = root(origin)
            counts[kept] = counts.get(kept, 0) + 1
            dropped.append({**row, "duplicate_of": kept, "duplicate_text": texts[kept]})
    kept_rows = [{**row, "duplicates": counts.get(origin, 0)} for row, origin in zip(results[-1].rows, walks[-1].kept)]
    if len(results) == 1:
        report = results[0].report
        report.seconds = round(time.perf_counter() - started, 3)
        return Result(kept_rows, dropped, report, params=params)
    return from_steps(name, [r.report for r in results], rows=kept_rows, dropped_rows=dropped,
                      rows_in=len(texts), started=started, params=params)


def _check_minhash(threshold: float, num_perm: int, n: int, seed: int, name: str = "threshold") -> None:
    check_number(name, threshold, minimum=0.0, maximum=1.0)
    if threshold == 0.0:
        raise ValueError(f"{name}=0.0 would make every pair a duplicate: pass a Jaccard in (0, 1], e.g. 0.7.")
    check_number("num_perm", num_perm, minimum=16, integer=True)
    check_number("n", n, minimum=1, integer=True)
    check_number("seed", seed, minimum=0, integer=True)


# ------------------------------------------------------------------------------------------------- public steps
def exact_duplicates(data: Any, column: str = INSTRUCTION) -> Result:
    """Drop rows whose ``column`` text equals a kept row's after :func:`~smolsynth.stats.normalize_text` (lower case,
    punctuation removed, whitespace collapsed).

    ``data``: rows (a list of dicts, a ``datasets.Dataset``, a Result) or a list of strings.

    Returns:
        A :class:`~smolsynth.rows.Result`: the first row of every group, each with ``duplicates`` (how many rows were
        dropped as its copies); dropped rows have reason ``duplicate``, ``duplicate_of`` (the kept row's index in
        ``data``), ``duplicate_text`` and ``similarity`` (1.0).

    >>> exact_duplicates(["Hi there!", "hi there", "Bye."]).report.dropped
    {'duplicate': 1}
    """
    started = time.perf_counter()
    rows, texts = _text_rows(data, column, "exact_duplicates")
    walk = _Walk(rows, texts, range(len(rows)))
    return _finish("exact duplicates", [walk], [_exact(walk)], texts, {"column": column}, started)


def minhash_duplicates(data: Any, column: str = INSTRUCTION, *, threshold: float = MINHASH_THRESHOLD,
                       num_perm: int = NUM_PERM, n: int = 3, seed: int = 0) -> Result:
    """Drop near duplicates: rows whose set of word ``n``-grams has an estimated Jaccard similarity ``>= threshold``
    with a kept row's, by MinHash-LSH (``datasketch``: ``num_perm`` permutations, LSH bands chosen for ``threshold``;
    the index's candidates are verified with the MinHash estimate). Texts of fewer than ``n`` words are one n-gram.
    Why 0.7 and not distilabel's 0.9: see the module's docstring.

    Returns:
        A :class:`~smolsynth.rows.Result` like :func:`exact_duplicates`'; dropped rows have reason
        ``minhash_duplicate`` and ``similarity`` (the estimated Jaccard). Exact copies are dropped too (Jaccard 1).

    >>> rows = ["Write a short poem about the sea at night, please", "Write a short poem about the sea at night",
    ...         "Explain how rain forms"]
    >>> minhash_duplicates(rows).dropped_rows[0]["duplicate_of"]
    0
    """
    started = time.perf_counter()
    _check_minhash(threshold, num_perm, n, seed)
    rows, texts = _text_rows(data, column, "minhash_duplicates")
    walk = _Walk(rows, texts, range(len(rows)))
    result = _minhash(walk, threshold=threshold, num_perm=num_perm, n=n, seed=seed)
    return _finish(result.report.step, [walk], [result], texts,
                   {"column": column, "threshold": threshold, "num_perm": num_perm, "n": n, "seed": seed}, started)


def embedding_duplicates(data: Any, column: str = INSTRUCTION, *, threshold: float = EMBEDDING_THRESHOLD,
                         encoder: Optional[str] = None, model: Optional[str] = None) -> Result:
    """Drop paraphrases: rows whose sentence embedding has a cosine similarity ``>= threshold`` with a kept row's.

    Args:
        encoder: the sentence encoder (see :func:`smolsynth.encoders.embed`; default all-MiniLM-L6-v2, or a random
            tiny encoder when ``model`` or the course model is the tiny one: then the similarities are noise).
        model: the chat model that picks the default encoder.

    Returns:
        A :class:`~smolsynth.rows.Result` like :func:`exact_duplicates`'; dropped rows have reason
        ``semantic_duplicate`` and ``similarity`` (the cosine).

    >>> rows = ["Give me three tips to sleep better.", "How can I get a better night's sleep?", "Explain tides."]
    >>> embedding_duplicates(rows, encoder="smolsynth/minilm").dropped_rows[0]["duplicate_of"]  # doctest: +SKIP
    0
    """
    started = time.perf_counter()
    check_number("threshold", threshold, minimum=-1.0, maximum=1.0)
    rows, texts = _text_rows(data, column, "embedding_duplicates")
    walk = _Walk(rows, texts, range(len(rows)))
    result = _embedding(walk, threshold=threshold, encoder=encoder, model=model)
    return _finish(result.report.step, [walk], [result], texts, {"column": column, "threshold": threshold}, started)


def deduplicate(data: Any, column: str = INSTRUCTION, *, threshold: float = MINHASH_THRESHOLD,
                embedding_threshold: Optional[float] = EMBEDDING_THRESHOLD, num_perm: int = NUM_PERM, n: int = 3,
                seed: int = 0, encoder: Optional[str] = None, model: Optional[str] = None) -> Result:
    """Exact, then MinHash (``threshold``), then embedding (``embedding_threshold``; None skips it) deduplication.

    Every dropped row links to the row kept for its whole cluster (``duplicate_of``, its index in ``data``, and
    ``duplicate_text``), even when the row it matched was dropped by a later method; ``similarity`` is the score of
    the match that dropped it. Kept rows count their ``duplicates`` over the three methods.

    Returns:
        A :class:`~smolsynth.rows.Result` whose ``steps`` are the methods' reports and whose ``report.dropped`` counts
        ``duplicate``, ``minhash_duplicate`` and ``semantic_duplicate``.

    >>> result = deduplicate(["Hi there!", "hi there", "Bye now."], embedding_threshold=None)
    >>> result.report.dropped, [r["duplicates"] for r in result.rows]
    ({'duplicate': 1}, [1, 0])
    """
    started = time.perf_counter()
    _check_minhash(threshold, num_perm, n, seed)
    if embedding_threshold is not None:
        check_number("embedding_threshold", embedding_threshold, minimum=-1.0, maximum=1.0)
    rows, texts = _text_rows(data, column, "deduplicate")
    walks = [_Walk(rows, texts, range(len(rows)))]
    results = [_exact(walks[0])]
    walks.append(walks[-1].next(results[-1]))
    results.append(_minhash(walks[-1], threshold=threshold, num_perm=num_perm, n=n, seed=seed))
    if embedding_threshold is not None:
        walks.append(walks[-1].next(results[-1]))
        results.append(_embedding(walks[-1], threshold=embedding_threshold, encoder=encoder, model=model))
    return _finish("deduplicate", walks, results, texts,
                   {"column": column, "threshold": threshold, "embedding_threshold": embedding_threshold,
                    "num_perm": num_perm, "n": n, "seed": seed}, started)


def duplicate_rates(result: Result, by: str = MODEL_NAME) -> Any:
    """How many rows each method dropped, per value of ``by`` (the generator model, by default): a pandas DataFrame
    with ``rows`` (in), one column per drop reason, ``duplicate_rate`` (dropped / rows), one line per ``by`` value and
    a last line ``all``. Rows without ``by`` count under ``all`` only.

    >>> duplicate_rates(exact_duplicates(["a b", "A b!", "c d"])).reset_index().to_dict("records")
    [{'model_name': 'all', 'rows': 3, 'duplicate': 1, 'duplicate_rate': 0.333}]
    """
    import pandas as pd

    if not isinstance(result, Result):
        raise TypeError(f"result is a {type(result).__name__}: pass what deduplicate() (or one of the dedup methods) "
                        "returned.")
    check_text("by", by)
    reasons = [r for r in DEDUP_REASONS if any(row.get(REASON) == r for row in result.dropped_rows)] or ["duplicate"]
    everything = [(row, None) for row in result.rows] + [(row, row.get(REASON)) for row in result.dropped_rows]
    groups = sorted({str(row[by]) for row, _ in everything if row.get(by) is not None})

    def line(name: str, members: List[Tuple[Row, Optional[str]]]) -> Dict[str, Any]:
        counts = {r: sum(reason == r for _, reason in members) for r in reasons}
        dropped = sum(reason is not None for _, reason in members)
        return {by: name, "rows": len(members), **counts,
                "duplicate_rate": round(dropped / len(members), 3) if members else 0.0}

    lines = [line(g, [m for m in everything if str(m[0].get(by)) == g]) for g in groups] if len(groups) > 1 else []
    lines.append(line("all", everything))
    return pd.DataFrame(lines).set_index(by)


# ------------------------------------------------------------------------------------------------- planted set
_ORIGINALS = (
    "Write a short poem about the first snowfall of winter in a quiet mountain village.",
    "Explain how photosynthesis works to a ten year old who loves gardening and asking questions.",
    "Give me a simple recipe for a vegetarian lentil soup that takes less than thirty minutes.",
    "What are the main differences between renting and buying a home for a young family?",
    "Describe the steps to change a flat tire on a car safely at the side of a road.",
    "Summarize the causes of the French Revolution in a few sentences for a history class.",
    "How can I improve my public speaking skills before an important presentation at work next month?",
    "Write a polite email to a landlord asking them to fix a leaking kitchen faucet.",
    "What is the best way to learn basic Spanish vocabulary in three months with little free time?",
    "Explain the difference between a virus and a bacterium and how antibiotics affect each one.",
    "Suggest five fun indoor activities for children on a rainy weekend afternoon at home.",
    "How does compound interest work, and why does starting to save early make such a difference?",
    "Write a product description for a handmade ceramic coffee mug with a blue glaze.",
    "What should a beginner know before adopting a rescue dog from a local animal shelter?",
    "Explain why the sky looks blue during the day and turns red and orange at sunset.",
    "Give tips for staying focused while studying for exams in a noisy shared apartment.",
    "Describe how a bill becomes a law in the United States, from introduction to signature.",
    "Write a short story opening about a lighthouse keeper who finds a message in a bottle.",
    "What are healthy snacks I can take on a long hike that will not spoil in the heat?",
    "How do I politely decline a wedding invitation from a coworker I barely know?",
    "Write a short poem about ocean waves crashing on a rocky beach at night.",
    "Give me a simple recipe for a spicy chicken curry to serve four people.",
    "Explain how vaccines train the immune system to recognize a virus.",
)
_EXACT = (
    (0, "write a short poem about the first snowfall of winter in a quiet mountain village"),
    (3, "What are the main differences between renting and buying a home for a young family??"),
    (7, "WRITE A POLITE EMAIL TO A LANDLORD ASKING THEM TO FIX A LEAKING KITCHEN FAUCET."),
    (10, "  Suggest five fun indoor activities for children on a rainy weekend afternoon at home "),
    (14, "Explain why the sky looks blue during the day, and turns red and orange at sunset!"),
    (18, "what are healthy snacks i can take on a long hike that will not spoil in the heat"),
)
_REWORDED = (
    (1, "Explain how photosynthesis works to a ten year old who loves gardening and asking lots of questions."),
    (2, "Give me a simple recipe for a vegetarian lentil soup that takes less than thirty minutes to make."),
    (4, "Please describe the steps to change a flat tire on a car safely at the side of a road."),
    (5, "Summarize the causes of the French Revolution in a few sentences for a high school history class."),
    (6, "How can I improve my public speaking skills before an important presentation at work next week?"),
    (8, "What is the best way to learn basic Spanish vocabulary in three months with very little free time?"),
    (11, "How does compound interest work, and why does starting to save early make such a big difference?"),
    (13, "What should a beginner know before adopting a rescue dog from a local animal shelter near them?"),
    (15, "Give me tips for staying focused while studying for exams in a noisy shared apartment."),
    (17, "Write a short story opening about an old lighthouse keeper who finds a message in a bottle."),
)
_PARAPHRASED = (
    (9, "How are bacteria different from viruses, and do antibiotics work on both of them?"),
    (12, "Write marketing copy for a hand-crafted pottery coffee cup glazed in blue."),
    (16, "Walk me through how a proposed bill turns into a federal law in the US, from start to finish."),
    (19, "What's a courteous way to say no to a barely known colleague's wedding invite?"),
    (2, "Share a quick meatless lentil soup recipe I can cook in under half an hour."),
    (10, "My kids are stuck inside because it is raining this weekend; what activities can keep them entertained?"),
    (14, "Why is the daytime sky blue, and why does it become red and orange when the sun sets?"),
    (7, "Draft a courteous note asking my landlord to repair the leaky tap in my kitchen."),
)


def planted_duplicates(seed: int = 0) -> List[Row]:
    """A small instruction dataset with known duplicates: 23 distinct requests (three of them close in topic or form
    to another: two poems, two recipes, viruses and vaccines) followed by planted copies of three kinds, shuffled by
    ``seed``. Each row: ``instruction``, ``kind`` (``original``, ``exact``, ``reworded`` or ``paraphrased``) and
    ``original`` (the index of the row it copies; its own index for an original).

    ``exact``: case, punctuation or spacing changed. ``reworded``: a few words added or changed (word 3-gram Jaccard
    0.61-0.94 with the original). ``paraphrased``: the same request in other words (Jaccard under 0.05).

    >>> rows = planted_duplicates()
    >>> {k: sum(r["kind"] == k for r in rows) for k in ("original", "exact", "reworded", "paraphrased")}
    {'original': 23, 'exact': 6, 'reworded': 10, 'paraphrased': 8}
    """
    check_number("seed", seed, minimum=0, integer=True)
    rows: List[Row] = [{"instruction": text, "kind": "original", "original": i} for i, text in enumerate(_ORIGINALS)]
    copies = [{"instruction": text, "kind": kind, "original": i}
              for kind, planted in (("exact", _EXACT), ("reworded", _REWORDED), ("paraphrased", _PARAPHRASED))
              for i, text in planted]
    random.Random(seed).shuffle(copies)
    return rows + copies
