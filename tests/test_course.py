"""The course build (sources -> notebooks and generated files), the manifest, fast mode, Colab and Binder set-up."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import types
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from smolsynth import course
from smolsynth.exercises import exercises_of

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tools"))  # the course build is a repository tool, not part of the package
import notebooks  # noqa: E402  (tools/notebooks.py)

BUILD = [sys.executable, str(REPO / "tools" / "notebooks.py"), "build"]
MANIFEST = notebooks.load_manifest(REPO)
ENTRY = MANIFEST.notebooks[0]


def _built_notebooks() -> list[Path]:
    return [REPO / p for e in MANIFEST.notebooks for p in (e.learner, e.solution)]


# ------------------------------------------------------------------------------------------------ build is in sync
def test_committed_files_are_what_the_build_produces() -> None:
    result = subprocess.run([*BUILD, "--check"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"run `{notebooks.BUILD_COMMAND}`:\n{result.stderr}"


def test_build_is_deterministic() -> None:
    assert notebooks.render_all(REPO) == notebooks.render_all(REPO)


@pytest.fixture()
def course_copy(tmp_path: Path) -> Path:
    """A copy of everything the build reads and writes, to break on purpose."""
    for rel in ("notebooks", "binder"):
        shutil.copytree(REPO / rel, tmp_path / rel)
    for rel in ("constraints.txt", "README.md"):
        shutil.copy(REPO / rel, tmp_path / rel)
    (tmp_path / "smolsynth" / "exercises").mkdir(parents=True)
    shutil.copy(REPO / notebooks.SOLUTION_MODULE, tmp_path / notebooks.SOLUTION_MODULE)
    return tmp_path


def test_check_lists_a_stale_notebook_and_build_fixes_it(course_copy: Path) -> None:
    learner = course_copy / ENTRY.learner
    nb = json.loads(learner.read_text())
    nb["cells"][3]["outputs"] = [{"output_type": "stream", "name": "stdout", "text": ["hello\n"]}]
    learner.write_text(json.dumps(nb))
    check = [*BUILD, "--check", "--root", str(course_copy)]
    stale = subprocess.run(check, capture_output=True, text=True, timeout=120)
    assert stale.returncode == 1 and ENTRY.learner.as_posix() in stale.stderr
    assert ENTRY.solution.as_posix() not in stale.stderr
    assert notebooks.build(course_copy) == [ENTRY.learner]
    assert subprocess.run(check, capture_output=True, text=True, timeout=120).returncode == 0


def test_readme_outside_the_markers_is_untouched(course_copy: Path) -> None:
    readme = course_copy / "README.md"
    readme.write_text("Intro text.\n\n<!-- course-map:start -->\nold map\n<!-- course-map:end -->\n\nOutro.\n")
    notebooks.build(course_copy)
    text = readme.read_text()
    assert text.startswith("Intro text.\n\n<!-- course-map:start -->\n") and text.endswith("-->\n\nOutro.\n")
    assert "old map" not in text and ENTRY.title in text
    readme.write_text("No markers here.\n")
    with pytest.raises(notebooks.BuildError, match="markers"):
        notebooks.render_all(course_copy)


@pytest.mark.parametrize(("old", "new", "error"), [
    ('my_task = ____  # a TextGeneration task with a system prompt\nmy_task_result = ____',
     'my_task = None\nmy_task_result = None', "no ____"),
    ('# %% exercise="q1" tags=["starter"]', '# %% exercise="q7" tags=["starter"]', "does not define"),
    ('# ### Exercise 1 🐢', '# ### Exercise 1', "must state its level 🐢"),
    ('# %% exercise="q2" tags=["solution"]', '# %% exercise="q2" tags=["solutoin"]', "known tags"),
    ('TEMPERATURE = 0.7', 'TEMPERATURE = float("0.7")', "not a plain value"),
    ('from smolsynth.exercises import ____, nb00 as ex', 'from smolsynth.exercises import ____, nb00', "as `ex`"),
])
def test_broken_sources_are_refused_with_a_reason(course_copy: Path, old: str, new: str, error: str) -> None:
    source = course_copy / ENTRY.source
    text = source.read_text()
    assert old in text, "the test's anchor is gone from the source: update the test"
    source.write_text(text.replace(old, new, 1))
    with pytest.raises(notebooks.BuildError, match=error):
        notebooks.render_all(course_copy)


def test_build_cli_reports_a_broken_source(course_copy: Path) -> None:
    source = course_copy / ENTRY.source
    source.write_text(source.read_text().replace('# ### Exercise 1 🐢', '# ### Exercise 1'))
    result = subprocess.run([*BUILD, "--root", str(course_copy)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "build failed" in result.stderr and "level" in result.stderr


# ------------------------------------------------------------------------------------------ the built notebooks
@pytest.mark.parametrize("path", _built_notebooks(), ids=lambda p: str(p.relative_to(REPO)))
def test_committed_notebooks_are_clean(path: Path) -> None:
    nb = json.loads(path.read_text())
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    assert set(nb["metadata"]) == {"kernelspec", "language_info"}, "no Colab/widget/jupytext metadata"
    ids = [c["id"] for c in nb["cells"]]
    assert len(set(ids)) == len(ids)
    for cell in nb["cells"]:
        assert set(cell["metadata"]) <= {"tags"}
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None


def _sources(path: Path) -> list[str]:
    return ["".join(c["source"]) for c in json.loads(path.read_text())["cells"]]


def test_learner_and_solution_versions_differ_only_where_they_should() -> None:
    learner, solution = _sources(REPO / ENTRY.learner), _sources(REPO / ENTRY.solution)
    solutions = notebooks.render_notebooks(MANIFEST, ENTRY, REPO)[2]
    first_code = [s for s in learner if "google.colab" in s]
    assert learner.index(first_code[0]) == 1, "the install cell is the first code cell"
    for ex in exercises_of(ENTRY.stem):
        assert f"ex.{ex.name}.check()" in learner and f"ex.{ex.name}.check()" in solution
        assert solutions[ex.name] in solution and solutions[ex.name] not in learner
        assert any(f"# ex.{ex.name}.hint()" in s for s in learner)
        assert any("____" in s and ex.variables[0] in s for s in learner)
        assert any(ex.level.value in s and ex.title in s for s in learner), "the level is shown in the notebook"
    assert any("../../images/" in s for s in solution) and not any("../../images/" in s for s in learner)


def test_install_cell_installs_on_colab_only(monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    """Colab cannot run here: simulate its module and record the pip command instead of running it."""
    cell = notebooks.install_cell(MANIFEST)
    calls: list[list[str]] = []
    monkeypatch.setattr(subprocess, "run", lambda args, **kw: calls.append(args))
    exec(cell, {})
    assert calls == [] and "nothing to install" in capsys.readouterr().out
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    exec(cell, {})
    (args,) = calls
    assert args[1:4] == ["-m", "pip", "install"]
    constraints = args[args.index("-c") + 1]
    assert constraints == MANIFEST.raw_url(notebooks.COLAB_CONSTRAINTS)
    assert (REPO / notebooks.COLAB_CONSTRAINTS).exists(), "the URL's path exists in the repository"
    assert args[-1] == f"smolsynth @ git+https://github.com/{MANIFEST.repo}@{MANIFEST.branch}"
    assert not any(a.startswith("torch") for a in args)


# ---------------------------------------------------------------------------------------------- Colab and Binder
def _pins(text: str) -> dict[str, str]:
    return dict(line.split("==", 1) for line in text.splitlines() if line and not line.startswith(("#", "-")))


def test_colab_constraints_pin_everything_but_what_colab_manages() -> None:
    all_pins = _pins((REPO / "constraints.txt").read_text())
    colab = _pins((REPO / notebooks.COLAB_CONSTRAINTS).read_text())
    assert "torch" not in colab and "triton" not in colab and "ipykernel" not in colab and "tornado" not in colab
    for name in ("distilabel", "transformers", "trl", "datasets"):
        assert colab[name] == all_pins[name]
    assert set(colab) <= set(all_pins)


def test_binder_environment() -> None:
    torch = _pins((REPO / "constraints.txt").read_text())["torch"]
    requirements = (REPO / "binder" / "requirements.txt").read_text()
    assert f"torch=={torch.split('+')[0]}+cpu" in requirements.splitlines()
    assert f"--extra-index-url {notebooks.TORCH_CPU_INDEX}" in requirements.splitlines()
    assert (REPO / "binder" / "runtime.txt").read_text().strip() == "python-3.11"
    post_build = REPO / "binder" / "postBuild"
    assert post_build.stat().st_mode & 0o111, "postBuild must be executable"
    assert "-c constraints.txt -e ." in post_build.read_text()


def test_binder_profile_is_the_small_cpu_model() -> None:
    from smolsynth.hardware import SMALL_MODEL, Hardware, choose_profile

    binder = choose_profile(Hardware(device="cpu", platform="binder", ram_gb=2.0))
    assert binder.model == SMALL_MODEL and binder.dtype == "float32"


def test_manifest_badges_point_at_committed_notebooks() -> None:
    for entry in MANIFEST.notebooks:
        assert (REPO / entry.learner).exists() and (REPO / entry.solution).exists() and (REPO / entry.source).exists()
        assert MANIFEST.colab_url(entry.learner).endswith(f"/blob/{MANIFEST.branch}/{entry.learner.as_posix()}")
        assert MANIFEST.binder_url(entry.learner).endswith(f"?urlpath=lab/tree/{entry.learner.as_posix()}")
    readme = (REPO / "README.md").read_text()
    assert MANIFEST.colab_url(ENTRY.learner) in readme and MANIFEST.binder_url(ENTRY.learner) in readme


@pytest.mark.parametrize("name", ["pipeline.svg", "synthetic-data-taxonomy.svg"])
def test_images_are_valid_svg_with_a_title(name: str) -> None:
    root = ET.parse(REPO / "images" / name).getroot()
    ns = "{http://www.w3.org/2000/svg}"
    assert root.tag == f"{ns}svg" and root.get("viewBox")
    assert root.find(f"{ns}title") is not None and root.find(f"{ns}desc") is not None, "accessible title and desc"
    assert any(name in s for s in _sources(REPO / ENTRY.learner)), f"notebook 00 shows {name}"


# -------------------------------------------------------------------------------------------------- fast mode
def test_fast_mode_shrinks_only_in_fast_mode(capsys: pytest.CaptureFixture[str]) -> None:
    params = {"N_ROWS": 100, "MAX_STEPS": 50}
    assert course.fast_mode(params, N_ROWS=4, environ={}) is False and params == {"N_ROWS": 100, "MAX_STEPS": 50}
    assert "Full run" in capsys.readouterr().out
    assert course.fast_mode(params, N_ROWS=4, environ={"SMOLSYNTH_FAST": "1"}) is True
    assert params == {"N_ROWS": 4, "MAX_STEPS": 50} and "N_ROWS 100 -> 4" in capsys.readouterr().out
    with pytest.raises(NameError, match="N_ROW"):
        course.fast_mode(params, N_ROW=4, environ={"SMOLSYNTH_FAST": "1"})


def test_fast_mode_keeps_token_budgets_on_a_real_model(capsys: pytest.CaptureFixture[str]) -> None:
    fast = {"SMOLSYNTH_FAST": "1"}
    params = {"N_ROWS": 100, "MAX_NEW_TOKENS": 256}
    course.fast_mode(params, N_ROWS=4, tiny_model={"MAX_NEW_TOKENS": 16}, environ={**fast, "SMOLSYNTH_MODEL":
                                                                                   "smolsynth/tiny"})
    assert params == {"N_ROWS": 4, "MAX_NEW_TOKENS": 16}
    params = {"N_ROWS": 100, "MAX_NEW_TOKENS": 256}
    course.fast_mode(params, N_ROWS=4, tiny_model={"MAX_NEW_TOKENS": 16}, model="smolsynth/smollm2-135m",
                     environ=fast)
    assert params == {"N_ROWS": 4, "MAX_NEW_TOKENS": 256}
    assert "keeps its token budgets (MAX_NEW_TOKENS 256)" in capsys.readouterr().out
    with pytest.raises(NameError, match="MAX_TOKENS"):
        course.fast_mode(params, tiny_model={"MAX_TOKENS": 16}, model="smolsynth/tiny", environ=fast)


def test_env_names_live_in_one_place() -> None:
    assert (course.FAST_ENV, course.STRICT_ENV, course.MODEL_ENV) == ("SMOLSYNTH_FAST", "SMOLSYNTH_STRICT",
                                                                      "SMOLSYNTH_MODEL")
    assert course.is_strict({"SMOLSYNTH_STRICT": "yes"}) and not course.is_strict({"SMOLSYNTH_STRICT": "0"})


def test_describe_setup_reports_profile_and_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMOLSYNTH_MODEL", "smolsynth/tiny")
    report = course.describe_setup()
    assert report.model == "smolsynth/tiny" and report.model_source == "from SMOLSYNTH_MODEL"
    assert report.reason and report.reason in str(report) and "<table" in report._repr_html_()


@pytest.mark.parametrize("module", ["smolsynth.course", "notebooks", "smolsynth.exercises",
                                    "smolsynth.exercises.core", "smolsynth.exercises.nb00", "smolsynth.distillation",
                                    "smolsynth.evaluation", "smolsynth.training", "smolsynth.decoding"])
def test_docstring_examples_run(module: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import doctest
    import importlib

    monkeypatch.setenv("SMOLSYNTH_MODEL", "smolsynth/tiny")
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0
