"""Does training do anything? A teacher, a student, and the effect of SFT then DPO measured on held-out prompts.

Not a test: run it by hand (offline, on the embedded SmolLM2-135M-Instruct by default) and copy the result into
benchmarks/README.md ("Training effect")::

    .venv/bin/python benchmarks/training_effect.py                       # ~10 min on 2 CPU cores
    .venv/bin/python benchmarks/training_effect.py --model smolsynth/tiny --prompts 6 --held-out 4   # plumbing

The loop (smolsynth.distillation):

1. the **teacher** (the same model with a rule and three demonstrations in its context) answers the training prompts
   and the held-out prompts; only answers that end with "Hope this helps!" are kept;
2. **SFT** (TRL, LoRA) trains the **student** on the teacher's training answers *without* the teacher's context;
   the trait rate is the share of the student's greedy answers to the held-out prompts that end with the line,
   before and after;
3. **DPO** (TRL, LoRA, the adapter-disabled model as reference) from the SFT checkpoint, on pairs that differ only
   by the closing line (chosen: the teacher's answer; rejected: the same answer without it); the held-out
   preference accuracy is the share of held-out pairs whose chosen answer gets the higher implicit reward,
   before (0.5: the policy is its reference) and after. The trait rate is measured again after DPO.

It prints, last::

    sft_trait_before=<x> sft_trait_after=<y> dpo_pref_acc_before=<a> dpo_pref_acc_after=<b>
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


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smolsynth/smollm2-135m", help="teacher and student (default: the "
                        "embedded SmolLM2-135M-Instruct)")
    parser.add_argument("--prompts", type=int, default=40, help="training prompts for the teacher (max 40)")
    parser.add_argument("--held-out", type=int, default=16, help="held-out prompts (max 16)")
    parser.add_argument("--samples", type=int, default=2, help="teacher tries per prompt")
    parser.add_argument("--sft-epochs", type=float, default=3)
    parser.add_argument("--sft-lr", type=float, default=5e-4, help="SFT learning rate (notebook 03's; 0: the "
                        "profile's)")
    parser.add_argument("--dpo-epochs", type=float, default=2)
    parser.add_argument("--dpo-lr", type=float, default=5e-5, help="DPO learning rate (notebook 04's; 0: the "
                        "profile's)")
    parser.add_argument("--beta", type=float, default=0.1)
    parser.add_argument("--max-new-tokens", type=int, default=160)
    parser.add_argument("--out", default=None, help="folder for the checkpoints (default: a temporary one)")
    args = parser.parse_args(argv)

    from smolsynth import distillation as dist
    from smolsynth.training import dpo, measured, sft

    started = time.perf_counter()
    out = Path(args.out or tempfile.mkdtemp(prefix="training-effect-"))
    train_prompts = list(dist.TRAINING_PROMPTS[:args.prompts])
    held_out = list(dist.HELD_OUT_PROMPTS[:args.held_out])
    seconds: dict[str, float] = {}

    t = time.perf_counter()
    teacher = dist.teacher_answers(train_prompts, model=args.model, samples=args.samples,
                                   max_new_tokens=args.max_new_tokens)
    held_teacher = dist.teacher_answers(held_out, model=args.model, samples=args.samples,
                                        max_new_tokens=args.max_new_tokens, seed=1)
    held_pairs = dist.trait_pairs(held_teacher.rows)
    seconds["teacher"] = time.perf_counter() - t
    print(f"teacher: {teacher.report}\nheld-out teacher: {held_teacher.report}", flush=True)
    out.mkdir(parents=True, exist_ok=True)
    teacher.dataset.to_json(str(out / "teacher.jsonl"))  # to read what the student learned from
    held_pairs.dataset.to_json(str(out / "held_out_pairs.jsonl"))

    t = time.perf_counter()
    before = dist.trait_rate(args.model, held_out, max_new_tokens=args.max_new_tokens)
    seconds["trait rate (base)"] = time.perf_counter() - t
    print(before, flush=True)

    sft_overrides = {"learning_rate": args.sft_lr} if args.sft_lr else {}
    with measured() as sft_cost:
        sft_run = sft(teacher.rows, model=args.model, output_dir=str(out / "sft"), lora=True,
                      num_train_epochs=args.sft_epochs, eval_fraction=0, **sft_overrides)
    seconds["sft"] = sft_cost.seconds
    print(f"SFT: {sft_run.metrics['train_steps']} steps, {sft_cost}", flush=True)

    t = time.perf_counter()
    after_sft = dist.trait_rate(sft_run.output_dir, held_out, max_new_tokens=args.max_new_tokens)
    seconds["trait rate (SFT)"] = time.perf_counter() - t
    print(after_sft, flush=True)

    pairs = dist.trait_pairs(teacher.rows)
    dpo_overrides = {"learning_rate": args.dpo_lr} if args.dpo_lr else {}
    with measured() as dpo_cost:
        dpo_run = dpo(pairs.rows, model=sft_run.output_dir, output_dir=str(out / "dpo"), lora=True,
                      beta=args.beta, num_train_epochs=args.dpo_epochs, eval_fraction=0, **dpo_overrides)
    seconds["dpo"] = dpo_cost.seconds
    print(f"DPO: {dpo_run.metrics['train_steps']} steps, {dpo_cost}", flush=True)

    t = time.perf_counter()
    acc_before = dist.preference_accuracy(sft_run.output_dir, held_pairs.rows, reference=sft_run.output_dir,
                                          beta=args.beta)
    acc_after = dist.preference_accuracy(dpo_run.output_dir, held_pairs.rows, reference=sft_run.output_dir,
                                         beta=args.beta)
    after_dpo = dist.trait_rate(dpo_run.output_dir, held_out, max_new_tokens=args.max_new_tokens)
    seconds["after DPO"] = time.perf_counter() - t
    print(after_dpo, flush=True)

    total = time.perf_counter() - started
    print("seconds: " + ", ".join(f"{k} {v:.0f}" for k, v in seconds.items()) + f"; total {total:.0f} "
          f"({total / 60:.1f} min); {len(teacher.rows)} SFT rows, {len(pairs.rows)} DPO pairs, "
          f"{len(held_pairs.rows)} held-out pairs; SFT lr {sft_run.config.learning_rate}, DPO lr "
          f"{dpo_run.config.learning_rate}, beta {args.beta}; dpo_trait_after={after_dpo.rate:.3f}")
    result = {"sft_trait_before": before.rate, "sft_trait_after": after_sft.rate,
              "dpo_pref_acc_before": acc_before, "dpo_pref_acc_after": acc_after}
    print(" ".join(f"{k}={v:.3f}" for k, v in result.items()), flush=True)
    return result


if __name__ == "__main__":
    main()
