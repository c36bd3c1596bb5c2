"""The course's hand-off between notebooks: load what an earlier notebook saved, or make a small substitute on the spot.

The training notebooks need data (and notebook 04 an SFT checkpoint) made earlier in the course. A learner who opens
a notebook on its own (on Colab, say) has none of it, so each helper here first looks in the well-known folder
(:func:`smolsynth.course.data_path`) and otherwise makes a small version with the same package calls the earlier
notebook teaches, and says which happened:

* :func:`sft_data`: notebook 01's SFT dataset, else ``generate`` on :data:`SAMPLE_INSTRUCTIONS` + ``to_sft``;
* :func:`preference_pairs`: notebook 02's pairs, else two answers per prompt (two system prompts and temperatures),
  judged by distilabel's ``UltraFeedback`` with constrained decoding, then ``binarize_rows``;
* :func:`sft_checkpoint`: notebook 03's SFT checkpoint of the same base model, else a quick SFT on the pairs'
  prompts and chosen answers, saved where notebook 03 would have saved it.

Nothing made on the spot is saved as if an earlier notebook had made it (except the quick SFT checkpoint, which *is*
an SFT checkpoint of this base model). Every result carries a ``note`` (the sentence the notebook shows) and the
reports of the steps that ran::

    >>> data = sft_data(rows=4, model="smolsynth/tiny", max_new_tokens=8, progress=False)   # doctest: +SKIP
    >>> print(data.note)                                                                    # doctest: +SKIP
    No SFT dataset from notebook 01 at ~/.cache/smolsynth/course/sft: made 4 rows on the spot ...
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from smolsynth.arguments import check_number
from smolsynth.course import data_path
from smolsynth.preferences import ANSWER_TOKENS, CONCISE, DEFAULT_RULE
from smolsynth.report import Report

if TYPE_CHECKING:  # pragma: no cover
    from datasets import Dataset

    from smolsynth.training import TrainingResult

__all__ = ["SAMPLE_INSTRUCTIONS", "CourseData", "CourseModel", "make_preference_pairs", "make_sft_data",
           "preference_pairs", "sft_checkpoint", "sft_data"]

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


@dataclass
class CourseData:
    """A dataset for a course notebook and where it came from.

    ``source`` is ``"saved"`` (loaded from ``path``, written by an earlier notebook) or ``"made"`` (made on the spot;
    ``path`` is where the saved one was looked for). ``note`` is the sentence to show the learner; ``reports`` the
    reports of the steps that made it (empty when loaded).
    """

    dataset: Dataset
    source: Literal["saved", "made"]
    path: Path
    note: str
    reports: list[Report] = field(default_factory=list)

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


def _load_saved(path: Path, validate: Any) -> tuple[Any, int, str | None]:
    """(dataset, usable rows, None) when ``path`` holds a saved dataset in the expected format; (None, 0, why not)
    otherwise."""
    if not path.exists():
        return None, 0, "nothing saved there yet"
    from datasets import DatasetDict, load_from_disk

    try:
        saved = load_from_disk(str(path))
    except Exception as err:  # a half-written or foreign folder
        return None, 0, f"it could not be read ({type(err).__name__}: {err})"
    if isinstance(saved, DatasetDict):
        if "train" not in saved:
            return None, 0, f"it is a DatasetDict without a 'train' split (splits: {list(saved)})"
        saved = saved["train"]
    try:
        usable = len(validate(saved).rows)
    except ValueError as err:
        return None, 0, f"it is not in the expected format ({err})"
    return saved, usable, None


def _load_or_make(name: str, *, what: str, unit: str, validate: Any, path: str | Path | None, rows: int | None,
                  min_rows: int, make: Any) -> CourseData:
    """The saved hand-off ``name`` when it reads back, validates and has ``min_rows`` usable rows (at most ``rows``
    of them used); otherwise what ``make()`` returns, with a note saying why."""
    check_number("rows", rows, minimum=1, integer=True, allow_none=True)
    check_number("min_rows", min_rows, minimum=1, integer=True)
    where = Path(path) if path is not None else data_path(name)
    saved, usable, why_not = _load_saved(where, validate)
    if saved is not None and usable < min_rows:
        saved, why_not = None, f"it has {usable} usable {unit}, fewer than the {min_rows} this notebook needs"
    if saved is not None:
        n = len(saved) if rows is None else min(rows, len(saved))
        used = saved.select(range(n)) if n < len(saved) else saved
        of = f"{n} of its {len(saved)} {unit}" if n < len(saved) else f"all {n} {unit}"
        return CourseData(dataset=used, source="saved", path=where, note=f"Loaded the {what} saved at {where}: {of}.")
    made = make()
    if len(made.dataset) < min_rows:
        raise ValueError(f"Only {len(made.dataset)} {unit} could be made on the spot (see the reports below), fewer "
                         f"than min_rows={min_rows}: ask for more rows, e.g. rows={2 * (rows or len(SAMPLE_INSTRUCTIONS))}."
                         f"\n{Report.combine(made.reports)}")
    made.path = where
    made.note = f"No usable {what} at {where} ({why_not}). " + made.note
    return made


# ----------------------------------------------------------------------------------------------------------- SFT
def make_sft_data(instructions: Any = None, *, rows: int | None = None, model: str | None = None,
                  max_new_tokens: int = ANSWER_TOKENS, seed: int = 0, progress: bool = True) -> CourseData:
    """Make a small SFT dataset: :func:`~smolsynth.generation.generate` an answer to each instruction with the
    :data:`~smolsynth.preferences.CONCISE` settings (measured so that answers finish within budget), then
    :func:`~smolsynth.formats.to_sft`.

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
    return CourseData(dataset=converted.dataset, source="made", path=data_path("sft"),
                      note=f"Made {len(converted.rows)} SFT rows on the spot: {model_id} answered "
                           f"{len(chosen)} instructions.",
                      reports=[answers.report, converted.report])


def sft_data(*, rows: int | None = None, min_rows: int = 4, instructions: Any = None, model: str | None = None,
             max_new_tokens: int = ANSWER_TOKENS, path: str | Path | None = None, seed: int = 0,
             progress: bool = True) -> CourseData:
    """Notebook 01's SFT dataset if it is saved (at most ``rows`` rows of it), else a small one made on the spot.

    The saved dataset (``path``, default ``data_path("sft")``) is used when it reads back, is in the format TRL takes
    and has at least ``min_rows`` rows; otherwise :func:`make_sft_data` makes ``rows`` rows from ``instructions``.
    The ``note`` says which happened and why.

    >>> data = sft_data(rows=3, model="smolsynth/tiny", max_new_tokens=8, path="/nonexistent", progress=False,
    ...                 min_rows=1)  # doctest: +SKIP
    """
    from smolsynth.formats import validate_sft_dataset

    return _load_or_make("sft", what="SFT dataset of notebook 01", unit="rows", validate=validate_sft_dataset,
                         path=path, rows=rows, min_rows=min_rows,
                         make=lambda: make_sft_data(instructions, rows=rows, model=model,
                                                    max_new_tokens=max_new_tokens, seed=seed, progress=progress))


# ----------------------------------------------------------------------------------------------------------- DPO
def make_preference_pairs(instructions: Any = None, *, rows: int | None = None, model: str | None = None,
                          max_new_tokens: int = ANSWER_TOKENS, rationale_chars: int = 200, rule: str = DEFAULT_RULE,
                          seed: int = 0, progress: bool = True) -> CourseData:
    """Make preference pairs the way notebook 02 does, in miniature: :func:`smolsynth.preferences.preference_dataset`
    (two answers per instruction from :data:`~smolsynth.preferences.DEFAULT_GENERATORS`, judged by UltraFeedback with
    constrained decoding, binarized with ``rule``). Ties and failures are dropped and counted in ``reports``.
    """
    from smolsynth.models import resolve_model
    from smolsynth.preferences import preference_dataset

    chosen = _instructions(instructions, rows)
    model_id = resolve_model(model)
    pairs = preference_dataset(chosen, model=model_id, max_new_tokens=max_new_tokens,
                               max_rationale_chars=rationale_chars, rule=rule, seed=seed,  # type: ignore[arg-type]
                               progress=progress)
    return CourseData(dataset=pairs.dataset, source="made", path=data_path("dpo"),
                      note=f"Made {len(pairs.rows)} preference pairs on the spot from {len(chosen)} instructions: "
                           f"two answers each from {model_id}, judged by UltraFeedback on the same model, binarized "
                           f"with the {rule} rule.",
                      reports=list(pairs.steps))


def preference_pairs(*, rows: int | None = None, min_rows: int = 2, instructions: Any = None,
                     model: str | None = None, max_new_tokens: int = ANSWER_TOKENS, rationale_chars: int = 200,
                     rule: str = DEFAULT_RULE, path: str | Path | None = None, seed: int = 0,
                     progress: bool = True) -> CourseData:
    """Notebook 02's preference pairs if saved (at most ``rows`` of them), else pairs made on the spot.

    The saved pairs (``path``, default ``data_path("dpo")``) are used when they read back in the format DPO takes and
    at least ``min_rows`` of them differ in chosen and rejected; otherwise :func:`make_preference_pairs` makes them
    from ``rows`` instructions. Raises ValueError when fewer than ``min_rows`` pairs survive (ask for more ``rows``).
    """
    from smolsynth.formats import validate_dpo_dataset

    return _load_or_make("dpo", what="preference pairs of notebook 02", unit="pairs",
                         validate=validate_dpo_dataset, path=path, rows=rows, min_rows=min_rows,
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
