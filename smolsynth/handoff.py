"""The course's hand-off between notebooks: save a dataset with a record of the model that made it; load it in a
later notebook (from this machine, Google Drive, the Hub or an uploaded file), or make a small substitute on the spot.

The training notebooks need data (and notebook 04 an SFT checkpoint) made earlier in the course. Notebooks 01 and 02
save theirs with :func:`save`: ``Dataset.save_to_disk`` into the well-known folder
(:func:`smolsynth.course.data_path`), plus a record, :data:`RECORD_FILE`: the model that made it, the settings (fast
mode among them), the row count, the smolsynth version and the time. The helpers below load what was saved, and
otherwise make a small version with the same package calls the earlier notebook teaches, and say which happened:

* :func:`sft_data`: notebook 01's SFT dataset, else ``generate`` on :data:`SAMPLE_INSTRUCTIONS` + ``to_sft``;
* :func:`preference_pairs`: notebook 02's pairs, else two answers per prompt (two system prompts and temperatures),
  judged by distilabel's ``UltraFeedback`` with constrained decoding, then ``binarize_rows``;
* :func:`sft_checkpoint`: notebook 03's SFT checkpoint of the same base model, else a quick SFT on the pairs'
  prompts and chosen answers, saved where notebook 03 would have saved it.

**Another model's data is never used silently.** A saved hand-off whose record names another model than the one
asked for (``model=``, resolved by :func:`smolsynth.resolve_model`), or that has no record, is refused: from the
course folder the data is made on the spot and the ``note`` says what was refused and how to regenerate it
(``SMOLSYNTH_MODEL=<model>``); from an explicit ``source=`` a ValueError says the same. ``allow_other_model=True``
uses it anyway (a teacher model's data, say).

**Sources.** ``sft_data`` and ``preference_pairs`` read the course folder, or ``source=``: a folder (saved by
:func:`save`, any ``save_to_disk`` folder, or a Hub dataset repository's layout: ``data/*.parquet`` and a README), a
Hub dataset id ``"user/name"`` (:func:`publish` puts one there, record included), a ``.zip`` from :func:`export`, or
a plain ``.jsonl``/``.json``/``.parquet`` file (no record: used, with a note that its model could not be checked). On
Colab, where every notebook gets a fresh runtime, :func:`smolsynth.course.use_drive` keeps the course folder on
Google Drive, and :func:`upload` takes a file from your computer and returns the path to pass as ``source=``.

Nothing made on the spot is saved as if an earlier notebook had made it (except the quick SFT checkpoint, which *is*
an SFT checkpoint of this base model). Every result carries a ``note`` (the sentence the notebook shows: where the
data came from and the model that made it) and the reports of the steps that ran::

    >>> data = sft_data(rows=4, model="smolsynth/tiny", max_new_tokens=8, progress=False)   # doctest: +SKIP
    >>> print(data.note)                                                                    # doctest: +SKIP
    No usable SFT dataset of notebook 01 at ~/.cache/smolsynth/course/sft (nothing saved there yet). Made 4 rows ...
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from smolsynth.arguments import check_choice, check_number, check_text
from smolsynth.course import data_path
from smolsynth.preferences import ANSWER_TOKENS, CONCISE, DEFAULT_RULE
from smolsynth.report import Report

if TYPE_CHECKING:  # pragma: no cover
    from datasets import Dataset

    from smolsynth.funnel import Funnel

    from smolsynth.training import TrainingResult

__all__ = ["RECORD_FILE", "SAMPLE_INSTRUCTIONS", "CourseData", "CourseModel", "export", "make_preference_pairs",
           "make_sft_data", "preference_pairs", "publish", "save", "sft_checkpoint", "sft_data", "upload"]

SAMPLE_INSTRUCTIONS: tuple[str, ...] = (
    "Give three tips for writing a clear email.",
    "Explain what a prime number is to a ten-year-old.",
    "Suggest a name for a bakery that sells only croissants.",
    "What is the difference between weather and climate?",
    "Write a haiku about a rainy Monday morning.",
    "How do I boil an egg so that the yolk stays soft?",
    "Summarise the plot of Little Red Riding Hood in two sentences.",
    "List four fruits that are rich in vitamin C.",
    "Why do cats purr?",
    "Translate 'good morning, how are you?' into French.",
    "Give me a packing list for a weekend of camping.",
    "Explain recursion with an everyday example.",
    "What are the pros and cons of working from home?",
    "Write a polite reply declining a meeting invitation.",
    "How does a bicycle stay upright when it moves?",
    "Suggest a vegetarian dinner I can cook in 20 minutes.",
    "What is photosynthesis, in one paragraph?",
    "Give a short motivational message for a student before an exam.",
    "How can I make my passwords safer?",
    "Describe the colour blue to someone who has never seen it.",
    "What should I check before buying a used car?",
    "Explain what a budget is and why it helps.",
    "Write a two-line poem about coffee.",
    "How do vaccines train the immune system?",
)
"""The built-in instructions the notebooks use when no earlier notebook left data: varied, short, harmless."""

RECORD_FILE = "smolsynth_handoff.json"
"""The record :func:`save` writes next to a saved hand-off (and :func:`publish` to the top of a Hub repository)."""

_NOTEBOOK = {"sft": "01", "dpo": "02", "curated": "07"}  # the dataset hand-offs, and the notebook that makes each
_PLAIN_FILES = (".jsonl", ".json", ".parquet")
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*")
_SOURCES = ("a folder saved by handoff.save (or a Dataset.save_to_disk folder, or a Hub dataset repository's folder), "
            "a Hub dataset id like 'your-name/my-sft-data', a .zip from handoff.export, or a .jsonl/.json/.parquet "
            "file")
_LOGIN = ("log in if the repository is private (`from huggingface_hub import login; login()`, or `hf auth login`) "
          "and check the id")
Origin = Literal["folder", "hub", "upload", "made"]


@dataclass
class CourseData:
    """A dataset for a course notebook and where it came from.

    ``source`` is ``"saved"`` (loaded, made by an earlier notebook or passed as ``source=``) or ``"made"`` (made on
    the spot). ``origin`` says from where: ``"folder"`` (a local folder), ``"hub"`` (a Hub dataset repository),
    ``"upload"`` (a .zip or a plain file) or ``"made"``. ``path`` is the folder or file it was read from (for the
    Hub, the local cache), or, when made, where the saved one was looked for. ``model`` is the model that made it
    (from its record, or the one that made it on the spot; None when unknown). ``note`` is the sentence to show the
    learner; ``reports`` the reports of the steps that made it (empty when loaded).
    """

    dataset: Dataset
    source: Literal["saved", "made"]
    path: Path
    note: str
    reports: list[Report] = field(default_factory=list)
    origin: Origin = "made"
    model: str | None = None

    def __len__(self) -> int:
        return len(self.dataset)

    def __str__(self) -> str:
        table = f"\n{Report.combine(self.reports)}" if self.reports else ""
        return self.note + table

    def _repr_html_(self) -> str:
        table = Report.combine(self.reports)._repr_html_() if self.reports else ""
        return f"<p>{html.escape(self.note)}</p>{table}"


@dataclass
class CourseModel:
    """A checkpoint for a course notebook: ``path`` (a plain transformers folder), ``source`` (``"saved"``: found
    there; ``"trained"``: trained on the spot, ``result`` holds the run), and the ``note`` to show."""

    path: str
    source: Literal["saved", "trained"]
    note: str
    base_model: str
    result: TrainingResult | None = None

    def __str__(self) -> str:
        return self.note

    def _repr_html_(self) -> str:
        return f"<p>{html.escape(self.note)}</p>"


def _instructions(instructions: Any, rows: int | None) -> list[str]:
    from smolsynth.arguments import check_texts

    chosen = check_texts("instructions", list(SAMPLE_INSTRUCTIONS) if instructions is None else instructions)
    check_number("rows", rows, minimum=1, integer=True, allow_none=True)
    return chosen if rows is None else chosen[:rows]


def _check_name(name: Any) -> str:
    check_choice("name", name, list(_NOTEBOOK))
    return name


# --------------------------------------------------------------------------------------------- saving, sharing
def _as_dataset(data: Any) -> Dataset:
    from datasets import Dataset

    if isinstance(data, Dataset):
        return data
    inner = getattr(data, "dataset", None)  # a Result or a CourseData
    if isinstance(inner, Dataset):
        return inner
    raise TypeError(f"data is a {type(data).__name__}: pass a datasets.Dataset, a step's Result or a CourseData, "
                    "e.g. handoff.save(sft_dataset, 'sft', model=model_id).")


def _replace_folder(target: Path, write: Callable[[Path], None]) -> None:
    """Write a new ``target`` with ``write(folder)`` into a sibling folder, then swap it in: a save that fails half
    way never leaves a half-written hand-off, and data loaded from ``target`` can be saved back to it."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tag = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    new, old = target.with_name(f".{target.name}.new-{tag}"), target.with_name(f".{target.name}.old-{tag}")
    try:
        write(new)
    except BaseException:
        shutil.rmtree(new, ignore_errors=True)
        raise
    if target.exists():
        target.rename(old)
    new.rename(target)
    shutil.rmtree(old, ignore_errors=True)


def save(data: Any, name: str, *, model: str, settings: Mapping[str, Any] | None = None,
         funnel: Funnel | None = None) -> Path:
    """Save a hand-off for a later notebook; returns its folder, ``data_path(name)``.

    ``data`` (a ``datasets.Dataset``, a step's ``Result`` or a :class:`CourseData`) is written with
    ``Dataset.save_to_disk``, and into the same folder :data:`RECORD_FILE`: ``name``, ``model`` (the model that made the data:
    pass the resolved id, e.g. ``smolsynth.resolve_model()``), ``settings`` (plain values; ``fast``, whether fast
    mode is on, is added unless given), the row count, the smolsynth version and the UTC time. ``name`` is ``"sft"``
    (notebook 01), ``"dpo"`` (notebook 02) or ``"curated"`` (notebook 07). A hand-off already there is replaced.
    ``funnel`` (a :class:`smolsynth.funnel.Funnel`: every step the rows went through and the rows each dropped) is
    saved beside the data, after checking that it accounts for every row of it (a ValueError says what does not add
    up).

    >>> save(sft_dataset, "sft", model=model_id, settings={"max_new_tokens": 256})  # doctest: +SKIP
    PosixPath('/home/you/.cache/smolsynth/course/sft')
    """
    from datetime import datetime, timezone

    from smolsynth import __version__
    from smolsynth.models import resolve_model

    _check_name(name)
    check_text("model", model)
    if settings is not None and not isinstance(settings, Mapping):
        raise TypeError(f"settings is a {type(settings).__name__}: pass a dict of plain values, e.g. "
                        "settings={'max_new_tokens': 256}.")
    from smolsynth.settings import is_fast

    recorded = {"fast": is_fast(), **dict(settings or {})}
    try:
        json.dumps(recorded)
    except (TypeError, ValueError) as err:
        raise TypeError(f"settings holds a value that cannot be written to {RECORD_FILE} ({err}): pass plain values "
                        "(numbers, text, lists, dicts), e.g. settings={'max_new_tokens': 256}.") from None
    dataset = _as_dataset(data)
    if funnel is not None:
        from smolsynth.funnel import Funnel

        if not isinstance(funnel, Funnel):
            raise TypeError(f"funnel is a {type(funnel).__name__}: pass a smolsynth.funnel.Funnel (or leave it out).")
        problems = funnel.check(len(dataset))
        if problems:
            raise ValueError(f"The funnel does not account for every row of {name!r}: " + "; ".join(problems)
                             + ". Add every step the rows went through, in order (funnel.add(notebook, result)).")
    record = {"name": name, "model": resolve_model(model), "settings": recorded, "rows": len(dataset),
              "columns": list(dataset.column_names), "smolsynth_version": __version__,
              "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds")}

    def write(folder: Path) -> None:
        dataset.save_to_disk(str(folder))
        (folder / RECORD_FILE).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        if funnel is not None:
            funnel.save(folder)

    target = data_path(name)
    _replace_folder(target, write)
    return target


def _saved_folder(name: str, fn: str) -> Path:
    folder = data_path(name)
    if not (folder / RECORD_FILE).is_file():
        raise ValueError(f"{fn}({name!r}): nothing saved by handoff.save at {folder}. Run notebook {_NOTEBOOK[name]} "
                         f"first, or save the data yourself: handoff.save(data, {name!r}, model=model_id).")
    return folder


def export(name: str) -> Path:
    """Pack the saved hand-off ``name`` (``"sft"`` or ``"dpo"``), record included, into one file; returns the
    ``.zip``'s path (next to the folder: ``<course folder>/<name>.zip``).

    Download it (on Colab: ``google.colab.files.download(str(path))``) and give it to a later notebook as
    ``source=`` (on Colab, :func:`upload` it first).
    """
    import zipfile

    _check_name(name)
    folder = _saved_folder(name, "export")
    target = folder.with_name(f"{name}.zip")
    partial = target.with_name(f".{target.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for file in sorted(p for p in folder.rglob("*") if p.is_file()):
                archive.write(file, arcname=f"{name}/{file.relative_to(folder).as_posix()}")
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return target


def publish(name: str, repo_id: str, *, private: bool = True) -> str:
    """Push the saved hand-off ``name`` (``"sft"`` or ``"dpo"``) to the Hub dataset repository ``repo_id``, with its
    record (:data:`RECORD_FILE`) and a dataset card made from the record and funnel (:mod:`smolsynth.cards`,
    as ``README.md``) at the top; returns the repository's URL.

    A later notebook, on any machine, loads it with ``sft_data(source=repo_id)`` (or ``preference_pairs``). Needs a
    Hub login with write access; raises RuntimeError before uploading anything when there is none.
    """
    _check_name(name)
    check_text("repo_id", repo_id)
    if not _HUB_ID.fullmatch(repo_id):
        raise ValueError(f"repo_id={repo_id!r} is not a Hub repository id: pass 'your-name/dataset-name'.")
    folder = _saved_folder(name, "publish")
    from smolsynth.cards import dataset_card, require_login

    card = dataset_card(folder)
    require_login("publish()")
    from datasets import load_from_disk
    from huggingface_hub import HfApi

    load_from_disk(str(folder)).push_to_hub(repo_id, private=private)
    HfApi().upload_file(path_or_fileobj=str(folder / RECORD_FILE), path_in_repo=RECORD_FILE, repo_id=repo_id,
                        repo_type="dataset", commit_message=f"smolsynth hand-off record ({name})")
    HfApi().upload_file(path_or_fileobj=card.encode("utf-8"), path_in_repo="README.md", repo_id=repo_id,
                        repo_type="dataset", commit_message="smolsynth dataset card")
    return f"https://huggingface.co/datasets/{repo_id}"


def upload(name: str) -> Path:
    """On Colab: open the file picker, keep the file you choose (a ``.zip`` from :func:`export`, or a
    ``.jsonl``/``.json``/``.parquet`` file) in the course's ``uploads`` folder, and return its path, to pass as
    ``source=`` to :func:`sft_data` (``name="sft"``) or :func:`preference_pairs` (``name="dpo"``).

    Outside Colab it raises RuntimeError: pass the file's path as ``source=`` directly.
    """
    _check_name(name)
    try:
        from google.colab import files  # type: ignore[import-not-found]
    except ImportError:
        raise RuntimeError(f"upload() is for Google Colab (it opens Colab's file picker). Here, pass the file's path "
                           f"as source=, e.g. handoff.{'sft_data' if name == 'sft' else 'preference_pairs'}"
                           f"(source='{name}.zip').") from None
    uploaded = files.upload()
    if len(uploaded) != 1:
        raise ValueError(f"upload({name!r}): {len(uploaded)} files were uploaded; upload exactly one (the .zip from "
                         "handoff.export, or a .jsonl/.json/.parquet file).")
    (filename, content), = uploaded.items()
    target = data_path("uploads") / name / Path(filename).name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(content)
    print(f"Uploaded {filename}: pass source={str(target)!r}.")
    return target


# --------------------------------------------------------------------------------------------------- loading
class _Unusable(Exception):
    """Why a hand-off cannot be used, as a phrase ("it could not be read (...)")."""


@dataclass
class _Opened:
    dataset: Any
    record: dict[str, Any] | None
    origin: Origin
    where: str  # for the note: "the folder ...", "the Hub dataset repository ...", "the uploaded file ..."
    path: Path
    no_record: str | None = None  # a plain file: why it has no record (it is used, with a note)


def _classify_source(source: Any) -> tuple[str, Any]:
    """``("folder" | "zip" | "file", Path)`` or ``("hub", repo_id)``; raises naming ``source`` for anything else."""
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(f"source is a {type(source).__name__}: pass {_SOURCES}.")
    text = os.fspath(source).strip()
    if not text:
        raise ValueError(f"source={source!r} is empty: pass {_SOURCES}.")
    path = Path(text).expanduser()
    suffix = path.suffix.lower()
    if path.is_dir():
        return "folder", path
    if path.is_file():
        if suffix == ".zip":
            return "zip", path
        if suffix in _PLAIN_FILES:
            return "file", path
        raise ValueError(f"source={text!r}: a {suffix or 'suffix-less'} file is not a source smolsynth reads. "
                         f"Pass {_SOURCES}.")
    if isinstance(source, str) and _HUB_ID.fullmatch(text) and suffix not in (".zip", *_PLAIN_FILES):
        return "hub", text
    raise ValueError(f"source={text!r}: there is no such file or folder ({path.absolute()}). Pass {_SOURCES}. On "
                     "Colab, handoff.upload(name) returns the path of a file you upload.")


def _read_record(file: Path) -> dict[str, Any] | None:
    if not file.is_file():
        return None
    try:
        record = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise _Unusable(f"its {RECORD_FILE} could not be read ({err})") from None
    if not isinstance(record, dict) or not isinstance(record.get("model"), str):
        raise _Unusable(f"its {RECORD_FILE} names no model")
    return record


def _train_split(saved: Any) -> Any:
    from datasets import DatasetDict

    if not isinstance(saved, DatasetDict):
        return saved
    if "train" in saved:
        return saved["train"]
    if len(saved) == 1:
        return next(iter(saved.values()))
    raise _Unusable(f"it is a DatasetDict without a 'train' split (splits: {list(saved)})")


def _read_folder(folder: Path) -> tuple[Any, dict[str, Any] | None]:
    """(dataset, record or None) from a ``save_to_disk`` folder or a folder laid out like a Hub repository."""
    record = _read_record(folder / RECORD_FILE)
    if (folder / "state.json").is_file() or (folder / "dataset_dict.json").is_file():
        from datasets import load_from_disk

        try:
            return _train_split(load_from_disk(str(folder))), record
        except _Unusable:
            raise
        except Exception as err:  # a half-written or foreign folder
            raise _Unusable(f"it could not be read ({type(err).__name__}: {err})") from None
    if (folder / "data").is_dir() or (folder / "README.md").is_file():
        from datasets import load_dataset

        try:
            return _train_split(load_dataset(str(folder))), record
        except _Unusable:
            raise
        except Exception as err:
            raise _Unusable(f"it is laid out like a Hub dataset repository but could not be read "
                            f"({type(err).__name__}: {err})") from None
    raise _Unusable("it holds neither a saved dataset (Dataset.save_to_disk: a state.json) nor a Hub dataset "
                    "repository (data/*.parquet and a README.md)")


def _unpack(archive: Path) -> Path:
    """The folder inside the .zip ``archive``, unpacked once into the course's ``uploads`` folder."""
    import hashlib
    import zipfile

    digest = hashlib.sha256(archive.read_bytes()).hexdigest()[:12]
    target = data_path("uploads") / f"{archive.stem}-{digest}"
    if not target.is_dir():
        def write(folder: Path) -> None:
            with zipfile.ZipFile(archive) as opened:
                opened.extractall(folder)  # zipfile drops absolute paths and ".." from member names

        try:
            _replace_folder(target, write)
        except zipfile.BadZipFile as err:
            raise _Unusable(f"it is not a readable .zip file ({err})") from None
    entries = [p for p in target.iterdir() if not p.name.startswith(".") and p.name != "__MACOSX"]
    return entries[0] if len(entries) == 1 and entries[0].is_dir() else target


def _read_hub(repo_id: str) -> tuple[Any, dict[str, Any] | None, Path | None]:
    """(dataset, record or None, local cache folder) of a Hub dataset repository; raises ValueError naming it."""
    from smolsynth.models import hub_offline_requested, hub_reachable

    local = f"there is no local file or folder {repo_id!r} either"
    if hub_offline_requested() or not hub_reachable():
        raise ValueError(f"source={repo_id!r}: read as a Hub dataset repository id ({local}), but the Hugging Face "
                         "Hub cannot be reached from this machine (no network, or HF_HUB_OFFLINE=1). Connect, "
                         f"{_LOGIN}; or pass a local folder or file as source= instead.")
    from datasets import load_dataset

    try:
        dataset = _train_split(load_dataset(repo_id))
    except Exception as err:
        raise ValueError(f"source={repo_id!r}: the Hub dataset repository could not be loaded "
                         f"({type(err).__name__}: {err}). {_LOGIN[0].upper()}{_LOGIN[1:]} ({local}).") from None
    record: dict[str, Any] | None = None
    try:
        from huggingface_hub import hf_hub_download

        record = _read_record(Path(hf_hub_download(repo_id, RECORD_FILE, repo_type="dataset")))
    except Exception:  # no record in the repository (or it cannot be fetched): checked like one without a record
        record = None
    files = getattr(dataset, "cache_files", None) or []
    return dataset, record, Path(files[0]["filename"]).parent if files else None


def _open(kind: str, value: Any, name: str) -> _Opened:
    if kind == "folder":
        dataset, record = _read_folder(value)
        return _Opened(dataset, record, "folder", f"the folder {value}", value)
    if kind == "zip":
        dataset, record = _read_folder(_unpack(value))
        return _Opened(dataset, record, "upload", f"the uploaded file {value}", value)
    if kind == "file":
        from datasets import Dataset

        try:
            dataset = (Dataset.from_parquet if value.suffix.lower() == ".parquet" else Dataset.from_json)(str(value))
        except Exception as err:
            raise _Unusable(f"it could not be read as a {value.suffix} file ({type(err).__name__}: {err})") from None
        return _Opened(dataset, None, "upload", f"the uploaded file {value}", value,
                       no_record=f"a plain {value.suffix} file carries no {RECORD_FILE} record")
    dataset, record, cache = _read_hub(value)
    return _Opened(dataset, record, "hub", f"the Hub dataset repository {value}", cache or data_path(name))


def _usable(dataset: Any, validate: Any, min_rows: int, unit: str) -> None:
    try:
        usable = len(validate(dataset).rows)
    except ValueError as err:
        raise _Unusable(f"it is not in the expected format ({err})") from None
    if usable < min_rows:
        raise _Unusable(f"it has {usable} usable {unit}, fewer than the {min_rows} this notebook needs")


def _mode(record: Mapping[str, Any]) -> str:
    fast = (record.get("settings") or {}).get("fast")
    return "" if fast is None else " in fast mode" if fast else " in a full run"


def _refusal(opened: _Opened, asked: str, what: str, name: str) -> str | None:
    """The message refusing ``opened`` for the model ``asked`` for, or None when it may be used."""
    if opened.no_record is not None:
        return None
    if opened.record is None:
        made = f"it has no {RECORD_FILE} record, so the model that made it cannot be checked"
    elif opened.record["model"] == asked:
        return None
    else:
        made = f"it was made by {opened.record['model']}{_mode(opened.record)}, not by {asked}, the model asked for"
    return (f"Refused the {what} from {opened.where}: {made}. To regenerate it, re-run notebook {_NOTEBOOK[name]} "
            f"with SMOLSYNTH_MODEL={asked}; to use it anyway (a teacher model's data, say), pass "
            "allow_other_model=True.")


def _loaded(opened: _Opened, *, what: str, unit: str, rows: int | None, asked: str, allowed: bool) -> CourseData:
    saved = opened.dataset
    n = len(saved) if rows is None else min(rows, len(saved))
    used = saved.select(range(n)) if n < len(saved) else saved
    of = f"{n} of its {len(saved)} {unit}" if n < len(saved) else f"all {n} {unit}"
    model = opened.record["model"] if opened.record else None
    if opened.no_record is not None:
        by = f"the model that made it could not be checked ({opened.no_record})"
    elif model is None:
        by = f"the model that made it could not be checked (no {RECORD_FILE}); used anyway (allow_other_model=True)"
    elif allowed:
        by = f"made by {model}{_mode(opened.record)}, not by {asked}: used anyway (allow_other_model=True)"
    else:
        by = f"made by {model}{_mode(opened.record)}"
    return CourseData(dataset=used, source="saved", path=opened.path, origin=opened.origin, model=model,
                      note=f"Loaded the {what} from {opened.where}: {of}, {by}.")


def _load_or_make(name: str, *, what: str, unit: str, validate: Any, path: str | Path | None, source: Any,
                  allow_other_model: bool, model: str | None, rows: int | None, min_rows: int,
                  make: Callable[[], CourseData]) -> CourseData:
    """The hand-off ``name`` from ``source`` (every problem raises ValueError) or from the course folder (``path``,
    default ``data_path(name)``: when it cannot be used, what ``make()`` returns, with a note saying why)."""
    from smolsynth.models import resolve_model

    check_number("rows", rows, minimum=1, integer=True, allow_none=True)
    check_number("min_rows", min_rows, minimum=1, integer=True)
    if not isinstance(allow_other_model, bool):
        raise TypeError(f"allow_other_model={allow_other_model!r}: pass True or False.")
    if source is not None and path is not None:
        raise ValueError(f"Both source={source!r} and path={path!r} were given: pass one (source= reads any folder, "
                         "Hub repository or file; path= only moves the course folder).")
    if source is not None:
        kind, value = _classify_source(source)
        asked = resolve_model(model)
        try:
            opened = _open(kind, value, name)
            _usable(opened.dataset, validate, min_rows, unit)
        except _Unusable as why:
            raise ValueError(f"source={os.fspath(source)!r} cannot be used: {why}. Pass {_SOURCES}.") from None
        refusal = _refusal(opened, asked, what, name)
        if refusal is not None and not allow_other_model:
            raise ValueError(refusal)
        return _loaded(opened, what=what, unit=unit, rows=rows, asked=asked, allowed=refusal is not None)

    where = Path(path) if path is not None else data_path(name)
    asked = resolve_model(model)
    refusal, why_not = None, "nothing saved there yet"
    if where.exists():
        try:
            dataset, record = _read_folder(where)
            opened = _Opened(dataset, record, "folder", f"the folder {where}", where)
            _usable(dataset, validate, min_rows, unit)
        except _Unusable as why:
            why_not = str(why)
        else:
            refusal = _refusal(opened, asked, what, name)
            if refusal is None or allow_other_model:
                return _loaded(opened, what=what, unit=unit, rows=rows, asked=asked, allowed=refusal is not None)
    made = make()
    if len(made.dataset) < min_rows:
        raise ValueError(f"Only {len(made.dataset)} {unit} could be made on the spot (see the reports below), fewer "
                         f"than min_rows={min_rows}: ask for more rows, e.g. rows={2 * (rows or len(SAMPLE_INSTRUCTIONS))}."
                         f"\n{Report.combine(made.reports)}")
    made.path = where
    made.note = (f"{refusal} " if refusal else f"No usable {what} at {where} ({why_not}). ") + made.note
    return made


# ----------------------------------------------------------------------------------------------------------- SFT
def make_sft_data(instructions: Any = None, *, rows: int | None = None, model: str | None = None,
                  max_new_tokens: int = ANSWER_TOKENS, seed: int = 0, progress: bool = True) -> CourseData:
    """Make a small SFT dataset: :func:`~smolsynth.generation.generate` an answer to each instruction with the
    :data:`~smolsynth.preferences.CONCISE` settings (measured so that answers finish within budget), then
    :func:`~smolsynth.formats.to_sft`. Returns a :class:`CourseData` (``source="made"``, ``model`` the model used).

    ``instructions`` defaults to :data:`SAMPLE_INSTRUCTIONS`; ``rows`` keeps the first ``rows`` of them. Rows whose
    answer failed (or was cut off) are dropped and counted in the reports.
    """
    from smolsynth.formats import to_sft
    from smolsynth.generation import generate
    from smolsynth.models import resolve_model

    chosen = _instructions(instructions, rows)
    model_id = resolve_model(model)
    answers = generate(chosen, model=model_id, system_prompt=CONCISE.system_prompt, max_new_tokens=max_new_tokens,
                       temperature=CONCISE.temperature, repetition_penalty=CONCISE.repetition_penalty, seed=seed,
                       progress=progress, desc="answers")
    converted = to_sft(answers.rows)
    return CourseData(dataset=converted.dataset, source="made", path=data_path("sft"), model=model_id,
                      note=f"Made {len(converted.rows)} SFT rows on the spot: {model_id} answered "
                           f"{len(chosen)} instructions.",
                      reports=[answers.report, converted.report])


def sft_data(*, rows: int | None = None, min_rows: int = 4, instructions: Any = None, model: str | None = None,
             max_new_tokens: int = ANSWER_TOKENS, path: str | Path | None = None, source: str | Path | None = None,
             allow_other_model: bool = False, seed: int = 0, progress: bool = True) -> CourseData:
    """Notebook 01's SFT dataset (at most ``rows`` rows of it) if saved, or from ``source``; else a small one made on
    the spot. Returns a :class:`CourseData` whose ``note`` says where the data came from and which model made it.

    Without ``source``, the course folder (``path``, default ``data_path("sft")``) is used when it reads back, is in
    the format TRL takes, has at least ``min_rows`` rows and its record names ``model`` (resolved: ``model=``, else
    ``$SMOLSYNTH_MODEL``, else the hardware default); otherwise :func:`make_sft_data` makes ``rows`` rows from
    ``instructions``, and the note says why (for another model's data: how to regenerate it).

    ``source`` is a folder, a Hub dataset id ``"user/name"``, a ``.zip`` from :func:`export` or a
    ``.jsonl``/``.json``/``.parquet`` file (see the module docstring); anything wrong with it raises ValueError, data
    of another model (or without a record) too, unless ``allow_other_model=True``.

    >>> data = sft_data(rows=3, model="smolsynth/tiny", max_new_tokens=8, path="/nonexistent", progress=False,
    ...                 min_rows=1)  # doctest: +SKIP
    """
    from smolsynth.formats import validate_sft_dataset

    return _load_or_make("sft", what="SFT dataset of notebook 01", unit="rows", validate=validate_sft_dataset,
                         path=path, source=source, allow_other_model=allow_other_model, model=model, rows=rows,
                         min_rows=min_rows,
                         make=lambda: make_sft_data(instructions, rows=rows, model=model,
                                                    max_new_tokens=max_new_tokens, seed=seed, progress=progress))


# ----------------------------------------------------------------------------------------------------------- DPO
def make_preference_pairs(instructions: Any = None, *, rows: int | None = None, model: str | None = None,
                          max_new_tokens: int = ANSWER_TOKENS, rationale_chars: int = 200, rule: str = DEFAULT_RULE,
                          seed: int = 0, progress: bool = True) -> CourseData:
    """Make preference pairs the way notebook 02 does, in miniature: :func:`smolsynth.preferences.preference_dataset`
    (two answers per instruction from :data:`~smolsynth.preferences.DEFAULT_GENERATORS`, judged by UltraFeedback with
    constrained decoding, binarized with ``rule``). Ties and failures are dropped and counted in ``reports``. Returns
    a :class:`CourseData` (``source="made"``, ``model`` the model used).
    """
    from smolsynth.models import resolve_model
    from smolsynth.preferences import preference_dataset

    chosen = _instructions(instructions, rows)
    model_id = resolve_model(model)
    pairs = preference_dataset(chosen, model=model_id, max_new_tokens=max_new_tokens,
                               max_rationale_chars=rationale_chars, rule=rule, seed=seed,  # type: ignore[arg-type]
                               progress=progress)
    return CourseData(dataset=pairs.dataset, source="made", path=data_path("dpo"), model=model_id,
                      note=f"Made {len(pairs.rows)} preference pairs on the spot from {len(chosen)} instructions: "
                           f"two answers each from {model_id}, judged by UltraFeedback on the same model, binarized "
                           f"with the {rule} rule.",
                      reports=list(pairs.steps))


def preference_pairs(*, rows: int | None = None, min_rows: int = 2, instructions: Any = None,
                     model: str | None = None, max_new_tokens: int = ANSWER_TOKENS, rationale_chars: int = 200,
                     rule: str = DEFAULT_RULE, path: str | Path | None = None, source: str | Path | None = None,
                     allow_other_model: bool = False, seed: int = 0, progress: bool = True) -> CourseData:
    """Notebook 02's preference pairs (at most ``rows`` of them) if saved, or from ``source``; else pairs made on the
    spot. Returns a :class:`CourseData` whose ``note`` says where the pairs came from and which model made them.

    Without ``source``, the course folder (``path``, default ``data_path("dpo")``) is used when it reads back in the
    format DPO takes, at least ``min_rows`` of its pairs differ in chosen and rejected, and its record names
    ``model`` (resolved as in :func:`sft_data`); otherwise :func:`make_preference_pairs` makes them from ``rows``
    instructions. ``source`` and ``allow_other_model`` work as in :func:`sft_data`. Raises ValueError when fewer
    than ``min_rows`` pairs survive (ask for more ``rows``).
    """
    from smolsynth.formats import validate_dpo_dataset

    return _load_or_make("dpo", what="preference pairs of notebook 02", unit="pairs",
                         validate=validate_dpo_dataset, path=path, source=source,
                         allow_other_model=allow_other_model, model=model, rows=rows, min_rows=min_rows,
                         make=lambda: make_preference_pairs(instructions, rows=rows, model=model,
                                                            max_new_tokens=max_new_tokens,
                                                            rationale_chars=rationale_chars, rule=rule, seed=seed,
                                                            progress=progress))


# ----------------------------------------------------------------------------------------------- SFT checkpoint
def _saved_sft(path: Path) -> tuple[dict[str, Any] | None, str]:
    info = path / "smolsynth_training.json"
    if not (path / "config.json").exists() or not info.exists():
        return None, "nothing saved there yet"
    try:
        saved = json.loads(info.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        return None, f"its smolsynth_training.json could not be read ({err})"
    if saved.get("kind") != "sft":
        return None, f"it holds a {saved.get('kind')!r} run, not an SFT one"
    return saved, ""


def _chosen_as_messages(pairs: Any) -> Any:
    """Pairs -> an SFT dataset: each prompt followed by its chosen answer (SFT on the preferred answers)."""
    from smolsynth.formats import validate_dpo_dataset
    from smolsynth.rows import to_dataset

    data = validate_dpo_dataset(pairs).rows
    if isinstance(data[0]["prompt"], str):
        rows = [{"messages": [{"role": "user", "content": r["prompt"]},
                              {"role": "assistant", "content": r["chosen"]}]} for r in data]
    else:
        rows = [{"messages": list(r["prompt"]) + list(r["chosen"])} for r in data]
    return to_dataset(rows)


def sft_checkpoint(data: Any = None, *, model: str | None = None, path: str | Path | None = None,
                   max_steps: int | None = None, seed: int = 0, **sft_kwargs: Any) -> CourseModel:
    """Notebook 03's SFT checkpoint of base model ``model`` if saved, else a quick SFT on ``data``, saved there.

    ``path`` defaults to ``data_path("sft-model")``. A checkpoint found there is used only if it is a finished
    smolsynth SFT run (``smolsynth_training.json``) of the same base model (``model``, resolved as everywhere:
    ``$SMOLSYNTH_MODEL`` or the hardware default). Otherwise ``data`` is trained on with
    :func:`smolsynth.training.sft` for ``max_steps`` steps: an SFT dataset (``messages``), or preference pairs, whose
    prompts and *chosen* answers become the conversations (SFT on the preferred answers, the usual warm-up before
    DPO). ``sft_kwargs`` go to :func:`~smolsynth.training.sft`.

    DPO then starts from ``result.path`` (a path, so its reference model is this same checkpoint).
    """
    from smolsynth.models import resolve_model

    where = Path(path) if path is not None else data_path("sft-model")
    base = resolve_model(model)
    saved, why_not = _saved_sft(where)
    if saved is not None:
        trained_from = str(saved.get("metrics", {}).get("model"))
        if trained_from == base:
            steps = saved.get("metrics", {}).get("train_steps")
            return CourseModel(path=str(where), source="saved", base_model=base,
                               note=f"Using the SFT checkpoint notebook 03 saved at {where} ({base} after "
                                    f"{steps} SFT steps).")
        why_not = f"it was trained from {trained_from}, not from {base}"
    if data is None:
        raise ValueError(f"No usable SFT checkpoint at {where} ({why_not}), and no data= to train one: pass an "
                         "SFT dataset (a 'messages' column) or preference pairs.")
    from smolsynth.training import sft

    chats = data
    columns = getattr(data, "column_names", None) or (list(data[0]) if isinstance(data, list) and data else [])
    if "chosen" in columns:
        chats = _chosen_as_messages(data)
    result = sft(chats, model=base, output_dir=str(where), max_steps=max_steps, seed=seed, **sft_kwargs)
    what = "prompts and chosen answers of the pairs" if chats is not data else "the SFT data"
    return CourseModel(path=str(where), source="trained", base_model=base, result=result,
                       note=f"No usable SFT checkpoint from notebook 03 at {where} ({why_not}): trained a quick SFT "
                            f"of {base} on the {what} ({result.metrics['train_steps']} steps) and saved it there.")
