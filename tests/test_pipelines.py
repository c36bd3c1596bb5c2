"""smolsynth.pipelines: the course's steps as a distilabel Pipeline and on a local Ray cluster, with the same rows as
the in-process runner for the same seed, and the content cache shared between them."""

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import run_python

# Two steps (sampled answers, then a constrained judge over them), run three ways: with smolsynth.runner.run one
# step after another, as a distilabel Pipeline, and as a RayPipeline. Batches of 3 over 7 rows: a partial last batch.
SCRIPT = """
import json, sys, tempfile
from distilabel.steps.tasks import TextGeneration, UltraFeedback
from smolsynth.llm import LocalLLM
from smolsynth.pipelines import build_pipeline
from smolsynth.runner import run, run_pipeline
from smolsynth.ultrafeedback import judge_tokens, ultrafeedback_regex

llm = LocalLLM("smolsynth/tiny", generation_kwargs={"max_new_tokens": 12, "temperature": 1.0}, batch_size=2, seed=5)
judge_llm = llm.model_copy(update={"structured_output": {"format": "regex", "schema": ultrafeedback_regex(2)},
                                   "generation_kwargs": {"max_new_tokens": judge_tokens(2), "temperature": 1.0}})
tasks = [TextGeneration(llm=llm, num_generations=2, group_generations=True),
         UltraFeedback(llm=judge_llm, input_mappings={"generations": "generation"})]
data = [{"instruction": f"Name thing number {i}."} for i in range(7)]
mode, cache_dir, pipeline_cache_dir = sys.argv[1], sys.argv[2], sys.argv[3] or tempfile.mkdtemp()
if mode == "in-process":
    first = run(tasks[0], data, batch_size=3, cache_dir=cache_dir, allow_truncated=True, progress=False)
    rows = run(tasks[1], first.dataset, batch_size=3, cache_dir=cache_dir, allow_truncated=True, progress=False).rows
else:
    pipeline = build_pipeline(data, tasks, batch_size=3, ray=mode == "ray", cache_dir=cache_dir,
                              allow_truncated=True, pipeline_cache_dir=pipeline_cache_dir)
    rows = run_pipeline(pipeline, use_cache=False)["default"]["train"].to_list()
keep = ("instruction", "generation", "ratings", "rationales")
print("ROWS " + json.dumps(sorted(({k: r[k] for k in keep} for r in rows), key=lambda r: r["instruction"])))
"""


def _rows(tmp_path: Path, mode: str, cache_dir: Path, env: dict | None = None, timeout: float = 300,
          pipeline_cache: Path | None = None) -> list:
    code = f"import sys; sys.argv = ['-c', {mode!r}, {str(cache_dir)!r}, {str(pipeline_cache or '')!r}]\n" + SCRIPT
    result = run_python(code, env=env, timeout=timeout, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    line = next(x for x in result.stdout.splitlines() if x.startswith("ROWS "))
    return json.loads(line[5:])


def _batch_files(cache_dir: Path) -> set:
    return {p.name for p in cache_dir.rglob("batch-*.json")}


@pytest.fixture(scope="module")
def in_process(tmp_path_factory, tiny_path):
    tmp = tmp_path_factory.mktemp("in-process")
    rows = _rows(tmp, "in-process", tmp / "cache", env={"SMOLSYNTH_HOME": str(tiny_path.parent.parent)})
    assert len(rows) == 7 and all(len(r["generation"]) == 2 and len(r["ratings"]) == 2 for r in rows)
    assert len({g for r in rows for g in r["generation"]}) > 7  # sampled: the rows differ
    return rows


def test_a_pipeline_gives_the_rows_of_the_in_process_runner(in_process, tmp_path, tiny_path):
    assert _rows(tmp_path, "pipeline", tmp_path / "cache", env={"SMOLSYNTH_HOME": str(tiny_path.parent.parent)}) \
        == in_process


def test_a_pipeline_reads_the_batches_the_runner_stored(tmp_path, tiny_path):
    cache = tmp_path / "cache"
    env = {"SMOLSYNTH_HOME": str(tiny_path.parent.parent)}
    first = _rows(tmp_path, "in-process", cache, env=env)
    stored = _batch_files(cache)
    assert len(stored) == 6  # 3 batches of each step
    assert _rows(tmp_path, "pipeline", cache, env=env, pipeline_cache=tmp_path / "distilabel") == first
    assert _batch_files(cache) == stored  # every batch came from the cache: none was computed again
    # Run again with distilabel's own cache of the first run in place: distilabel rebuilds the steps from its
    # pipeline.yaml then (even with use_cache=False), and a RunnerStep must come back with its task.
    assert _rows(tmp_path, "pipeline", cache, env=env, pipeline_cache=tmp_path / "distilabel") == first


@pytest.fixture
def ray_cluster(tmp_path):
    """A local Ray cluster (a head node on loopback), started here and stopped afterwards; yields its address."""
    ray = Path(sys.executable).parent / "ray"
    if not ray.exists():
        pytest.skip("ray is not installed (pip install -c constraints.txt -e .[ray])")
    from smolsynth.servers import free_port

    port = free_port()
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    started = subprocess.run([str(ray), "start", "--head", f"--port={port}", "--node-ip-address=127.0.0.1",
                              "--num-cpus=2", "--include-dashboard=false", "--disable-usage-stats"],
                             env=env, capture_output=True, text=True, timeout=180)
    assert started.returncode == 0, started.stderr[-3000:]
    try:
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run([str(ray), "stop", "--force"], env=env, capture_output=True, timeout=120)


def test_a_ray_pipeline_on_a_local_cluster_gives_the_rows_of_the_in_process_runner(in_process, ray_cluster, tmp_path,
                                                                                    tiny_path):
    rows = _rows(tmp_path, "ray", tmp_path / "cache", timeout=420,
                 env={"SMOLSYNTH_HOME": str(tiny_path.parent.parent), "RAY_ADDRESS": ray_cluster})
    assert rows == in_process


def test_build_pipeline_refuses_what_it_cannot_run(tiny_path):
    from distilabel.pipeline import Pipeline
    from distilabel.steps import LoadDataFromDicts
    from distilabel.steps.tasks import TextGeneration

    from smolsynth.llm import LocalLLM
    from smolsynth.pipelines import build_pipeline

    task = TextGeneration(llm=LocalLLM("smolsynth/tiny"))
    with pytest.raises(ValueError, match="data has no rows"):
        build_pipeline([], [task])
    with pytest.raises(ValueError, match="needs the column 'instruction'"):  # before any step is built
        build_pipeline([{"prompt": "Hi"}], [task])
    with pytest.raises(ValueError, match="tasks is empty"):
        build_pipeline([{"instruction": "Hi"}], [])
    with pytest.raises(TypeError, match="LoadDataFromDicts"):
        build_pipeline([{"instruction": "Hi"}], [LoadDataFromDicts(data=[{"instruction": "Hi"}])])
    with Pipeline(name="theirs"):
        inside = TextGeneration(llm=LocalLLM("smolsynth/tiny"))
    with pytest.raises(ValueError, match="belongs to a pipeline already"):
        build_pipeline([{"instruction": "Hi"}], [inside])


def test_a_failed_batch_is_reported_and_left_out_not_passed_on_as_empty_rows(tiny_path, tmp_path, caplog):
    from distilabel.steps.tasks import TextGeneration

    from smolsynth.llm import LocalLLM
    from smolsynth.pipelines import RunnerStep

    step = RunnerStep(task=TextGeneration(llm=LocalLLM("smolsynth/tiny")), cache_dir=str(tmp_path))
    step.load()
    distilabel_logger = logging.getLogger("distilabel")
    level = distilabel_logger.level
    distilabel_logger.setLevel(logging.ERROR)  # as smolsynth.import_distilabel sets it: the report must get through
    step._logger.addHandler(caplog.handler)  # distilabel's loggers may not reach the root logger here
    try:
        out = list(step.process([{"prompt": "no instruction column"}]))  # the task raises on this row
    finally:
        step._logger.removeHandler(caplog.handler)
        distilabel_logger.setLevel(level)
    assert out == [[]]
    assert "batch 0 raised exception: KeyError" in caplog.text and "1 rows are left out" in caplog.text
    assert not list(tmp_path.rglob("batch-*.json"))  # a failed batch is never cached


def test_a_steps_signature_follows_its_task_settings(tiny_path):
    """distilabel reuses a step's outputs from its own cache (``use_cache=True``, its default) when the step's
    signature matches: the task's settings must be in it, so that a changed setting misses."""
    from distilabel.steps.tasks import TextGeneration

    from smolsynth.llm import LocalLLM
    from smolsynth.pipelines import RunnerStep, build_pipeline

    def signature(temperature):
        llm = LocalLLM("smolsynth/tiny", generation_kwargs={"temperature": temperature})
        pipeline = build_pipeline([{"instruction": "Hi"}], [TextGeneration(llm=llm)])
        step = next(pipeline.dag.get_step(n)["step"] for n in pipeline.dag
                    if isinstance(pipeline.dag.get_step(n)["step"], RunnerStep))
        return step.signature

    assert signature(0.7) == signature(0.7) != signature(1.0)
