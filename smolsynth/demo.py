"""The whole course path in miniature: instructions -> two responses each -> judged -> pairs -> SFT -> DPO.

``smolsynth demo`` (the README's first command) runs :func:`run_demo`. Every stage is the real one the notebooks
teach, at toy size: Magpie writes the instructions, two generators (the same model with two different system
prompts and temperatures, as when only one model fits in memory) write the responses, UltraFeedback judges them with
constrained decoding so that every judgment parses, the ratings become chosen/rejected pairs, and TRL trains a few SFT
steps and then a few DPO steps from the saved SFT checkpoint. Without the Hub it runs on the embedded SmolLM2-135M
(``smolsynth/smollm2-135m``, :mod:`smolsynth.offline`), so what it writes is text a person can read.

Everything lands under ``out/``: each dataset as Parquet and JSONL, the checkpoints, and ``summary.json`` /
``summary.md`` with rows in and out, rows dropped by reason and seconds per stage.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from smolsynth.preferences import ANSWER_TOKENS
from smolsynth.report import Report


def _save(rows: Any, out: Path, name: str) -> None:
    from smolsynth.rows import to_dataset
    from smolsynth.verbosity import no_progress_bars

    dataset = to_dataset(rows) if isinstance(rows, list) else rows
    with no_progress_bars():  # a bar per tiny file is noise
        dataset.to_parquet(str(out / f"{name}.parquet"))
        dataset.to_json(str(out / f"{name}.jsonl"), lines=True, force_ascii=False)


def run_demo(out: str | Path = "demo-output", *, model: str | None = None, rows: int = 8, steps: int = 4,
             seed: int = 0, max_new_tokens: int = ANSWER_TOKENS, progress: bool = True) -> dict[str, Any]:
    """Run the demo and return its summary (also written to ``out/summary.json`` and ``out/summary.md``).

    ``model`` defaults to ``$SMOLSYNTH_MODEL``, else the hardware profile's model, else, when that model cannot be
    had offline, the embedded one. ``rows`` instructions are generated; SFT and DPO each train ``steps`` steps.
    """
    from smolsynth.arguments import check_number
    from smolsynth.formats import GENERATION, GENERATIONS, INSTRUCTION, to_sft
    from smolsynth.instructions import magpie
    from smolsynth.models import resolve_model
    from smolsynth.preferences import DEFAULT_RULE, preference_dataset
    from smolsynth.training import dpo, sft

    from smolsynth.arguments import check_path

    check_path("out", out)
    check_number("rows", rows, minimum=2, integer=True)
    check_number("steps", steps, minimum=1, integer=True)
    check_number("max_new_tokens", max_new_tokens, minimum=1, integer=True)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model_id = resolve_model(model, offline_fallback=True)
    started = time.perf_counter()
    reports: list[Report] = []
    print(f"smolsynth demo: model {model_id}, {rows} instructions, {steps} training steps each -> {out}/")

    # 1. instructions, Magpie-style: the model writes the user's turn from the bare pre-query template
    result = magpie(rows, model=model_id, only_instruction=True, max_new_tokens=192, seed=seed, progress=progress)
    reports.extend(result.steps)
    instructions = [{INSTRUCTION: r[INSTRUCTION]} for r in result.rows]
    _save(instructions, out, "instructions")

    # 2-4. two answers per instruction (one model, two system prompts and temperatures), judged by UltraFeedback with
    # constrained decoding, then pairs: chosen = best rated, rejected = a random strictly lower one
    pairs = preference_dataset(instructions, model=model_id, max_new_tokens=max_new_tokens, rule=DEFAULT_RULE,
                               seed=seed, progress=progress)
    reports.extend(pairs.steps)
    _save(pairs.intermediate["candidates"], out, "responses")
    _save(pairs.intermediate["judged"], out, "judged")
    _save(pairs.rows, out, "preferences")

    # 5. SFT on the instructions with the first (concise) generator's answers
    sft_data = to_sft([{INSTRUCTION: r[INSTRUCTION], GENERATION: r[GENERATIONS][0]}
                       for r in pairs.intermediate["candidates"]])
    reports.append(sft_data.report)
    _save(sft_data.rows, out, "sft")
    sft_result = sft(sft_data.rows, model=model_id, output_dir=str(out / "sft-model"), max_steps=steps, seed=seed)
    reports.append(sft_result.report)

    # 6. DPO from the saved SFT checkpoint (its own reference: margins start at 0)
    dpo_result = None
    if len(pairs.rows) >= 2:
        dpo_result = dpo(pairs.rows, model=sft_result.output_dir, output_dir=str(out / "dpo-model"),
                         max_steps=steps, seed=seed)
        reports.append(dpo_result.report)
    else:
        print(f"DPO skipped: {len(pairs.rows)} pair(s) survived the judge; it needs at least 2 (see summary.md).")

    gates: dict[str, int] = {}
    for r in reports:
        for reason, n in r.dropped.items():
            gates[reason] = gates.get(reason, 0) + n
    summary = {
        "model": model_id,
        "seconds": round(time.perf_counter() - started, 1),
        "dropped": gates,
        "stages": [r.as_dict() for r in reports],
        "datasets": {name: f"{name}.parquet" for name in ("instructions", "responses", "judged", "preferences",
                                                          "sft")},
        "checkpoints": {"sft": sft_result.output_dir, "dpo": dpo_result.output_dir if dpo_result is not None else None},
        "metrics": {"sft": sft_result.metrics, "dpo": dpo_result.metrics if dpo_result is not None else None},
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    table = str(Report.combine(reports))
    (out / "summary.md").write_text(f"# smolsynth demo\n\nModel: `{model_id}`; total {summary['seconds']} s.\n\n"
                                    f"```\n{table}\n```\n")
    print(table)
    print(f"done in {summary['seconds']} s; datasets, checkpoints and summary in {out}/")
    return summary
