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
# SFT taught the model to answer like your dataset. **Direct Preference Optimization (DPO)** teaches it to *prefer*
# the better of two answers: the chosen/rejected pairs you made in notebook 02, where a judge rated two candidate
# answers per prompt. By the end of this notebook you will have:
#
# 1. loaded your preference pairs (or made a few here) and the SFT checkpoint of notebook 03 (or trained a quick one);
# 2. understood what DPO optimizes, and the settings that matter (`beta` first);
# 3. met the reference-model trap, and the check that catches it;
# 4. trained DPO, read its curves, and compared base, SFT and DPO answers side by side.
#
# **What DPO optimizes.** DPO keeps two copies of the SFT model: the *policy* $\pi_\theta$, which trains, and a frozen
# *reference* $\pi_{\text{ref}}$. For a prompt $x$ with chosen answer $y_w$ and rejected answer $y_l$, the policy's
# implicit reward of an answer is how much more likely it makes it than the reference does,
# $r(x, y) = \beta \log \frac{\pi_\theta(y \mid x)}{\pi_{\text{ref}}(y \mid x)}$, and the loss asks the chosen
# answer's reward to beat the rejected one's:
#
# $$\mathcal{L}_\text{DPO} = -\log \sigma\big(r(x, y_w) - r(x, y_l)\big)$$
#
# No reward model, no sampling during training: just two forward passes per answer (policy and reference) on data
# you already have. The difference $r(x, y_w) - r(x, y_l)$ is the **reward margin** TRL logs.

# %% [markdown]
# ## 1. Parameters
#
# In fast mode (`SMOLSYNTH_FAST=1`, what CI runs) the next cell shrinks them so the notebook runs in seconds.

# %% tags=["parameters"]
N_PAIRS = 500  # at most this many pairs (notebook 02's; up to 24 prompts when made here)
SFT_STEPS = 30  # steps of the quick SFT, only if notebook 03's checkpoint is missing
MAX_STEPS = 30  # DPO optimizer steps (None: one full pass over the pairs)
BETA = 0.1  # DPO's beta: how strongly the policy is held close to the reference
MAX_NEW_TOKENS = 256  # answer length, when making pairs and when comparing answers
RATIONALE_CHARS = 200  # longest judge rationale, when making pairs here
EVAL_PROMPTS = [
    "Give me three tips to sleep better.",
    "Explain what an API is to a beginner.",
    "Write a short thank-you note to a colleague.",
]

# %%
from smolsynth import course

course.fast_mode(globals(), N_PAIRS=6, SFT_STEPS=3, MAX_STEPS=3,
                 tiny_model=dict(MAX_NEW_TOKENS=16, RATIONALE_CHARS=20))

# %% [markdown]
# ## 2. The pairs and the SFT model
#
# Notebook 02 saved its pairs to `course.data_path("dpo")`. `handoff.preference_pairs` loads them, or, if there are
# none, makes a few here the way notebook 02 does: two answers per prompt (two system prompts and temperatures),
# rated by distilabel's `UltraFeedback` judge on the same model with constrained decoding (so every judgment
# parses), then binarized: chosen = the better-rated answer, rejected = the other; ties are dropped and counted.

# %%
import smolsynth
from smolsynth import handoff

model_id = smolsynth.resolve_model()
pairs = handoff.preference_pairs(rows=N_PAIRS, model=model_id, max_new_tokens=MAX_NEW_TOKENS,
                                 rationale_chars=RATIONALE_CHARS)
pairs

# %% [markdown]
# One pair: `prompt`, `chosen` and `rejected` are message lists, the conversational format `DPOTrainer` reads as it
# is (extra columns such as the ratings are dropped before training).

# %%
{column: pairs.dataset[0][column] for column in ("prompt", "chosen", "rejected")}

# %% [markdown]
# DPO starts from an SFT model, not from the base model: DPO only *reweights* answers the model could already write,
# so it needs a model that already answers in the right format. `handoff.sft_checkpoint` uses notebook 03's
# checkpoint (`course.data_path("sft-model")`) if it was trained from the same base model; otherwise it trains a
# quick SFT on the pairs' prompts and *chosen* answers (the usual warm-up before DPO) and saves it there.

# %%
sft_model = handoff.sft_checkpoint(pairs.dataset, model=model_id, max_steps=SFT_STEPS)
sft_model

# %% [markdown]
# ## 3. The settings that matter
#
# The same profile logic as in notebook 03 (precision, LoRA, batch), with DPO's own learning rates, which are much
# smaller than SFT's: DPO's gradients push probabilities apart and a large step quickly degrades the text.

# %%
from smolsynth.hardware import count_parameters, training_profile
from smolsynth.training import dpo_config

profile = training_profile(model_params=count_parameters(sft_model.path))
print(f"profile {profile.name}: {profile.reason}")
config = dpo_config(profile, output_dir="(not used)", max_steps=MAX_STEPS, beta=BETA, n_train_rows=len(pairs))
{field: getattr(config, field) for field in (
    "beta", "learning_rate", "per_device_train_batch_size", "gradient_accumulation_steps", "max_length",
    "max_steps", "loss_type", "precompute_ref_log_probs", "bf16", "fp16", "use_cpu")}

# %% [markdown]
# | field | what it does | why this value |
# |---|---|---|
# | `beta` | scales the reward: how much a change of log-probability is worth | 0.1 is the paper's and TRL's default; higher (0.5) keeps the policy closer to the reference, lower lets it drift further from SFT |
# | `learning_rate` | size of each update | 1e-6 full fine-tuning (5e-7 to 1e-6 in the recipes), 5e-6 with LoRA: 10-20x below SFT |
# | `max_length` | tokens per row (prompt + answer); longer answers are truncated | TRL 1.x has no `max_prompt_length`/`max_completion_length` any more; rows whose prompt alone reaches `max_length` are **dropped** (smolsynth counts them in `metrics["dropped_rows"]`; TRL does it silently) |
# | `loss_type` | the loss: `sigmoid` is the DPO loss above | others (`ipo`, `hinge`, ...) exist; start with DPO's |
# | `precompute_ref_log_probs` | compute the reference's log-probabilities once, before training | off: it saves memory (no reference during training) but costs a full pass first |
# | batch × accumulation | pairs per optimizer step | DPO runs four sequences per pair (chosen and rejected, policy and reference): smaller batches than SFT fit |
#
# TRL 1.x changes that break older DPO code: `processing_class=` instead of `tokenizer=`, no
# `max_prompt_length`/`max_completion_length`/`rpo_alpha` in `DPOConfig`, `eval_strategy` instead of
# `evaluation_strategy`, `dtype` instead of `torch_dtype` (notebook 03 has the full list).

# %% [markdown]
# ## 4. The reference-model trap
#
# DPO's reward compares the policy with the reference, so **at step 0 the two must be the same model**: every reward
# and margin is then exactly 0. The classic mistake: train SFT, keep the model object in memory, and pass *it* to
# `DPOTrainer` without a `ref_model`. TRL then loads the reference from `model.config._name_or_path`, which is where
# the object was *loaded from*: the base model, not your SFT model. Training runs, the curves look plausible, and DPO
# optimizes against the wrong reference. Nothing warns you.
#
# smolsynth's `dpo` evaluates before the first step and raises `ReferenceModelError` when the rewards are not ~0.
# Below we make the mistake on purpose, with the base model as reference. (Our SFT model trained only a few steps
# and is still very close to the base, so we tighten the check's tolerance to see the difference; after a real SFT
# run the step-0 margins of this mistake are of order 1, and the default tolerance trips.)

# %%
from smolsynth.training import ReferenceModelError, dpo

RUNS = course.data_path("runs")  # a scratch folder for runs we do not keep
try:
    dpo(pairs.dataset, model=sft_model.path, ref_model=model_id, output_dir=str(RUNS / "wrong-reference"),
        max_steps=MAX_STEPS, beta=BETA, start_margin_tolerance=0.001)
    print("No error: the base and SFT models give the same rewards on these pairs.")
except ReferenceModelError as err:
    print(f"ReferenceModelError: {err}")

# %% [markdown]
# The fix is the one the message gives: pass the **path** of the saved SFT checkpoint as `model=`. TRL then loads
# the policy and the reference from the same folder. (Or pass `ref_model=copy.deepcopy(model)` with an in-memory
# model.)

# %% [markdown]
# ## 5. Train

# %%
dpo_result = dpo(pairs.dataset, model=sft_model.path, output_dir=str(course.data_path("dpo-model")),
                 max_steps=MAX_STEPS, beta=BETA)
print(f"reward margin at step 0: {dpo_result.metrics['eval_rewards/margins_before']:.3g} (must be ~0)")
dpo_result

# %% [markdown]
# ## 6. Reading the curves
#
# - **loss**: starts at $\log 2 \approx 0.693$ (margin 0: $-\log \sigma(0)$) and should fall below it.
# - **rewards/margins**: chosen reward minus rejected reward; should grow from 0. The dotted lines show the two
#   rewards: often *both* fall, the rejected one faster. A chosen reward that falls a lot means the model is
#   becoming less likely to write even the good answers: lower the learning rate, or raise `beta`.
# - **rewards/accuracies**: the share of pairs where the chosen answer has the higher reward. 0.5 is chance.
#   Near 1.0 on training pairs while the eval margin stalls: the model is memorising your pairs.
#
# In fast mode, three steps at DPO's learning rate barely move anything: the margins stay near 0.

# %%
from smolsynth.evaluation import plot_training

plot_training(dpo_result)

# %% [markdown]
# ## 7. Before and after: base, SFT, DPO
#
# The DPO model loads back from disk and answers like any model:

# %%
from smolsynth.evaluation import compare_answers, generate_answers
from smolsynth.models import load_model

trained, tokenizer = load_model(dpo_result.output_dir)
generate_answers(trained, tokenizer, EVAL_PROMPTS[:1], max_new_tokens=MAX_NEW_TOKENS)

# %% [markdown]
# The three models side by side, greedy, on prompts none of them trained on. On the tiny model every column is
# noise; on a real model, look at what your judge rewarded (length? structure? politeness?) and check whether the
# DPO column moved that way, and whether it moved *too* far (answers that got long or repetitive are the usual sign
# of a judge's bias being learned).

# %%
compare_answers({"base": model_id, "SFT": sft_model.path, "DPO": dpo_result.output_dir}, EVAL_PROMPTS,
                max_new_tokens=MAX_NEW_TOKENS)

# %% [markdown]
# ## 8. Time and memory, per hardware profile
#
# Measured on this machine, in this run:

# %%
m = dpo_result.metrics
print(f"{m['train_steps']} steps, {m['train_rows']} training pairs: {dpo_result.train_seconds:.1f} s of training "
      f"({m['examples_per_second']} pairs/s), {m['total_seconds']} s with loading, the step-0 check and saving; "
      f"profile {dpo_result.profile.name}.")

# %% [markdown]
# A DPO step costs about 2.5-3x an SFT step on the same rows: each pair is two sequences, each run through the policy
# (forward and backward) and the reference (forward only). Memory adds the reference model's weights (4 bytes per
# parameter in fp32, 2 in fp16/bf16) to SFT's ~16 bytes per trained parameter. **CPU** figures are measured
# (`benchmarks/README.md`, 2 busy cores, fp32); **T4** figures are estimates: notebook 03's SFT estimate
# (6 × parameters × tokens at ~8-10 TFLOP/s in fp16) times 2.5-3.
#
# | model | CPU (measured) | T4, fp16 (estimate) | memory |
# |---|---|---|---|
# | `smolsynth/tiny` (0.3M) | ~11 pairs/s (1 thread) | seconds | < 1 GB RAM |
# | SmolLM2-135M | ~92 s per step of 4 pairs: not in lesson time | ~3 min per 1k pairs | 8.5 GB RSS measured on CPU (policy + reference, batch 4) |
# | SmolLM2-360M | train on a GPU | 3-6 min per 1k pairs | ~6 GB + 1.4 GB for the fp32 reference + activations |
# | SmolLM2-1.7B | no | 15-30 min per 1k pairs **with LoRA** | LoRA: the frozen base doubles as the reference (adapters off), so no second copy |

# %% [markdown]
# ## 9. Exercises
#
# Replace every `____`, run the cell, then the check below it. The checks look at what ran and what was saved
# (where a run started, its step-0 rewards, the settings, whether the model loads and answers), never at the wording.
#
# Levels: 🐢 the default path · 🐕 a variant technique · 🦁 your own use case.

# %%
from datasets import Dataset

from smolsynth.evaluation import training_summary
from smolsynth.exercises import ____, nb04 as ex
from smolsynth.generation import generate

# %% [markdown]
# ### Exercise 1 🐢 DPO from your SFT checkpoint
#
# Run DPO yourself on `pairs.dataset`, starting from the SFT checkpoint, for `MAX_STEPS` steps, into a folder under
# `RUNS`, keeping an eval split so that the step-0 margin is measured. Put the result in `my_dpo_result`.

# %% exercise="q1" tags=["starter"]
my_dpo_result = ____  # dpo(...) from the SFT checkpoint

# %% exercise="q1" tags=["solution"]
my_dpo_result = dpo(pairs.dataset, model=sft_model.path, output_dir=str(RUNS / "my-dpo"), max_steps=MAX_STEPS)
my_dpo_result.metrics["eval_rewards/margins_before"]

# %% [markdown]
# ### Exercise 2 🐕 Compare two values of beta
#
# Train DPO with at least two values of `beta` (the same pairs, the same SFT checkpoint, the same number of steps),
# collect the results in a dict `beta_runs = {beta: result, ...}`, and put them side by side in `beta_table` with
# `training_summary`. Which beta moved the reward margin most? (On the tiny model in fast mode the differences are
# tiny; on a real model, also compare the answers with `compare_answers`.)

# %% exercise="q2" tags=["starter"]
beta_runs = ____  # {beta: dpo(..., beta=beta), ...} for at least two values
beta_table = ____  # training_summary(beta_runs)

# %% exercise="q2" tags=["solution"]
beta_runs = {BETA: dpo_result,
             BETA * 5: dpo(pairs.dataset, model=sft_model.path, beta=BETA * 5, output_dir=str(RUNS / "beta"),
                           max_steps=MAX_STEPS)}
beta_table = training_summary(beta_runs)
beta_table

# %% [markdown]
# ### Exercise 3 🦁 DPO on pairs of your own
#
# Make at least four preference pairs for a use case of yours and train DPO on them. One cheap recipe when your
# criterion is clear-cut: generate two answers per prompt under two system prompts, one that produces what you want
# (say, short answers) and one that does not, and take the first as chosen. That is a preference *by construction*:
# read a few pairs to make sure it holds. (Or use the judge pipeline of notebook 02 on your own prompts.)
# Put the pairs (a `Dataset` of `prompt`/`chosen`/`rejected` message lists) in `my_pairs` and the run in
# `my_own_dpo_result`.

# %% exercise="q3" tags=["starter"]
my_pairs = ____  # a Dataset of at least 4 pairs of your own: prompt / chosen / rejected message lists
my_own_dpo_result = ____  # dpo(my_pairs, ...)

# %% exercise="q3" tags=["solution"]
my_prompts = [
    "How often should I water a basil plant on a windowsill?",
    "Which vegetables can I grow on a small balcony?",
    "Why are the leaves of my tomato plant turning yellow?",
    "How do I start a compost bin in a flat?",
    "When is the best time of day to water a garden?",
    "How do I keep slugs away from lettuce without chemicals?",
]
brief = generate(my_prompts, model=model_id, system_prompt="Answer in one short, practical sentence.",
                 max_new_tokens=MAX_NEW_TOKENS)
wordy = generate(my_prompts, model=model_id, system_prompt="Answer at length, with a long introduction.",
                 temperature=1.0, max_new_tokens=MAX_NEW_TOKENS)
brief_by_prompt = dict(zip(brief.dataset["instruction"], brief.dataset["generation"]))
wordy_by_prompt = dict(zip(wordy.dataset["instruction"], wordy.dataset["generation"]))
my_pairs = Dataset.from_list([
    {"prompt": [{"role": "user", "content": p}],
     "chosen": [{"role": "assistant", "content": brief_by_prompt[p]}],
     "rejected": [{"role": "assistant", "content": wordy_by_prompt[p]}]}
    for p in my_prompts if p in brief_by_prompt and p in wordy_by_prompt
])
my_own_dpo_result = dpo(my_pairs, model=sft_model.path, output_dir=str(RUNS / "my-own-dpo"), max_steps=MAX_STEPS)

# %% [markdown]
# ## What's next
#
# - **Real pairs, more of them.** DPO needs hundreds to thousands of pairs before the answers change visibly; the
#   judge's quality sets the ceiling (notebook 02: several generators, a strong judge, ties dropped).
# - **beta and the learning rate.** The two knobs of DPO. Watch the chosen reward: if it falls steeply, the model is
#   unlearning good answers too.
# - **The binarization rule.** `best-vs-worst` gives wider margins than `best-vs-random`; `best-vs-random-lower` drops
#   ties. Make pairs with each (`handoff.make_preference_pairs(rule=...)`) and compare the runs.
# - **LoRA on a GPU.** `dpo(..., lora=True)`: the adapters train, the frozen base serves as the reference, and a
#   1.7B model fits a T4.
# - **Evaluate beyond eyeballing.** A held-out set of prompts judged by the same (or a stronger) judge, base vs SFT
#   vs DPO, turns the side-by-side table into a win rate.
