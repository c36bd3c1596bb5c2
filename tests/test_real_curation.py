"""The real-model lane, notebook 07: the solution notebook in strict fast mode on the embedded SmolLM2-135M with the
real all-MiniLM-L6-v2 encoder (about 2 minutes on 2 cores), then checks on the curated data it saves, recomputed
independently: every row accounted for in the funnel, no two selected rows closer than Deita's threshold, none
overlapping an evaluation prompt, and scores that are not a constant. (Its own file, so that CI runs it beside
notebook 02's real-model run.)"""

from __future__ import annotations

import json

import pytest

from smolsynth import offline
from smolsynth.encoders import embedded_encoder_available

pytestmark = pytest.mark.skipif(not (offline.embedded_available() and embedded_encoder_available()),
                                reason=f"the embedded model or encoder is not installed ({offline.INSTALL_HINT})")


def test_solution_notebook_07_on_the_real_model_saves_a_diverse_clean_selection(engine_home):
    import datasets

    from smolsynth.contamination import decontaminate
    from smolsynth.course import data_path
    from smolsynth.encoders import EMBEDDED_ENCODER, embed
    from smolsynth.funnel import DROPPED_FILE, Funnel
    from test_notebooks import SOLUTIONS, _report, nbval

    result = nbval([p for p in SOLUTIONS if p.name.startswith("07_")], strict=True, model=offline.EMBEDDED_MODEL,
                   timeout=1200, cell_timeout=600)
    assert result.returncode == 0, _report(result)
    folder = data_path("curated")
    saved = datasets.load_from_disk(str(folder))
    assert 0 < len(saved) <= 6, len(saved)  # fast mode's budget
    funnel = Funnel.load(folder)
    assert funnel.check(len(saved)) == [], funnel
    assert funnel.rows_made == len(saved) + len(funnel.dropped_rows)
    steps = [s.step for s in funnel.stages]
    assert "deduplicate" in steps and "deita_scores" in steps and any(s.startswith("deita select") for s in steps)
    dropped = [json.loads(line) for line in (folder / DROPPED_FILE).read_text().splitlines() if line.strip()]
    assert len(dropped) == len(funnel.dropped_rows)

    instructions = [next(m["content"] for m in row["messages"] if m["role"] == "user") for row in saved]
    vectors = embed(instructions, encoder=EMBEDDED_ENCODER)
    similarity = vectors @ vectors.T
    closest = max((float(similarity[i, j]) for i in range(len(saved)) for j in range(i)), default=0.0)
    assert closest <= 0.9 + 1e-4, closest  # Deita: no selected row within cosine 0.9 of another
    assert decontaminate([{"instruction": t} for t in instructions]).dropped_rows == []
    assert all(row["messages"][-1]["role"] == "assistant" and row["messages"][-1]["content"].strip() for row in saved)


def test_deita_scores_move_on_the_real_model(engine_home):
    """The expected score varies with the row (greedy digits gave every row 1 on this model), and the probes whose
    order is known come out in that order for complexity."""
    from smolsynth.selection import deita_scores, scorer_check

    rows = [{"instruction": "Say hi.", "generation": "Hi!"},
            {"instruction": "Name a color.", "generation": "Blue."},
            {"instruction": "Explain how vaccines train the immune system, and why boosters are needed.",
             "generation": "A vaccine shows the immune system a harmless piece of a pathogen; memory cells form, and "
                           "boosters refresh them as they fade."},
            {"instruction": "Compare the causes of the First and Second World Wars in a structured essay.",
             "generation": "The First World War grew from alliances and militarism; the Second from the Versailles "
                           "settlement, the Depression and fascist expansion."}]
    scored = deita_scores(rows, model=offline.EMBEDDED_MODEL, progress=False)
    complexity = [r["complexity"] for r in scored.rows]
    assert len(set(complexity)) == 4 and all(1 <= c <= 6 for c in complexity)
    assert min(complexity[2:]) > max(complexity[:2]), complexity
    check = scorer_check(offline.EMBEDDED_MODEL)
    assert check[check["aspect"] == "complexity"]["agrees"].all(), check
    assert deita_scores(rows, model=offline.EMBEDDED_MODEL, progress=False).rows == scored.rows
