"""What a course notebook asks of the package at run time: fast mode, strict checks, and "where am I running?".

Three environment variables steer every notebook (all are defined in :mod:`smolsynth.settings`):

``SMOLSYNTH_MODEL``
    which model every call uses (``smolsynth/tiny`` is the tiny offline model CI runs on); see :mod:`smolsynth.models`.
``SMOLSYNTH_FAST``
    fast mode: the notebook's parameters (rows, training steps; token budgets on the tiny model only) shrink for a
    quick run: seconds on the tiny model, minutes on a real one.
``SMOLSYNTH_STRICT``
    strict checks: an exercise that is not attempted or incorrect raises instead of only saying so (CI runs the
    solution notebooks this way, so a solution that stops passing fails the build).

Notebooks hand their results to later notebooks through well-known folders, :func:`data_path`: notebook 01 saves its
SFT dataset to ``data_path("sft")``, notebook 02 its preference pairs to ``data_path("dpo")`` (both with
:func:`smolsynth.handoff.save`, which records the model that made them), notebook 03 its SFT checkpoint to
``data_path("sft-model")``, notebook 04 its DPO checkpoint to ``data_path("dpo-model")``. :mod:`smolsynth.handoff`
loads them, or makes a small substitute on the spot when a notebook is opened on its own. The folders live in
``<SMOLSYNTH_HOME>/course`` unless ``SMOLSYNTH_COURSE_HOME`` says otherwise; on Colab, where every notebook gets a
fresh runtime, :func:`use_drive` points them at Google Drive so that they outlive it.

A notebook keeps its tunable values in a *parameters* cell of plain assignments, then lets :func:`fast_mode`
shrink them when fast mode is on::

    >>> namespace = {"N_ROWS": 100, "MAX_NEW_TOKENS": 256}
    >>> fast_mode(namespace, N_ROWS=4, tiny_model={"MAX_NEW_TOKENS": 16}, model="smolsynth/tiny",
    ...           environ={"SMOLSYNTH_FAST": "1"}, quiet=True)
    True
    >>> namespace
    {'N_ROWS': 4, 'MAX_NEW_TOKENS': 16}

(``tiny_model`` values change only on the tiny model: a real model keeps its token budgets, see :func:`fast_mode`.)

This module imports nothing heavy (no torch, no distilabel): it is safe in the first cells of a notebook.
"""

from __future__ import annotations

import html
import os
from pathlib import Path
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

# The environment variables are defined in smolsynth.settings; re-exported here, notebooks call course.is_fast() etc.
from smolsynth.settings import (COURSE_HOME_ENV, FAST_ENV, MODEL_ENV, STRICT_ENV, course_home, env_flag, is_fast,
                                is_strict)

__all__ = ["COURSE_DATA", "COURSE_HOME_ENV", "FAST_ENV", "MODEL_ENV", "STRICT_ENV", "SetupReport", "data_path",
           "describe_setup", "env_flag", "fast_mode", "is_fast", "is_strict", "use_drive"]

COURSE_DATA: dict[str, str] = {
    "sft": "notebook 01's SFT dataset (a `messages` column), saved with handoff.save (its record included)",
    "dpo": "notebook 02's preference pairs (prompt/chosen/rejected), saved with handoff.save (its record included)",
    "curated": "notebook 07's curated SFT dataset (deduplicated, decontaminated, Deita-selected), with the funnel of "
               "every row notebooks 01 and 07 dropped",
    "sft-model": "notebook 03's SFT checkpoint (a plain transformers folder)",
    "dpo-model": "notebook 04's DPO checkpoint (a plain transformers folder)",
    "classification": "notebook 05's labelled texts (texts.csv, appended batch by batch, with its progress files)",
    "classifier": "notebook 05's fine-tuned text classifier (a plain transformers folder)",
    "topics": "notebook 06's tagged runs (RunDataset folders: questions/ with its review.json, tool_calls/ validated "
              "against their schema)",
    "beyond": "notebook 08's recipe and run folders (rows, run.json, summary.md)",
    "runs": "scratch folder for the exercises' own training runs",
    "uploads": "files uploaded with handoff.upload, and the .zip hand-offs unpacked from a source=",
}
"""The names :func:`data_path` knows, and what each folder holds. Add a line here for a new hand-off."""


def data_path(name: str) -> Path:
    """The folder where the course keeps ``name`` (see :data:`COURSE_DATA`): ``<SMOLSYNTH_HOME>/course/<name>``, or
    ``<SMOLSYNTH_COURSE_HOME>/<name>`` when that is set (:func:`use_drive` sets it on Colab).

    ``SMOLSYNTH_HOME`` defaults to ``~/.cache/smolsynth``. The folder is not created (``save_to_disk`` and
    ``save_pretrained`` create it); an unknown name raises, so a typo cannot send a notebook looking in the wrong place.

    >>> data_path("sft").parts[-2:]
    ('course', 'sft')
    """
    if name not in COURSE_DATA:
        raise ValueError(f"data_path({name!r}): unknown name; the course's hand-off folders are "
                         f"{', '.join(map(repr, COURSE_DATA))} (add a new one to smolsynth.course.COURSE_DATA).")
    return course_home() / name


DRIVE_ROOT = Path("/content/drive")
"""Where :func:`use_drive` mounts Google Drive on Colab."""


def use_drive(folder: str = "smolsynth") -> Path:
    """On Colab, keep the course's hand-off folders on your Google Drive: returns the new folder,
    ``/content/drive/MyDrive/<folder>/course``.

    Every Colab notebook gets a fresh runtime, so what notebook 01 saved locally is gone in notebook 03. Call this
    at the top of each notebook (Colab asks you to allow access to your Drive; nothing is mounted unless you call it)
    and :func:`data_path` points into Drive for the rest of the session (it sets ``SMOLSYNTH_COURSE_HOME``). The model
    cache stays on the runtime's disk. Outside Colab it raises RuntimeError: a local folder already persists.
    """
    from smolsynth.arguments import check_text

    folder = check_text("folder", folder).strip().strip("/")
    if not folder or ".." in Path(folder).parts:
        raise ValueError(f"folder={folder!r}: pass a folder name inside your Drive, e.g. folder='smolsynth'.")
    try:
        from google.colab import drive  # type: ignore[import-not-found]
    except ImportError:
        raise RuntimeError(
            "use_drive() is for Google Colab, where each notebook gets a fresh runtime and the course's hand-off "
            f"folders would be lost between notebooks. Here they already persist on this machine ({course_home()}); "
            f"to move them elsewhere, set {COURSE_HOME_ENV}.") from None
    drive.mount(str(DRIVE_ROOT))
    home = DRIVE_ROOT / "MyDrive" / folder / "course"
    home.mkdir(parents=True, exist_ok=True)
    os.environ[COURSE_HOME_ENV] = str(home)
    print(f"The course's hand-off folders are now in your Google Drive: {home}")
    return home


def fast_mode(namespace: MutableMapping[str, Any], *, tiny_model: Mapping[str, Any] | None = None,
              model: str | None = None, environ: Mapping[str, str] | None = None, quiet: bool = False,
              **small_values: Any) -> bool:
    """In fast mode, replace the parameters named in ``small_values`` inside ``namespace``; say what changed.

    Call it right after the parameters cell with ``globals()``; outside fast mode nothing changes. Every name must
    already exist in ``namespace`` (a typo would otherwise create a parameter nobody reads). Returns whether fast
    mode is on.

    ``tiny_model`` holds values that change only when the course model (``model``, else
    :func:`smolsynth.models.resolve_model`) is ``smolsynth/tiny``: token budgets above all. The tiny model writes
    noise, so a shorter answer only saves time; a real model needs its budget to finish an answer, and with a budget
    cut to 16 tokens every answer would run out, be dropped as ``truncated``, and leave nothing to learn from. So on a
    real model fast mode makes fewer rows, not shorter ones.

    >>> params = {"N_ROWS": 100, "MAX_NEW_TOKENS": 256}
    >>> fast_mode(params, N_ROWS=4, tiny_model={"MAX_NEW_TOKENS": 16}, model="smolsynth/smollm2-135m",
    ...           environ={"SMOLSYNTH_FAST": "1"}, quiet=True), params
    (True, {'N_ROWS': 4, 'MAX_NEW_TOKENS': 256})

    >>> params = {"N_ROWS": 100}
    >>> fast_mode(params, N_ROWS=4, environ={}, quiet=True), params
    (False, {'N_ROWS': 100})
    >>> fast_mode(params, N_ROWS_TYPO=4, environ={}, quiet=True)
    Traceback (most recent call last):
    ...
    NameError: fast_mode() got N_ROWS_TYPO, which the parameters cell does not define (it defines: N_ROWS).
    """
    tiny_model = dict(tiny_model or {})
    unknown = [name for name in [*small_values, *tiny_model] if name not in namespace]
    if unknown:
        defined = ", ".join(sorted(k for k in namespace if k.isupper())) or "nothing"
        raise NameError(f"fast_mode() got {', '.join(unknown)}, which the parameters cell does not define "
                       f"(it defines: {defined}).")
    on = is_fast(environ)
    kept = ""
    if on and tiny_model:
        from smolsynth.models import is_tiny, resolve_model

        if model is None and environ is not None and environ.get(MODEL_ENV):
            model = environ[MODEL_ENV]
        if is_tiny(resolve_model(model)):
            small_values = {**small_values, **tiny_model}
        elif any(k not in small_values for k in tiny_model):
            kept = " A real model keeps its token budgets (" + ", ".join(
                f"{k} {namespace[k]!r}" for k in tiny_model if k not in small_values) + ")."
    if on:
        changes = [f"{name} {namespace[name]!r} -> {value!r}" for name, value in small_values.items()]
        namespace.update(small_values)
        if not quiet:
            print(f"Fast mode ({FAST_ENV}=1): " + ", ".join(changes) + "." + kept)
    elif not quiet:
        print(f"Full run: the parameters above are used as written (set {FAST_ENV}=1 for a quick test run).")
    return on


@dataclass(frozen=True)
class SetupReport:
    """Where this notebook runs and what smolsynth decided for it; renders as a small table in a notebook."""

    platform: str
    device: str
    gpu: str | None
    profile: str
    dtype: str
    model: str
    model_source: str
    reason: str
    fast: bool

    def rows(self) -> list[tuple[str, str]]:
        """The report as (label, value) pairs, in display order."""
        where = {"colab": "Google Colab", "binder": "Binder", "local": "your own machine (local Jupyter)"}
        return [
            ("Running on", where.get(self.platform, self.platform)),
            ("Device", self.device + (f" ({self.gpu})" if self.gpu else "")),
            ("Profile", f"{self.profile}: {self.dtype}"),
            ("Why", self.reason),
            ("Model", f"{self.model} ({self.model_source})"),
            ("Fast mode", "on: parameters shrunk for a quick run" if self.fast else "off"),
        ]

    def __str__(self) -> str:
        width = max(len(label) for label, _ in self.rows())
        return "\n".join(f"{label:<{width}}  {value}" for label, value in self.rows())

    def _repr_html_(self) -> str:
        body = "".join(f"<tr><th style='text-align:left;padding-right:1em'>{html.escape(label)}</th>"
                       f"<td style='text-align:left'>{html.escape(value)}</td></tr>" for label, value in self.rows())
        return f"<table class='smolsynth-setup'>{body}</table>"


def describe_setup(model: str | None = None) -> SetupReport:
    """Detect this machine (imports torch, about a second) and report the profile and model smolsynth will use.

    >>> report = describe_setup("smolsynth/tiny")
    >>> report.model, report.model_source
    ('smolsynth/tiny', 'passed as model=')
    """
    from smolsynth.hardware import current_profile
    from smolsynth.models import resolve_model

    profile = current_profile()
    hw = profile.hardware
    if model:
        source = "passed as model="
    elif os.environ.get(MODEL_ENV):
        source = f"from {MODEL_ENV}"
    else:
        source = "the profile's default"
    return SetupReport(platform=hw.platform, device=hw.device, gpu=hw.gpu_name, profile=profile.name,
                       dtype=profile.dtype, model=resolve_model(model, profile=profile), model_source=source,
                       reason=profile.reason, fast=is_fast())
