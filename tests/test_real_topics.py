"""The real-model lane, notebook 06: the solution notebook in strict fast mode on the embedded SmolLM2-135M, then checks
on what it saved, recomputed independently of smolsynth: every saved tool-call record validates against the schema
(plain ``jsonschema`` over the JSON Lines file), the planted invalid record is not in it, the runs are tagged and
carry their guidance, and the review state on disk matches the rows. (Its own file, so that CI runs it beside the
other real-model notebooks.)"""

from __future__ import annotations

import json

import pytest

from smolsynth import offline

pytestmark = pytest.mark.skipif(not offline.embedded_available(),
                                reason=f"the embedded model is not installed ({offline.INSTALL_HINT})")


def test_solution_notebook_06_on_the_real_model_saves_only_valid_records(engine_home):
    import jsonschema

    from smolsynth.course import data_path
    from smolsynth.records import TOOL_CALL_SCHEMA
    from test_notebooks import SOLUTIONS, _report, nbval

    result = nbval([p for p in SOLUTIONS if p.name.startswith("06_")], strict=True, model=offline.EMBEDDED_MODEL,
                   timeout=1200, cell_timeout=600)
    assert result.returncode == 0, _report(result)
    folder = data_path("topics")

    # the tool calls: every line validates, read with nothing but json and jsonschema
    lines = (folder / "tool_calls" / "rows.jsonl").read_text(encoding="utf-8").splitlines()
    records = [json.loads(line)["record"] for line in lines if line.strip()]
    assert records, "notebook 06 saved no tool-call record"
    validator = jsonschema.Draft202012Validator(TOOL_CALL_SCHEMA)
    assert [list(validator.iter_errors(r)) for r in records] == [[] for _ in records]
    assert all(r["call"]["arguments"]["unit"] != "kelvin" for r in records)  # the planted record stayed out
    runs = json.loads((folder / "tool_calls" / "runs.json").read_text(encoding="utf-8"))
    assert [r["run_id"] for r in runs] == ["tool_calls"]
    assert runs[0]["dropped"].get("schema_invalid", 0) >= 1  # the planted one, counted with the run

    # the questions: three tagged runs, the guidance recorded on the guided ones only, every review id a saved row
    rows = [json.loads(line) for line in (folder / "questions" / "rows.jsonl").read_text().splitlines()]
    by_run = {}
    for row in rows:
        by_run.setdefault(row["run_id"], []).append(row)
    assert list(by_run) == ["no_guidance", "guided", "guided_with_examples"]
    assert all(r["guidance"] is None for r in by_run["no_guidance"])
    assert all(r["guidance"] for r in by_run["guided"] + by_run["guided_with_examples"])
    assert all(r["generation"].strip() and r["topic_path"].startswith("Travel > ") for r in rows)
    review = json.loads((folder / "questions" / "review.json").read_text(encoding="utf-8"))
    assert set(review["state"]) <= {str(r["id"]) for r in rows}
    statuses = [s["status"] for s in review["state"].values()]
    assert "accepted" in statuses or "rejected" in statuses
