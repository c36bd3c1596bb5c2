"""From judged candidates to preference pairs that TRL's DPOTrainer reads as they are.

A judged row holds an ``instruction``, its candidate ``generations`` and one ``ratings`` entry per candidate (an int,
or a list of aspect ratings whose mean is used). :func:`binarize` turns each row into one pair::

    prompt   = [{"role": "user", "content": instruction}]        (a system turn first, when the row has one)
    chosen   = [{"role": "assistant", "content": best candidate}]
    rejected = [{"role": "assistant", "content": another candidate}]

plus ``chosen_rating``, ``rejected_rating`` (and ``chosen_model``, ``rejected_model`` when the row has ``models``).
The rule is always named by the caller:

``best-vs-random``        chosen = highest rating; rejected = a random other candidate. This is the rule of
                          ``ultrafeedback_binarized`` (Zephyr); when the random pick ties with the best, the row is
                          dropped (reason ``tie``) rather than teaching the model a preference that is not there.
``best-vs-worst``         chosen = highest, rejected = lowest; all ratings equal -> dropped (``tie``).
``best-vs-random-lower``  chosen = highest, rejected = a random candidate rated strictly lower; none -> ``tie``.

Other drops, each counted by reason: fewer than two rated candidates (``missing_ratings``), a ratings list whose
length differs from the candidates' (``wrong_number_of_ratings``), chosen and rejected with the same text
(``identical_texts``). Randomness is seeded per row, so the same input and seed give the same pairs.

    >>> pairs, dropped = binarize_rows([{"instruction": "Hi", "generations": ["a", "b"], "ratings": [5, 2]}],
    ...                                rule="best-vs-worst")
    >>> pairs[0]["chosen"], pairs[0]["rejected"], dropped
    ([{'role': 'assistant', 'content': 'a'}], [{'role': 'assistant', 'content': 'b'}], [])
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable, Sequence
from typing import Any, Literal

Rule = Literal["best-vs-random", "best-vs-worst", "best-vs-random-lower"]
RULES: tuple[str, ...] = ("best-vs-random", "best-vs-worst", "best-vs-random-lower")


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
        pairs.append(pair)
    return pairs, dropped
