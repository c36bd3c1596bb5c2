"""The pre-flight estimate against the run it estimates: ``estimate_recipe`` (a pilot), then the same recipe for real.

Not a test: run it by hand on an idle machine and copy the table into benchmarks/README.md ("The pre-flight
estimate")::

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_estimate.py --rows 100

The recipe: Magpie ``--rows`` instructions (128 tokens), then greedy answers ("at most three short sentences", 128
tokens), the result cache off in both, on the embedded SmolLM2-135M. Both run in this process, the estimate first;
the model is loaded once (the estimate counts its load apart), so the table compares the steps' seconds.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def recipe(rows: int) -> dict:
    return {"name": "estimate-bench", "seed": 0, "step": [
        {"kind": "magpie", "rows": rows, "max_new_tokens": 128, "cache": False},
        {"kind": "answers", "system_prompt": "Answer in at most three short sentences.", "temperature": 0.0,
         "max_new_tokens": 128, "cache": False},
    ]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100)
    parser.add_argument("--pilot-rows", type=int, default=10)
    parser.add_argument("--model", default="smolsynth/smollm2-135m")
    args = parser.parse_args()

    from smolsynth.recipes import estimate_recipe, run_recipe

    estimate = estimate_recipe(recipe(args.rows), model=args.model, pilot_rows=args.pilot_rows)
    print(estimate)
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        record = run_recipe(recipe(args.rows), Path(folder) / "run", model=args.model, progress=False)
        total = time.perf_counter() - started
    steps = [s for s in estimate.steps if s["kind"] != "load"]
    print("\n| step | estimated rows out | actual rows out | estimated tokens | actual tokens | estimated time | "
          "actual time |\n|---|---|---|---|---|---|---|")
    for est, done in zip(steps, record["steps"]):
        report = done["report"]
        print(f"| {done['kind']} | {est['rows_out']:.0f} | {report['rows_out']} | {est['tokens']:,.0f} | "
              f"{report['input_tokens'] + report['output_tokens']:,} | {est['minutes'] * 60:.1f} s | "
              f"{done['seconds']:.1f} s |")
    estimated = sum(s["minutes"] for s in steps) * 60
    print(f"| steps in all | | | | | {estimated:.1f} s | {total:.1f} s ({(estimated / total - 1) * 100:+.0f}%) |")


if __name__ == "__main__":
    main()
