"""Build the course notebooks from their sources, and everything else generated from the course manifest.

One source per notebook, ``notebooks/src/NN_name.py`` (jupytext "percent" format), holds the lesson text, the
exercises and their solutions. ``python tools/notebooks.py build`` (``make notebooks``) writes:

* ``notebooks/NN_name.ipynb``: the learner notebook (starter code + a ``check`` call for each exercise);
* ``notebooks/solutions/NN_name.ipynb``: the solution notebook (solution + the same ``check`` call);
* ``smolsynth/exercises/solution_code.py``: the solutions, so ``ex.q1.solution()`` shows what the source says;
* ``notebooks/constraints-colab.txt``: ``constraints.txt`` without the packages Colab manages (torch, its kernel);
* ``binder/requirements.txt``: the CPU torch wheel pinned to ``constraints.txt``'s version;
* the course map in ``README.md``, between ``<!-- course-map:start -->`` and ``<!-- course-map:end -->``.

``python tools/notebooks.py build --check`` (``make check-notebooks``) writes nothing and exits 1 listing the files
that differ from what the build would produce (CI runs it through the tests). This is a repository tool, not part of
the installed package: it builds the checkout it lives in (or ``--root DIR``) with that checkout's ``smolsynth``.

Conventions in a source (cell headers are jupytext's ``# %%`` lines)::

    # %% tags=["parameters"]                 plain values only; fast mode shrinks them (smolsynth.course.fast_mode)
    N_ROWS = 20

    # %% [markdown]                          the exercise text; must show the exercise's level (🐢, 🐕 or 🦁)
    # ### Exercise 1 🐢 ...

    # %% exercise="q1" tags=["starter"]      learner version: contains ____ (the learner replaces it)
    my_instructions = ____

    # %% exercise="q1" tags=["solution"]     solution version, right after its starter
    my_instructions = ["...", "...", "..."]

The build adds after each pair a cell ``ex.q1.check()`` (both notebooks) and, in the learner notebook, a cell with
the commented ``hint()`` / ``solution()`` calls. It also adds, at the top of each notebook, a header (title, badges,
level, hardware, time) and the Colab install cell. Output notebooks are normalized: python3 kernelspec, no outputs,
no execution counts, cell ids derived from the position, so a rebuild is byte-identical.

    >>> manifest = load_manifest()
    >>> manifest.notebooks[0].stem
    '00_setup'
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
MANIFEST = Path("notebooks/manifest.toml")
SOURCES = Path("notebooks/src")
SOLUTIONS_DIR = Path("notebooks/solutions")
SOLUTION_MODULE = Path("smolsynth/exercises/solution_code.py")
COLAB_CONSTRAINTS = Path("notebooks/constraints-colab.txt")
BINDER_REQUIREMENTS = Path("binder/requirements.txt")
README = Path("README.md")
MAP_START, MAP_END = "<!-- course-map:start -->", "<!-- course-map:end -->"

KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}

COLAB_MANAGED = re.compile(
    r"^(torch|torchvision|torchaudio|triton|nvidia-.*|cuda-.*|ipykernel|ipython|jupyter_client|jupyter_core|"
    r"jupyter_server|notebook|tornado|traitlets|pyzmq|ipywidgets|widgetsnbextension|jupyterlab_widgets|comm|debugpy|"
    r"matplotlib-inline|prompt_toolkit)$", re.IGNORECASE)
"""Packages Colab provides and manages itself: its CUDA-matched torch (ARCHITECTURE.md) and the kernel it talks to.
The Colab install never pins them, so pip keeps Colab's versions whenever they satisfy smolsynth's ranges."""

TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
BUILD_COMMAND = "python tools/notebooks.py build"
"""The command named in the header of every generated file."""


class BuildError(ValueError):
    """A source or the manifest breaks a convention; the message names the file and what to fix."""


# ------------------------------------------------------------------------------------------------------- manifest
_STEM = re.compile(r"\d{2}_\w+")


@dataclass(frozen=True)
class NotebookEntry:
    """One notebook of the course, as listed in ``notebooks/manifest.toml``."""

    stem: str
    """``NN_name``: the source is ``notebooks/src/NN_name.py``, the notebooks ``NN_name.ipynb``."""
    title: str
    level: str
    hardware: str
    minutes: int
    """Time to work through the notebook: reading, exercises and the runs (our estimate)."""
    summary: str
    exercises: str | None = None
    """The module of ``smolsynth/exercises`` that checks this notebook's exercises (``nb00``), if it has any."""
    cpu_minutes: int | None = None
    """Measured: the solution notebook at its default settings, on 2 CPU cores with the embedded SmolLM2-135M."""
    t4_minutes: int | None = None
    """Estimated (no GPU to measure on): the same on a Colab T4."""

    @property
    def time(self) -> str:
        """The time as the header and the course map show it."""
        runs = []
        if self.cpu_minutes is not None:
            runs.append(f"{self.cpu_minutes} min on 2 CPU cores, measured")
        if self.t4_minutes is not None:
            runs.append(f"~{self.t4_minutes} min on a Colab T4, estimated")
        return f"~{self.minutes} min" + (f"; the run alone: {', '.join(runs)}" if runs else "")

    def __post_init__(self) -> None:
        if not _STEM.fullmatch(self.stem):
            raise BuildError(f"{MANIFEST}: stem {self.stem!r} is not NN_name (two digits, an underscore, a name): "
                             "the header and the course map number the notebook from it.")

    @property
    def number(self) -> str:
        return self.stem.split("_", 1)[0]

    @property
    def source(self) -> Path:
        return SOURCES / f"{self.stem}.py"

    @property
    def learner(self) -> Path:
        return Path("notebooks") / f"{self.stem}.ipynb"

    @property
    def solution(self) -> Path:
        return SOLUTIONS_DIR / f"{self.stem}.ipynb"


@dataclass(frozen=True)
class Manifest:
    """The course manifest: where the repository lives and the notebooks in order."""

    repo: str
    branch: str
    notebooks: tuple[NotebookEntry, ...]

    def colab_url(self, path: Path) -> str:
        """Open ``path`` (a notebook, relative to the repository root) in Google Colab."""
        return f"https://colab.research.google.com/github/{self.repo}/blob/{self.branch}/{path.as_posix()}"

    def binder_url(self, path: Path) -> str:
        """Open ``path`` in JupyterLab on mybinder.org."""
        return f"https://mybinder.org/v2/gh/{self.repo}/{self.branch}?urlpath=lab/tree/{path.as_posix()}"

    def raw_url(self, path: Path) -> str:
        """Download ``path`` from the repository (what the Colab install cell does with the constraints)."""
        return f"https://raw.githubusercontent.com/{self.repo}/{self.branch}/{path.as_posix()}"

    def badges(self, path: Path) -> str:
        """Markdown for the Colab and Binder badges of ``path``."""
        return (f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({self.colab_url(path)}) "
                f"[![Launch Binder](https://mybinder.org/badge_logo.svg)]({self.binder_url(path)})")


def load_manifest(root: Path = REPO_ROOT) -> Manifest:
    """Read ``notebooks/manifest.toml`` under ``root``."""
    path = root / MANIFEST
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    try:
        entries = tuple(NotebookEntry(**entry) for entry in data["notebook"])
        manifest = Manifest(repo=data["repo"], branch=data["branch"], notebooks=entries)
    except (KeyError, TypeError) as err:
        raise BuildError(f"{path}: {err}: expected repo, branch and [[notebook]] tables with stem, title, level, "
                         "hardware, minutes, summary (and optionally exercises).") from err
    stems = [e.stem for e in entries]
    if len(set(stems)) != len(stems) or stems != sorted(stems):
        raise BuildError(f"{path}: notebook stems must be unique and in order, got {stems}.")
    return manifest


# ----------------------------------------------------------------------------------------------- notebook cells
def _markdown(source: str) -> dict[str, Any]:
    return {"cell_type": "markdown", "metadata": {}, "source": source}


def _code(source: str, tags: list[str] | None = None) -> dict[str, Any]:
    return {"cell_type": "code", "execution_count": None, "metadata": {"tags": tags} if tags else {},
            "outputs": [], "source": source}


def install_cell(manifest: Manifest) -> str:
    """The first code cell of every notebook: installs smolsynth on Colab, does nothing anywhere else."""
    constraints = manifest.raw_url(COLAB_CONSTRAINTS)
    package = f"smolsynth @ git+https://github.com/{manifest.repo}@{manifest.branch}"
    return (
        "# On Colab: install smolsynth with the course's pinned versions (Colab keeps its own torch).\n"
        "# Anywhere else smolsynth is already installed (see the README), so this cell does nothing.\n"
        "import importlib.util\n"
        "import subprocess\n"
        "import sys\n"
        "\n"
        'if "google.colab" in sys.modules:\n'
        f'    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-c", "{constraints}",\n'
        f'                    "{package}"], check=True)\n'
        'elif importlib.util.find_spec("smolsynth") is None:\n'
        '    print("smolsynth is not installed in this kernel: see the README, section set-up.")\n'
        "else:\n"
        '    print("Not on Colab: nothing to install, smolsynth is already here.")'
    )


def header_cell(manifest: Manifest, entry: NotebookEntry, levels: str, *, solution: bool) -> str:
    """The first cell: title, badges, level, hardware, time, summary (and, in solutions, a pointer back)."""
    path = entry.solution if solution else entry.learner
    lines = [f"# {entry.number} · {entry.title}" + (" (solutions)" if solution else ""), "",
             manifest.badges(path), ""]
    if solution:
        lines += [f"**Solution notebook**: every exercise is filled in. Try the [learner notebook](../{entry.stem}.ipynb)"
                  " first: you learn more from a near miss than from a copy.", ""]
    lines += ["| Level | Exercises | Hardware | Time |", "|---|---|---|---|",
              f"| {entry.level} | {levels or '-'} | {entry.hardware} | {entry.time} |", "", entry.summary]
    return "\n".join(lines)


def _levels(entry: NotebookEntry) -> str:
    if not entry.exercises:
        return ""
    from smolsynth.exercises import exercise_modules

    seen: list[str] = []
    for ex in exercise_modules()[entry.stem].EXERCISES:
        if ex.level.value not in seen:
            seen.append(ex.level.value)
    return " ".join(seen)


_LINK = re.compile(r"(\]\(|<img [^>]*src=[\"'])([^)\"'\s]+)")
_ABSOLUTE = re.compile(r"^([a-z][a-z0-9+.-]*:|#|/)", re.IGNORECASE)


def relink(markdown: str, prefix: str) -> str:
    """Prefix every relative link and image path in ``markdown`` (solution notebooks live one folder deeper).

    >>> relink("![a](../images/a.svg) [b](https://x.org) [c](#top)", "../")
    '![a](../../images/a.svg) [b](https://x.org) [c](#top)'
    """
    return _LINK.sub(lambda m: m.group(1) + (m.group(2) if _ABSOLUTE.match(m.group(2)) else prefix + m.group(2)),
                     markdown)


def _check_parameters(path: Path, source: str) -> None:
    try:
        tree = ast.parse(source)
    except SyntaxError as err:
        raise BuildError(f"{path}: the parameters cell does not parse: {err}") from err
    for node in tree.body:
        if not (isinstance(node, ast.Assign) and all(isinstance(t, ast.Name) for t in node.targets)):
            raise BuildError(f"{path}: the parameters cell may only assign plain values to names "
                             f"(line {node.lineno}).")
        try:
            ast.literal_eval(node.value)
        except ValueError as err:
            raise BuildError(f"{path}: parameter on line {node.lineno} is not a plain value (a number, string, "
                             "list, ...): fast mode and papermill-style overrides need literals.") from err


def render_notebooks(manifest: Manifest, entry: NotebookEntry, root: Path = REPO_ROOT) -> tuple[dict, dict, dict]:
    """Build ``(learner, solution, solutions_by_exercise)`` for one manifest entry from its source."""
    import jupytext

    path = root / entry.source
    if not path.exists():
        raise BuildError(f"{entry.source}: missing; the manifest lists {entry.stem!r}.")
    cells = jupytext.read(path, fmt="py:percent").cells
    exercises: dict[str, Any] = {}
    if entry.exercises:
        from smolsynth.exercises import exercise_modules

        module = exercise_modules().get(entry.stem)
        if module is None or module.__name__.rsplit(".", 1)[-1] != entry.exercises:
            raise BuildError(f"{MANIFEST}: {entry.stem} names exercises={entry.exercises!r}, but no module "
                             f"smolsynth/exercises/{entry.exercises}.py declares NOTEBOOK = {entry.stem!r}.")
        exercises = {ex.name: ex for ex in module.EXERCISES}
        if not any(c.cell_type == "code" and f"{entry.exercises} as ex" in c.source for c in cells):
            raise BuildError(f"{entry.source}: no cell imports the exercises as `ex` "
                             f"(from smolsynth.exercises import {entry.exercises} as ex).")

    levels = _levels(entry)
    learner = [_markdown(header_cell(manifest, entry, levels, solution=False)), _code(install_cell(manifest))]
    solution = [_markdown(header_cell(manifest, entry, levels, solution=True)), _code(install_cell(manifest))]
    solutions: dict[str, str] = {}
    pending: tuple[str, str] | None = None  # (exercise, starter source) waiting for its solution

    for index, cell in enumerate(cells):
        tags = list(cell.metadata.get("tags", []))
        name = cell.metadata.get("exercise")
        source = cell.source.strip("\n")
        if cell.cell_type == "markdown":
            if pending:
                raise BuildError(f"{entry.source}: the starter of {pending[0]} must be followed by its solution.")
            learner.append(_markdown(source))
            solution.append(_markdown(relink(source, "../")))
            continue
        if cell.cell_type != "code":
            raise BuildError(f"{entry.source}: cell {index} is a {cell.cell_type} cell; use markdown or code.")
        if "parameters" in tags:
            _check_parameters(entry.source, source)
            learner.append(_code(source, ["parameters"]))
            solution.append(_code(source, ["parameters"]))
        elif "starter" in tags:
            if name not in exercises:
                raise BuildError(f"{entry.source}: starter cell for exercise={name!r}, which "
                                 f"smolsynth.exercises.{entry.exercises} does not define.")
            if "____" not in source:
                raise BuildError(f"{entry.source}: the starter of {name} has no ____ for the learner to replace.")
            before = cells[index - 1] if index else None
            level = exercises[name].level.value
            if before is None or before.cell_type != "markdown" or level not in before.source:
                raise BuildError(f"{entry.source}: the markdown cell before the starter of {name} must state its "
                                 f"level {level} (the exercise's metadata says so).")
            pending = (name, source)
        elif "solution" in tags:
            if pending is None or pending[0] != name:
                raise BuildError(f"{entry.source}: solution cell for {name!r} without a starter cell right before.")
            if name in solutions:
                raise BuildError(f"{entry.source}: exercise {name} appears twice.")
            solutions[name] = source
            learner += [_code(pending[1]), _code(f"ex.{name}.check()"),
                        _code(f"# Stuck? Uncomment a line and run the cell: one hint per call, then the solution.\n"
                              f"# ex.{name}.hint()\n# ex.{name}.solution()")]
            solution += [_code(source), _code(f"ex.{name}.check()")]
            pending = None
        else:
            if tags or name:
                raise BuildError(f"{entry.source}: cell {index} has tags {tags} / exercise={name!r}; known tags are "
                                 "parameters, starter, solution.")
            if pending:
                raise BuildError(f"{entry.source}: the starter of {pending[0]} must be followed by its solution.")
            learner.append(_code(source))
            solution.append(_code(source))
    if pending:
        raise BuildError(f"{entry.source}: the starter of {pending[0]} has no solution cell.")
    missing = sorted(set(exercises) - set(solutions))
    if missing:
        raise BuildError(f"{entry.source}: exercises {missing} are defined in smolsynth.exercises."
                         f"{entry.exercises} but have no starter/solution cells.")
    return _notebook(learner), _notebook(solution), solutions


def _notebook(cells: list[dict]) -> dict:
    for index, cell in enumerate(cells):
        cell["id"] = f"cell-{index:03d}"
    return {"cells": cells, "metadata": {"kernelspec": dict(KERNELSPEC), "language_info": {"name": "python"}},
            "nbformat": 4, "nbformat_minor": 5}


def notebook_json(nb: dict) -> str:
    """Serialize a notebook the way the build writes it (validated, stable key order, trailing newline)."""
    import nbformat

    node = nbformat.from_dict(nb)
    nbformat.validate(node)
    return nbformat.writes(node, version=4) + "\n"


# -------------------------------------------------------------------------------------- other generated files
def solution_module(solutions: dict[str, dict[str, str]]) -> str:
    """The source of ``smolsynth/exercises/solution_code.py``."""
    lines = ['"""Worked solutions of the exercises, as written in notebooks/src: what ``ex.q1.solution()`` shows.',
             "", f"Generated by ``{BUILD_COMMAND}``: edit the notebook source, not this file.",
             '"""', "", "SOLUTIONS: dict[str, dict[str, str]] = {"]
    for notebook, by_name in solutions.items():
        lines.append(f"    {notebook!r}: {{")
        lines += [f"        {name!r}: {code!r}," for name, code in by_name.items()]
        lines.append("    },")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _pins(root: Path) -> list[tuple[str, str]]:
    pins = []
    for line in (root / "constraints.txt").read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            if not version:
                raise BuildError(f"constraints.txt: {line!r} is not an exact pin (name==version).")
            pins.append((name.strip(), version.strip()))
    return pins


def colab_constraints(root: Path = REPO_ROOT) -> str:
    """``constraints.txt`` minus the packages Colab manages (see :data:`COLAB_MANAGED`)."""
    kept = [f"{name}=={version}" for name, version in _pins(root) if not COLAB_MANAGED.match(name)]
    return (f"# Generated from constraints.txt by `{BUILD_COMMAND}`: do not edit.\n"
            "# The pins the Colab install cell uses. Left out: torch and the packages of Colab's own kernel, which\n"
            "# Colab matches to its CUDA and runtime (reinstalling them breaks the session).\n"
            + "\n".join(kept) + "\n")


def binder_requirements(root: Path = REPO_ROOT) -> str:
    """``binder/requirements.txt``: the CPU build of the pinned torch; ``binder/postBuild`` installs the rest."""
    torch = dict(_pins(root)).get("torch")
    if torch is None:
        raise BuildError("constraints.txt: no torch pin.")
    return (f"# Generated from constraints.txt by `{BUILD_COMMAND}`: do not edit.\n"
            "# Binder has no GPU and about 2 GB of memory: install the CPU build of torch (about 200 MB, versus\n"
            "# several GB for the CUDA build), at the version constraints.txt pins. binder/postBuild then installs\n"
            "# smolsynth with constraints.txt; torch stays, since 2.x+cpu satisfies the pin torch==2.x.\n"
            f"--extra-index-url {TORCH_CPU_INDEX}\n"
            f"torch=={torch.split('+')[0]}+cpu\n")


def course_map(manifest: Manifest) -> str:
    """The README course map (markdown table) generated from the manifest."""
    rows = ["| # | Notebook | You will | Level | Exercises | Hardware | Time | Open |",
            "|---|---|---|---|---|---|---|---|"]
    for e in manifest.notebooks:
        rows.append(f"| {e.number} | [{e.title}]({e.learner.as_posix()}) ([solutions]({e.solution.as_posix()})) | "
                    f"{e.summary} | {e.level} | {_levels(e) or '-'} | {e.hardware} | {e.time} | "
                    f"{manifest.badges(e.learner)} |")
    legend = ("Exercise levels: 🐢 the default path · 🐕 your own seed data or a variant technique · "
              "🦁 your own use case.")
    note = f"<!-- Generated from notebooks/manifest.toml by `{BUILD_COMMAND}`: edit the manifest. -->"
    return "\n".join([note, *rows, "", legend])


def readme_with_map(readme: str, manifest: Manifest) -> str:
    """``readme`` with the text between the course-map markers replaced by :func:`course_map`."""
    start, end = readme.find(MAP_START), readme.find(MAP_END)
    if start < 0 or end < start:
        raise BuildError(f"README.md: the markers {MAP_START} and {MAP_END} are missing or out of order.")
    return readme[:start + len(MAP_START)] + "\n" + course_map(manifest) + "\n" + readme[end:]


# ---------------------------------------------------------------------------------------------------- the build
def render_all(root: Path = REPO_ROOT) -> dict[Path, str]:
    """Every generated file (path relative to ``root`` -> content), computed in memory."""
    manifest = load_manifest(root)
    outputs: dict[Path, str] = {}
    solutions: dict[str, dict[str, str]] = {}
    for entry in manifest.notebooks:
        learner, solution, by_name = render_notebooks(manifest, entry, root)
        outputs[entry.learner] = notebook_json(learner)
        outputs[entry.solution] = notebook_json(solution)
        if by_name:
            solutions[entry.stem] = by_name
    outputs[SOLUTION_MODULE] = solution_module(solutions)
    outputs[COLAB_CONSTRAINTS] = colab_constraints(root)
    outputs[BINDER_REQUIREMENTS] = binder_requirements(root)
    outputs[README] = readme_with_map((root / README).read_text(encoding="utf-8"), manifest)
    return outputs


def _stale(root: Path) -> dict[Path, str]:
    """The generated files whose content on disk differs from what the build produces (or that are missing), with
    the content the build produces."""
    return {rel: content for rel, content in render_all(root).items()
            if not (root / rel).exists() or (root / rel).read_text(encoding="utf-8") != content}


def stale_files(root: Path = REPO_ROOT) -> list[Path]:
    """The generated files whose content on disk differs from what the build produces (or that are missing)."""
    return list(_stale(root))


def build(root: Path = REPO_ROOT) -> list[Path]:
    """Write every generated file that changed; return those written."""
    stale = _stale(root)
    for rel, content in stale.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(content, encoding="utf-8")
    return list(stale)


def main(argv: list[str] | None = None) -> int:
    """``python tools/notebooks.py build [--check] [--root DIR]``."""
    parser = argparse.ArgumentParser(prog="python tools/notebooks.py", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    cmd = sub.add_parser("build", help="build the notebooks and generated files from notebooks/src and the manifest")
    cmd.add_argument("--check", action="store_true", help="write nothing; exit 1 if any generated file is stale")
    cmd.add_argument("--root", type=Path, default=REPO_ROOT, help="repository root (default: this checkout)")
    args = parser.parse_args(argv)
    try:
        if args.check:
            stale = stale_files(args.root)
            if stale:
                print(f"Stale generated files (run `{BUILD_COMMAND}`):", file=sys.stderr)
                for rel in stale:
                    print(f"  {rel.as_posix()}", file=sys.stderr)
                return 1
            print("Notebooks and generated files are up to date.")
            return 0
        written = build(args.root)
        print("\n".join(f"wrote {rel.as_posix()}" for rel in written) or "Nothing to do: everything is up to date.")
        return 0
    except BuildError as err:
        print(f"build failed: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.path.insert(0, str(REPO_ROOT))  # this checkout's smolsynth (its exercises), not another installed copy
    sys.exit(main())
