"""How many of the embedded SmolLM2-135M's answers finish (end with <|im_end|>) within a token budget?

One decoding run per setting at the largest budget (a KV-cache loop like ``generate``'s that drops finished rows);
a smaller budget B is read off the same run (the first B tokens do not depend on the budget), and its wall time is
the time at decoding step B.
Also times Magpie-style instruction sampling from the chat template's pre-query text.

    SMOLSYNTH_HOME=/tmp/offh .venv/bin/python benchmarks/bench_offline_budgets.py [THREADS] > /tmp/offline_bench.jsonl
"""

from __future__ import annotations

import json
import sys
import time

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from smolsynth.handoff import SAMPLE_INSTRUCTIONS
from smolsynth.offline import embedded_model_path

BUDGETS = (128, 192, 256, 384)
SETTINGS = [  # name, system prompt (None: SmolLM2's default), temperature (0: greedy)
    ("c briefly and precisely, greedy", "You are a helpful assistant. Answer briefly and precisely.", 0.0),
    ("b three short sentences, greedy", "You are a helpful assistant. Answer in at most three short sentences.", 0.0),
    ("a default system, greedy", None, 0.0),
    ("d step by step, greedy", "You are a helpful assistant. Explain your answer step by step.", 0.0),
    ("c briefly and precisely, T=0.7", "You are a helpful assistant. Answer briefly and precisely.", 0.7),
    ("d step by step, T=1.0", "You are a helpful assistant. Explain your answer step by step.", 1.0),
]
EXTRA = [  # python bench_offline_budgets.py THREADS extra: greedy loops are what keeps answers from finishing
    ("b three short sentences, greedy, repetition_penalty 1.2",
     "You are a helpful assistant. Answer in at most three short sentences.", 0.0, 1.2),
    ("d step by step, greedy, repetition_penalty 1.2",
     "You are a helpful assistant. Explain your answer step by step.", 0.0, 1.2),
]
PRE_QUERY = ("<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
             "<|im_start|>user\n")


def decode(model, batch, max_new_tokens: int, eos: int, temperature: float = 0.0,
           repetition_penalty: float = 1.0):
    """Greedy (``temperature=0``) or plain sampling (top_p 1, top_k 0) with a KV cache, dropping each row from the
    batch as soon as it writes ``eos`` (``generate`` keeps finished rows to the end, which costs 2-3x here).
    ``repetition_penalty`` works like ``generate``'s (over the prompt and the answer so far).
    Returns the new tokens per row (up to and including ``eos``) and the wall time after each decoding step."""
    from transformers import DynamicCache

    mask = batch["attention_mask"]
    ids = batch["input_ids"]
    cache = DynamicCache(config=model.config)
    rows = list(range(ids.shape[0]))
    out: list[list[int]] = [[] for _ in rows]
    times: list[float] = []
    start = time.perf_counter()
    position = (mask.cumsum(-1) - 1).clamp(min=0)
    step_input, step_pos = ids, position
    seen = [[t for t, m in zip(row, keep) if m] for row, keep in zip(ids.tolist(), mask.tolist())]
    for _ in range(max_new_tokens):
        logits = model(input_ids=step_input, attention_mask=mask, position_ids=step_pos, past_key_values=cache,
                       use_cache=True, logits_to_keep=1).logits[:, -1, :]
        if repetition_penalty != 1.0:
            for i, row in enumerate(rows):
                index = torch.tensor(sorted(set(seen[row])))
                picked = logits[i, index]
                logits[i, index] = torch.where(picked > 0, picked / repetition_penalty, picked * repetition_penalty)
        if temperature:
            nxt = torch.multinomial(torch.softmax(logits / temperature, dim=-1), 1)[:, 0]
        else:
            nxt = logits.argmax(-1)
        keep = []
        for i, (row, tok) in enumerate(zip(rows, nxt.tolist())):
            out[row].append(tok)
            seen[row].append(tok)
            if tok != eos:
                keep.append(i)
        times.append(time.perf_counter() - start)
        if not keep:
            break
        index = torch.tensor(keep)
        if len(keep) < len(rows):
            cache.batch_select_indices(index)
        rows = [rows[i] for i in keep]
        step_pos = step_pos[index, -1:] + 1
        mask = torch.cat([mask[index], torch.ones(len(keep), 1, dtype=mask.dtype)], dim=-1)
        step_input = nxt[index].unsqueeze(-1)
    return out, times


def main() -> None:
    torch.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 2)
    path = embedded_model_path()
    tok = AutoTokenizer.from_pretrained(path)
    tok.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    eos = tok.convert_tokens_to_ids("<|im_end|>")
    results = {"settings": [], "magpie": None}
    extra = len(sys.argv) > 2 and sys.argv[2] == "extra"
    if not extra:  # Magpie: instructions sampled from the template's pre-query text
        batch = tok([PRE_QUERY] * 16, return_tensors="pt", add_special_tokens=False)
        torch.manual_seed(0)
        with torch.inference_mode():
            new, times = decode(model, batch, 64, eos, 1.0)
        lengths = [row.index(eos) + 1 if eos in row else None for row in new]
        texts = [tok.decode(row[: (n or len(row))], skip_special_tokens=True) for row, n in zip(new, lengths)]
        results["magpie"] = {"wall_s": round(times[-1], 1), "finished": sum(n is not None for n in lengths) / 16,
                             "lengths": lengths, "instructions": texts}
        print("magpie", json.dumps(results["magpie"]), file=sys.stderr, flush=True)
    for name, system, temperature, *penalty in (EXTRA if extra else SETTINGS):
        chats = [([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": q}]
                 for q in SAMPLE_INSTRUCTIONS]
        texts = [tok.apply_chat_template(c, tokenize=False, add_generation_prompt=True) for c in chats]
        batch = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        torch.manual_seed(0)
        with torch.inference_mode():
            new, times = decode(model, batch, max(BUDGETS), eos, temperature, *penalty)
        total = times[-1]
        lengths = [row.index(eos) + 1 if eos in row else None for row in new]  # tokens incl. <|im_end|>
        answers = [tok.decode(row[: (n or len(row))], skip_special_tokens=True) for row, n in zip(new, lengths)]
        per_budget = {}
        for b in BUDGETS:
            done = [n for n in lengths if n is not None and n <= b]
            wall = times[min(b, len(times)) - 1]
            per_budget[b] = {"finished": len(done) / len(lengths), "mean_tokens": sum(done) / len(done) if done else
                             None, "wall_s": round(wall, 1)}
        results["settings"].append({"name": name, "total_s": round(total, 1), "lengths": lengths,
                                    "tokens_per_s": round(sum(len(r) for r in new) / total, 1),
                                    "budgets": per_budget, "answers": answers})
        print(name, json.dumps(per_budget), file=sys.stderr, flush=True)
        print(json.dumps(results), file=sys.stdout, flush=True)  # partial results after each setting

if __name__ == "__main__":
    main()
