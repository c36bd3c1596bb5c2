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
# You have generated instruction data. Now you train on it, with [TRL](https://huggingface.co/docs/trl)'s
# `SFTConfig` and `SFTTrainer`, in cells you can read and change. By the end you will have:
#
# 1. seen why training a model on its *own* answers shows next to nothing, and set up a **teacher and a student**
#    instead, so that training has an effect you can measure;
# 2. let the teacher answer your instructions from notebook 01 under a rule the student never sees;
# 3. built the `SFTConfig` and `SFTTrainer` yourself (smolsynth only suggests the settings for your machine), trained
#    with LoRA, and read the loss curves;
# 4. measured the effect on prompts the student never trained on: before vs after;
# 5. saved a checkpoint that notebook 04 starts DPO from.
#
# **What SFT optimizes.** Each training row is a conversation: a prompt (the user's turn, maybe a system turn) and
# the answer you want (the assistant's turn). SFT is next-token prediction, the same objective as pre-training, on
# those answers: the loss is the average of $-\log \pi_\theta(\text{token} \mid \text{everything before it})$ over
# the tokens of the *answer*. The model is pushed, token by token, towards writing answers like your dataset's. That
# is why the quality of your generated data matters so much: SFT copies it, mistakes included.
#
# **A teacher and a student.** Notebook 01's answers were written by the course model itself, mostly greedily. Fine
# tuning that same model on them asks it to write what it already writes: the loss barely moves and the answers do
# not change, so there is nothing to see. The classic set-up has a **teacher** that writes the data and a
# **student** that learns it. Here the teacher is the same model with a *context* the student will never see: a
# rule ("start every answer with 'Great question!'"), three demonstrations, and its answer primed with those words.
# The student trains on the bare conversations (your instruction, the teacher's answer), *without* that context.
# If training works, the student starts behaving as if it had the context: this is **context distillation**. The
# trait is checkable by a function, so the effect of training is a number: the share of the student's answers to
# *held-out* prompts (never trained on) that start with the phrase, before and after.

# %% [markdown]
# ## 1. Parameters
#
# The values you may want to change. In fast mode (`SMOLSYNTH_FAST=1`, what CI runs) the next cell shrinks them so
# the notebook runs in seconds; the student then learns next to nothing, which is expected.

# %% tags=["parameters"]
N_PROMPTS = 40  # instructions the teacher answers: notebook 01's first, then built-in ones
N_HELD_OUT = 16  # held-out prompts the effect is measured on (never trained on)
TEACHER_SAMPLES = 2  # teacher tries per instruction (the first that finishes within the budget is kept)
EPOCHS = 3  # passes over the teacher's answers
LEARNING_RATE = 5e-4  # LoRA on ~40 rows of a 135M model (the profile's 2e-4 suits thousands of rows; section 4)
N_ROWS = 500  # at most this many rows of notebook 01's dataset (exercise 1 trains on them)
MAX_STEPS = 30  # optimizer steps of the exercises' runs
MAX_NEW_TOKENS = 160  # answer length, when the teacher writes and when the student is measured
SOURCE = None  # notebook 01's dataset when it is not in the course folder: a Hub id "you/name", or a file's path
EVAL_PROMPTS = [
    "Give me three tips to sleep better.",
    "Explain what an API is to a beginner.",
    "Write a short thank-you note to a colleague.",
]

# %%
from smolsynth import course

course.fast_mode(globals(), N_PROMPTS=6, N_HELD_OUT=4, EPOCHS=1, N_ROWS=6, MAX_STEPS=3,
                 tiny_model=dict(MAX_NEW_TOKENS=16))

# %% [markdown]
# ## 2. Instructions: notebook 01's, or made on the spot
#
# Notebook 01 saved its SFT dataset to a well-known folder, `course.data_path("sft")`. `handoff.sft_data` loads it
# if it is there, and if its record says it was made by the model this notebook runs (a dataset the tiny test model
# left behind is never used for a real model: the note says how to regenerate it). Otherwise it makes a small
# dataset right here, with the same calls notebook 01 teaches. It tells you which happened. We keep its
# instructions for the teacher, add built-in ones up to `N_PROMPTS`, and set aside held-out prompts that appear in no
# training set.
#
# **On Colab** every notebook gets a fresh runtime, so the course folder of notebook 01 is gone here. Run
# `course.use_drive()` at the top of notebook 01 and of this one (it mounts your Google Drive when you agree, and
# keeps the course folder there), or set `SOURCE` above: `handoff.upload("sft")` for a file you saved with
# `handoff.export("sft")`, or the Hub dataset you pushed with `handoff.publish("sft", "you/name")`.

# %%
import smolsynth
from smolsynth import distillation, handoff

model_id = smolsynth.resolve_model()
sft_data = handoff.sft_data(rows=N_ROWS, model=model_id, max_new_tokens=MAX_NEW_TOKENS, source=SOURCE)
held_out = list(distillation.HELD_OUT_PROMPTS[:N_HELD_OUT])
prompts = distillation.training_prompts(sft_data.dataset, n=N_PROMPTS, exclude=held_out)
print(sft_data.note)
print(f"{len(prompts)} instructions for the teacher, {len(held_out)} held-out prompts, e.g. {prompts[0]!r}")

# %% [markdown]
# ## 3. The student before training, and the teacher
#
# The trait, and the teacher's context: the rule, the demonstrations, and the instruction (the teacher's turn then
# starts with the opening).

# %%
trait = distillation.OPENING
trait.teacher_messages(prompts[0])

# %% [markdown]
# **Before.** The student, asked the held-out prompts with no system prompt, greedily (so the comparison is not
# luck). On SmolLM2-135M-Instruct no answer starts with the phrase: asking for it in a system prompt does not work
# either (0 of 24, measured), which is why the teacher's answer is primed.

# %%
before = distillation.trait_rate(model_id, held_out, trait, max_new_tokens=MAX_NEW_TOKENS)
print(before)
before.table().head()

# %% [markdown]
# **The teacher writes the data.** `teacher_answers` answers each instruction under the teacher's context
# (`TEACHER_SAMPLES` tries, sampled) and keeps the first answer that finishes within `MAX_NEW_TOKENS`; the rows it
# returns hold only the instruction and the answer, the format SFT reads. Instructions where every try was cut off
# are dropped and counted.

# %%
teacher = distillation.teacher_answers(prompts, trait, model=model_id, samples=TEACHER_SAMPLES,
                                       max_new_tokens=MAX_NEW_TOKENS)
print(teacher.report)
teacher.dataset[0]["messages"]

# %% [markdown]
# **Why `messages` become `prompt` and `completion`.** We want the loss on the *answer* only: training the model to
# also predict the user's questions wastes capacity and can teach it to ask questions instead of answering. TRL 1.x
# offers two ways: `assistant_only_loss=True`, which needs `{% generation %}` markers in the model's chat template
# (SmolLM2's template and plain ChatML have none, so it fails), or a `prompt`/`completion` dataset with
# `completion_only_loss=True`. smolsynth's `prepare_dataset` takes the second: every turn before the last assistant
# turn becomes the prompt, the last assistant turn the completion (which keeps the end-of-turn token, so the model
# learns to stop). It also checks the rows before any model loads and holds out 10% for the eval loss.

# %%
from smolsynth.training import prepare_dataset

train_dataset, eval_dataset = prepare_dataset(teacher.dataset, method="sft", eval_fraction=0.1)
print(f"{len(train_dataset)} training rows, {len(eval_dataset) if eval_dataset else 0} held out for the eval loss")
train_dataset[0]

# %% [markdown]
# ## 4. The settings: a TRL `SFTConfig` for your machine
#
# `training_profile` looks at your machine and the model's size and picks precision, memory savers, LoRA, batch and
# learning rate; `sft_config` writes them into an ordinary TRL `SFTConfig`, which you can read and edit like any
# other (`config.learning_rate = 1e-4`).

# %%
from smolsynth.hardware import count_parameters, training_profile
from smolsynth.training import sft_config

SFT_DIR = course.data_path("sft-model")  # notebook 04 starts from the checkpoint saved here
profile = training_profile(model_params=count_parameters(model_id))
print(f"{model_id}: {count_parameters(model_id):,} parameters")
print(f"profile {profile.name}: {profile.reason}")
config = sft_config(profile, output_dir=str(SFT_DIR), num_train_epochs=EPOCHS, n_train_rows=len(train_dataset),
                    learning_rate=LEARNING_RATE, has_eval=eval_dataset is not None)
{field: getattr(config, field) for field in (
    "learning_rate", "per_device_train_batch_size", "gradient_accumulation_steps", "max_length", "max_steps",
    "num_train_epochs", "bf16", "fp16", "use_cpu", "completion_only_loss", "eval_strategy")}

# %% [markdown]
# What each one does, and why it has this value:
#
# | field | what it does | why this value |
# |---|---|---|
# | `learning_rate` | size of each update | the profile's 2e-4 with LoRA (small adapters start at zero and need bigger steps; 2e-5 for full fine-tuning, where larger values erase what the model knew) is for thousands of rows; with ~40 rows and ~30 steps we pass `LEARNING_RATE` = 5e-4: measured on the 135M student, 2e-4 (15 steps) taught it nothing measurable (0 of 16 held-out answers), 5e-4 taught the trait to 12 of 16, 1e-3 to 8 of 16 (the loss fell further: it memorised) (`benchmarks/README.md`) |
# | `per_device_train_batch_size` × `gradient_accumulation_steps` | rows per optimizer step (the *effective batch*) | accumulation gives a larger effective batch (steadier updates) without the memory of a larger batch; on a CPU one batch of 4 per step keeps a lesson's runs short |
# | `max_length` | tokens per row (prompt + answer); longer rows are truncated | 512 on CPU, 1024 on GPU: enough for short instructions, and memory grows with it |
# | `max_steps` / `num_train_epochs` | how long to train | 1-3 epochs is typical for SFT; more epochs on a small dataset means memorising it |
# | `bf16` / `fp16` / `use_cpu` | number format | CPU: float32 (TRL's bf16 default fails there); T4: fp16 (bf16 is only emulated); Ampere+: bf16 |
# | `completion_only_loss` | loss on the answer only | see above: the prompt is context, not a target |
# | `eval_strategy` | when to compute the loss on held-out rows | a few times during training; we also evaluate once before, so you see a *before* |
#
# **LoRA.** On a CPU (and on a T4 above ~0.5B parameters) the profile trains with
# [LoRA](https://arxiv.org/abs/2106.09685): the model's weights stay frozen and small adapter matrices next to them
# train. `lora_config(profile)` is the `peft.LoraConfig` that goes with the profile; pass it to the trainer as
# `peft_config`. The frozen weights need no gradients and no optimizer state, so a step is cheaper and memory
# smaller. Exercise 2 counts how many parameters that is.

# %%
from smolsynth.training import lora_config

lora_config(profile)

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
# ## 5. Train, with TRL
#
# The cell below is plain TRL: `SFTTrainer(model, args, train_dataset, eval_dataset, processing_class,
# peft_config)`, then `trainer.train()`. Three smolsynth helpers sit beside it: `quiet_training()` hides the
# libraries' loading bars and warnings (the trainer's own progress stays), `measured()` times the run and records
# its peak memory, and `save_checkpoint` merges the LoRA adapters into the weights and saves a plain transformers
# checkpoint with the tokenizer and a record of the run (`smolsynth_training.json`: what it started from, the
# metrics, the log), which notebook 04 reads. `trainer.evaluate()` before training gives the *before* of the eval
# loss.

# %%
from trl import SFTTrainer

from smolsynth.models import load_tokenizer, model_path
from smolsynth.training import measured, save_checkpoint
from smolsynth.verbosity import quiet_training

tokenizer = load_tokenizer(model_id)
with quiet_training():
    trainer = SFTTrainer(model=model_path(model_id), args=config, train_dataset=train_dataset,
                         eval_dataset=eval_dataset, processing_class=tokenizer, peft_config=lora_config(profile))
    eval_before = trainer.evaluate() if eval_dataset is not None else None  # no eval split: fewer than 2 rows
    with measured() as cost:
        trainer.train()
sft_result = save_checkpoint(trainer, SFT_DIR, started_from=model_id, before=eval_before, cost=cost,
                             profile=profile)
print(f"{sft_result.metrics['train_steps']} steps on {len(train_dataset)} rows: {cost}")
del trainer
sft_result

# %% [markdown]
# ## 6. Reading the curves
#
# - **loss** (training): noisy, should trend down. Flat from the start: the learning rate is too small, or the
#   answers are already what the model would write (the self-distillation trap above). Going up or `nan`: learning
#   rate too high (or fp16 overflow).
# - **eval_loss** (held-out rows, dashed): should follow the training loss down. If it turns up while the training
#   loss keeps falling, the model is memorising your rows: stop earlier, or make more (and more varied) data.
# - The first eval point (step 0) is the model *before* training: the gap to the last one is what SFT bought.
#
# In fast mode a few steps on the tiny model barely move the curves: that is the expected picture.

# %%
from smolsynth.evaluation import plot_training

plot_training(sft_result)

# %% [markdown]
# ## 7. The effect, measured
#
# The trained student, on the held-out prompts, with no system prompt, greedy, exactly as before training:

# %%
from smolsynth.evaluation import plot_rates

after = distillation.trait_rate(str(SFT_DIR), held_out, trait, max_new_tokens=MAX_NEW_TOKENS)
print(after)
plot_rates({"before SFT": before.rate, "after SFT": after.rate}, title=f"answers that show the {trait.name}")

# %% [markdown]
# What to expect: on SmolLM2-135M-Instruct at the default settings the rate went from 0 to 16 of the 16 held-out
# prompts (`benchmarks/README.md`, "Training effect"): the student learned the teacher's context from 34 examples. On the tiny model in fast mode it stays where it was: random weights, three steps. Read the answers,
# not only the rate: did the rest of the answer change too (length, tone)? Context distillation copies everything
# the context did, not only the part you check.

# %%
after.table()

# %% [markdown]
# Side by side with the base model, on prompts it did not train on:

# %%
from smolsynth.evaluation import compare_answers

compare_answers({"base": model_id, "SFT": str(SFT_DIR)}, EVAL_PROMPTS, max_new_tokens=MAX_NEW_TOKENS)

# %% [markdown]
# ## 8. Time and memory
#
# This run, on this machine:

# %%
m = sft_result.metrics
print(f"{m['train_steps']} steps, {m['train_rows']} training rows: {cost.seconds / 60:.1f} min of training "
      f"({m['examples_per_second']} rows/s), peak memory (RSS) {cost.peak_rss_gb:.1f} GB; profile {profile.name}.")

# %% [markdown]
# At the default settings (40 instructions, 3 epochs, LoRA), **measured on 2 CPU cores** with SmolLM2-135M-Instruct
# (`benchmarks/training_effect.py` runs exactly this, `benchmarks/README.md`, "Training effect"): the teacher's
# answers take about 3 minutes, SFT 2.4 minutes (27 steps of 4 rows) with the whole process at a peak of 5.0 GB RSS
# (the teacher's model is still loaded; the trainer alone needs less), measuring the trait rate about half a minute
# per model. The whole notebook at default settings, exercises included: about 20 minutes on 2 cores (an estimate from those parts). **T4**
# figures are estimates, not measurements: a forward + backward pass costs about 6 × parameters × tokens
# floating-point operations, and a T4 sustains roughly 8-10 TFLOP/s in fp16 mixed precision in practice (15-20% of
# its 65 TFLOP/s peak).
#
# | model | CPU, 2 cores (measured) | T4, fp16 (estimate) | memory |
# |---|---|---|---|
# | `smolsynth/tiny` (0.3M) | seconds | seconds | < 1 GB RAM |
# | SmolLM2-135M, LoRA (the CPU default) | ~5 s per step of 4 rows: this notebook's SFT in 2.4 min | seconds | 5.0 GB peak RSS of the process, measured |
# | SmolLM2-135M, full fine-tuning | ~25 s per step of 4 rows | ~1 min per 1k rows | ~2 GB of weights, gradients and Adam state, plus activations (5.2 GB RSS measured) |
# | SmolLM2-360M | slower still: train on a GPU | 1-2 min per 1k rows | ~6 GB + activations: fits a T4's 15 GB |
# | SmolLM2-1.7B | no | 5-10 min per 1k rows **with LoRA** | full: ~27 GB, does not fit a T4; LoRA: ~3.4 GB of fp16 weights + small adapters |
#
# The memory rule of thumb: full fine-tuning with AdamW keeps ~16 bytes per parameter (fp32 weights, gradients and
# two optimizer moments), plus activations that grow with batch × `max_length`. That is why the profile turns on
# LoRA on CPUs and on a T4 above ~0.5B parameters, and gradient checkpointing on GPUs (recompute activations: ~20%
# slower, much less memory).

# %% [markdown]
# ## 9. Exercises
#
# Each exercise has a cell to fill in: replace every `____`, run it, then run the check below it. The checks look at
# what ran and what was saved (the trainer, its settings, its steps, whether the model loads and answers), never at
# the wording. Stuck? `ex.q1.hint()` gives one hint per call, `ex.q1.solution()` a worked solution.
#
# Levels: 🐢 the default path · 🐕 a variant technique · 🦁 your own use case.

# %%
from peft import LoraConfig, get_peft_model

from smolsynth.exercises import ____, nb03 as ex
from smolsynth.models import load_model

RUNS = course.data_path("runs")  # a scratch folder for your own training runs
lora_profile = profile.with_lora(True)  # the profile with LoRA on (and LoRA's learning rate)

# %% [markdown]
# ### Exercise 1 🐢 Your own TRL cell: the self-distillation trap
#
# Write the training cell yourself: an `SFTConfig` (from `sft_config(profile, ...)` with `max_steps=MAX_STEPS` and
# an `output_dir` under `RUNS`), an `SFTTrainer` on **notebook 01's own answers** (`sft_data.dataset`, prepared with
# `prepare_dataset`), `train()`, and `save_checkpoint`. Put the trainer in `my_trainer` and what `save_checkpoint`
# returns in `my_sft_result`. Then measure the trait rate of that model: it stays where it was, because nothing in
# that data shows the trait, and on a real model the loss barely moves (the model already writes these answers).

# %% exercise="q1" tags=["starter"]
# prepare_dataset(sft_data.dataset, ...), sft_config(profile, ..., max_steps=MAX_STEPS), then:
my_trainer = ____  # SFTTrainer(...), and call my_trainer.train()
my_sft_result = ____  # save_checkpoint(my_trainer, ...)

# %% exercise="q1" tags=["solution"]
my_train, my_eval = prepare_dataset(sft_data.dataset, method="sft")
my_config = sft_config(profile, output_dir=str(RUNS / "my-sft"), max_steps=MAX_STEPS, n_train_rows=len(my_train))
with quiet_training():
    my_trainer = SFTTrainer(model=model_path(model_id), args=my_config, train_dataset=my_train,
                            eval_dataset=my_eval, processing_class=tokenizer, peft_config=lora_config(profile))
    my_before = my_trainer.evaluate()
    my_trainer.train()
my_sft_result = save_checkpoint(my_trainer, RUNS / "my-sft", started_from=model_id, before=my_before)
print(distillation.trait_rate(my_sft_result.output_dir, held_out, trait, max_new_tokens=MAX_NEW_TOKENS))
plot_training(my_sft_result)

# %% [markdown]
# ### Exercise 2 🐕 LoRA: how many parameters does it train?
#
# LoRA freezes the model and trains, next to each chosen weight matrix $W$ (d_out × d_in), two small ones, $B$
# (d_out × r) and $A$ (r × d_in), whose product is added to $W$. With a rank r of 16 that is a few percent of the
# parameters, so the gradients and optimizer state shrink with them.
#
# Count it yourself: `full_trainable`, the parameters full fine-tuning trains; `lora_trainable`, those LoRA trains
# with `lora_profile`'s settings (use `peft.get_peft_model` with `lora_config(lora_profile)`, or a `LoraConfig` you
# write from `lora_profile.lora_r`, `lora_alpha` and `lora_target_modules`).

# %% exercise="q2" tags=["starter"]
full_trainable = ____  # parameters with requires_grad in the plain model
lora_trainable = ____  # parameters with requires_grad after get_peft_model(...)

# %% exercise="q2" tags=["solution"]
with quiet_training():  # no weight-loading bar, no library notices
    base_model, _ = load_model(model_id)
    full_trainable = sum(p.numel() for p in base_model.parameters() if p.requires_grad)
    lora_model = get_peft_model(base_model, LoraConfig(r=lora_profile.lora_r, lora_alpha=lora_profile.lora_alpha,
                                                       target_modules=lora_profile.lora_target_modules,
                                                       task_type="CAUSAL_LM"))
lora_trainable = sum(p.numel() for p in lora_model.parameters() if p.requires_grad)
print(f"full: {full_trainable:,} trainable; LoRA: {lora_trainable:,} ({lora_trainable / full_trainable:.1%}); "
      f"weights + gradients + Adam state: {16 * full_trainable / 2**20:.1f} MiB vs "
      f"{16 * lora_trainable / 2**20:.2f} MiB (+ the frozen weights)")
del base_model, lora_model

# %% [markdown]
# ### Exercise 3 🦁 A trait of your own
#
# Teach the student a behaviour of your choosing. Make a `distillation.Trait` with an opening of your own (a
# persona's greeting, a format marker such as `"Summary:"`, ...), a rule and two or three demonstrations; let the
# teacher answer at least four instructions of your use case with it (`teacher_answers`), put the SFT dataset
# (`.dataset`, a single `messages` column) in `my_sft_data`, and train on it into `my_own_result` (`sft(...)` runs
# the whole of section 5 in one call). Then measure your trait on prompts you did not train on.

# %% exercise="q3" tags=["starter"]
my_trait = ____  # distillation.Trait(name=..., opening=..., rule=..., examples=(...))
my_sft_data = ____  # teacher_answers(your instructions, my_trait, ...).dataset: at least 4 rows
my_own_result = ____  # sft(my_sft_data, ...)

# %% exercise="q3" tags=["solution"]
from smolsynth.training import sft

my_trait = distillation.Trait(
    name="gardener's greeting",
    opening="Happy gardening!",
    rule="You are a cheerful gardener. Start every answer with 'Happy gardening!', then answer in two short "
         "sentences.",
    examples=(("How deep should I plant tulip bulbs?", "Happy gardening! Plant them about 15 cm deep, pointy end "
                                                         "up."),
              ("Can I grow mint indoors?", "Happy gardening! Yes: give it a sunny windowsill and keep the soil "
                                           "moist.")),
)
my_instructions = [
    "How often should I water a basil plant on a windowsill?",
    "Which vegetables can I grow on a small balcony?",
    "Why are the leaves of my tomato plant turning yellow?",
    "How do I start a compost bin in a flat?",
    "When is the best time of day to water a garden?",
    "How do I keep slugs away from lettuce without chemicals?",
    "What should I plant in a shady corner of the garden?",
    "How do I know when my potatoes are ready to dig up?",
]
my_sft_data = distillation.teacher_answers(my_instructions, my_trait, model=model_id, samples=3,
                                           max_new_tokens=MAX_NEW_TOKENS).dataset  # 3 tries: a cut-off one is dropped
my_own_result = sft(my_sft_data, model=model_id, output_dir=str(RUNS / "my-own-sft"), max_steps=MAX_STEPS)
print(distillation.trait_rate(my_own_result.output_dir, ["How do I prune a rose bush?"], my_trait,
                              max_new_tokens=MAX_NEW_TOKENS))

# %% [markdown]
# ### Exercise 4 🐢 Split a conversation into what SFT reads and what it learns
#
# Section 3 turned every row into a `prompt` and a `completion`. Write that split yourself:
# `my_prompt_completion(messages)` gets one conversation (a list of `{"role", "content"}` messages) and returns
# `{"prompt": [...], "completion": [...]}`: the last message, when it is the assistant's, is the completion (a list
# of that one message), and every message before it is the prompt. A multi-turn conversation (Magpie with
# `n_turns=2`) is trained on its **last** answer only; the earlier answers are context. Return `None` when there is
# nothing to learn: no messages, a last message that is not the assistant's, or no user message before it. The check
# runs your function on hidden cases and says which one failed.

# %% exercise="q4" tags=["starter"]
my_prompt_completion = ____  # your function: def my_prompt_completion(messages): ... return {...} or None

# %% exercise="q4" tags=["solution"]
def my_prompt_completion(messages):
    if not messages or messages[-1]["role"] != "assistant":
        return None
    if not any(message["role"] == "user" for message in messages[:-1]):
        return None
    return {"prompt": messages[:-1], "completion": messages[-1:]}


my_prompt_completion(teacher.dataset[0]["messages"]) if len(teacher.dataset) else None

# %% [markdown]
# ## What's next
#
# - **More data, more steps.** A few hundred varied rows and one to three epochs is where SFT starts to show on
#   harder traits. Watch the eval loss: when it stops falling, more epochs only memorise.
# - **A stronger teacher.** Here the teacher is the student plus a context. With a GPU, let a larger model
#   (SmolLM2-1.7B-Instruct) write the answers and train the 135M student on them: that is distillation proper, and
#   what the answers *say* improves, not only how they start.
# - **Learning rate.** Try 1e-4 and 4e-4 (LoRA) or 1e-5 and 5e-5 (full fine-tuning) and compare the curves.
# - **LoRA rank.** `dataclasses.replace(profile, lora_r=8)` halves the adapters; does the trait rate care?
#
# Notebook 04 starts from the checkpoint saved here (`course.data_path("sft-model")`) and teaches the model to
# *prefer* one answer over another, with DPO.
