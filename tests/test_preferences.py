"""Binarization rules on crafted ratings: the documented pairs, and every drop counted by reason."""

from __future__ import annotations

from collections import Counter

import pytest

from smolsynth.preferences import binarize_rows


def row(ratings, generations=None, **extra):
    generations = generations or [f"answer {i}" for i in range(len(ratings))]
    return {"instruction": "Say hi", "generations": generations, "ratings": ratings, **extra}


def texts(pair):
    return pair["chosen"][0]["content"], pair["rejected"][0]["content"]


def test_best_vs_worst_picks_the_extremes():
    pairs, dropped = binarize_rows([row([3, 5, 1, 4])], rule="best-vs-worst")
    assert texts(pairs[0]) == ("answer 1", "answer 2")
    assert (pairs[0]["chosen_rating"], pairs[0]["rejected_rating"]) == (5, 1)
    assert dropped == []


def test_best_vs_random_lower_never_picks_a_tie():
    rows = [row([5, 5, 2, 5]) for _ in range(40)]
    pairs, dropped = binarize_rows(rows, rule="best-vs-random-lower", seed=3)
    assert len(pairs) == 40 and not dropped
    assert all(texts(p)[1] == "answer 2" for p in pairs)


def test_best_vs_random_drops_a_random_tie_and_counts_it():
    rows = [row([5, 5, 1]) for _ in range(60)]
    pairs, dropped = binarize_rows(rows, rule="best-vs-random", seed=0)
    reasons = Counter(d["reason"] for d in dropped)
    assert len(pairs) + len(dropped) == 60
    assert set(reasons) == {"tie"} and 10 < reasons["tie"] < 50  # about half the random picks hit the other 5
    assert all(p["rejected_rating"] == 1 for p in pairs)


@pytest.mark.parametrize("rule", ["best-vs-random", "best-vs-worst", "best-vs-random-lower"])
def test_all_equal_ratings_make_no_pair(rule):
    pairs, dropped = binarize_rows([row([4, 4, 4])], rule=rule)
    assert pairs == [] and [d["reason"] for d in dropped] == ["tie"]


def test_missing_and_wrong_number_of_ratings_are_counted():
    rows = [row([None, 4]), row([None]), row([5], generations=["a", "b"]), row([None, None, 3])]
    pairs, dropped = binarize_rows(rows, rule="best-vs-worst")
    assert pairs == []
    assert [d["reason"] for d in dropped] == ["missing_ratings", "missing_ratings", "wrong_number_of_ratings",
                                              "missing_ratings"]


def test_none_rating_candidates_are_skipped_not_zeroed():
    pairs, _ = binarize_rows([row([None, 4, 2])], rule="best-vs-worst")
    assert texts(pairs[0]) == ("answer 1", "answer 2")


def test_identical_texts_are_dropped():
    pairs, dropped = binarize_rows([row([5, 1], generations=["same", " same "])], rule="best-vs-worst")
    assert pairs == [] and dropped[0]["reason"] == "identical_texts"


def test_aspect_ratings_use_the_mean_and_models_are_recorded():
    r = row([[5, 5, 4, 4], [3, 3, 3, 3], [5, 5, 5, 1]], models=["m1", "m2", "m3"], system_prompt="Be kind.")
    pairs, _ = binarize_rows([r], rule="best-vs-worst")
    p = pairs[0]
    assert (p["chosen_rating"], p["rejected_rating"]) == (4.5, 3.0)
    assert (p["chosen_model"], p["rejected_model"]) == ("m1", "m2")
    assert p["prompt"] == [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "Say hi"}]


def test_same_seed_same_pairs_and_no_pair_is_chosen_equals_rejected():
    rows = [row([i % 5 + 1, (i * 3) % 5 + 1, (i * 7) % 5 + 1]) for i in range(50)]
    a, _ = binarize_rows(rows, rule="best-vs-random", seed=7)
    b, _ = binarize_rows(rows, rule="best-vs-random", seed=7)
    assert a == b
    assert all(p["chosen"] != p["rejected"] and p["chosen_rating"] > p["rejected_rating"] for p in a)


def test_bad_rule_and_missing_column_fail_with_the_fix():
    with pytest.raises(ValueError, match="best-vs-random"):
        binarize_rows([row([1, 2])], rule="best")
    with pytest.raises(ValueError, match="ratings"):
        binarize_rows([{"instruction": "x", "generations": ["a"]}])
