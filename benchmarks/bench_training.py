"""Training throughput on this machine: SFT examples/s and DPO pairs/s through smolsynth.training (real TRL).

Not a test: run it by hand and copy the table into benchmarks/README.md ("Training")::

    SMOLSYNTH_MODEL=smolsynth/tiny HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_training.py
    .venv/bin/python benchmarks/bench_training.py --model smollm2-135m-shape --rows 8 --steps 2   # slow on CPU

Three measurements, side by side in one run:

1. **demo size**: SFT then DPO on 16 rows, 4 steps each, from the tiny model, wall time of each call (model load,
   tokenisation, step-0 evaluation, training, final evaluation, saving): what the end-to-end demo pays;
2. **throughput**: ``--rows`` rows at about ``--tokens`` tokens per sequence, one epoch, batch 8: examples (pairs)
   per second of ``trainer.train()`` only, as ``result.metrics["examples_per_second"]``;
3. optionally the same for a randomly initialised model with the shape of SmolLM2-135M (``--model
   smollm2-135m-shape``; the tiny tokenizer is used, so sequences hold more tokens per word than SmolLM2's would).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

WORDS = ("the model learns to answer short questions about numbers colours animals and places with one clear "
         "sentence that names the thing asked for and stops").split()


def _text(i: int, n_words: int) -> str:
    return " ".join(WORDS[(i * 7 + k) % len(WORDS)] for k in range(n_words))


def chats(n: int, words: int):
    from datasets import Dataset

    return Dataset.from_list([{"messages": [
        {"role": "user", "content": f"Question {i}: " + _text(i, words // 3)},
        {"role": "assistant", "content": _text(i + 1, words - words // 3)}]} for i in range(n)])


def pairs(n: int, words: int):
    from datasets import Dataset

    return Dataset.from_list([{
        "prompt": [{"role": "user", "content": f"Question {i}: " + _text(i, words // 3)}],
        "chosen": [{"role": "assistant", "content": _text(i + 1, words - words // 3)}],
        "rejected": [{"role": "assistant", "content": _text(i + 5, words - words // 3)}]} for i in range(n)])


def smollm2_135m_shape(folder: Path) -> str:
    """A random model with SmolLM2-135M's architecture (30 layers, hidden 576), saved with the tiny tokenizer."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from smolsynth.models import model_path

    tok = AutoTokenizer.from_pretrained(model_path("smolsynth/tiny"))
    cfg = LlamaConfig(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                      num_attention_heads=9, num_key_value_heads=3, max_position_embeddings=2048,
                      tie_word_embeddings=True, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    torch.manual_seed(0)
    LlamaForCausalLM(cfg).save_pretrained(folder)
    tok.save_pretrained(folder)
    return str(folder)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="tiny", choices=["tiny", "smollm2-135m-shape"])
    ap.add_argument("--rows", type=int, default=128, help="rows for the throughput runs")
    ap.add_argument("--tokens", type=int, default=256, help="approximate tokens per sequence")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=None, help="cap the throughput runs at this many steps")
    ap.add_argument("--lora", action="store_true")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's choice)")
    args = ap.parse_args()

    t0 = time.perf_counter()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)

    from smolsynth.training import dpo, sft

    import_s = time.perf_counter() - t0
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs, load average "
          f"{load:.2f} at start; imports {import_s:.1f} s")
    tmp = Path(tempfile.mkdtemp(prefix="bench-training-"))
    words = max(8, int(args.tokens / 1.9))  # ~1.9 tiny-tokenizer tokens per word on this text, chat markup included

    # 1. demo size, from the tiny model, the way the demo calls it
    t = time.perf_counter()
    s = sft(chats(16, 24), model="smolsynth/tiny", output_dir=str(tmp / "demo-sft"), max_steps=4)
    sft_wall = time.perf_counter() - t
    t = time.perf_counter()
    d = dpo(pairs(16, 24), model=s.output_dir, output_dir=str(tmp / "demo-dpo"), max_steps=4)
    dpo_wall = time.perf_counter() - t
    print(f"\ndemo size (16 rows, 4 steps each, tiny model): SFT {sft_wall:.2f} s (train {s.train_seconds:.2f} s), "
          f"DPO {dpo_wall:.2f} s (train {d.train_seconds:.2f} s), together {sft_wall + dpo_wall:.2f} s")

    # 2./3. throughput
    model = "smolsynth/tiny" if args.model == "tiny" else smollm2_135m_shape(tmp / "smollm2-135m-shape")
    common = dict(max_steps=args.steps, eval_fraction=0, lora=args.lora or None, per_device_train_batch_size=args.batch,
                  gradient_accumulation_steps=1, max_length=max(64, 2 * args.tokens))
    s = sft(chats(args.rows, words), model=model, output_dir=str(tmp / "sft"), **common)
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(s.output_dir)
    sample = tok(tok.apply_chat_template(chats(1, words)[0]["messages"], tokenize=False))["input_ids"]
    d = dpo(pairs(args.rows, words), model=s.output_dir, output_dir=str(tmp / "dpo"), check_start_margin=False,
            **common)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"\nthroughput ({args.model}{' + LoRA' if args.lora else ''}, {s.metrics['model_params'] / 1e6:.2f}M "
          f"params, ~{len(sample)} tokens/sequence, batch {args.batch}, fp32 CPU):")
    print("| method | steps | train s | throughput | s/step |")
    print("|---|---|---|---|---|")
    for name, r, unit in (("SFT", s, "examples/s"), ("DPO", d, "pairs/s")):
        steps = r.metrics["train_steps"]
        print(f"| {name} | {steps} | {r.train_seconds:.2f} | {r.metrics['examples_per_second']:.3g} {unit} "
              f"| {r.train_seconds / steps:.3f} |")
    print(f"peak RSS {rss:.2f} GB")


if __name__ == "__main__":
    main()
