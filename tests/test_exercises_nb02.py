"""Every exercise of notebook 02 with a correct, several incorrect and a not-attempted answer, on real results of the
tiny model (the shared ``preference_pipeline`` run: real generation, real distilabel tasks, the constrained judge).
Incorrect feedback never contains the answer."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from exercise_harness import exercise_tests

from smolsynth.exercises import ____, nb02


@pytest.fixture(scope="module")
def made(preference_pipeline) -> dict[str, Any]:
    """What a learner's cells would hold, made once from the shared run."""
    from smolsynth.preferences import binarize, evolve_quality, position_bias, ratings_table
    from smolsynth.ultrafeedback import judge

    p = preference_pipeline
    common = {"progress": False, "cache_dir": p["cache_dir"]}
    evolved = evolve_quality(p["pooled"].dataset.select(range(4)), ["creativity"], max_new_tokens=8, **common)
    evolved_judged = judge(evolved.dataset, max_rationale_chars=16, **common)
    means = ratings_table(evolved_judged.dataset).groupby("source")["rating"].mean().to_dict()
    bias = position_bias(p["judged"].dataset, sample=3, max_rationale_chars=16, **common)
    pairs = p["pairs"]
    same = [{**row, "rejected": row["chosen"]} if i == 0 else row for i, row in enumerate(pairs.rows)]
    bad_ratings = [{**row, "ratings": row["ratings"][:-1]} if i == 0 else row
                   for i, row in enumerate(p["judged"].rows)]
    return {**p, "evolved_mine": evolved, "evolved_judged": evolved_judged, "means": means, "bias": bias,
            "worst": binarize(p["judged"].dataset, "best-vs-worst"),
            "part": binarize(p["judged"].dataset.select(range(10))),
            "same": dataclasses.replace(pairs, rows=same),
            "bad_ratings": dataclasses.replace(p["judged"], rows=bad_ratings)}


def _q1(m, **kw):
    return {"my_judged": m["judged"], "my_pairs": m["pairs"], **kw}


def _q2(m, **kw):
    return {"my_evolved": m["evolved_mine"], "my_evolved_judged": m["evolved_judged"], "my_mean_by_source": m["means"],
            **kw}


def _q3(m, **kw):
    """The learner's answer: the rule the flip rate calls for, and pairs made with it."""
    noisy = max(m["bias"].flip_rate, m["bias"].sampling_flip_rate) > nb02.HIGH_FLIP_RATE
    return {"my_bias": m["bias"], "my_rule": "best-vs-worst" if noisy else "best-vs-random-lower",
            "my_final_pairs": m["worst"] if noisy else m["pairs"], **kw}


def _all_flipped(bias, *, by_sampling=False):
    """``bias`` as if every row had flipped, in the order comparison or in the sampled control (the tiny judge's own
    rates may be anything: its greedy ratings are all ties)."""
    n = len(bias.rows)
    if by_sampling:
        return dataclasses.replace(bias, sampling_compared=n, sampling_changed=n, sampling_flip_rate=1.0)
    return dataclasses.replace(bias, compared=n, ties=0, changed=n, flip_rate=1.0)


def _calm(bias):
    """``bias`` as if the judge never changed its mind."""
    return dataclasses.replace(bias, changed=0, flip_rate=0.0, sampling_changed=0, sampling_flip_rate=0.0)


CASES: dict[str, dict[str, Any]] = {
    "02_preferences.q1": {
        "exercise": nb02.q1,
        "correct": _q1,
        "incorrect": {
            "not a result": (lambda m: _q1(m, my_judged=["x"]), "judge(...)"),
            "pooled, not judged": (lambda m: _q1(m, my_judged=m["pooled"]), "ratings"),
            "a rating missing": (lambda m: _q1(m, my_judged=m["bad_ratings"]), "one rating per candidate"),
            "another rule": (lambda m: _q1(m, my_pairs=m["worst"]), "default"),
            "a bare dataset": (lambda m: _q1(m, my_pairs=m["pairs"].dataset), "not a bare dataset"),
            "chosen == rejected": (lambda m: _q1(m, my_pairs=m["same"]), "same text"),
            "pairs of other rows": (lambda m: _q1(m, my_judged=m["judged"].dataset.select(range(5))),
                                    "not instructions of"),
            "only part binarized": (lambda m: _q1(m, my_pairs=m["part"]), "binarize all of"),
        },
        "not_attempted": [lambda m: {"my_judged": ____, "my_pairs": ____},
                          lambda m: _q1(m, my_pairs=____)],
    },
    "02_preferences.q2": {
        "exercise": nb02.q2,
        "correct": _q2,
        "incorrect": {
            "not evolved": (lambda m: _q2(m, my_evolved=m["pooled"]), "EvolQuality candidate"),
            "judged other rows": (lambda m: _q2(m, my_evolved_judged=m["judged"]), "not a judgment of"),
            "not a dict": (lambda m: _q2(m, my_mean_by_source=[3.0, 2.0]), "dict"),
            "a source missing": (lambda m: _q2(m, my_mean_by_source={"pool": m["means"]["pool"]}), "one key per"),
            "wrong mean": (lambda m: _q2(m, my_mean_by_source={k: v + 1 for k, v in m["means"].items()}),
                           "is not the mean"),
        },
        "not_attempted": [lambda m: {"my_evolved": ____, "my_evolved_judged": ____, "my_mean_by_source": ____},
                          lambda m: _q2(m, my_mean_by_source=____)],
    },
    "02_preferences.q3": {
        "exercise": nb02.q3,
        "correct": _q3,
        "incorrect": {
            "unknown rule": (lambda m: _q3(m, my_rule="best"), "one of the three rules"),
            "not a bias check": (lambda m: _q3(m, my_bias=0.3), "position_bias(...)"),
            "too small a sample": (lambda m: _q3(m, my_bias=dataclasses.replace(
                m["bias"], report=dataclasses.replace(m["bias"].report, rows_in=2))), "at least 3"),
            "pairs with another rule": (lambda m: _q3(m, my_bias=_all_flipped(m["bias"]), my_rule="best-vs-worst",
                                                      my_final_pairs=m["pairs"]), "not with your choice"),
            "ignores a high flip rate": (lambda m: _q3(m, my_bias=_all_flipped(m["bias"]),
                                                       my_rule="best-vs-random-lower", my_final_pairs=m["pairs"]),
                                         "far apart in rating"),
            "ignores the sampling noise": (lambda m: _q3(m, my_bias=_all_flipped(_calm(m["bias"]), by_sampling=True),
                                                         my_rule="best-vs-random-lower", my_final_pairs=m["pairs"]),
                                           "asked again in the same order"),
            "a made-up control": (lambda m: _q3(m, my_bias=dataclasses.replace(
                m["bias"], sampling_flip_rate=0.5, sampling_compared=3, sampling_changed=0)), "control does not add up"),
            "a made-up flip rate": (lambda m: _q3(m, my_bias=dataclasses.replace(_all_flipped(m["bias"]),
                                                                                 flip_rate=0.0)),
                                    "does not add up"),
            "a bare dataset": (lambda m: _q3(m, my_final_pairs=m["pairs"].dataset), "not a bare dataset"),
        },
        "not_attempted": [lambda m: {"my_bias": ____, "my_rule": ____, "my_final_pairs": ____},
                          lambda m: _q3(m, my_rule=____)],
    },
    "02_preferences.q4": {
        "exercise": nb02.q4,
        "correct": lambda m: {"my_best_vs_worst": _best_vs_worst},
        "incorrect": {
            "not a function": (lambda m: {"my_best_vs_worst": (0, 1)}, "should be a function"),
            "always a pair": (lambda m: {"my_best_vs_worst": lambda r: (0, 1)}, "Case 1"),
            "never a pair": (lambda m: {"my_best_vs_worst": lambda r: None}, "Case 1"),
            "swapped": (lambda m: {"my_best_vs_worst": lambda r: _swap(_best_vs_worst(r))}, "Case 1"),
            "ties make a pair": (lambda m: {"my_best_vs_worst": lambda r: _best_vs_worst(r, drop_ties=False)},
                                 "Case 2"),
            "last of the tied best": (lambda m: {"my_best_vs_worst": lambda r: _best_vs_worst(r, last_best=True)},
                                      "Case 3"),
            "None not skipped": (lambda m: {"my_best_vs_worst": lambda r: (
                r.index(max(r)), r.index(min(r))) if len(set(r)) > 1 else None}, "TypeError"),
            "a string": (lambda m: {"my_best_vs_worst": lambda r: "chosen 2, rejected 1"}, "pair of indices"),
        },
        "not_attempted": [lambda m: {"my_best_vs_worst": ____}, lambda m: {}],
    },
}


def _best_vs_worst(ratings, drop_ties=True, last_best=False):
    rated = [(i, r) for i, r in enumerate(ratings) if r is not None]
    if len(rated) < 2:
        return None
    best = max(reversed(rated) if last_best else rated, key=lambda pair: pair[1])
    worst = min(rated, key=lambda pair: pair[1])
    if best[1] == worst[1] and drop_ties:
        return None
    return best[0], worst[0]


def _swap(pair):
    return None if pair is None else (pair[1], pair[0])


(test_every_exercise_has_test_cases, test_correct_answer_passes,
 test_incorrect_answer_is_explained_without_the_answer, test_not_attempted_answer) = exercise_tests(
    "02_preferences", CASES, fixture="made")


