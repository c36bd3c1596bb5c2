"""How varied is a generated dataset? Rows, duplicates, near duplicates, distinct-n, lengths and first words.

Every notebook of the course looks at its data the same way, with :func:`dataset_stats`::

    >>> stats = dataset_stats(["Write a poem about tea.", "Write a poem about tea.", "Explain how rain forms."])
    >>> stats.summary["rows"], stats.summary["exact_duplicates"]
    (3, 1)
    >>> stats.first_words.iloc[0].to_dict()
    {'first word': 'write', 'rows': 2, 'share': 0.667}

What each number means:

* **exact duplicates**: rows whose text, after normalization (lower case, punctuation removed, whitespace
  collapsed), equals an earlier row's; the first occurrence is not counted.
* **near duplicates**: rows that are not exact duplicates but whose set of word 3-grams has a Jaccard similarity
  ``>= near_duplicate_threshold`` (default 0.7) with an earlier row (texts under 3 words use single words). This is
  the exact Jaccard of normalized n-gram sets, computed only for pairs that share an n-gram (an inverted index), with
  no extra dependency; MinHash (e.g. distilabel's ``MinHashDedup``) approximates the same number for large data.
* **distinct-1 / distinct-2** (Li et al., 2016): distinct words (word pairs) divided by all words (word pairs) over
  the whole column; 1.0 means no repetition at all, values near 0 mean the data repeats itself.
* **length**: words per row (minimum, median, mean, maximum; the histogram in :meth:`DatasetStats.plot`).
* **first words**: the most common first words. Synthetic instructions often start the same way ("Write ...",
  "Explain ..."): a quick read of how varied the requests are.

The column may hold strings or chat messages (a list of ``{"role", "content"}`` dicts, as in an SFT dataset's
``messages``): then the first user turn is measured.
"""

from __future__ import annotations

import re
import statistics
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)?", re.UNICODE)

__all__ = ["DatasetStats", "NearDuplicateIndex", "dataset_stats", "distinct_n", "near_duplicates", "normalize_text"]


def normalize_text(text: str) -> str:
    """Lower case, punctuation removed, whitespace collapsed: the form duplicates are compared in.

    >>> normalize_text("  Write a POEM, please!! ")
    'write a poem please'
    """
    return " ".join(_WORD.findall(text.lower()))


def _words(text: str) -> List[str]:
    return _WORD.findall(text.lower())


def _shingles(words: Sequence[str], n: int) -> frozenset:
    if len(words) < n:
        return frozenset([tuple(words)]) if words else frozenset()
    return frozenset(tuple(words[i:i + n]) for i in range(len(words) - n + 1))


class NearDuplicateIndex:
    """Texts added one by one; :meth:`match` finds the most similar earlier text (word n-gram Jaccard).

    >>> index = NearDuplicateIndex(threshold=0.7)
    >>> index.add("Write a short poem about the sea")
    0
    >>> index.match("write a short poem about the sea today")
    (0, 0.833)
    >>> index.match("Explain how rain forms") is None
    True
    """

    def __init__(self, *, threshold: float = 0.7, n: int = 3) -> None:
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"threshold={threshold} must be in (0, 1]; e.g. 0.7 (70% of n-grams shared).")
        if n < 1:
            raise ValueError(f"n={n} must be >= 1 (the n-gram size).")
        self.threshold, self.n = threshold, n
        self._index: Dict[tuple, List[int]] = {}
        self._sets: List[frozenset] = []

    def __len__(self) -> int:
        return len(self._sets)

    def match(self, text: str) -> Optional[Tuple[int, float]]:
        """``(index of the most similar added text, similarity)`` if it is ``>= threshold``, else None."""
        current = _shingles(_words(text), self.n)
        best: Optional[Tuple[int, float]] = None
        for j in sorted({j for gram in current for j in self._index.get(gram, ())}):
            other = self._sets[j]
            sim = len(current & other) / len(current | other)
            if sim >= self.threshold and (best is None or sim > best[1]):
                best = (j, sim)  # the earliest of equally similar texts
        return None if best is None else (best[0], round(best[1], 3))

    def add(self, text: str) -> int:
        """Add ``text``; returns its index."""
        current = _shingles(_words(text), self.n)
        self._sets.append(current)
        for gram in current:
            self._index.setdefault(gram, []).append(len(self._sets) - 1)
        return len(self._sets) - 1


def near_duplicates(texts: Sequence[str], *, threshold: float = 0.7, n: int = 3) -> List[Optional[Tuple[int, float]]]:
    """For each text: ``(index of the earlier text it nearly duplicates, Jaccard similarity)``, or None.

    Similarity is the Jaccard index of the two texts' sets of normalized word ``n``-grams; a text is a near duplicate
    when the similarity with an earlier text is ``>= threshold``. Exact duplicates (after normalization) count too,
    with similarity 1.0. Only pairs that share an n-gram are compared.

    >>> near_duplicates(["Write a short poem about the sea", "Write a short poem about the sea today", "Hi there"])
    [None, (0, 0.833), None]
    """
    index = NearDuplicateIndex(threshold=threshold, n=n)
    out: List[Optional[Tuple[int, float]]] = []
    for text in texts:
        out.append(index.match(text))
        index.add(text)
    return out


def distinct_n(texts: Sequence[str], n: int) -> float:
    """Distinct word ``n``-grams divided by all word ``n``-grams over ``texts`` (0.0 when there are none).

    >>> distinct_n(["the cat", "the dog"], 1)
    0.75
    """
    grams = [tuple(w[i:i + n]) for w in map(_words, texts) for i in range(len(w) - n + 1)]
    return round(len(set(grams)) / len(grams), 3) if grams else 0.0


def _text_of(value: Any, role: str = "user") -> Optional[str]:
    """A string as it is; a chat (a list of messages): its first ``role`` turn (for ``"user"``, else its first turn);
    anything else: None."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value and all(isinstance(m, dict) for m in value):
        for message in value:
            if message.get("role") == role:
                return str(message.get("content") or "")
        return str(value[0].get("content") or "") if role == "user" else None
    return None


@dataclass
class DatasetStats:
    """What :func:`dataset_stats` returns: the numbers (``summary``, ``table``), the most common ``first_words`` and
    the per-row ``lengths``; :meth:`plot` draws them. Renders as two small tables in a notebook."""

    column: str
    summary: Dict[str, Any]
    first_words: Any  # pandas.DataFrame: first word, rows, share
    lengths: List[int] = field(repr=False)

    @property
    def table(self) -> Any:
        """The summary as a pandas DataFrame (one row per metric)."""
        import pandas as pd

        return pd.DataFrame({"metric": list(self.summary), "value": [str(v) for v in self.summary.values()]})

    def __str__(self) -> str:
        width = max(len(k) for k in self.summary)
        lines = [f"{k:<{width}}  {v}" for k, v in self.summary.items()]
        return "\n".join(lines + ["", self.first_words.to_string(index=False)])

    def _repr_html_(self) -> str:
        return (f"<div><strong>{self.column}</strong>{self.table.to_html(index=False)}"
                f"<em>most common first words</em>{self.first_words.to_html(index=False)}</div>")

    def plot(self, *, title: Optional[str] = None) -> Any:
        """A matplotlib Figure: the length histogram and the most common first words (made without pyplot, so it
        works with any backend, Agg included; a notebook shows it as the cell's value)."""
        from matplotlib.figure import Figure

        fig = Figure(figsize=(9, 3.2), layout="constrained")
        left, right = fig.subplots(1, 2)
        if self.lengths:
            left.hist(self.lengths, bins=min(20, max(1, len(set(self.lengths)))), color="#4c72b0")
        else:
            left.text(0.5, 0.5, "no rows", ha="center", va="center", transform=left.transAxes)
        left.set_title("length (words per row)")
        left.set_xlabel("words")
        left.set_ylabel("rows")
        words = list(self.first_words["first word"])[::-1]
        counts = list(self.first_words["rows"])[::-1]
        right.barh(words, counts, color="#dd8452")
        right.set_title("most common first words")
        right.set_xlabel("rows")
        fig.suptitle(title or f"{self.column}: {self.summary['rows']} rows")
        return fig


def dataset_stats(data: Any, column: str = "instruction", *, near_duplicate_threshold: float = 0.7,
                  top_k: int = 10) -> DatasetStats:
    """Measure one text column of ``data`` (a Dataset, a list of dicts or a list of strings).

    Returns a :class:`DatasetStats`: ``summary`` (rows, exact and near duplicates, distinct-1/2, length statistics),
    ``first_words`` (a DataFrame of the ``top_k`` most common first words) and ``plot()`` (a Figure).
    Rows whose value is missing or not text are counted in ``summary["rows_without_text"]``, never skipped silently.

    >>> dataset_stats([{"instruction": "Say hi."}, {"instruction": None}]).summary["rows_without_text"]
    1
    """
    from smolsynth.arguments import check_number

    check_number("near_duplicate_threshold", near_duplicate_threshold, minimum=0.0, maximum=1.0)
    check_number("top_k", top_k, minimum=1, integer=True)
    import pandas as pd

    from smolsynth.rows import as_rows

    if isinstance(data, (list, tuple)) and data and all(isinstance(x, str) for x in data):
        values: List[Any] = list(data)
    else:
        rows = as_rows(data)
        if rows and column not in rows[0]:
            raise ValueError(f"Column {column!r} is not in the data (columns: {sorted(rows[0])}); pass column= "
                             "to name the text column, e.g. dataset_stats(ds, column='messages').")
        values = [row.get(column) for row in rows]
    texts = [t for t in map(_text_of, values) if t is not None]
    normalized = [normalize_text(t) for t in texts]
    seen: set = set()
    exact = 0
    for text in normalized:
        exact += text in seen
        seen.add(text)
    near = sum(1 for i, hit in enumerate(near_duplicates(texts, threshold=near_duplicate_threshold))
               if hit is not None and normalized[hit[0]] != normalized[i])
    lengths = [len(_words(t)) for t in texts]
    firsts = Counter(w[0] for w in map(_words, texts) if w)
    top = firsts.most_common(top_k)
    first_words = pd.DataFrame({"first word": [w for w, _ in top], "rows": [c for _, c in top],
                                "share": [round(c / len(texts), 3) for _, c in top]})
    summary: Dict[str, Any] = {
        "rows": len(values),
        "rows_without_text": len(values) - len(texts),
        "exact_duplicates": exact,
        "near_duplicates": near,
        "near_duplicate_rule": f"word 3-gram Jaccard >= {near_duplicate_threshold}",
        "distinct_1": distinct_n(texts, 1),
        "distinct_2": distinct_n(texts, 2),
        "words_min": min(lengths) if lengths else 0,
        "words_median": statistics.median(lengths) if lengths else 0,
        "words_mean": round(statistics.fmean(lengths), 1) if lengths else 0,
        "words_max": max(lengths) if lengths else 0,
    }
    return DatasetStats(column=column, summary=summary, first_words=first_words, lengths=lengths)
