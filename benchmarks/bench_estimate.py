"""The pre-flight estimate against the run it estimates: ``estimate_recipe`` (a pilot), then the same recipe for real.

Not a test: run it by hand on an idle machine and copy the table into benchmarks/README.md ("The pre-flight
estimate")::

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_estimate.py --rows 100

The recipe: Magpie ``--rows`` instructions (128 tokens), then greedy answers ("at most three short sentences", 128
tokens), the result cache off in both, on the embedded SmolLM2-135M. Both run in this process, the estimate first;
the model is loaded once (the estimate counts its load apart), so the table compares the steps' seconds.

``--fit`` measures instead what the estimate's batch-cost model rests on (``recipes.STEP_COST_ROWS``): the recipe at
10, 20 and 40 rows (one batch each), each step's seconds fitted as ``a + b * rows``; ``a / b`` is how many rows cost
as much as the batch's fixed part (the decoding steps themselves), the ``k`` of ``1 + rows / k``.
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
    parser.add_argument("--fit", action="store_true", help="fit the batch-cost model instead (see above)")
    args = parser.parse_args()

    from smolsynth.recipes import estimate_recipe, run_recipe

    if args.fit:
        fit(args.model)
        return

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


def fit(model: str, sizes: tuple = (10, 20, 40)) -> None:
    import contextlib
    import io

    import torch

    from smolsynth.llm import LocalLLM
    from smolsynth.recipes import run_recipe

    LocalLLM(model).load()
    times: dict = {}
    for rows in sizes:
        with tempfile.TemporaryDirectory() as folder, contextlib.redirect_stdout(io.StringIO()):
            record = run_recipe(recipe(rows), Path(folder) / "run", model=model, progress=False)
        for step in record["steps"]:
            times.setdefault(step["kind"], []).append((step["report"]["rows_in"], step["report"]["compute_seconds"]))
    print(f"torch threads: {torch.get_num_threads()}")
    for kind, points in times.items():
        n = len(points)
        mean_x, mean_y = sum(x for x, _ in points) / n, sum(y for _, y in points) / n
        b = sum((x - mean_x) * (y - mean_y) for x, y in points) / sum((x - mean_x) ** 2 for x, _ in points)
        a = mean_y - b * mean_x
        print(f"{kind}: {', '.join(f'{x} rows {y:.1f} s' for x, y in points)}; a = {a:.2f} s, b = {b:.3f} s/row, "
              f"k = a/b = {a / b:.0f}")


if __name__ == "__main__":
    main()
