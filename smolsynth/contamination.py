"""Decontamination: keep the prompts you evaluate on out of the data you train on.

Notebooks 03 and 04 measure what training did on held-out prompts (:data:`smolsynth.distillation.HELD_OUT_PROMPTS`).
If a training row contains one of them, or most of one, the measurement tells you what the model memorized, not
how it generalizes. The test is the one used to decontaminate LLM training sets (GPT-3 used 13-grams over documents;
short prompts need shorter ones): a row is **contaminated** when it shares a word ``n``-gram (default 8, after
:func:`~smolsynth.stats.normalize_text`) with an evaluation prompt. A prompt shorter than ``n`` words counts as a
whole: the row is contaminated when it contains the entire prompt.

    >>> rows = [{"instruction": "Why do onions make you cry, and how can I avoid it?"},
    ...         {"instruction": "How do I cook onions without crying?"}]
    >>> result = decontaminate(rows)
    >>> result.report.dropped, result.dropped_rows[0]["contaminated_by"]
    ({'contaminated': 1}, 'Why do onions make you cry?')
"""

from __future__ import annotations

import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

from smolsynth.arguments import check_number, check_text, check_text_column, check_texts
from smolsynth.formats import INSTRUCTION
from smolsynth.rows import Result, Row, as_rows, partition
from smolsynth.stats import _shingles, _words

__all__ = ["DEFAULT_N", "contamination_report", "decontaminate", "evaluation_prompts"]

DEFAULT_N = 8
"""Word n-gram length: long enough that common phrases ("what is the difference between") do not match, short
enough to catch an evaluation prompt inside a longer request."""


def evaluation_prompts() -> Tuple[str, ...]:
    """The prompts notebooks 03 and 04 evaluate on (their ``EVAL_PROMPTS`` are the first of these)."""
    from smolsynth.distillation import HELD_OUT_PROMPTS

    return tuple(HELD_OUT_PROMPTS)


class _Index:
    """The evaluation prompts' n-grams; :meth:`overlaps` lists the (prompt, n-gram) pairs a text shares."""

    def __init__(self, prompts: Sequence[str], n: int) -> None:
        self.n = n
        self.prompts = list(prompts)
        self.grams: Dict[Tuple[str, ...], List[int]] = {}
        for p, prompt in enumerate(self.prompts):
            for gram in _shingles(_words(prompt), n):  # a prompt under n words: one n-gram
                self.grams.setdefault(gram, []).append(p)
        self.lengths = sorted({len(g) for g in self.grams})  # n, and the lengths of prompts shorter than n

    def overlaps(self, text: str) -> List[Tuple[str, str]]:
        words = _words(text)
        found: Dict[int, str] = {}
        for length in self.lengths:
            for i in range(len(words) - length + 1):
                for p in self.grams.get(tuple(words[i:i + length]), ()):
                    found.setdefault(p, " ".join(words[i:i + length]))
        return [(self.prompts[p], gram) for p, gram in sorted(found.items())]


def _checked(data: Any, column: str, prompts: Optional[Sequence[str]], n: int, fn: str) -> Tuple[List[Row], _Index]:
    check_text("column", column)
    check_number("n", n, minimum=1, integer=True)
    chosen = evaluation_prompts() if prompts is None else check_texts("prompts", prompts)
    rows = as_rows(data, argument="data")
    check_text_column(rows, column, fn=fn)
    return rows, _Index(chosen, n)


def decontaminate(data: Any, column: str = INSTRUCTION, *, prompts: Optional[Sequence[str]] = None,
                  n: int = DEFAULT_N) -> Result:
    """Drop every row whose ``column`` text shares a word ``n``-gram with an evaluation prompt.

    Args:
        data: rows (a list of dicts, a ``datasets.Dataset``, a Result).
        prompts: the evaluation prompts (default :func:`evaluation_prompts`, the course's held-out prompts).
        n: the n-gram length in words; a prompt shorter than ``n`` words matches when a row contains all of it.

    Returns:
        A :class:`~smolsynth.rows.Result`; dropped rows have reason ``contaminated``, ``contaminated_by`` (the first
        prompt they overlap) and ``overlap`` (the shared words).
    """
    started = time.perf_counter()
    rows, index = _checked(data, column, prompts, n, "decontaminate")

    def check(row: Row) -> Any:
        found = index.overlaps(row[column])
        if not found:
            return None
        return "contaminated", {**row, "contaminated_by": found[0][0], "overlap": found[0][1]}

    result = partition(rows, check, step=f"decontaminate ({n}-grams)")
    result.params = {"column": column, "n": n, "prompts": list(index.prompts)}
    result.report.seconds = round(time.perf_counter() - started, 3)
    return result


def contamination_report(data: Any, column: str = INSTRUCTION, *, prompts: Optional[Sequence[str]] = None,
                         n: int = DEFAULT_N) -> Any:
    """Every overlap between the rows and the evaluation prompts, without removing anything: a pandas DataFrame with
    ``row`` (its index), ``text``, ``prompt`` and ``overlap`` (the shared words), one line per (row, prompt) pair.

    >>> report = contamination_report([{"instruction": "Tell me: why do onions make you cry?"}])
    >>> report[["row", "prompt"]].to_dict("records")
    [{'row': 0, 'prompt': 'Why do onions make you cry?'}]
    """
    import pandas as pd

    rows, index = _checked(data, column, prompts, n, "contamination_report")
    lines = [{"row": i, "text": row[column], "prompt": prompt, "overlap": gram}
             for i, row in enumerate(rows) for prompt, gram in index.overlaps(row[column])]
    return pd.DataFrame(lines, columns=["row", "text", "prompt", "overlap"])
