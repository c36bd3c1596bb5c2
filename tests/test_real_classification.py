"""The real-model lane, notebook 05: the solution notebook in strict fast mode on the embedded SmolLM2-135M, then
checks on what it saved: the labelled texts (every row a label of the set and a finished text) and the classifier
(a transformers folder that ``pipeline("text-classification")`` loads and that answers with those labels). A file of
its own, so that it runs beside notebook 02's real-model lane (tests/conftest.py, LONGEST_FIRST)."""

from __future__ import annotations

import csv

import pytest

from smolsynth import offline

pytestmark = pytest.mark.skipif(not offline.embedded_available(),
                                reason=f"the embedded model is not installed ({offline.INSTALL_HINT})")


def test_solution_notebook_05_on_the_real_model_saves_labelled_finished_texts(engine_home):
    """Notebook 05 (generate -> resume -> duplicates -> conflicts -> re-label -> train -> real messages -> exercises)
    in strict fast mode: every check must pass, every saved row must be usable training data."""
    from transformers import pipeline

    from smolsynth.classification import SUPPORT_LABELS, TEXT_CHARS
    from smolsynth.course import data_path
    from test_notebooks import SOLUTIONS, _report, nbval

    result = nbval([p for p in SOLUTIONS if p.name.startswith("05_")], strict=True, model=offline.EMBEDDED_MODEL,
                   timeout=1800, cell_timeout=900)
    assert result.returncode == 0, _report(result)

    files = sorted(data_path("classification").glob("texts-*.csv"))
    assert len(files) == 1, files
    with open(files[0], newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    print(f"notebook 05 on {offline.EMBEDDED_MODEL}: {len(rows)} texts kept in {files[0].name}")
    assert rows, "notebook 05 kept no texts"
    assert {r["label"] for r in rows} <= set(SUPPORT_LABELS), {r["label"] for r in rows}
    for row in rows:
        assert row["text"].strip() and row["reasoning"].strip(), row
        assert len(row["text"]) < TEXT_CHARS - 1, f"a cut-off text was kept: {row['text']!r}"
        assert row["model_name"] == offline.EMBEDDED_MODEL or offline.EMBEDDED_MODEL in row["generator"], row

    classify = pipeline("text-classification", model=str(data_path("classifier")))
    answers = classify(["I was charged twice for one order", "My parcel never arrived"])
    assert {a["label"] for a in answers} <= set(SUPPORT_LABELS), answers
