"""The content-keyed cache: instant reruns, recompute on any change, resume after kill -9."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from conftest import OFFLINE_ENV, REPO

ROWS = [{"instruction": f"Describe place number {i}."} for i in range(8)]
# The tiny random model never ends by itself: every generation runs out of tokens, so the truncation gate is off here.


def _task(llm_factory, template=None, max_new_tokens=12):
    from distilabel.steps.tasks import TextGeneration

    kwargs = {"template": template} if template else {}
    return TextGeneration(llm=llm_factory(generation_kwargs={"max_new_tokens": max_new_tokens, "temperature": 1.0}),
                          **kwargs)


def test_unchanged_rerun_comes_from_the_cache_in_under_a_second(engine_home, tiny_llm_factory):
    from smolsynth.runner import run

    first = run(_task(tiny_llm_factory), ROWS, batch_size=4, progress=False, allow_truncated=True)
    assert first.report.cached_rows == 0
    started = time.perf_counter()
    # a new, equal task object
    again = run(_task(tiny_llm_factory), ROWS, batch_size=4, progress=False, allow_truncated=True)
    elapsed = time.perf_counter() - started
    assert again.report.cached_rows == len(ROWS)
    assert again.dataset.to_list() == first.dataset.to_list()
    assert again.report.output_tokens == first.report.output_tokens
    assert elapsed < 1.0, elapsed
    assert list((engine_home / "cache" / "runs").iterdir())  # under $SMOLSYNTH_HOME/cache


def test_changing_one_row_recomputes_its_batch_only(engine_home, tiny_llm_factory):
    from smolsynth.runner import run

    first = run(_task(tiny_llm_factory), ROWS, batch_size=4, progress=False, allow_truncated=True)
    changed = [dict(r) for r in ROWS]
    changed[5]["instruction"] = "Something else entirely."
    second = run(_task(tiny_llm_factory), changed, batch_size=4, progress=False, allow_truncated=True)
    assert second.report.cached_rows == 4  # the first batch is reused, the batch holding row 5 is recomputed
    assert second.dataset["instruction"][5] == "Something else entirely."
    assert second.dataset.to_list()[:4] == first.dataset.to_list()[:4]
    assert second.dataset["generation"][4:] != first.dataset["generation"][4:]


def test_changing_the_template_or_generation_settings_recomputes(engine_home, tiny_llm_factory):
    from smolsynth.runner import run

    run(_task(tiny_llm_factory), ROWS, progress=False, allow_truncated=True)
    templated = run(_task(tiny_llm_factory, template="Answer briefly: {{ instruction }}"), ROWS, progress=False,
                    allow_truncated=True)
    assert templated.report.cached_rows == 0
    longer = run(_task(tiny_llm_factory, max_new_tokens=13), ROWS, progress=False, allow_truncated=True)
    assert longer.report.cached_rows == 0


def test_cache_false_and_force(engine_home, tiny_llm_factory):
    from smolsynth.runner import run

    off = run(_task(tiny_llm_factory), ROWS, progress=False, cache=False, allow_truncated=True)
    assert not (engine_home / "cache").exists()
    run(_task(tiny_llm_factory), ROWS, progress=False, allow_truncated=True)
    forced = run(_task(tiny_llm_factory), ROWS, progress=False, force=True, allow_truncated=True)
    assert forced.report.cached_rows == 0
    assert forced.dataset.to_list() == off.dataset.to_list()  # seeded by content: the same result every time


RUN_SCRIPT = """
import sys
from smolsynth.llm import LocalLLM
from smolsynth.runner import run
from distilabel.steps.tasks import TextGeneration
ROWS = [{"instruction": f"Tell a story about number {i}."} for i in range(16)]
def task():
    return TextGeneration(llm=LocalLLM("smolsynth/tiny", generation_kwargs={"max_new_tokens": 24, "ignore_eos": True,
                                                                           "temperature": 1.0}))
if __name__ == "__main__":
    run(task(), ROWS, batch_size=2, progress=False, allow_truncated=True)
"""


def test_a_run_killed_mid_way_resumes_and_equals_an_uninterrupted_run(tmp_path, tiny_path, monkeypatch):
    from smolsynth.runner import run

    home = tmp_path / "home"
    home.mkdir()
    (home / "models").symlink_to(tiny_path.parent, target_is_directory=True)
    env = {**os.environ, **OFFLINE_ENV, "SMOLSYNTH_HOME": str(home)}
    proc = subprocess.Popen([sys.executable, "-c", RUN_SCRIPT], env=env, cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if len(list((home / "cache").glob("runs/*/batch-*.json"))) >= 2:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the run ended before it could be killed: " + proc.stderr.read().decode()[-2000:]
    os.kill(proc.pid, signal.SIGKILL)  # kill -9: no cleanup, no chance to finish the batch in flight
    proc.wait(timeout=30)
    done_before_kill = len(list((home / "cache").glob("runs/*/batch-*.json")))
    assert 2 <= done_before_kill < 8

    script: dict = {}
    exec(compile(RUN_SCRIPT, "<run-script>", "exec"), script)  # the same task and rows, in this process
    monkeypatch.setenv("SMOLSYNTH_HOME", str(home))
    resumed = run(script["task"](), script["ROWS"], batch_size=2, progress=False, allow_truncated=True)
    uninterrupted = run(script["task"](), script["ROWS"], batch_size=2, progress=False, cache=False,
                        allow_truncated=True)
    assert resumed.report.cached_rows == 2 * done_before_kill  # finished batches are read back, not redone
    assert resumed.dataset.to_list() == uninterrupted.dataset.to_list()
    assert len(resumed.dataset) == 16


def test_the_key_holds_the_smolsynth_version_and_the_weights_of_a_local_model(tiny_llm_factory, tmp_path):
    from distilabel.steps.tasks import TextGeneration

    import smolsynth
    from smolsynth.cache import task_config
    from smolsynth.llm import LocalLLM
    from smolsynth.models import build_tiny_model, weights_fingerprint

    config = task_config(_task(tiny_llm_factory))
    assert config["smolsynth"] == smolsynth.__version__
    assert config["weights"] == weights_fingerprint("smolsynth/tiny")
    folder = str(build_tiny_model(tmp_path / "m", seed=0))
    task = TextGeneration(llm=LocalLLM(folder))
    before = task_config(task)
    build_tiny_model(folder, seed=1)
    after = task_config(task)
    assert before["weights"] != after["weights"] and before["config"] == after["config"]
