"""The whole course path in miniature: instructions -> two responses each -> judged -> pairs -> SFT -> DPO.

``smolsynth demo`` (the README's first command) runs :func:`run_demo`. Every stage is the real one the notebooks
teach, at toy size: Magpie writes the instructions, two generators (the same model with two different system
prompts and temperatures, as when only one model fits in memory) write the responses, UltraFeedback judges them with
constrained decoding so that every judgment parses, the ratings become chosen/rejected pairs, and TRL trains a few SFT
steps and then a few DPO steps from the saved SFT checkpoint. When too few pairs survive the gates and the judge for
DPO, it writes more instructions first (up to :data:`ROUNDS` rounds). Without the Hub it runs on the embedded
SmolLM2-135M (``smolsynth/smollm2-135m``, :mod:`smolsynth.offline`), so what it writes is text a person can read.

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

MIN_PAIRS = 2
"""DPO needs at least this many pairs (one to train on, one to evaluate the start margin on)."""
RATIONALE_CHARS = 80
"""The judge's rationale per candidate, at most: one short sentence. On a CPU the judge's time is its decoding steps
(each reads the ~800-token prompt's cache again), and the rationale is most of them: 200 characters took 2.8 minutes
for 6 rows on the 2-core dev machine."""
ROUNDS = 3
"""Rounds of ``rows`` new instructions at most, until :data:`MIN_PAIRS` pairs survive the gates and the judge."""


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
    had offline, the embedded one. ``rows`` instructions are generated per round, in up to :data:`ROUNDS` rounds
    until :data:`MIN_PAIRS` pairs survive; SFT and DPO each train ``steps`` steps of one batch (no gradient
    accumulation: the demo shows the mechanics, and on a CPU each accumulated batch costs seconds).
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
    print(f"smolsynth demo: model {model_id}, {rows} instructions per round, {steps} training steps each -> {out}/")

    # 1-4, in rounds until DPO has pairs to learn from (a small judge ties often, and the gates drop cut-off
    # answers): instructions, Magpie-style (the model writes the user's turn from the bare pre-query template); two
    # answers per instruction (one model, two system prompts and temperatures), judged by UltraFeedback with
    # constrained decoding; pairs: chosen = best rated, rejected = a random strictly lower one
    instructions: list[dict[str, Any]] = []
    candidates: list[dict[str, Any]] = []
    judged: list[dict[str, Any]] = []
    preferences: list[dict[str, Any]] = []
    for round_ in range(ROUNDS):
        result = magpie(rows, model=model_id, only_instruction=True, max_new_tokens=192, seed=seed + round_,
                        progress=progress)
        reports.extend(result.steps)
        seen = {r[INSTRUCTION] for r in instructions}
        new = [{INSTRUCTION: r[INSTRUCTION]} for r in result.rows if r[INSTRUCTION] not in seen]
        instructions.extend(new)
        if new:
            pairs = preference_dataset(new, model=model_id, max_new_tokens=max_new_tokens, rule=DEFAULT_RULE,
                                       max_rationale_chars=RATIONALE_CHARS, seed=seed + round_, progress=progress)
            reports.extend(pairs.steps)
            candidates.extend(pairs.intermediate["candidates"])
            judged.extend(pairs.intermediate["judged"])
            preferences.extend(pairs.rows)
        for name, data in (("instructions", instructions), ("responses", candidates), ("judged", judged),
                           ("preferences", preferences)):
            _save(data, out, name)  # after every round: an interrupted demo keeps what it made
        if len(preferences) >= MIN_PAIRS or round_ == ROUNDS - 1:
            break
        print(f"Round {round_ + 1}: {len(preferences)} pair(s) so far; DPO needs {MIN_PAIRS}: "
              f"{rows} more instructions.")

    # 5. SFT on the instructions with the first (concise) generator's answers: a few steps, one batch each
    sft_data = to_sft([{INSTRUCTION: r[INSTRUCTION], GENERATION: r[GENERATIONS][0]} for r in candidates])
    reports.append(sft_data.report)
    _save(sft_data.rows, out, "sft")
    sft_result = dpo_result = None
    if sft_data.rows:
        sft_result = sft(sft_data.rows, model=model_id, output_dir=str(out / "sft-model"), max_steps=steps,
                         seed=seed, gradient_accumulation_steps=1)
        reports.append(sft_result.report)
    else:
        print("SFT and DPO skipped: no instruction got an answer that passed the gates (see summary.md).")

    # 6. DPO from the saved SFT checkpoint (its own reference: margins start at 0)
    if sft_result is not None and len(preferences) >= MIN_PAIRS:
        dpo_result = dpo(preferences, model=sft_result.output_dir, output_dir=str(out / "dpo-model"),
                         max_steps=steps, seed=seed, gradient_accumulation_steps=1)
        reports.append(dpo_result.report)
    elif sft_result is not None:
        print(f"DPO skipped: {len(preferences)} pair(s) survived the judge in {ROUNDS} rounds; it needs at least "
              f"{MIN_PAIRS} (see summary.md).")

    trained = {"sft": sft_result, "dpo": dpo_result}
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
        "checkpoints": {name: r.output_dir if r is not None else None for name, r in trained.items()},
        "metrics": {name: r.metrics if r is not None else None for name, r in trained.items()},
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    table = str(Report.combine(reports))
    (out / "summary.md").write_text(f"# smolsynth demo\n\nModel: `{model_id}`; total {summary['seconds']} s.\n\n"
                                    f"```\n{table}\n```\n")
    print(table)
    print(f"done in {summary['seconds']} s; datasets, checkpoints and summary in {out}/")
    return summary
