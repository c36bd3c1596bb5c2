"""The whole course path in miniature: instructions -> two responses each -> judged -> pairs -> SFT -> DPO.

``smolsynth demo`` (the README's first command) runs :func:`run_demo`. Every stage is the real one the notebooks
teach, at toy size: Magpie writes the instructions, two generators (the same model with two different system
prompts and temperatures, as when only one model fits in memory) write the responses, UltraFeedback judges them with
constrained decoding so that every judgment parses, the ratings become chosen/rejected pairs, and TRL trains a few SFT
steps and then a few DPO steps from the saved SFT checkpoint. Without the Hub it runs on ``smolsynth/tiny``, whose
text is noise made by the real machinery.

Everything lands under ``out/``: each dataset as Parquet and JSONL, the checkpoints, and ``summary.json`` /
``summary.md`` with rows in and out, rows dropped by reason and seconds per stage.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from smolsynth.report import Report

def _save(dataset: Any, out: Path, name: str) -> None:
    from datasets.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars

    was_disabled = are_progress_bars_disabled()
    disable_progress_bars()  # a bar per tiny file is noise
    try:
        dataset.to_parquet(str(out / f"{name}.parquet"))
        dataset.to_json(str(out / f"{name}.jsonl"), lines=True, force_ascii=False)
    finally:
        if not was_disabled:
            enable_progress_bars()


def _used(result: Any) -> int:
    return int(result.metrics.get("train_rows", 0)) + int(result.metrics.get("eval_rows", 0))


def run_demo(out: str | Path = "demo-output", *, model: str | None = None, rows: int = 8, steps: int = 4,
             seed: int = 0, max_new_tokens: int = 48, progress: bool = True) -> dict[str, Any]:
    """Run the demo and return its summary (also written to ``out/summary.json`` and ``out/summary.md``).

    ``model`` defaults to ``$SMOLSYNTH_MODEL``, else the hardware profile's model, else, when that model cannot be
    had offline, ``smolsynth/tiny``. ``rows`` instructions are generated; SFT and DPO each train ``steps`` steps.
    """
    if rows < 2:
        raise ValueError(f"rows={rows}: the demo needs at least 2 instructions to make pairs; e.g. --rows 8.")
    if steps < 1:
        raise ValueError(f"steps={steps}: train at least one step; e.g. --steps 4.")
    from smolsynth.instructions import magpie, to_sft
    from smolsynth.models import resolve_model
    from smolsynth.preferences import DEFAULT_GENERATORS, binarize, judge, pool_responses
    from smolsynth.training import dpo, sft

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model_id = resolve_model(model, fallback_to_tiny=True)
    started = time.perf_counter()
    reports: list[Report] = []
    print(f"smolsynth demo: model {model_id}, {rows} instructions, {steps} training steps each -> {out}/")

    # 1. instructions, Magpie-style: the model writes the user's turn from the bare pre-query template
    result = magpie(rows, model=model_id, only_instruction=True, max_new_tokens=max_new_tokens, seed=seed,
                    progress=progress)
    reports.extend(result.stages)
    instructions = result.dataset.select_columns(["instruction"])
    _save(instructions, out, "instructions")

    # 2. two responses per instruction, from two generators (one model, two system prompts and temperatures)
    pooled = pool_responses(instructions, [replace(g, model=model_id) for g in DEFAULT_GENERATORS],
                            max_new_tokens=max_new_tokens, seed=seed, progress=progress)
    reports.extend(pooled.steps)
    responses = pooled.dataset
    _save(responses, out, "responses")

    # 3. judge: UltraFeedback's prompt; decoding constrained to the format its parser reads, one rating per response
    result = judge(responses, model=model_id, seed=seed, progress=progress)
    reports.append(result.report)
    judged = result.dataset
    _save(judged, out, "judged")

    # 4. pairs: chosen = best rated, rejected = a random other response (ultrafeedback_binarized); ties dropped
    result = binarize(judged, rule="best-vs-random", seed=seed)
    reports.append(result.report)
    preferences = result.dataset
    _save(preferences, out, "preferences")

    # 5. SFT on the instructions with the first generator's responses
    sft_data = to_sft([{"instruction": r["instruction"], "generation": r["generations"][0]} for r in responses])
    reports.append(sft_data.report)
    _save(sft_data.dataset, out, "sft")
    t = time.perf_counter()
    sft_result = sft(sft_data.dataset, model=model_id, output_dir=str(out / "sft-model"), max_steps=steps, seed=seed)
    reports.append(Report("SFT (train + eval rows)", rows_in=len(sft_data.dataset), rows_out=_used(sft_result),
                          dropped=dict(sft_result.metrics.get("dropped_rows") or {}), model=model_id,
                          seconds=time.perf_counter() - t))

    # 6. DPO from the saved SFT checkpoint (its own reference: margins start at 0)
    dpo_result = None
    if len(preferences) >= 2:
        t = time.perf_counter()
        dpo_result = dpo(preferences, model=sft_result.output_dir, output_dir=str(out / "dpo-model"),
                         max_steps=steps, seed=seed)
        reports.append(Report("DPO (train + eval rows)", rows_in=len(preferences), rows_out=_used(dpo_result),
                              dropped=dict(dpo_result.metrics.get("dropped_rows") or {}),
                              model=sft_result.output_dir, seconds=time.perf_counter() - t))
    else:
        print(f"DPO skipped: {len(preferences)} pair(s) survived the judge; it needs at least 2 (see summary.md).")

    summary = {
        "model": model_id,
        "seconds": round(time.perf_counter() - started, 1),
        "stages": [r.as_dict() for r in reports],
        "datasets": {name: f"{name}.parquet" for name in ("instructions", "responses", "judged", "preferences",
                                                          "sft")},
        "checkpoints": {"sft": sft_result.output_dir, "dpo": dpo_result.output_dir if dpo_result else None},
        "metrics": {"sft": sft_result.metrics, "dpo": dpo_result.metrics if dpo_result else None},
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    table = str(Report.combine(reports))
    (out / "summary.md").write_text(f"# smolsynth demo\n\nModel: `{model_id}`; total {summary['seconds']} s.\n\n"
                                    f"```\n{table}\n```\n")
    print(table)
    print(f"done in {summary['seconds']} s; datasets, checkpoints and summary in {out}/")
    return summary
