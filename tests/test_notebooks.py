"""Every notebook runs, the way CI runs it: nbval over the learner notebooks (checks report "Not attempted", nothing
crashes) and over the solution notebooks in strict mode (a check that does not pass is an error), in fast mode on the
tiny offline model, each with an empty result cache (``engine_home``, as on a fresh CI machine). A solution with a
bug makes the run fail.

One notebook by hand, as CI does::

    SMOLSYNTH_FAST=1 SMOLSYNTH_MODEL=smolsynth/tiny HF_HUB_OFFLINE=1 SMOLSYNTH_STRICT=1 \\
        .venv/bin/python -m pytest --nbval-lax --nbval-current-env notebooks/solutions/00_setup.ipynb
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path


REPO = Path(__file__).resolve().parent.parent
LEARNER = sorted((REPO / "notebooks").glob("*.ipynb"))
SOLUTIONS = sorted((REPO / "notebooks" / "solutions").glob("*.ipynb"))
NOTEBOOK_ENV = {"SMOLSYNTH_FAST": "1", "SMOLSYNTH_MODEL": "smolsynth/tiny", "HF_HUB_OFFLINE": "1",
                "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
CELL_TIMEOUT_S = 300
FAST_BUDGET_S = 60  # the budget for notebook 00 in fast mode on 2 CPU cores


def nbval(paths: list[Path], *, strict: bool, timeout: float = 1200, model: str = "smolsynth/tiny",
          cell_timeout: float = CELL_TIMEOUT_S) -> subprocess.CompletedProcess:
    """Run nbval over ``paths`` in a fresh pytest process, in fast mode on ``model`` (strict when asked)."""
    env = {**os.environ, **NOTEBOOK_ENV, "SMOLSYNTH_MODEL": model, "SMOLSYNTH_STRICT": "1" if strict else "0"}
    env.pop("PYTEST_ADDOPTS", None)
    cmd = [sys.executable, "-m", "pytest", "--nbval-lax", "--nbval-current-env",
           f"--nbval-cell-timeout={cell_timeout}", "-p", "no:cacheprovider", "-o", "addopts=", "-q",
           *map(str, paths)]
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)


def _report(result: subprocess.CompletedProcess) -> str:
    return (result.stdout + result.stderr)[-6000:]


def test_there_are_notebooks_to_test() -> None:
    assert LEARNER and [p.name for p in LEARNER] == [p.name for p in SOLUTIONS]


def test_learner_notebooks_run_without_errors(engine_home: Path) -> None:
    result = nbval(LEARNER, strict=False)
    assert result.returncode == 0, _report(result)


def test_solution_notebooks_pass_their_checks_in_strict_mode(engine_home: Path) -> None:
    """Every solution notebook in strict mode, in order, in one course folder; then the funnel of the default course
    run, read back from the saved artifacts, accounts for every row of every saved dataset."""
    import datasets

    from smolsynth.course import data_path
    from smolsynth.funnel import course_funnel

    result = nbval(SOLUTIONS, strict=True)
    assert result.returncode == 0, _report(result)
    funnels = course_funnel()
    assert set(funnels) == {"sft", "dpo", "curated"}, funnels
    for name, funnel in funnels.items():
        rows = len(datasets.load_from_disk(str(data_path(name))))
        assert funnel.check(rows) == [], (name, funnel)
        assert funnel.rows_made == rows + len(funnel.dropped_rows), funnel
    curated = funnels["curated"]
    assert {s.notebook for s in curated.stages} >= {"07"} and len(curated.stages) >= 4, curated


def test_a_bug_in_a_solution_fails_the_run(tmp_path: Path, engine_home: Path) -> None:
    """Break the first exercise's solution (two instructions where three are asked): strict nbval must fail."""
    nb = json.loads((REPO / "notebooks" / "solutions" / "00_setup.ipynb").read_text())
    sources = ["".join(c["source"]) for c in nb["cells"]]
    (index,) = [i for i, s in enumerate(sources) if s.startswith("my_instructions = [")]
    nb["cells"][index]["source"] = sources[index].replace("my_result = generate(",
                                                          "my_instructions = my_instructions[:2]\n"
                                                          "my_result = generate(")
    broken = tmp_path / "00_setup.ipynb"
    broken.write_text(json.dumps(nb))
    result = nbval([broken], strict=True)
    assert result.returncode != 0, "strict nbval passed a broken solution:\n" + _report(result)
    assert "ExerciseFailed" in result.stdout and "Incorrect" in result.stdout, _report(result)


def test_notebook_00_untouched_reports_not_attempted_within_budget(tmp_path: Path, engine_home: Path) -> None:
    """Execute the learner notebook 00 in a real kernel: no error, each check says "Not attempted", under 60 s."""
    import nbclient
    import nbformat

    shutil.copy(REPO / "notebooks" / "00_setup.ipynb", tmp_path)
    nb = nbformat.read(tmp_path / "00_setup.ipynb", as_version=4)
    env_before = dict(os.environ)
    os.environ.update({**NOTEBOOK_ENV, "SMOLSYNTH_STRICT": "0"})
    try:
        started = time.perf_counter()
        nbclient.NotebookClient(nb, timeout=CELL_TIMEOUT_S, kernel_name="python3",
                                resources={"metadata": {"path": str(tmp_path)}}).execute()
        seconds = time.perf_counter() - started
    finally:
        os.environ.clear()
        os.environ.update(env_before)
    outputs = [(c.source, o) for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for _, o in outputs if o.output_type == "error"]
    checks = [o for src, o in outputs if src.endswith(".check()") and o.output_type == "display_data"]
    assert len(checks) == 2 and all("Not attempted" in o.data["text/plain"] for o in checks), checks
    assert all("data-status='not_attempted'" in o.data["text/html"] for o in checks)
    print(f"notebook 00 (learner, fast mode, kernel start included): {seconds:.1f} s")
    assert seconds < FAST_BUDGET_S, f"notebook 00 took {seconds:.1f} s in fast mode (budget {FAST_BUDGET_S} s)"
