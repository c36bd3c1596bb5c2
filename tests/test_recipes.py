"""Headless recipes (smolsynth.recipes, ``smolsynth run``): bad recipes are refused before anything runs; a run killed
with kill -9 and started again resumes (finished steps read back, finished batches not redone) and writes what an
uninterrupted run writes; the shipped recipes load. The real-model run of a shipped recipe is
tests/test_real_recipes.py."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from smolsynth.recipes import RECIPES, load_recipe, run_recipe

TEXTS = {"name": "texts", "seed": 0,
         "step": [{"kind": "texts", "rows": 12, "batch_size": 2, "max_new_tokens": 160, "allow_truncated": True}]}
COURSE = ["1.rows=4", "3.max_steps=1", "4.max_steps=1"]


def test_shipped_recipes_load_and_the_module_examples_run() -> None:
    import doctest

    import smolsynth.recipes

    names = sorted(p.stem for p in RECIPES.glob("*.toml"))
    assert names == ["classification", "course", "instructions"]
    for name in names:
        assert load_recipe(name)["step"]
    assert doctest.testmod(smolsynth.recipes).failed == 0


@pytest.mark.parametrize(("recipe", "changes", "message"), [
    ({"step": []}, [], "a recipe needs steps"),
    ({"step": [{"kind": "magic"}]}, [], "kind='magic' is not one of"),
    ({"step": [{"kind": "answers"}]}, [], "step 1: a 'answers' step reads the rows"),
    ({"step": [{"kind": "magpie"}, {"kind": "dpo"}]}, [], "put a 'preferences' step before it"),
    ({"step": [{"kind": "magpie", "rows": 4, "temprature": 1.0}]}, [], "unknown setting(s) ['temprature']"),
    ({"step": [{"kind": "magpie"}], "modle": "x"}, [], "unknown top-level key(s) ['modle']"),
    ("course", ["9.rows=4"], "the recipe has steps 1 to 4"),
    ("course", ["rows"], "write KEY=VALUE"),
    ("no-such-recipe", [], "no shipped recipe of that name"),
])
def test_bad_recipes_are_refused_with_the_fix(recipe, changes, message) -> None:
    with pytest.raises((ValueError, FileNotFoundError)) as err:
        load_recipe(recipe, changes=changes)
    assert message in str(err.value)


def test_set_changes_read_values_as_toml() -> None:
    recipe = load_recipe("course", changes=["seed=3", "1.rows=5", '2.aspect="helpfulness"'])
    assert recipe["seed"] == 3 and recipe["step"][0]["rows"] == 5 and recipe["step"][1]["aspect"] == "helpfulness"


def _cli(out: Path, home: Path, *recipe_args: str) -> subprocess.Popen:
    env = {**os.environ, "SMOLSYNTH_HOME": str(home), "SMOLSYNTH_MODEL": "smolsynth/tiny", "HF_HUB_OFFLINE": "1",
           "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "smolsynth.cli", "run", *recipe_args, "--out", str(out)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _home(tmp_path: Path, name: str, tiny_path: Path) -> Path:
    home = tmp_path / name
    home.mkdir()
    (home / "models").symlink_to(tiny_path.parent, target_is_directory=True)
    return home


def _outputs(out: Path) -> dict:
    return {p.name: p.read_text(encoding="utf-8") for p in sorted(out.iterdir())
            if p.suffix in (".jsonl", ".csv")}


def test_kill_9_in_the_middle_of_a_step_resumes_without_redoing_finished_batches(tmp_path, tiny_path) -> None:
    recipe = tmp_path / "texts.toml"
    recipe.write_text('name = "texts"\nseed = 0\n\n[[step]]\nkind = "texts"\nrows = 12\nbatch_size = 2\n'
                      'max_new_tokens = 160\nallow_truncated = true\n')
    whole = _cli(tmp_path / "whole", _home(tmp_path, "home-a", tiny_path), str(recipe))
    assert whole.wait(timeout=600) == 0, whole.stdout.read()

    out, home = tmp_path / "killed", _home(tmp_path, "home-b", tiny_path)
    first = _cli(out, home, str(recipe))
    progress = out / "1-texts.csv.progress"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:  # kill once two of the six batches are journalled
        if progress.exists() and len(progress.read_text().splitlines()) >= 3:
            break
        time.sleep(0.02)
    os.kill(first.pid, signal.SIGKILL)
    first.wait(timeout=30)
    assert first.returncode == -signal.SIGKILL
    assert not (out / "1-texts.jsonl").exists()  # the step had not finished
    second = _cli(out, home, str(recipe))
    assert second.wait(timeout=600) == 0, second.stdout.read()
    record = json.loads((out / "run.json").read_text())
    assert record["steps"][0]["report"]["cached_rows"] >= 4  # at least the two journalled batches came back
    assert _outputs(out) == _outputs(tmp_path / "whole")  # and the files equal the uninterrupted run's


def test_kill_9_between_steps_resumes_from_the_finished_ones(tmp_path, tiny_path) -> None:
    args = ["course", *[a for change in COURSE for a in ("--set", change)]]
    whole = _cli(tmp_path / "whole", _home(tmp_path, "home-a", tiny_path), *args)
    assert whole.wait(timeout=900) == 0, whole.stdout.read()

    out, home = tmp_path / "killed", _home(tmp_path, "home-b", tiny_path)
    first = _cli(out, home, *args)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not (out / "1-magpie.jsonl").exists():
        time.sleep(0.02)
    os.kill(first.pid, signal.SIGKILL)
    first.wait(timeout=30)
    second = _cli(out, home, *args)
    log = second.stdout.read()
    assert second.wait(timeout=900) == 0, log
    assert "step 1 (magpie): done before" in log
    assert _outputs(out) == _outputs(tmp_path / "whole")
    record = json.loads((out / "run.json").read_text())
    assert [s["kind"] for s in record["steps"]] == ["magpie", "preferences", "sft", "dpo"]
    assert (out / "4-dpo" / "config.json").exists() and "finished" in record


def test_a_changed_recipe_is_refused_in_a_folder_of_another_run(tmp_path, engine_home) -> None:
    run_recipe(TEXTS, tmp_path / "run", changes=["1.rows=2"], progress=False)
    with pytest.raises(ValueError, match="holds a run of another recipe"):
        run_recipe(TEXTS, tmp_path / "run", changes=["1.rows=4"], progress=False)
    assert (tmp_path / "run" / "recipe.toml").read_text().count("[[step]]") == 1
    assert load_recipe(tmp_path / "run" / "recipe.toml")["step"][0]["rows"] == 2  # what ran, readable again


def test_the_command_line_names_the_problem(tmp_path) -> None:
    done = subprocess.run([sys.executable, "-m", "smolsynth.cli", "run", "course", "--set", "2.temprature=1",
                           "--out", str(tmp_path / "x")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "unknown setting(s) ['temprature']" in done.stderr
    assert not (tmp_path / "x").exists()  # refused before anything ran


def test_the_estimate_extrapolates_a_pilot_and_keeps_nothing_of_it(tmp_path, engine_home) -> None:
    from smolsynth.recipes import PILOT_ROWS, estimate_recipe

    estimate = estimate_recipe("course", changes=["1.rows=60", "3.max_steps=6", "4.max_steps=6"])
    names = [s["step"] for s in estimate.steps]
    assert names[0] == "load the model" and names[1] == "magpie" and len(names) == 5
    assert estimate.pilot_rows == PILOT_ROWS and estimate.steps[1]["rows_in"] == 60
    assert all(s["minutes"] >= 0 for s in estimate.steps) and estimate.minutes > 0 and estimate.tokens > 0
    assert estimate.steps[2]["rows_in"] == estimate.steps[1]["rows_out"]  # rows flow through the keep rates
    assert 0 < estimate.peak_memory_gb < 64
    text = str(estimate)
    assert "about" in text and "Colab T4" in text and "not measured" in text

    done = subprocess.run([sys.executable, "-m", "smolsynth.cli", "run", "course", "--estimate", "--out",
                           str(tmp_path / "never"), "--set", "1.rows=60"], capture_output=True, text=True,
                          timeout=600, env={**os.environ, "SMOLSYNTH_MODEL": "smolsynth/tiny"})
    assert done.returncode == 0 and "Estimate for course" in done.stdout, done.stderr[-2000:]
    assert not (tmp_path / "never").exists()  # an estimate runs nothing of the recipe itself


def test_training_steps_take_trls_config_fields_and_suggest_a_misspelt_one() -> None:
    recipe = load_recipe("course", changes=["3.learning_rate=5e-4", "4.beta=0.2"])
    assert recipe["step"][2]["learning_rate"] == 5e-4 and recipe["step"][3]["beta"] == 0.2
    with pytest.raises(ValueError, match=r"unknown setting\(s\) \['learnig_rate'\]; did you mean learning_rate\?"):
        load_recipe("course", changes=["3.learnig_rate=5e-4"])


def _weights(folder: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(folder / "model.safetensors"))


def test_kill_9_in_the_middle_of_training_resumes_from_its_checkpoint(tmp_path, tiny_path) -> None:
    import torch

    args = ["course", *[a for change in ("1.rows=4", "3.max_steps=6", "3.save_steps=2", "4.max_steps=1")
                        for a in ("--set", change)]]
    whole = _cli(tmp_path / "whole", _home(tmp_path, "home-a", tiny_path), *args)
    assert whole.wait(timeout=900) == 0, whole.stdout.read()

    out, home = tmp_path / "killed", _home(tmp_path, "home-b", tiny_path)
    first = _cli(out, home, *args)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:  # kill once SFT has saved a checkpoint (written last: its trainer state)
        if any((c / "trainer_state.json").exists() for c in (out / "3-sft").glob("checkpoint-*")):
            break
        time.sleep(0.02)
    os.kill(first.pid, signal.SIGKILL)
    first.wait(timeout=30)
    assert first.returncode == -signal.SIGKILL and not (out / "3-sft" / "model.safetensors").exists()
    second = _cli(out, home, *args)
    log = second.stdout.read()
    assert second.wait(timeout=900) == 0, log
    record = json.loads((out / "run.json").read_text())
    sft = next(s for s in record["steps"] if s["kind"] == "sft")
    assert sft["metrics"]["resumed_from"].startswith("checkpoint-") and sft["metrics"]["train_steps"] == 6
    assert not list((out / "3-sft").glob("checkpoint-*"))  # deleted once the model was saved
    for step in ("3-sft", "4-dpo"):  # the steps after the checkpoint were the uninterrupted run's steps
        resumed, uninterrupted = _weights(out / step), _weights(tmp_path / "whole" / step)
        assert resumed.keys() == uninterrupted.keys()
        assert all(torch.equal(resumed[k], uninterrupted[k]) for k in resumed), step
    assert _outputs(out) == _outputs(tmp_path / "whole")
