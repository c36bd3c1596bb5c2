"""Dataset statistics on texts whose numbers are known by hand."""

from __future__ import annotations

import io

import pytest

from smolsynth.stats import NearDuplicateIndex, dataset_stats, distinct_n, near_duplicates, normalize_text

TEXTS = [
    "Write a short poem about the sea.",
    "write a SHORT poem about the sea!",  # exact duplicate after normalization
    "Write a short poem about the sea today.",  # near duplicate: 5 of 6 trigrams shared (0.833)
    "Explain how rain forms.",
    "Explain how a rainbow forms in the sky.",  # shares only "explain how" with the previous: not near
]


def test_exact_and_near_duplicates_are_counted_separately() -> None:
    stats = dataset_stats(TEXTS)
    assert stats.summary["rows"] == 5
    assert stats.summary["exact_duplicates"] == 1
    assert stats.summary["near_duplicates"] == 1
    assert "3-gram Jaccard >= 0.7" in stats.summary["near_duplicate_rule"]
    assert dataset_stats(TEXTS, near_duplicate_threshold=0.9).summary["near_duplicates"] == 0


def test_near_duplicates_report_the_earlier_row_and_the_similarity() -> None:
    hits = near_duplicates(TEXTS)
    assert hits[0] is None and hits[1] == (0, 1.0) and hits[2] == (0, 0.833) and hits[3] is None and hits[4] is None
    index = NearDuplicateIndex(threshold=0.5)
    index.add("the cat sat on the mat")
    assert index.match("the cat sat on the hat") == (0, 0.6)  # {the cat sat, cat sat on, sat on the}: 3 of 5
    with pytest.raises(ValueError, match="threshold"):
        NearDuplicateIndex(threshold=0)


def test_distinct_n_and_normalization() -> None:
    assert distinct_n(["the cat", "the dog"], 1) == 0.75  # the, cat, dog of 4 words
    assert distinct_n(["the cat", "the cat"], 2) == 0.5
    assert distinct_n([], 1) == 0.0
    assert normalize_text("  Hello,   WORLD!! ") == "hello world"
    summary = dataset_stats(["a b", "a c"]).summary
    assert (summary["distinct_1"], summary["distinct_2"]) == (0.75, 1.0)


def test_lengths_and_first_words() -> None:
    stats = dataset_stats(TEXTS)
    assert stats.lengths == [7, 7, 8, 4, 8]
    assert (stats.summary["words_min"], stats.summary["words_max"], stats.summary["words_median"]) == (4, 8, 7)
    top = stats.first_words.to_dict("records")
    assert top[0] == {"first word": "write", "rows": 3, "share": 0.6}
    assert top[1] == {"first word": "explain", "rows": 2, "share": 0.4}
    assert list(stats.table.columns) == ["metric", "value"]
    assert "exact_duplicates" in str(stats) and "<table" in stats._repr_html_()


def test_rows_messages_and_missing_text() -> None:
    rows = [{"messages": [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "Name a bird."},
                          {"role": "assistant", "content": "Robin."}]},
            {"messages": [{"role": "user", "content": "Name a tree."}, {"role": "assistant", "content": "Oak."}]},
            {"messages": None}]
    stats = dataset_stats(rows, column="messages")
    assert stats.summary["rows"] == 3 and stats.summary["rows_without_text"] == 1
    assert stats.first_words.iloc[0]["first word"] == "name"  # the user turn is measured, not the system prompt
    with pytest.raises(ValueError, match="column="):
        dataset_stats(rows, column="instruction")


def test_plot_is_a_figure_that_renders_without_a_display() -> None:
    from matplotlib.figure import Figure

    fig = dataset_stats(TEXTS).plot()
    assert isinstance(fig, Figure)
    assert [ax.get_title() for ax in fig.axes] == ["length (words per row)", "most common first words"]
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    assert buffer.getvalue()[:4] == b"\x89PNG"
    empty = dataset_stats([{"instruction": None}]).plot()
    assert isinstance(empty, Figure)
