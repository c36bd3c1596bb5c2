# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# You have generated instruction data. Now you train on it. This notebook fine-tunes a model with **supervised
# fine-tuning (SFT)** through [TRL](https://huggingface.co/docs/trl)'s `SFTTrainer`, and by the end you will have:
#
# 1. loaded the SFT dataset you made in notebook 01 (or made a small one here, if you opened this notebook on its own);
# 2. seen which training settings smolsynth picked for your machine, and why;
# 3. trained, read the loss curves, and compared the model's answers before and after;
# 4. saved a checkpoint that notebook 04 starts DPO from.
#
# **What SFT optimizes.** Each training row is a conversation: a prompt (the user's turn, maybe a system turn) and
# the answer you want (the assistant's turn). SFT is next-token prediction, the same objective as pre-training, on
# those answers: the loss is the average of $-\log \pi_\theta(\text{token} \mid \text{everything before it})$ over
# the tokens of the *answer*. The model is pushed, token by token, towards writing answers like your dataset's. That
# is why the quality of your generated data matters so much: SFT copies it, mistakes included.

# %% [markdown]
# ## 1. Parameters
#
# The values you may want to change. In fast mode (`SMOLSYNTH_FAST=1`, what CI runs) the next cell shrinks them so
# the notebook runs in seconds; the trained model then learns next to nothing, which is expected.

# %% tags=["parameters"]
N_ROWS = 500  # at most this many SFT rows (notebook 01's dataset; up to 24 when made here)
MAX_STEPS = 30  # optimizer steps (None: one full pass over the data)
MAX_NEW_TOKENS = 256  # answer length, when making data and when comparing answers
EVAL_PROMPTS = [
    "Give me three tips to sleep better.",
    "Explain what an API is to a beginner.",
    "Write a short thank-you note to a colleague.",
]

# %%
from smolsynth import course

course.fast_mode(globals(), N_ROWS=6, MAX_STEPS=3, tiny_model=dict(MAX_NEW_TOKENS=16))

# %% [markdown]
# ## 2. The data: notebook 01's, or made on the spot
#
# Notebook 01 saved its SFT dataset to a well-known folder, `course.data_path("sft")`. `handoff.sft_data` loads it
# if it is there; otherwise (you opened this notebook first, or on Colab) it makes a small dataset right here, with
# the same calls notebook 01 teaches: `generate` answers a built-in list of instructions and `to_sft` turns the
# rows into conversations. It tells you which happened.

# %%
import smolsynth
from smolsynth import handoff

model_id = smolsynth.resolve_model()
sft_data = handoff.sft_data(rows=N_ROWS, model=model_id, max_new_tokens=MAX_NEW_TOKENS)
sft_data

# %% [markdown]
# One row: a single `messages` column, the conversational format TRL reads as it is.

# %%
sft_data.dataset[0]["messages"]

# %% [markdown]
# **Why `messages` become `prompt` and `completion`.** We want the loss on the *answer* only: training the model to
# also predict the user's questions wastes capacity and can teach it to ask questions instead of answering. TRL 1.x
# offers two ways: `assistant_only_loss=True`, which needs `{% generation %}` markers in the model's chat template
# (SmolLM2's template and plain ChatML have none, so it fails), or a `prompt`/`completion` dataset with
# `completion_only_loss=True`. smolsynth takes the second: every turn before the last assistant turn becomes the
# prompt, the last assistant turn the completion (which keeps the end-of-turn token, so the model learns to stop).

# %%
from smolsynth.formats import messages_to_prompt_completion

messages_to_prompt_completion(sft_data.dataset.select(range(1)))[0]

# %% [markdown]
# ## 3. The settings that matter, and the ones smolsynth picked
#
# `training_profile` looks at your machine and the model's size and picks precision, memory savers, LoRA, batch and
# learning rate. Every choice lands in the TRL config, where you can read it, and each can be overridden by keyword
# (`sft(..., learning_rate=1e-4)`).

# %%
from smolsynth.hardware import count_parameters, training_profile
from smolsynth.training import sft_config

profile = training_profile(model_params=count_parameters(model_id))
print(f"{model_id}: {count_parameters(model_id):,} parameters")
print(f"profile {profile.name}: {profile.reason}")

# %%
config = sft_config(profile, output_dir="(not used)", max_steps=MAX_STEPS, n_train_rows=len(sft_data))
{field: getattr(config, field) for field in (
    "learning_rate", "per_device_train_batch_size", "gradient_accumulation_steps", "max_length", "max_steps",
    "num_train_epochs", "bf16", "fp16", "use_cpu", "completion_only_loss", "eval_strategy")}

# %% [markdown]
# What each one does, and why it has this value:
#
# | field | what it does | why this value |
# |---|---|---|
# | `learning_rate` | size of each update | 2e-5 for full fine-tuning (larger values erase what the model knew); 2e-4 with LoRA, whose small adapters start at zero and need bigger steps |
# | `per_device_train_batch_size` × `gradient_accumulation_steps` | rows per optimizer step (the *effective batch*) | accumulation gives a larger effective batch (steadier updates) without the memory of a larger batch |
# | `max_length` | tokens per row (prompt + answer); longer rows are truncated | 512 on CPU, 1024 on GPU: enough for short instructions, and memory grows with it |
# | `max_steps` / `num_train_epochs` | how long to train | a few hundred steps, or 1-3 epochs, is typical for SFT; more epochs on a small dataset means memorising it |
# | `bf16` / `fp16` / `use_cpu` | number format | CPU: float32 (TRL's bf16 default fails there); T4: fp16 (bf16 is only emulated); Ampere+: bf16 |
# | `completion_only_loss` | loss on the answer only | see above: the prompt is context, not a target |
# | `eval_strategy` | when to compute the loss on held-out rows | smolsynth holds out 10% of rows and evaluates a few times, and once before training, so you see a *before* |

# %% [markdown]
# > **What changed in TRL 1.x.** If you meet an older tutorial (or the course this one descends from), these are the
# > changes that break it:
# >
# > | before | TRL 1.x (and transformers 5) |
# > |---|---|
# > | `SFTTrainer(tokenizer=tok)` | `SFTTrainer(processing_class=tok)` |
# > | `SFTConfig(max_seq_length=...)` | `SFTConfig(max_length=...)` |
# > | `DPOConfig(max_prompt_length=..., max_completion_length=...)` | removed: only `max_length`; rows whose prompt alone is too long are dropped |
# > | `evaluation_strategy="steps"` | `eval_strategy="steps"` |
# > | `from_pretrained(torch_dtype=...)`, `model_init_kwargs={"torch_dtype": ...}` | `dtype=...` |
# > | `DataCollatorForCompletionOnlyLM` | removed: use `prompt`/`completion` data (`completion_only_loss`) or `assistant_only_loss` |
# > | `setup_chat_format(model, tok)` | removed: `clone_chat_template`, or a model that already has a chat template |
# > | `warmup_ratio=0.1` | `warmup_steps=0.1` (a float below 1 is a fraction of the steps) |
# > | `gradient_checkpointing=True` | `activation_checkpointing=True` (the old name still works, with a warning) |

# %% [markdown]
# ## 4. Train
#
# `sft` validates the data before loading anything, builds the config above, trains, evaluates and saves a plain
# transformers checkpoint (model + tokenizer) to `output_dir`. We save it where notebook 04 looks for it.

# %%
from smolsynth.training import sft

sft_result = sft(sft_data.dataset, model=model_id, output_dir=str(course.data_path("sft-model")),
                 max_steps=MAX_STEPS)
sft_result

# %% [markdown]
# ## 5. Reading the curves
#
# - **loss** (training): noisy, should trend down. Flat from the start: the learning rate is too small, or the
#   answers are already what the model would write. Going up or `nan`: learning rate too high (or fp16 overflow).
# - **eval_loss** (held-out rows, dashed): should follow the training loss down. If it turns up while the training
#   loss keeps falling, the model is memorising your rows: stop earlier, or make more (and more varied) data.
# - The first eval point (step 0) is the model *before* training: the gap to the last one is what SFT bought.
#
# In fast mode, three steps on the tiny model barely move the curves: that is the expected picture.

# %%
from smolsynth.evaluation import plot_training

plot_training(sft_result)

# %% [markdown]
# ## 6. Before and after
#
# The trained model is a folder on disk. It loads back like any model and answers:

# %%
from smolsynth.evaluation import generate_answers
from smolsynth.models import load_model

trained, tokenizer = load_model(sft_result.output_dir)
generate_answers(trained, tokenizer, EVAL_PROMPTS[:1], max_new_tokens=MAX_NEW_TOKENS)

# %% [markdown]
# Side by side with the base model, on prompts it did not train on (greedy decoding, so the comparison is not luck).
# On the tiny model both columns are noise; on a real model, look for the style of your dataset in the SFT column:
# length, tone, format.

# %%
from smolsynth.evaluation import compare_answers

compare_answers({"base": model_id, "SFT": sft_result.output_dir}, EVAL_PROMPTS, max_new_tokens=MAX_NEW_TOKENS)

# %% [markdown]
# ## 7. Time and memory, per hardware profile
#
# Measured on this machine, in this run:

# %%
m = sft_result.metrics
print(f"{m['train_steps']} steps, {m['train_rows']} training rows: {sft_result.train_seconds:.1f} s of training "
      f"({m['examples_per_second']} rows/s), {m['total_seconds']} s with loading, evaluation and saving; "
      f"profile {sft_result.profile.name}.")

# %% [markdown]
# What to expect elsewhere. **CPU** figures are measured (`benchmarks/README.md`: 2 cores, fp32, busy machine,
# sequences of ~270 tokens); **T4** figures are estimates, not measurements: a forward + backward pass costs about
# 6 × parameters × tokens floating-point operations, and a T4 sustains roughly 8-10 TFLOP/s in fp16 mixed precision
# in practice (15-20% of its 65 TFLOP/s peak). For 1,000 rows of ~300 tokens on a 360M model that is
# 6 × 360M × 300k ≈ 650 TFLOP, about 1-2 minutes.
#
# | model | CPU (measured) | T4, fp16 (estimate) | memory for full fine-tuning |
# |---|---|---|---|
# | `smolsynth/tiny` (0.3M) | ~28 rows/s (1 thread); a 4-step run in seconds | seconds | < 1 GB RAM |
# | SmolLM2-135M | ~25 s per step of 4 rows: hours for 1k rows, not a lesson's time | ~1 min per 1k rows | ~2 GB of weights, gradients and Adam state, plus activations (5.2 GB RSS measured on CPU, batch 4) |
# | SmolLM2-360M | slower still: train on a GPU | 1-2 min per 1k rows | ~6 GB + activations: fits a T4's 15 GB |
# | SmolLM2-1.7B | no | 5-10 min per 1k rows **with LoRA** | full: ~27 GB, does not fit a T4; LoRA: ~3.4 GB of fp16 weights + small adapters |
#
# The memory rule of thumb: full fine-tuning with AdamW keeps ~16 bytes per parameter (fp32 weights, gradients and
# two optimizer moments), plus activations that grow with batch × `max_length`. That is why the profile turns on
# LoRA on a T4 above ~0.5B parameters, and gradient checkpointing on GPUs (recompute activations: ~20% slower,
# much less memory).

# %% [markdown]
# ## 8. Exercises
#
# Each exercise has a cell to fill in: replace every `____`, run it, then run the check below it. The checks look at
# what ran and what was saved (settings, steps, files, whether the model loads and answers), never at the wording.
# Stuck? `ex.q1.hint()` gives one hint per call, `ex.q1.solution()` a worked solution.
#
# Levels: 🐢 the default path · 🐕 a variant technique · 🦁 your own use case.

# %%
from peft import LoraConfig, get_peft_model

from smolsynth.exercises import ____, nb03 as ex
from smolsynth.generation import generate
from smolsynth.formats import to_sft

RUNS = course.data_path("runs")  # a scratch folder for your own training runs
lora_profile = profile.with_lora(True)  # the same profile with LoRA on (and LoRA's learning rate)
print(f"LoRA settings: r={lora_profile.lora_r}, alpha={lora_profile.lora_alpha}, "
      f"targets={lora_profile.lora_target_modules!r}, learning rate {lora_profile.sft_learning_rate}")

# %% [markdown]
# ### Exercise 1 🐢 Train SFT with the default profile
#
# Train your own SFT run on `sft_data.dataset` with the profile smolsynth picks (no `lora=`, no `profile=`), for
# `MAX_STEPS` steps, saved into a folder under `RUNS`. Put the result in `my_sft_result` and plot its curves.

# %% exercise="q1" tags=["starter"]
my_sft_result = ____  # sft(...) with the default profile

# %% exercise="q1" tags=["solution"]
my_sft_result = sft(sft_data.dataset, model=model_id, output_dir=str(RUNS / "my-sft"), max_steps=MAX_STEPS)
plot_training(my_sft_result)

# %% [markdown]
# ### Exercise 2 🐕 LoRA: how many parameters does it train?
#
# [LoRA](https://arxiv.org/abs/2106.09685) freezes the model and trains, next to each chosen weight matrix
# $W$ (d_out × d_in), two small ones, $B$ (d_out × r) and $A$ (r × d_in), whose product is added to $W$. With a
# rank r of 16 that is a few percent of the parameters, so the gradients and optimizer state shrink with them.
#
# Count it yourself: `full_trainable`, the parameters full fine-tuning trains; `lora_trainable`, those LoRA trains
# with `lora_profile`'s settings (use `peft.get_peft_model` and `LoraConfig`). Then train with `lora=True` into
# `my_lora_result`: smolsynth merges the adapters into the weights when saving, so the checkpoint loads like any
# other.

# %% exercise="q2" tags=["starter"]
full_trainable = ____  # parameters with requires_grad in the plain model
lora_trainable = ____  # parameters with requires_grad after get_peft_model(...)
my_lora_result = ____  # sft(..., lora=True)

# %% exercise="q2" tags=["solution"]
base_model, _ = load_model(model_id)
full_trainable = sum(p.numel() for p in base_model.parameters() if p.requires_grad)
lora_model = get_peft_model(base_model, LoraConfig(r=lora_profile.lora_r, lora_alpha=lora_profile.lora_alpha,
                                                   target_modules=lora_profile.lora_target_modules,
                                                   task_type="CAUSAL_LM"))
lora_trainable = sum(p.numel() for p in lora_model.parameters() if p.requires_grad)
print(f"full: {full_trainable:,} trainable; LoRA: {lora_trainable:,} ({lora_trainable / full_trainable:.1%}); "
      f"weights + gradients + Adam state: {16 * full_trainable / 2**20:.1f} MiB vs "
      f"{16 * lora_trainable / 2**20:.2f} MiB (+ the frozen weights)")
my_lora_result = sft(sft_data.dataset, model=model_id, output_dir=str(RUNS / "my-lora"), max_steps=MAX_STEPS,
                     lora=True)

# %% [markdown]
# ### Exercise 3 🦁 Train on a dataset of your own
#
# Make an SFT dataset for a use case of yours: at least four instructions you write (or notebook 01's dataset on your
# own seeds), answered with `generate`, turned into conversations with `to_sft`. Put the `messages`-only dataset in
# `my_sft_data` and train on it into `my_own_result`.

# %% exercise="q3" tags=["starter"]
my_sft_data = ____  # a Dataset with a single "messages" column, at least 4 rows of your own
my_own_result = ____  # sft(my_sft_data, ...)

# %% exercise="q3" tags=["solution"]
my_instructions = [
    "How often should I water a basil plant on a windowsill?",
    "Which vegetables can I grow on a small balcony?",
    "Why are the leaves of my tomato plant turning yellow?",
    "How do I start a compost bin in a flat?",
    "When is the best time of day to water a garden?",
    "How do I keep slugs away from lettuce without chemicals?",
]
my_answers = generate(my_instructions, model=model_id, max_new_tokens=MAX_NEW_TOKENS)
my_sft_data = to_sft(my_answers.dataset).dataset
my_own_result = sft(my_sft_data, model=model_id, output_dir=str(RUNS / "my-own-sft"), max_steps=MAX_STEPS)

# %% [markdown]
# ## What's next
#
# - **More data, more steps.** A few hundred varied rows and one to three epochs is where SFT starts to show. Watch
#   the eval loss: when it stops falling, more epochs only memorise.
# - **Learning rate.** Try 1e-5 and 5e-5 (full fine-tuning) or 1e-4 and 4e-4 (LoRA) and compare the curves.
# - **LoRA rank.** `dataclasses.replace(lora_profile, lora_r=8)` halves the adapters; does the eval loss care?
# - **Your data's quality.** Filter the rows notebook 01 made (length, duplicates, refusals) and train again: the
#   before/after table is the quickest way to see what the data teaches.
#
# Notebook 04 starts from the checkpoint saved here (`course.data_path("sft-model")`) and teaches the model to
# *prefer* better answers, with DPO.
