"""Generation throughput: distilabel's TransformersLLM vs smolsynth's LocalLLM vs plain batched ``model.generate``.

The same chat prompts, the same sampling settings and a fixed number of new tokens (EOS ignored, so every system
writes exactly the same number of tokens) go through:

  (a) distilabel's ``TransformersLLM.generate`` (what distilabel offers for local models: one generate per prompt),
  (b) ``smolsynth.llm.LocalLLM.generate`` (our engine: length buckets, ``smolsynth.decoding.decode`` per bucket),
  (c) plain ``model.generate`` on left-padded batches of the same batch size, in the prompts' order,

in one process, interleaved (a, b, c, a, b, c, ...) after a warm-up round, several repeats; medians are reported,
as tokens per second. On a real model distilabel gets the first ``--distilabel-prompts`` prompts only (16: it writes
~13 tokens/s, one ``generate`` per prompt, so its rate does not depend on how many prompts it gets).
With ``--judge`` (the default for a real model) it then measures the judge's workload: constrained UltraFeedback
(``smolsynth.ultrafeedback.judge``, two candidates per row, rows paired from the hand-written probes' answers) in rows
per second, with the engine's speed-ups on and switched off (``smolsynth.decoding.speedups(all=False)``, the same
rows); and the cost of constrained decoding: the same judge prompts through the engine with the UltraFeedback grammar
vs unconstrained (``decoding.decode`` in one batch, each row ending after as many tokens as its constrained
judgment wrote).

The last lines are the ratios (higher is better for the engine)::

    engine_vs_distilabel=<engine tokens/s / distilabel tokens/s>
    engine_vs_raw_generate=<engine tokens/s / raw generate tokens/s>
    judge_speedup=<judge rows/s, speed-ups on / judge rows/s, speed-ups off>
    constrained_vs_free=<constrained tokens/s / unconstrained tokens/s>
    engine_vs_llamacpp=<engine tokens/s / llama.cpp tokens/s>   (when llama-cpp-python is installed)

On the embedded model, with llama-cpp-python installed (``pip install llama-cpp-python``: it builds from source, a
few minutes; never a CI requirement; benchmarks/README.md has the build flags for a CPU that reports AMX), (d)
llama.cpp runs the same model's Q4_1 GGUF, one request at a time (as Ollama serves one user), on the first 16
prompts.

Usage:

    SMOLSYNTH_MODEL=smolsynth/tiny HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_generation.py
    .venv/bin/python benchmarks/bench_generation.py --threads 1 --repeats 5
    .venv/bin/python benchmarks/bench_generation.py --model smolsynth/smollm2-135m   # the embedded real model
    .venv/bin/python benchmarks/bench_generation.py --device cuda   # a ~1.5B Qwen2-shaped model, random weights
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

TOPICS = ["the moon", "bread", "rivers", "a lost key", "chess", "tea", "volcanoes", "a small robot"]


def chat_prompts(n: int) -> list[list[dict]]:
    """``n`` chat prompts of varied length (1 to 6 sentences), deterministic."""
    prompts = []
    for i in range(n):
        sentences = " ".join(f"Mention {TOPICS[(i + k) % len(TOPICS)]}." for k in range(1 + i % 6))
        prompts.append([{"role": "user", "content": f"Write a short paragraph, number {i}. {sentences}"}])
    return prompts


def build_model(device: str, dtype: str, workdir: Path, model_id: str | None = None) -> str:
    """The model folder to benchmark: ``model_id`` when given (``smolsynth/tiny``, ``smolsynth/smollm2-135m``, a
    folder); else the tiny model on CPU, and on CUDA a Qwen2-1.5B-shaped model with random weights (throughput does
    not depend on the weights) and the tiny tokenizer, built locally (no download)."""
    from smolsynth.models import load_tokenizer, model_path, tiny_model_path

    if model_id:
        return model_path(model_id)
    if device != "cuda":
        return str(tiny_model_path())
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    tokenizer = load_tokenizer("smolsynth/tiny")
    config = Qwen2Config(vocab_size=151936, hidden_size=1536, intermediate_size=8960, num_hidden_layers=28,
                         num_attention_heads=12, num_key_value_heads=2, max_position_embeddings=4096,
                         tie_word_embeddings=True, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id, bos_token_id=None)
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = Qwen2ForCausalLM(config).to(getattr(torch, dtype))
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    path = workdir / "qwen2-1.5b-shape-random"
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    del model
    torch.cuda.empty_cache()
    print(f"built {sum(p.numel() for p in Qwen2ForCausalLM(config).parameters()) / 1e9:.2f}B-parameter "
          f"Qwen2-shaped model (random weights) at {path}", flush=True)
    return str(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--model", default=None,
                        help="smolsynth/tiny (the CPU default), smolsynth/smollm2-135m (the embedded real model), "
                             "or a folder")
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--distilabel-prompts", type=int, default=None,
                        help="prompts distilabel gets (default: all on the tiny model, 16 on a real one)")
    parser.add_argument("--max-new-tokens", type=int, default=None, help="default: 64 (tiny model), 48 (real model)")
    parser.add_argument("--judge", action=argparse.BooleanOptionalAction, default=None,
                        help="also measure the judge workload and constrained decoding (default: on for a real model)")
    parser.add_argument("--judge-rows", type=int, default=24)
    parser.add_argument("--batch-size", type=int, default=None, help="default: the engine's default for the model")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--skip-distilabel", action="store_true", help="only engine vs raw generate")
    args = parser.parse_args()

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    from smolsynth.llm import LocalLLM, default_batch_size
    from smolsynth.verbosity import import_distilabel

    if args.threads:
        torch.set_num_threads(args.threads)
    dtype = "float32" if args.device == "cpu" else ("bfloat16" if torch.cuda.get_device_capability()[0] >= 8
                                                    else "float16")
    from smolsynth.models import is_tiny

    workdir = Path(tempfile.mkdtemp(prefix="bench-generation-"))
    path = build_model(args.device, dtype, workdir, args.model)
    tiny = is_tiny(args.model) if args.model else args.device == "cpu"
    real = not tiny and args.device == "cpu"  # a real model on this CPU: shorter answers, distilabel on a subset
    batch_size = args.batch_size or default_batch_size("smolsynth/tiny" if tiny else (args.model or path))
    chats = chat_prompts(args.prompts)
    distilabel_chats = chats[:args.distilabel_prompts or (16 if real else len(chats))]
    n_new = args.max_new_tokens or (48 if real else 64)
    sampling = dict(temperature=0.7, top_p=1.0)

    # (b) the engine
    engine = LocalLLM(path, dtype=dtype, device=args.device, batch_size=batch_size)
    engine.load()
    model, tokenizer = engine._loaded.model, engine._loaded.tokenizer

    def run_engine() -> int:
        return output_tokens(engine.generate(chats, max_new_tokens=n_new, ignore_eos=True, **sampling))

    # (c) plain batched generate, same model object, same batch size, prompts in their given order
    texts = [tokenizer.apply_chat_template(c, tokenize=False, add_generation_prompt=True) for c in chats]

    def run_raw() -> int:
        produced = 0
        for i in range(0, len(texts), batch_size):
            enc = tokenizer(texts[i:i + batch_size], return_tensors="pt", padding=True,
                            add_special_tokens=False).to(model.device)
            with torch.inference_mode():
                out = model.generate(**enc, max_new_tokens=n_new, min_new_tokens=n_new, do_sample=True, top_k=0,
                                     pad_token_id=tokenizer.pad_token_id, **sampling)
            produced += (out.shape[1] - enc["input_ids"].shape[1]) * out.shape[0]
        return produced

    systems = {"engine": run_engine, "raw_generate": run_raw}

    # (a) distilabel's TransformersLLM (its own pipeline and its own copy of the model)
    if not args.skip_distilabel:
        hf = import_distilabel("distilabel.models.llms.huggingface")
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            distilabel_llm = hf.TransformersLLM(model=path, torch_dtype=dtype, device=args.device)
            distilabel_llm.load()
        pipe = distilabel_llm._pipeline
        for config in (pipe.model.generation_config, getattr(pipe, "generation_config", None)):
            if config is not None:  # ignore EOS there too, so that every system writes n_new tokens per prompt
                config.min_new_tokens = n_new

        def run_distilabel() -> int:
            distilabel_llm.generate(distilabel_chats, max_new_tokens=n_new, repetition_penalty=1.0, top_k=0,
                                    **sampling)
            # exactly n_new tokens per prompt (min_new_tokens above); distilabel's own statistics re-tokenize the
            # decoded text, which miscounts
            return len(distilabel_chats) * n_new

        systems = {"distilabel": run_distilabel, **systems}

    # (d) llama.cpp on the embedded model's GGUF (Q4_1, what Ollama would run), one request at a time, when
    # llama-cpp-python is installed (an optional extra: it builds from source)
    llamacpp = llamacpp_system(args.model, chats[:16], n_new, sampling) if real else None
    if llamacpp is not None:
        systems = {**systems, "llamacpp": llamacpp}

    print(f"device={args.device} dtype={dtype} threads={torch.get_num_threads()} prompts={len(chats)} "
          f"distilabel_prompts={len(distilabel_chats) if 'distilabel' in systems else 0} "
          f"max_new_tokens={n_new} batch_size={batch_size} repeats={args.repeats} "
          f"model_params={model.num_parameters() / 1e6:.2f}M", flush=True)
    rate = interleaved(systems, args.repeats, "tokens", sync=torch.cuda.synchronize if args.device == "cuda" else None)
    judge_lines = judge_workload(engine, args.judge_rows, args.repeats) if (
        args.judge if args.judge is not None else not tiny) else []
    if "distilabel" in rate:
        print(f"engine_vs_distilabel={rate['engine'] / rate['distilabel']:.2f}")
    print(f"engine_vs_raw_generate={rate['engine'] / rate['raw_generate']:.2f}")
    if "llamacpp" in rate:
        print(f"engine_vs_llamacpp={rate['engine'] / rate['llamacpp']:.2f}")
    for line in judge_lines:
        print(line)


def llamacpp_system(model: str | None, chats: list, n_new: int, sampling: dict):
    """A function that sends ``chats`` one at a time through llama-cpp-python on the embedded GGUF (the GGUF's own
    chat template, EOS banned so that each writes ``n_new`` tokens) and returns the tokens written; None when
    llama-cpp-python is not installed or the model is not the embedded one."""
    import importlib.util

    from smolsynth import offline

    if importlib.util.find_spec("llama_cpp") is None or not offline.is_embedded(model or ""):
        return None
    import torch
    from llama_cpp import Llama

    llama = Llama(model_path=str(offline.embedded_gguf()), n_ctx=2048, n_threads=torch.get_num_threads(),
                  verbose=False, seed=0)
    banned = {llama.token_eos(): -1e9}

    def run() -> int:
        return sum(llama.create_chat_completion(messages=c, max_tokens=n_new, logit_bias=banned, top_k=0,
                                                **sampling)["usage"]["completion_tokens"] for c in chats)

    return run


def output_tokens(outputs: list[dict]) -> int:
    """Tokens written, from the generations' statistics (distilabel's format, which the engine shares)."""
    return sum(o["statistics"]["output_tokens"][0] for o in outputs)


def interleaved(systems: dict, repeats: int, unit: str, sync=None) -> dict[str, float]:
    """Run each of ``systems`` (name -> function returning how many ``unit`` it produced) once to warm up, then
    ``repeats`` rounds in turn (a, b, c, a, b, c, ...); print each one's median time and rate, and return the rates
    (``unit`` per second of the median run)."""
    for fn in systems.values():  # warm-up (kernels, caches, allocator, grammar compilation)
        fn()
    times: dict[str, list[float]] = {name: [] for name in systems}
    counts: dict[str, int] = {}
    for _ in range(repeats):
        for name, fn in systems.items():
            if sync:
                sync()
            started = time.perf_counter()
            counts[name] = fn()
            if sync:
                sync()
            times[name].append(time.perf_counter() - started)
    rates = {}
    for name, ts in times.items():
        median = statistics.median(ts)
        rates[name] = counts[name] / median
        print(f"{name:13s} median {median:8.3f} s  runs {' '.join(f'{t:.3f}' for t in ts)}  {unit} {counts[name]}  "
              f"{rates[name]:9.2f} {unit}/s", flush=True)
    return rates


def judge_rows(n_rows: int) -> list[dict]:
    """``n_rows`` judge rows from the probes: each probe's instruction with its good answer and, in turn, the bad
    answers of the probes (its own first); the good answer comes first in even rows, second in odd ones."""
    from smolsynth.ultrafeedback import judge_probes

    probes = judge_probes()
    rows = []
    for i in range(n_rows):
        probe, other = probes[i % len(probes)], probes[(i % len(probes) + i // len(probes)) % len(probes)]
        pair = [probe["good"], other["bad"]] if i % 2 == 0 else [other["bad"], probe["good"]]
        rows.append({"instruction": probe["instruction"], "generations": pair})
    return rows


def judge_workload(engine, n_rows: int, repeats: int) -> list[str]:
    """The judge's workload on ``engine``'s model: rows/s of ``ultrafeedback.judge`` (constrained, two candidates,
    greedy, no cache) over ``n_rows`` rows, with the engine's speed-ups on and off; then constrained vs unconstrained
    tokens/s on the same prompts. Returns the result lines to print last."""
    from smolsynth.decoding import Sampling, decode, speedups
    from smolsynth.llm import default_batch_size
    from smolsynth.ultrafeedback import judge, judge_tokens, ultrafeedback_regex
    from smolsynth.verbosity import import_distilabel, quiet_distilabel

    rows = judge_rows(n_rows)
    model_id = engine.model_name

    def run_judge() -> int:
        result = judge(rows, model=model_id, temperature=0.0, progress=False, cache=False)
        return len(result.rows) + len(result.dropped_rows)

    def run_judge_plain() -> int:
        with speedups(all=False):
            return run_judge()

    # the judge's prompts, as the UltraFeedback task writes them, for the constrained-vs-free comparison
    with quiet_distilabel():
        task = import_distilabel("distilabel.steps.tasks").UltraFeedback(aspect="overall-rating", llm=engine)
        task.load()
    prompts = [task.format_input(r) for r in rows]
    budget = judge_tokens(2)
    grammar = {"format": "regex", "schema": ultrafeedback_regex(2, max_rationale_chars=200)}

    lengths: list[int] = []

    def run_constrained() -> int:
        out = engine.generate([(p, grammar) for p in prompts], max_new_tokens=budget, temperature=0.0)
        lengths[:] = [o["statistics"]["output_tokens"][0] for o in out]
        return sum(lengths)

    # unconstrained, the same prompts in one batch, each row ending after as many tokens as its constrained
    # judgment wrote (EOS banned, a stop check at that length): the same prefill, the same decoding steps and the
    # same rows leaving the batch at the same steps, so that the ratio is the cost of the grammar alone
    run_constrained()  # also the warm-up (the grammar's compilation)
    model, tokenizer = engine._loaded.model, engine._loaded.tokenizer
    ids = engine._encode([engine.prepare_input(p) for p in prompts])  # the engine's own prompt tokens
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else engine._loaded.eos_ids[0]

    def run_free() -> int:
        out = decode(model, ids, max_new_tokens=max(lengths), eos_ids=engine._loaded.eos_ids, pad_id=pad_id,
                     sampling=Sampling(temperature=0.0), min_new_tokens=max(lengths),
                     stop=lambda row, tokens: len(tokens) >= lengths[row])
        return sum(len(d.tokens) for d in out)

    print(f"judge: {len(rows)} rows, batch {default_batch_size(model_id)}; judgments of {min(lengths)} to "
          f"{max(lengths)} tokens", flush=True)
    rate = interleaved({"judge": run_judge, "judge_plain": run_judge_plain}, repeats, "rows")
    rate.update(interleaved({"constrained": run_constrained, "free": run_free}, repeats, "tokens"))
    return [f"judge_rows_per_s={rate['judge']:.3f}", f"judge_speedup={rate['judge'] / rate['judge_plain']:.2f}",
            f"constrained_vs_free={rate['constrained'] / rate['free']:.2f}"]


if __name__ == "__main__":
    sys.exit(main())
