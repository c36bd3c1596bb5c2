"""How diverse is a generated dataset, and did filtering keep the diversity? One report, comparable before and after.

:func:`diversity_report` measures the instructions (and the answers, when the rows have them) of a dataset;
``before.compare(after)`` puts two reports side by side, and ``before.plot(compare=after)`` overlays them::

    >>> texts = ["Write a poem about tea.", "Explain how rain forms.", "List three prime numbers.",
    ...          "Write a poem about coffee.", "Write a poem about milk."]
    >>> report = diversity_report(texts, clusters=2, encoder="smolsynth/tiny-encoder")  # a random encoder: fast
    >>> report.summary["rows"], report.summary["distinct_1"], report.summary["rouge_l_pairs"]
    (5, 0.652, 10)
    >>> report.summary["shared_opening_share"], report.openings.iloc[0].to_dict()
    (0.6, {'opening': 'write a poem', 'rows': 3, 'share': 0.6})
    >>> report.summary["clusters"], sum(report.cluster_sizes)
    (2, 5)

What each number means, and what a good or a bad value looks like:

* **distinct-1 / 2 / 3** (Li et al., 2016; :func:`smolsynth.stats.distinct_n`): distinct word n-grams divided by
  all word n-grams over the whole column. Near 1.0: the rows hardly repeat each other; low values (distinct-3 under
  about 0.5 on a few hundred rows) mean the data is made of the same phrases.
* **ROUGE-L between random pairs**: the longest common word subsequence of two rows, as an F-measure (0 = nothing in
  common, 1 = the same words in the same order), over ``rouge_pairs`` random pairs of rows (all pairs when there
  are fewer). A varied dataset has a mean around 0.1-0.2 and almost no pairs above 0.7; Self-Instruct (Wang et al.,
  2023) drops a new instruction whose ROUGE-L with any kept one is above 0.7, so ``rouge_l_share_above_0.7`` is the
  share of pairs that filter would call near copies. Needs at least 2 rows: with one, the ROUGE-L values are None
  and :attr:`DiversityReport.notes` says why.
* **repeated openings**: the first 3 words of each row (normalized). ``shared_opening_share`` is the share of rows
  whose opening another row has too: near 0 when every request is phrased its own way, near 1 when the generator
  has a template ("Write a poem about ...").
* **embedding coverage**: every instruction is embedded (:func:`smolsynth.encoders.embed`; all-MiniLM-L6-v2 when
  it is available, a random encoder on the tiny course model, whose clusters mean nothing) and grouped by k-means
  into ``clusters`` clusters (fewer when there are fewer distinct rows). ``cluster_entropy`` is the normalized
  entropy of the cluster sizes: 1.0 when the rows are spread evenly over the clusters, near 0 when they sit in one.
  ``embedding_similarity_mean`` is the mean cosine similarity of the same random pairs as ROUGE-L: it catches
  paraphrases that share no words (around 0.1-0.3 for varied English requests with MiniLM, near 1 for one request
  reworded). With ``reference=`` (the report of the data *before* a filter) the rows are put into the reference's
  clusters instead, so ``clusters_non_empty`` says how many of the topics of before are still there after.
  k-means fitted on one dataset alone spreads even a repetitive dataset evenly over its clusters, so compare the
  entropy of two datasets on the same clusters: ``both = diversity_report(a + b)``, then ``reference=both`` for each.
* **length**: words per instruction and per answer (mean, median, 90th percentile, maximum; histogram in the plot).

A report is a dataclass: ``summary`` (a dict), ``table`` (it as a DataFrame), ``openings`` / ``answer_openings``
and ``cluster_table`` (DataFrames), the raw values (``rouge_l``, ``lengths``, ``cluster_sizes``, ``labels``,
``centers``) and ``plot()`` (a matplotlib Figure: ROUGE-L histogram, cluster sizes, lengths, top openings). It renders
as tables in a notebook. Numbers are seeded: the same data, ``seed`` and encoder give the same report.
"""

from __future__ import annotations

import math
import statistics
import warnings
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

from smolsynth.stats import _text_of, _words, distinct_n, normalize_text

__all__ = ["DiversityReport", "OPENING_WORDS", "SELF_INSTRUCT_THRESHOLD", "diversity_report", "plot_comparison"]

SELF_INSTRUCT_THRESHOLD = 0.7
"""ROUGE-L above which Self-Instruct (Wang et al., 2023) treats a new instruction as a copy of a kept one."""
OPENING_WORDS = 3
"""How many first words make a row's opening."""
TOP_OPENINGS = 10
"""How many of the most common openings the report lists."""
_KMEANS_INITS = 10

_ABOVE = f"rouge_l_share_above_{SELF_INSTRUCT_THRESHOLD}"


# ------------------------------------------------------------------------------------------------------- report
@dataclass
class DiversityReport:
    """What :func:`diversity_report` returns. ``summary`` holds the numbers (see the module docstring for each);
    the other fields are the values behind them, for plots and for looking at the rows.

    ``centers`` are the k-means centers the rows were assigned to (fitted here, or the ``reference`` report's), so a
    later report made with ``reference=this_report`` uses the same clusters.
    """

    column: str
    answer_column: Optional[str]
    encoder: str
    summary: Dict[str, Any]
    openings: Any  # pandas.DataFrame: opening, rows, share (instructions)
    answer_openings: Any  # pandas.DataFrame, empty when there are no answers
    rouge_l: List[float] = field(repr=False)  # one ROUGE-L F-measure per sampled pair
    pairs: List[Tuple[int, int]] = field(repr=False)  # the sampled pairs (indices into texts)
    lengths: List[int] = field(repr=False)  # words per instruction
    answer_lengths: List[int] = field(repr=False)  # words per answer
    cluster_sizes: List[int] = field(repr=False)  # rows per cluster, one entry per center
    labels: List[int] = field(repr=False)  # the cluster of each instruction
    centers: Any = field(repr=False)  # numpy array [clusters, dim]
    texts: List[str] = field(repr=False)  # the instructions measured, in order
    notes: List[str] = field(default_factory=list)  # why a number is missing (e.g. too few rows for pairs)

    @property
    def table(self) -> Any:
        """The summary as a pandas DataFrame (one row per metric)."""
        import pandas as pd

        return pd.DataFrame({"metric": list(self.summary), "value": [str(v) for v in self.summary.values()]})

    @property
    def cluster_table(self) -> Any:
        """A DataFrame with one row per cluster: its size, its share of the rows and an example instruction."""
        import pandas as pd

        examples: Dict[int, str] = {}
        for text, label in zip(self.texts, self.labels):
            examples.setdefault(label, text if len(text) <= 80 else text[:77] + "...")
        total = sum(self.cluster_sizes) or 1
        return pd.DataFrame({"cluster": list(range(len(self.cluster_sizes))), "rows": list(self.cluster_sizes),
                             "share": [round(s / total, 3) for s in self.cluster_sizes],
                             "example": [examples.get(k, "") for k in range(len(self.cluster_sizes))]})

    def compare(self, other: "DiversityReport") -> Any:
        """This report (before) beside ``other`` (after): a DataFrame ``metric, before, after, change``, one row per
        metric of either summary; ``change`` is ``after - before`` for numbers, None otherwise.

        Cluster numbers compare like for like only when ``other`` was made with ``reference=self`` (same centers).
        """
        import pandas as pd

        if not isinstance(other, DiversityReport):
            raise TypeError(f"other is a {type(other).__name__}: pass another DiversityReport, e.g. "
                            "before.compare(diversity_report(filtered, reference=before)).")
        keys = list(self.summary) + [k for k in other.summary if k not in self.summary]
        records = []
        for key in keys:
            before, after = self.summary.get(key), other.summary.get(key)
            numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (before, after))
            change = round(after - before, 3) if numbers else None
            records.append({"metric": key, "before": before, "after": after, "change": change})
        table = pd.DataFrame({name: pd.Series([r[name] for r in records], dtype=object)
                              for name in ("metric", "before", "after", "change")})
        return table

    def __str__(self) -> str:
        width = max(len(k) for k in self.summary)
        lines = [f"{k:<{width}}  {v}" for k, v in self.summary.items()]
        lines += [f"note: {n}" for n in self.notes]
        lines += ["", "most common openings (instructions)", self.openings.to_string(index=False)]
        if len(self.answer_openings):
            lines += ["", "most common openings (answers)", self.answer_openings.to_string(index=False)]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        import html

        notes = "".join(f"<p><em>note:</em> {html.escape(n)}</p>" for n in self.notes)
        answers = (f"<em>most common openings (answers)</em>{self.answer_openings.to_html(index=False)}"
                   if len(self.answer_openings) else "")
        return (f"<div><strong>diversity of {html.escape(self.column)}</strong>{self.table.to_html(index=False)}"
                f"{notes}<em>most common openings (instructions)</em>{self.openings.to_html(index=False)}{answers}"
                f"<em>clusters</em>{self.cluster_table.to_html(index=False)}</div>")

    def plot(self, *, compare: Optional["DiversityReport"] = None, labels: Sequence[str] = ("before", "after"),
             title: Optional[str] = None) -> Any:
        """A matplotlib Figure (made without pyplot, so any backend works) with four panels: the ROUGE-L histogram
        (the 0.7 line marked), the cluster sizes, the length histogram and the most common openings.

        With ``compare=after`` both reports are overlaid (this one as ``labels[0]``, ``after`` as ``labels[1]``),
        histograms as shares so different row counts compare; see :func:`plot_comparison`.
        """
        if compare is not None and not isinstance(compare, DiversityReport):
            raise TypeError(f"compare is a {type(compare).__name__}: pass another DiversityReport (the data after "
                            "a filter), e.g. before.plot(compare=after).")
        if isinstance(labels, str) or len(labels) != 2:
            raise ValueError(f"labels={labels!r}: pass two names, e.g. labels=('before', 'after').")
        from matplotlib.figure import Figure

        reports = [self] if compare is None else [self, compare]
        names = [self.column] if compare is None else [str(x) for x in labels]
        colors = ["#4c72b0", "#dd8452"]
        fig = Figure(figsize=(11, 7), layout="constrained")
        (rouge_ax, cluster_ax), (length_ax, opening_ax) = fig.subplots(2, 2)

        bins = [i / 20 for i in range(21)]
        for report, name, color in zip(reports, names, colors):
            if report.rouge_l:
                rouge_ax.hist(report.rouge_l, bins=bins, weights=[1 / len(report.rouge_l)] * len(report.rouge_l),
                              color=color, alpha=0.6 if compare else 1.0, label=name)
        if not any(r.rouge_l for r in reports):
            rouge_ax.text(0.5, 0.5, "needs at least 2 rows", ha="center", va="center", transform=rouge_ax.transAxes)
        rouge_ax.axvline(SELF_INSTRUCT_THRESHOLD, color="#c44e52", linestyle="--", linewidth=1,
                         label=f"Self-Instruct filter ({SELF_INSTRUCT_THRESHOLD})")
        rouge_ax.set_xlim(0, 1)
        rouge_ax.set_title("ROUGE-L between random pairs of rows")
        rouge_ax.set_xlabel("ROUGE-L F-measure")
        rouge_ax.set_ylabel("share of pairs")
        rouge_ax.legend(fontsize=8)

        self._plot_clusters(cluster_ax, compare, names, colors)

        length_reports = [(r.lengths, f"{n}: instructions" if compare else "instructions", c)
                          for r, n, c in zip(reports, names, colors)]
        if compare is None and self.answer_lengths:
            length_reports.append((self.answer_lengths, "answers", colors[1]))
        longest = max([max(v) for v, _, _ in length_reports if v] or [1])
        length_bins: Any = ([x - 0.5 for x in range(longest + 2)] if longest <= 40  # one bar per word count
                            else [longest * i / 30 for i in range(31)])
        for values, name, color in length_reports:
            if values:
                length_ax.hist(values, bins=length_bins, weights=[1 / len(values)] * len(values), color=color,
                               alpha=0.6, label=name)
        length_ax.set_title("length")
        length_ax.set_xlabel("words")
        length_ax.set_ylabel("share of rows")
        length_ax.legend(fontsize=8)

        top = list(self.openings["opening"])[:8]
        if compare is not None:
            top += [o for o in list(compare.openings["opening"])[:8] if o not in top][:max(0, 10 - len(top))]
        top = top[::-1]
        height = 0.8 / len(reports)
        for k, (report, name, color) in enumerate(zip(reports, names, colors)):
            shares = dict(zip(report.openings["opening"], report.openings["share"]))
            counts = Counter(_opening(t) for t in report.texts)
            total = len(report.texts) or 1
            values = [shares.get(o, round(counts.get(o, 0) / total, 3)) for o in top]
            opening_ax.barh([i + (k - (len(reports) - 1) / 2) * height for i in range(len(top))], values,
                            height=height, color=color, label=name if compare else None)
        opening_ax.set_yticks(list(range(len(top))), top, fontsize=8)
        opening_ax.set_title(f"most common openings (first {OPENING_WORDS} words)")
        opening_ax.set_xlabel("share of rows")
        if compare is not None:
            opening_ax.legend(fontsize=8)
        if not top:
            opening_ax.text(0.5, 0.5, "no openings", ha="center", va="center", transform=opening_ax.transAxes)

        rows = " vs ".join(f"{n}: {r.summary['rows']} rows" for r, n in zip(reports, names))
        fig.suptitle(title or f"diversity of {self.column} ({rows})")
        return fig

    def _plot_clusters(self, ax: Any, compare: Optional["DiversityReport"], names: List[str],
                       colors: List[str]) -> None:
        import numpy as np

        if compare is None:
            ax.bar(range(len(self.cluster_sizes)), self.cluster_sizes, color=colors[0])
            ax.set_title(f"embedding clusters ({self.summary['clusters_non_empty']} of "
                         f"{self.summary['clusters']} hold rows)")
            ax.set_ylabel("rows")
        elif _same_centers(self, compare):
            xs = np.arange(len(self.cluster_sizes))
            ax.bar(xs - 0.2, self.cluster_sizes, width=0.4, color=colors[0], label=names[0])
            ax.bar(xs + 0.2, compare.cluster_sizes, width=0.4, color=colors[1], label=names[1])
            ax.set_title(f"the same clusters: {self.summary['clusters_non_empty']} vs "
                         f"{compare.summary['clusters_non_empty']} of {len(xs)} hold rows")
            ax.set_ylabel("rows")
            ax.legend(fontsize=8)
        else:  # clusters fitted separately: only the shape of the size distribution compares
            for k, (report, name, color) in enumerate(zip([self, compare], names, colors)):
                total = sum(report.cluster_sizes) or 1
                sizes = sorted(report.cluster_sizes, reverse=True)
                ax.bar(np.arange(len(sizes)) + (k - 0.5) * 0.4, [s / total for s in sizes], width=0.4, color=color,
                       label=name)
            ax.set_title("cluster sizes, largest first (fitted separately:\npass reference= to use the same clusters)",
                         fontsize=10)
            ax.set_ylabel("share of rows")
            ax.legend(fontsize=8)
        ax.set_xlabel("cluster")
        ax.xaxis.get_major_locator().set_params(integer=True)


def plot_comparison(before: DiversityReport, after: DiversityReport, *,
                    labels: Sequence[str] = ("before", "after"), title: Optional[str] = None) -> Any:
    """``before.plot(compare=after)``: both reports overlaid in one Figure (make ``after`` with
    ``reference=before`` so the cluster panel shows the same clusters).

    >>> plot_comparison(before, diversity_report(kept, reference=before))  # doctest: +SKIP
    <Figure size 1100x700 with 4 Axes>
    """
    if not isinstance(before, DiversityReport):
        raise TypeError(f"before is a {type(before).__name__}: pass a DiversityReport (diversity_report(data)).")
    return before.plot(compare=after, labels=labels, title=title)


def _same_centers(a: DiversityReport, b: DiversityReport) -> bool:
    import numpy as np

    return a.centers.shape == b.centers.shape and bool(np.array_equal(a.centers, b.centers))


# ------------------------------------------------------------------------------------------------------ metrics
def _answer_of(value: Any) -> Optional[str]:
    """A string as it is; a chat (list of messages): its first assistant turn; anything else: None."""
    return _text_of(value, role="assistant")


def _opening(text: str) -> str:
    return " ".join(normalize_text(text).split()[:OPENING_WORDS])


def _openings(texts: Sequence[str]) -> Tuple[Any, float]:
    """The most common openings (a DataFrame) and the share of rows whose opening another row shares."""
    import pandas as pd

    counts = Counter(o for o in map(_opening, texts) if o)
    top = counts.most_common(TOP_OPENINGS)
    table = pd.DataFrame({"opening": [o for o, _ in top], "rows": [c for _, c in top],
                          "share": [round(c / len(texts), 3) for _, c in top]})
    shared = sum(c for c in counts.values() if c > 1)
    return table, (round(shared / len(texts), 3) if texts else 0.0)


def _sample_pairs(n: int, count: int, seed: int) -> List[Tuple[int, int]]:
    """``count`` distinct pairs ``(i, j)``, ``i < j < n``, drawn with ``seed``; every pair when there are fewer."""
    import numpy as np

    total = n * (n - 1) // 2
    if total <= count:
        return [(i, j) for i in range(n) for j in range(i + 1, n)]
    rng = np.random.default_rng(seed)
    if total <= 2_000_000:
        first, second = np.triu_indices(n, 1)
        chosen = np.sort(rng.choice(total, size=count, replace=False))
        return [(int(first[k]), int(second[k])) for k in chosen]
    seen: set = set()
    pairs: List[Tuple[int, int]] = []
    while len(pairs) < count:
        i, j = (int(x) for x in rng.integers(0, n, size=2))
        pair = (min(i, j), max(i, j))
        if i != j and pair not in seen:
            seen.add(pair)
            pairs.append(pair)
    return sorted(pairs)


class _WordTokenizer:
    """rouge_score's tokenizer interface over :func:`smolsynth.stats._words` (its own keeps only ASCII letters and
    digits, so a row in another script would have no tokens)."""

    def tokenize(self, text: str) -> List[str]:
        return _words(text)


def _rouge_l(texts: Sequence[str], pairs: Sequence[Tuple[int, int]]) -> List[float]:
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], tokenizer=_WordTokenizer())
    return [round(float(scorer.score(texts[i], texts[j])["rougeL"].fmeasure), 4) for i, j in pairs]


def _length_summary(prefix: str, lengths: Sequence[int]) -> Dict[str, Any]:
    import numpy as np

    if not lengths:
        return {f"{prefix}words_mean": None, f"{prefix}words_median": None, f"{prefix}words_p90": None,
                f"{prefix}words_max": None}
    return {f"{prefix}words_mean": round(statistics.fmean(lengths), 1),
            f"{prefix}words_median": statistics.median(lengths),
            f"{prefix}words_p90": round(float(np.percentile(lengths, 90)), 1),
            f"{prefix}words_max": max(lengths)}


def _entropy(sizes: Sequence[int]) -> float:
    """Entropy of the size distribution divided by its maximum, log(number of clusters); 0.0 for one cluster."""
    total = sum(sizes)
    if len(sizes) < 2 or total == 0:
        return 0.0
    h = -sum(s / total * math.log(s / total) for s in sizes if s)
    return max(0.0, round(h / math.log(len(sizes)), 3))  # never -0.0


def _nearest(vectors: Any, centers: Any) -> Any:
    """The index of each vector's nearest center (squared Euclidean distance, as ``KMeans.predict``). Computed one
    center at a time with row-wise sums, so a row's label does not depend on the other rows: a subset of the rows
    gets exactly the labels it had in the whole."""
    import numpy as np

    distances = np.stack([((vectors - center) ** 2).sum(1) for center in centers], axis=1)
    return distances.argmin(1)


def _cluster(vectors: Any, clusters: int, seed: int, centers: Any = None) -> Tuple[Any, Any]:
    """``(labels, centers)``: k-means fitted with ``seed`` (k capped at the number of distinct vectors) unless
    ``centers`` are given; then every vector goes to its nearest center."""
    import numpy as np

    if centers is None:
        distinct = int(np.unique(vectors.round(5), axis=0).shape[0])
        k = max(1, min(clusters, distinct))
        if k == 1:
            centers = vectors.mean(0, keepdims=True).astype(np.float32)
        else:
            from sklearn.cluster import KMeans

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # ConvergenceWarning, threadpool notices: nothing to act on
                fitted = KMeans(n_clusters=k, n_init=_KMEANS_INITS, random_state=seed).fit(vectors.astype(np.float64))
            centers = fitted.cluster_centers_.astype(np.float32)
    return _nearest(vectors, centers), centers


# ----------------------------------------------------------------------------------------------------- the call
def _columns(rows: Sequence[Dict[str, Any]]) -> List[str]:
    seen: Dict[str, None] = {}
    for row in rows:
        seen.update(dict.fromkeys(row))
    return list(seen)


def _pick_answer_column(columns: Sequence[str], answer_column: Optional[str]) -> Optional[str]:
    if answer_column is None:
        return None
    if answer_column == "auto":
        return "generation" if "generation" in columns else "messages" if "messages" in columns else None
    if answer_column not in columns:
        raise ValueError(f"answer_column={answer_column!r} is not in the data (columns: {sorted(columns)}); pass "
                         "the column that holds the answers, answer_column='auto' (generation, else the assistant "
                         "turn of messages) or answer_column=None to measure the instructions only.")
    return answer_column


def diversity_report(data: Any, column: str = "instruction", *, answer_column: Optional[str] = "auto",
                     rouge_pairs: int = 300, clusters: int = 8, encoder: Optional[str] = None,
                     model: Optional[str] = None, reference: Optional[DiversityReport] = None,
                     seed: int = 0) -> DiversityReport:
    """Measure how diverse the instructions (and answers) of ``data`` are: distinct-n, ROUGE-L between random pairs,
    repeated openings, embedding clusters and lengths (each explained in the module docstring).

    Args:
        data: a list of strings (the instructions), or rows: a list of dicts, a ``datasets.Dataset``, a DataFrame or
            a :class:`smolsynth.rows.Result`. Values may be strings or chats (lists of ``{"role", "content"}``):
            the user turn is the instruction, the assistant turn the answer.
        column: the instruction column (ignored for a list of strings).
        answer_column: ``"auto"``: ``generation`` when the rows have it, else the assistant turn of ``messages``,
            else no answers; a column name; or None (instructions only).
        rouge_pairs: how many random pairs of rows ROUGE-L (and the embedding similarity) is computed on; every
            pair when there are fewer.
        clusters: the number of k-means clusters (fewer when there are fewer distinct instructions); ignored with
            ``reference``, whose clusters are used.
        encoder, model: which text encoder embeds the instructions, as in :func:`smolsynth.encoders.embed`
            (default: the reference's encoder, else :func:`smolsynth.encoders.resolve_encoder`).
        reference: the report of the data before a filter: the rows are put into its clusters, so the cluster
            numbers of both reports describe the same topics.
        seed: seeds the pair sample and k-means.

    Rows whose instruction is missing or not text are left out and counted in ``summary["rows_without_text"]``.
    With a single row the pair metrics are None and ``notes`` says so; no rows at all is an error.

    Raises:
        TypeError / ValueError: before any work (no encoder is loaded) for data or arguments that cannot work: an
            unknown ``column`` or ``answer_column``, ``rouge_pairs`` or ``clusters`` under 1, no rows with text,
            a ``reference`` that is not a report or was made with another encoder.

    >>> diversity_report(["Say hi.", "Say hi!"], rouge_pairs=0)
    Traceback (most recent call last):
    ...
    ValueError: rouge_pairs=0 is out of range: it must be >= 1 (e.g. rouge_pairs=1).
    >>> before = diversity_report(dataset, encoder="smolsynth/minilm")                    # doctest: +SKIP
    >>> after = diversity_report(kept, reference=before)                                  # doctest: +SKIP
    >>> before.compare(after)                                                             # doctest: +SKIP
    """
    from smolsynth.arguments import check_number
    from smolsynth.encoders import embed, resolve_encoder
    from smolsynth.rows import as_rows

    # ---- every check first: nothing is embedded for a call that cannot succeed
    check_number("rouge_pairs", rouge_pairs, minimum=1, integer=True)
    check_number("clusters", clusters, minimum=1, integer=True)
    check_number("seed", seed, minimum=0, maximum=2**32 - 1, integer=True)
    if not isinstance(column, str) or not column:
        raise TypeError(f"column={column!r}: pass the name of the instruction column, e.g. column='instruction'.")
    if answer_column is not None and not isinstance(answer_column, str):
        raise TypeError(f"answer_column={answer_column!r}: pass a column name, 'auto' or None.")
    for name, value in (("encoder", encoder), ("model", model)):
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise TypeError(f"{name}={value!r}: pass a model id such as 'smolsynth/minilm', or leave it out.")
    if reference is not None and not isinstance(reference, DiversityReport):
        raise TypeError(f"reference is a {type(reference).__name__}: pass the DiversityReport of the data before "
                        "the filter, e.g. diversity_report(kept, reference=diversity_report(all_rows)).")

    if isinstance(data, (list, tuple)) and data and all(isinstance(x, str) for x in data):
        if answer_column not in (None, "auto"):
            raise ValueError(f"answer_column={answer_column!r}, but data is a list of strings (no columns): pass "
                             "rows (dicts with the instruction and answer columns) or leave answer_column out.")
        values: List[Any] = list(data)
        answers_in: List[Any] = []
        chosen_answer: Optional[str] = None
        column_name = "text"
    else:
        rows = as_rows(data)
        columns = _columns(rows)
        if rows and column not in columns:
            hint = " e.g. column='messages'" if "messages" in columns else ""
            raise ValueError(f"Column {column!r} is not in the data (columns: {sorted(columns)}); pass column= to "
                             f"name the instruction column,{hint or ' e.g. column=' + repr(sorted(columns)[0])}.")
        chosen_answer = _pick_answer_column(columns, answer_column) if rows else None
        values = [row.get(column) for row in rows]
        answers_in = [row.get(chosen_answer) for row in rows] if chosen_answer else []
        column_name = column
    texts = [t for t in map(_text_of, values) if t is not None]
    if not texts:
        raise ValueError(f"diversity_report() got no rows with text in {column_name!r} ({len(values)} rows): pass "
                         "the rows to measure (a list of strings, or rows with an instruction column).")
    answers = [a for a in map(_answer_of, answers_in) if a is not None]
    if reference is not None:
        chosen_encoder = resolve_encoder(model, encoder) if encoder else reference.encoder
        if chosen_encoder != reference.encoder:
            raise ValueError(f"encoder={chosen_encoder!r}, but the reference report used {reference.encoder!r}: "
                             "clusters only compare in the same embedding space; leave encoder out to use the "
                             "reference's.")
    else:
        chosen_encoder = resolve_encoder(model, encoder)

    # ---- the work
    import numpy as np

    notes: List[str] = []
    summary: Dict[str, Any] = {"rows": len(values), "rows_without_text": len(values) - len(texts),
                               "answer_column": chosen_answer, "answers": len(answers)}
    for n in (1, 2, 3):
        summary[f"distinct_{n}"] = distinct_n(texts, n)
    if answers:
        for n in (1, 2, 3):
            summary[f"answer_distinct_{n}"] = distinct_n(answers, n)

    pairs = _sample_pairs(len(texts), rouge_pairs, seed)
    rouge = _rouge_l(texts, pairs)
    summary["rouge_l_pairs"] = len(pairs)
    if rouge:
        summary.update({"rouge_l_mean": round(statistics.fmean(rouge), 3),
                        "rouge_l_median": round(statistics.median(rouge), 3),
                        "rouge_l_p90": round(float(np.percentile(rouge, 90)), 3),
                        _ABOVE: round(sum(r > SELF_INSTRUCT_THRESHOLD for r in rouge) / len(rouge), 3)})
    else:
        summary.update(dict.fromkeys(["rouge_l_mean", "rouge_l_median", "rouge_l_p90", _ABOVE]))
        notes.append(f"ROUGE-L and the embedding similarity need at least 2 rows; {column_name!r} has "
                     f"{len(texts)}.")

    openings, shared = _openings(texts)
    summary["shared_opening_share"] = shared
    summary["top_opening"] = openings["opening"].iloc[0] if len(openings) else None
    summary["top_opening_share"] = float(openings["share"].iloc[0]) if len(openings) else 0.0
    answer_openings, answer_shared = _openings(answers)
    if answers:
        summary["answer_shared_opening_share"] = answer_shared
        summary["answer_top_opening"] = answer_openings["opening"].iloc[0] if len(answer_openings) else None

    vectors = np.asarray(embed(texts, encoder=chosen_encoder, model=model), dtype=np.float32)
    summary["embedding_similarity_mean"] = (
        round(float(np.mean([float(vectors[i] @ vectors[j]) for i, j in pairs])), 3) if pairs else None)
    if reference is not None and vectors.shape[1] != reference.centers.shape[1]:
        raise ValueError(f"The encoder {chosen_encoder!r} gives {vectors.shape[1]}-dimensional embeddings, the "
                         f"reference's clusters are {reference.centers.shape[1]}-dimensional: use the same encoder.")
    labels, centers = _cluster(vectors, clusters, seed, None if reference is None else reference.centers)
    sizes = [int(s) for s in np.bincount(labels, minlength=len(centers))]
    summary.update({"clusters": len(centers), "clusters_non_empty": sum(1 for s in sizes if s),
                    "cluster_entropy": _entropy(sizes), "largest_cluster_share": round(max(sizes) / len(texts), 3),
                    "cluster_source": "reference" if reference is not None else "fitted"})
    if reference is None and len(centers) < clusters:
        notes.append(f"{len(centers)} cluster(s), not {clusters}: there are only {len(centers)} distinct "
                     "instructions.")

    lengths = [len(_words(t)) for t in texts]
    answer_lengths = [len(_words(a)) for a in answers]
    summary.update(_length_summary("", lengths))
    if answers:
        summary.update(_length_summary("answer_", answer_lengths))
    summary["encoder"] = chosen_encoder
    return DiversityReport(column=column_name, answer_column=chosen_answer, encoder=chosen_encoder, summary=summary,
                           openings=openings, answer_openings=answer_openings, rouge_l=rouge, pairs=pairs,
                           lengths=lengths, answer_lengths=answer_lengths, cluster_sizes=sizes,
                           labels=[int(x) for x in labels], centers=centers, texts=texts, notes=notes)
