"""The in-process runner: distilabel's own tasks on the tiny model, failure accounting, clear errors, the report."""

from __future__ import annotations

import pytest

from conftest import run_python

INSTRUCTIONS = [{"instruction": f"Write one sentence about item {i}."} for i in range(10)]


def _accounted(result, expected_rows):
    r = result.report
    assert r.rows_out == len(result.dataset)
    assert r.dropped_total == len(result.dropped)
    assert r.rows_out + r.dropped_total == expected_rows
    assert "distilabel_metadata" not in result.dataset.column_names


def test_text_generation(engine_home, tiny_llm_factory):
    from distilabel.steps.tasks import TextGeneration

    from smolsynth.runner import run

    # the tiny model rarely ends its answers: keep cut-off ones (the truncated gate has tests of its own)
    result = run(TextGeneration(llm=tiny_llm_factory(), num_generations=2), INSTRUCTIONS, progress=False,
                 allow_truncated=True)
    _accounted(result, 20)
    assert {"instruction", "generation", "model_name"} <= set(result.dataset.column_names)
    assert result.report.output_tokens > 0 and result.report.input_tokens > 0
    assert result.report.tokens_per_second > 0


@pytest.mark.parametrize("name", ["SelfInstruct", "EvolInstruct", "EvolQuality", "UltraFeedback"])
def test_distilabels_tasks_run(engine_home, tiny_llm_factory, name):
    import distilabel.steps.tasks as tasks

    from smolsynth.runner import run

    llm = tiny_llm_factory(generation_kwargs={"max_new_tokens": 16, "temperature": 1.0})
    rows = {
        "SelfInstruct": [{"input": "Photosynthesis in plants."}] * 2,
        "EvolInstruct": INSTRUCTIONS[:3],
        "EvolQuality": [{"instruction": "Say hi.", "response": "Hi."}] * 3,
        "UltraFeedback": [{"instruction": "Say hi.", "generations": ["Hi.", "Hello!"]}] * 3,
    }[name]
    kwargs = {"num_evolutions": 1} if name in {"EvolInstruct", "EvolQuality"} else {}
    result = run(getattr(tasks, name)(llm=llm, **kwargs), rows, progress=False, allow_truncated=True)
    _accounted(result, len(rows))
    if name == "UltraFeedback":  # random text never has the rating format: every row is set aside, with a reason
        assert result.report.rows_out == 0
        assert set(result.report.dropped) <= {"wrong_number_of_ratings", "unparsed_rating", "unparsed_output"}
        assert all(isinstance(r, str) for r in result.dropped["raw_output"])


def _canned_llm(texts):
    """A fake LLM that returns canned text: only to test the accounting on known outputs (the testing rules of the project)."""
    import warnings

    from distilabel.models.llms.base import LLM

    with warnings.catch_warnings():  # pydantic's note about distilabel's RuntimeParameter typing, at class creation
        warnings.simplefilter("ignore")

        class Canned(LLM):
            @property
            def model_name(self) -> str:
                return "canned"

            def generate(self, inputs, num_generations=1, **kwargs):
                return [{"generations": [texts[i % len(texts)]] * num_generations, "statistics": {}}
                        for i, _ in enumerate(inputs)]

    return Canned()


def test_ultrafeedback_failures_are_counted_by_reason(engine_home):
    from distilabel.steps.tasks import UltraFeedback

    from smolsynth.runner import run

    good = "#### Output for Text 1\nRating: 4\nRationale: ok\n\n#### Output for Text 2\nRating: 2\nRationale: meh"
    one_section = "#### Output for Text 1\nRating: 4\nRationale: only one"
    bad_rating = "#### Output for Text 1\nRating: N/A\nRationale: ok\n\n#### Output for Text 2\nRating: 2\nRationale: x"
    rows = [{"instruction": f"q{i}", "generations": ["a", "b"]} for i in range(3)]
    result = run(UltraFeedback(llm=_canned_llm([good, one_section, bad_rating])), rows, progress=False, cache=False)
    assert result.report.rows_out == 1 and result.dataset[0]["ratings"] == [4, 2]
    assert result.report.dropped == {"wrong_number_of_ratings": 1, "unparsed_rating": 1}
    assert sorted(result.dropped["reason"]) == ["unparsed_rating", "wrong_number_of_ratings"]
    assert one_section in result.dropped["raw_output"]


def test_an_exception_in_a_batch_is_counted_not_turned_into_none_rows(engine_home):
    from distilabel.steps import FormatTextGenerationDPO

    from smolsynth.runner import run

    rows = [  # mixed None/int ratings make distilabel's DPO formatting raise a TypeError for its whole batch
        {"instruction": "a", "generations": ["x", "y"], "ratings": [None, 3]},
        {"instruction": "b", "generations": ["x", "y"], "ratings": [5, 1]},
        {"instruction": "c", "generations": ["same", "same"], "ratings": [2, 2]},
    ]
    result = run(FormatTextGenerationDPO(), rows, batch_size=1, progress=False)
    assert result.report.dropped == {"exception: TypeError": 1, "chosen_equals_rejected": 1}
    assert result.report.rows_out == 1 and result.dataset[0]["chosen"][-1]["content"] == "x"
    failed = [r for r in result.dropped.to_list() if r["reason"].startswith("exception")][0]
    assert failed["instruction"] == "a" and "not supported" in failed["error"]
    with pytest.raises(RuntimeError, match="TypeError"):
        run(FormatTextGenerationDPO(), rows[:1], progress=False, on_error="raise")


def test_bad_input_fails_fast_with_the_fix_in_the_message(engine_home, tiny_llm_factory):
    from distilabel.steps.tasks import TextGeneration

    from smolsynth.runner import run

    task = TextGeneration(llm=tiny_llm_factory())
    with pytest.raises(ValueError, match=r"'instruction'.*input_mappings"):
        run(task, [{"prompt": "hi"}], progress=False)
    with pytest.raises(ValueError, match="batch_size"):
        run(task, INSTRUCTIONS, batch_size=0, progress=False)
    with pytest.raises(TypeError, match="dict"):
        run(task, ["just a string"], progress=False)
    mapped = TextGeneration(llm=tiny_llm_factory(), input_mappings={"instruction": "prompt"})
    assert run(mapped, [{"prompt": "hi"}], progress=False).report.rows_in == 1


def test_task_is_loaded_once_and_metadata_kept_on_request(engine_home, tiny_llm_factory, monkeypatch):
    from distilabel.steps.tasks import TextGeneration

    from smolsynth.runner import run

    task = TextGeneration(llm=tiny_llm_factory())
    loads = []
    original = type(task).load
    monkeypatch.setattr(type(task), "load", lambda self: (loads.append(1), original(self))[1])
    run(task, INSTRUCTIONS[:2], progress=False, cache=False)
    result = run(task, INSTRUCTIONS[:2], progress=False, cache=False, keep_metadata=True, allow_truncated=True)
    assert len(result.dataset) >= 1, result.report
    assert loads == [1]
    assert "distilabel_metadata" in result.dataset.column_names


def test_report_renders_as_text_and_html(engine_home, tiny_llm_factory):
    from smolsynth.generation import generate
    from smolsynth.report import Report

    result = generate(["Hi", "Hello"], model="smolsynth/tiny", max_new_tokens=8, progress=False)
    text, html = str(result.report), result.report._repr_html_()
    assert text.startswith("generate: 2 rows in -> ")
    assert html.startswith("<table") and "<td>generate</td>" in html and "tokens/s" in html
    table = Report.combine([result.report, Report("judge", 2, 1, {"unparsed_output": 1})])
    assert "unparsed_output: 1" in str(table) and table._repr_html_().count("<tr>") == 3
    assert list(table.to_pandas()["step"]) == ["generate", "judge"]


def test_generate_convenience(engine_home):
    from smolsynth.generation import generate

    result = generate("Name a colour.", model="smolsynth/tiny", system_prompt="Answer in one word.",
                      max_new_tokens=6, num_generations=3, progress=False)
    assert result.report.rows_in == 1
    assert result.report.rows_out + result.report.dropped_total == 3
    with pytest.raises(TypeError, match="unknown settings"):
        generate("x", model="smolsynth/tiny", max_tokens=5)


TWO_STEP_PIPELINE = """
import logging, tempfile
from smolsynth.llm import LocalLLM
from smolsynth.runner import run_pipeline
from distilabel.pipeline import Pipeline
from distilabel.steps import LoadDataFromDicts
from distilabel.steps.tasks import TextGeneration, UltraFeedback

with Pipeline(name="two-step", cache_dir=tempfile.mkdtemp()) as pipeline:
    load = LoadDataFromDicts(data=[{"instruction": "Say hi."}, {"instruction": "Say bye."}])
    gen = TextGeneration(llm=LocalLLM("smolsynth/tiny", generation_kwargs={"max_new_tokens": 8}),
                         num_generations=2, group_generations=True)
    judge = UltraFeedback(llm=LocalLLM("smolsynth/tiny", generation_kwargs={"max_new_tokens": 8}),
                          input_mappings={"generations": "generation"})
    load >> gen >> judge
handlers_before = list(logging.getLogger().handlers)
distiset = run_pipeline(pipeline, use_cache=False)
rows = distiset["default"]["train"].to_list()
print("ROWS", len(rows), sorted(rows[0]))
print("GENERATIONS", [len(r["generation"]) for r in rows])
print("ROOT_HANDLERS_RESTORED", logging.getLogger().handlers == handlers_before)
"""


def test_a_two_step_distilabel_pipeline_runs_with_local_llm(tmp_path, tiny_path):
    result = run_python(TWO_STEP_PIPELINE, env={"SMOLSYNTH_HOME": str(tiny_path.parent.parent)}, timeout=300,
                        cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "ROWS 2" in result.stdout and "'ratings'" in result.stdout, result.stdout
    assert "GENERATIONS [2, 2]" in result.stdout
    assert "ROOT_HANDLERS_RESTORED True" in result.stdout


def test_sampled_outputs_do_not_depend_on_when_the_model_files_were_written(engine_home, tiny_path, tmp_path):
    """The same seed samples the same outputs from a model folder written twice (a fresh home materializes the model
    anew: other file times and inodes, so another weights fingerprint and cache key, but the same weights)."""
    import shutil

    from smolsynth.generation import generate
    from smolsynth.models import weights_fingerprint

    folder = tmp_path / "model"
    outputs, fingerprints = [], []
    for _ in range(2):
        shutil.rmtree(folder, ignore_errors=True)
        shutil.copytree(tiny_path, folder)
        fingerprints.append(weights_fingerprint(str(folder)))
        result = generate(["Name a fruit.", "Name a river."], model=str(folder), temperature=1.0, max_new_tokens=8,
                          num_generations=2, seed=3, allow_truncated=True, progress=False)
        outputs.append([r["generation"] for r in result.rows])
    assert fingerprints[0] != fingerprints[1]  # the cache sees another model folder...
    assert outputs[0] == outputs[1] and len(set(outputs[0])) > 1  # ...and the seed samples the same outputs
