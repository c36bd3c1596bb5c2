"""The real-model lane, notebook 08: the solution notebook in strict fast mode on the embedded SmolLM2-135M (served by
``transformers serve`` from the notebook itself), then checks on what it saved, read back independently: the recipe
run finished with readable answers, and its card names the model, its licence and every step. (Its own file, so that CI runs it beside the other real-model notebooks.)"""

from __future__ import annotations

import importlib.util
import json

import pytest

from smolsynth import offline

pytestmark = pytest.mark.skipif(
    not (offline.embedded_available() and all(importlib.util.find_spec(m) for m in ("fastapi", "uvicorn"))),
    reason=f"needs the embedded model ({offline.INSTALL_HINT}) and transformers' serving extra")


def test_solution_notebook_08_on_the_real_model(engine_home):
    from smolsynth.cards import dataset_card
    from smolsynth.course import data_path
    from test_notebooks import SOLUTIONS, _report, nbval

    result = nbval([p for p in SOLUTIONS if p.name.startswith("08_")], strict=True, model=offline.EMBEDDED_MODEL,
                   timeout=1200, cell_timeout=600)
    assert result.returncode == 0, _report(result)
    run = data_path("beyond") / "runs" / "my-instructions"
    record = json.loads((run / "run.json").read_text())
    assert "finished" in record and [s["kind"] for s in record["steps"]] == ["magpie", "answers"]
    answers = [json.loads(line) for line in (run / "2-answers.jsonl").read_text().splitlines()]
    assert answers and all(len(r["generation"].split()) >= 2 for r in answers)
    card = dataset_card(run)
    assert "license: apache-2.0" in card and offline.EMBEDDED_MODEL in card
    assert all(f"| {s['report']['step']} |" in card for s in record["steps"])
