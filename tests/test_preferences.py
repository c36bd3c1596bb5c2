"""Binarization rules on crafted ratings: the documented pairs, and every drop counted by reason.

``binarize`` returns a :class:`~smolsynth.rows.Result`: ``.rows`` are the pairs, ``.dropped_rows`` the judged rows
that made no pair, each with its ``reason``."""

from __future__ import annotations

from collections import Counter

import pytest

from smolsynth.preferences import binarize
from smolsynth.rows import Result


def binarize_rows(rows, rule, seed=0):
    """(pairs, dropped rows) of :func:`binarize`, after checking that its report accounts for every row."""
    result = binarize(rows, rule, seed=seed)
    assert isinstance(result, Result)
    assert result.report.rows_in == len(rows) == len(result.rows) + len(result.dropped_rows)
    assert result.report.dropped == dict(Counter(d["reason"] for d in result.dropped_rows))
    return result.rows, result.dropped_rows


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


def test_chosen_equals_rejected_is_dropped():
    pairs, dropped = binarize_rows([row([5, 1], generations=["same", " same "])], rule="best-vs-worst")
    assert pairs == [] and dropped[0]["reason"] == "chosen_equals_rejected"
    assert dropped[0]["generations"] == ["same", " same "]  # the judged row as it was, with its reason


def test_aspect_ratings_use_the_mean_and_models_are_recorded():
    r = row([[5, 5, 4, 4], [3, 3, 3, 3], [5, 5, 5, 1]], generation_models=["m1", "m2", "m3"],
            system_prompt="Be kind.")
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
    with pytest.raises(ValueError, match="rule='best' is not one of 'best-vs-random'"):
        binarize([row([1, 2])], rule="best")
    with pytest.raises(ValueError, match=r"binarize\(\) needs the column\(s\) \['ratings'\].*judge\(\)"):
        binarize([{"instruction": "x", "generations": ["a"]}])


# ------------------------------------------------------------------------------------ binarize(): the RunResult form
def test_binarize_defaults_to_best_vs_random_lower_and_counts_every_drop():
    from smolsynth.preferences import DEFAULT_RULE

    rows = [row([5, 5, 2]), row([3, 3, 3]), row([None, 4]), row([4], generations=["a", "b"]),
            row([5, 1], generations=["same", "same "]), row([2, 4, 4])]
    result = binarize(rows)
    assert DEFAULT_RULE == "best-vs-random-lower" and result.report.step == "binarize (best-vs-random-lower)"
    assert result.report.rows_in == 6 and result.report.rows_out == 2
    assert result.report.dropped == {"tie": 1, "missing_ratings": 1, "wrong_number_of_ratings": 1,
                                     "chosen_equals_rejected": 1}
    assert sorted(result.dropped["reason"]) == sorted(["tie", "missing_ratings", "wrong_number_of_ratings",
                                                       "chosen_equals_rejected"])
    assert result.dataset.to_list() == result.rows
    assert [(p["chosen_rating"], p["rejected_rating"]) for p in result.dataset] == [(5, 2), (4, 2)]


def test_binarize_rules_on_ties_give_the_documented_pairs():
    rows = [row([5, 5, 1, 3]) for _ in range(30)]
    worst = binarize(rows, "best-vs-worst")
    assert len(worst.dataset) == 30 and set(worst.dataset["rejected_rating"]) == {1}
    lower = binarize(rows, "best-vs-random-lower", seed=1)
    assert len(lower.dataset) == 30 and set(lower.dataset["rejected_rating"]) == {1, 3}  # a random strictly lower one
    rand = binarize(rows, "best-vs-random", seed=1)
    assert 0 < rand.report.dropped["tie"] < 30 and len(rand.dataset) + rand.report.dropped["tie"] == 30
    assert set(rand.dataset["chosen_rating"]) == {5}


def test_rationales_and_models_travel_with_the_pair():
    pairs, _ = binarize_rows([row([1, 5], generation_models=["m1", "m2"], rationales=["weak", "strong"],
                                  generation_sources=["pool", "evol:details"])], rule="best-vs-worst")
    assert (pairs[0]["chosen_rationale"], pairs[0]["rejected_rationale"]) == ("strong", "weak")
    assert (pairs[0]["chosen_model"], pairs[0]["rejected_model"]) == ("m2", "m1")
    assert (pairs[0]["chosen_source"], pairs[0]["rejected_source"]) == ("evol:details", "pool")


def test_ratings_table_has_one_row_per_candidate_with_its_source():
    from smolsynth.preferences import ratings_table

    table = ratings_table([row([4, [5, 3, 4, 4], None], generation_sources=["pool", "pool", "evol:details"])])
    assert table["rating"].tolist()[:2] == [4.0, 4.0] and table["rating"].isna().tolist() == [False, False, True]
    assert table.groupby("source")["rating"].mean().to_dict()["pool"] == 4.0


def test_generators_are_labelled_and_checked():
    from smolsynth.preferences import Generator, _as_generator

    assert _as_generator("some/model", 0) == Generator(model="some/model")
    assert _as_generator({"temperature": 1.0, "name": "hot"}, 1).label("m") == "m (hot)"
    with pytest.raises(ValueError, match="unknown keys"):
        _as_generator({"temp": 1.0}, 0)
