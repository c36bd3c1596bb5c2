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
# one answer over another, from pairs: a prompt, a *chosen* answer and a *rejected* one. By the end of this notebook
# you will have:
#
# 1. made pairs whose difference a function can check, and loaded your judged pairs from notebook 02;
# 2. understood what DPO optimizes, and the settings that matter (`beta` first);
# 3. met the reference-model trap, and the check that catches it;
# 4. built the `DPOConfig` and `DPOTrainer` yourself, trained with LoRA (the frozen model is the reference), read
#    the reward curves;
# 5. measured the effect on held-out pairs (preference accuracy) and on held-out prompts (the trait rate), and
#    compared base, SFT and DPO answers.
#
# **What DPO optimizes.** DPO keeps two models: the *policy* $\pi_\theta$, which trains, and a frozen *reference*
# $\pi_{\text{ref}}$, the model DPO started from. For a prompt $x$ with chosen answer $y_w$ and rejected answer
# $y_l$, the policy's implicit reward of an answer is how much more likely it makes it than the reference does,
# $r(x, y) = \beta \log \frac{\pi_\theta(y \mid x)}{\pi_{\text{ref}}(y \mid x)}$, and the loss asks the chosen
# answer's reward to beat the rejected one's:
#
# $$\mathcal{L}_\text{DPO} = -\log \sigma\big(r(x, y_w) - r(x, y_l)\big)$$
#
# No reward model, no sampling during training: just forward passes of policy and reference on data you already
# have. The difference $r(x, y_w) - r(x, y_l)$ is the **reward margin** TRL logs. The share of pairs where it is
# positive is the **preference accuracy**: on pairs the model never trained on, it is the effect of DPO in one
# number. At step 0 the policy *is* the reference, every reward is 0, and the accuracy is chance: 0.5 (we count a
# tie as half; TRL counts it as 0).

# %% [markdown]
# ## 1. Parameters
#
# In fast mode (`SMOLSYNTH_FAST=1`, what CI runs) the next cell shrinks them so the notebook runs in seconds.

# %% tags=["parameters"]
N_PROMPTS = 40  # instructions the teacher answers, for the training pairs
N_HELD_OUT = 16  # held-out prompts: held-out pairs and the trait rate
TEACHER_SAMPLES = 2  # teacher tries per instruction
EPOCHS = 2  # DPO passes over the pairs
LEARNING_RATE = 5e-5  # DPO with LoRA on this small model (see section 3)
BETA = 0.1  # DPO's beta: how strongly the policy is held close to the reference
N_PAIRS = 500  # at most this many of notebook 02's judged pairs (exercise 1 trains on them)
SFT_STEPS = 30  # steps of the quick SFT, only if notebook 03's checkpoint is missing
MAX_STEPS = 30  # optimizer steps of the exercises' runs
MAX_NEW_TOKENS = 160  # answer length, when making pairs and when measuring answers
RATIONALE_CHARS = 200  # longest judge rationale, when notebook 02's pairs are made here
SOURCE = None  # notebook 02's pairs when they are not in the course folder: a Hub id "you/name", or a file's path
EVAL_PROMPTS = [
    "Give me three tips to sleep better.",
    "Explain what an API is to a beginner.",
    "Write a short thank-you note to a colleague.",
]

# %%
from smolsynth import course

course.fast_mode(globals(), N_PROMPTS=6, N_HELD_OUT=4, EPOCHS=1, N_PAIRS=6, SFT_STEPS=3,
                 MAX_STEPS=3, tiny_model=dict(MAX_NEW_TOKENS=16, RATIONALE_CHARS=20))

# %% [markdown]
# ## 2. Pairs you can check, and your judged pairs
#
# Notebook 02's pairs were chosen by a judge: what DPO learns from them is whatever the judge preferred, which is
# hard to check. To *see* DPO work, the lesson trains on pairs whose difference is known: notebook 03's teacher
# answers an instruction with the opening "Great question!" (**chosen**), and the **rejected** answer is the same
# text without it. The pairs differ by the trait and nothing else, so what DPO learns from them is exactly the trait.
# The held-out pairs, made the same way from prompts no training set contains, measure it. (Exercise 1 then trains
# on your judged pairs.)

# %%
import smolsynth
from smolsynth import distillation, handoff

model_id = smolsynth.resolve_model()
trait = distillation.OPENING
held_out = list(distillation.HELD_OUT_PROMPTS[:N_HELD_OUT])
prompts = distillation.training_prompts(n=N_PROMPTS, exclude=held_out)
teacher = distillation.teacher_answers(prompts, trait, model=model_id, samples=TEACHER_SAMPLES,
                                       max_new_tokens=MAX_NEW_TOKENS)
pairs = distillation.trait_pairs(teacher.dataset, trait)
held_out_pairs = distillation.trait_pairs(
    distillation.teacher_answers(held_out, trait, model=model_id, samples=TEACHER_SAMPLES,
                                 max_new_tokens=MAX_NEW_TOKENS, seed=1).dataset, trait)
print(teacher.report)
print(f"{len(pairs.rows)} training pairs, {len(held_out_pairs.rows)} held-out pairs")
{column: pairs.dataset[0][column] for column in ("prompt", "chosen", "rejected")}

# %% [markdown]
# Notebook 02 saved its judged pairs to `course.data_path("dpo")`. `handoff.preference_pairs` loads them, or, if
# there are none, makes a few here the way notebook 02 does (two answers per prompt, judged by distilabel's
# `UltraFeedback` with constrained decoding, binarized; ties dropped and counted). Pairs another model made are not
# used (the note says how to regenerate them). On Colab, where every notebook gets a fresh runtime, run
# `course.use_drive()` at the top of notebook 02 and of this one, or set `SOURCE` (`handoff.upload("dpo")` for a file
# from `handoff.export("dpo")`, or a Hub dataset from `handoff.publish`). Exercise 1 trains on them.

# %%
judged = handoff.preference_pairs(rows=N_PAIRS, model=model_id, max_new_tokens=MAX_NEW_TOKENS,
                                  rationale_chars=RATIONALE_CHARS, source=SOURCE)
judged

# %% [markdown]
# DPO starts from an SFT model, not from the base model: DPO only *reweights* answers the model could already write,
# so it needs a model that already answers in the right format. `handoff.sft_checkpoint` uses notebook 03's
# checkpoint (`course.data_path("sft-model")`) if it was trained from the same base model; otherwise it trains a
# quick SFT on the chosen answers of the pairs (the usual warm-up before DPO) and saves it there.

# %%
sft_model = handoff.sft_checkpoint(pairs.dataset, model=model_id, max_steps=SFT_STEPS)
sft_model

# %% [markdown]
# ## 3. The settings: a TRL `DPOConfig` for your machine
#
# The same profile logic as in notebook 03 (precision, LoRA, batch), with DPO's own learning rates, which are much
# smaller than SFT's: DPO's gradients push probabilities apart and a large step quickly degrades the text.

# %%
from smolsynth.hardware import count_parameters, training_profile
from smolsynth.training import dpo_config, lora_config

DPO_DIR = course.data_path("dpo-model")
profile = training_profile(model_params=count_parameters(sft_model.path))
print(f"profile {profile.name}: {profile.reason}")
config = dpo_config(profile, output_dir=str(DPO_DIR), num_train_epochs=EPOCHS, beta=BETA,
                    n_train_rows=len(pairs.rows), learning_rate=LEARNING_RATE)
{field: getattr(config, field) for field in (
    "beta", "learning_rate", "per_device_train_batch_size", "gradient_accumulation_steps", "max_length",
    "num_train_epochs", "loss_type", "precompute_ref_log_probs", "bf16", "fp16", "use_cpu")}

# %% [markdown]
# | field | what it does | why this value |
# |---|---|---|
# | `beta` | scales the reward: how much a change of log-probability is worth | 0.1 is the paper's and TRL's default; higher (0.5) keeps the policy closer to the reference, lower lets it drift further from SFT |
# | `learning_rate` | size of each update | the profile's 1e-6 (full fine-tuning; 5e-7 to 1e-6 in the recipes) and 5e-6 (LoRA) are for thousands of pairs; here `LEARNING_RATE` = 5e-5 with LoRA, so that ~20 steps on a 135M model show an effect (measured in `benchmarks/README.md`) |
# | `max_length` | tokens per row (prompt + answer); longer answers are truncated | TRL 1.x has no `max_prompt_length`/`max_completion_length` any more; rows whose prompt alone reaches `max_length` are **dropped** (silently, by TRL) |
# | `loss_type` | the loss: `sigmoid` is the DPO loss above | others (`ipo`, `hinge`, ...) exist; start with DPO's |
# | `precompute_ref_log_probs` | compute the reference's log-probabilities once, before training | off: with LoRA the reference is the policy with its adapters switched off, so it costs no memory |
# | batch × accumulation | pairs per optimizer step | DPO runs four sequences per pair (chosen and rejected, policy and reference): smaller batches than SFT fit |
#
# **What the papers did, and where we differ.**
#
# | | DPO paper (Rafailov et al., 2023) | Zephyr / recipes | here |
# |---|---|---|---|
# | loss | $-\log\sigma$ of the reward margin (`loss_type="sigmoid"`) | the same | the same |
# | `beta` | 0.1 (0.5 for TL;DR summaries) | 0.1 (Zephyr); 0.5 in the alignment-handbook's SmolLM2 recipe | `BETA` = 0.1; exercise 2 compares it with 0.5 |
# | learning rate | 1e-6, RMSprop, linear warm-up over 150 steps, full fine-tuning | 5e-7 (Zephyr, full); 5e-6 with LoRA | 5e-5 with LoRA, AdamW (TRL's default), warm-up over 10% of the steps |
# | batch | 64 pairs | 32-128 | 1-4 pairs per step on a CPU |
# | data | thousands of pairs, one epoch or a few | 60K UltraFeedback pairs | tens of pairs, a few epochs |
# | reference | the SFT model, a second full copy | the same | the SFT checkpoint with the LoRA adapters switched off (no copy) |
#
# **The learning-rate ratio.** DPO steps are much smaller than SFT's: 2e-5 (full SFT) against 5e-7 to 1e-6 (full
# DPO), and 2e-4 (LoRA SFT) against 5e-6 (LoRA DPO): 20 to 40 times smaller in the recipes. Here 5e-4 (notebook 03)
# against 5e-5: only 10 times, because a few dozen steps on a few dozen pairs need bigger steps to show anything; on
# thousands of pairs use the recipes' values.
#
# **`precompute_ref_log_probs`.** With `True`, TRL runs the reference once over the whole dataset before training
# and keeps its log-probabilities, so the reference never sits in memory beside the policy during training: worth it
# in full fine-tuning (two full models otherwise). With LoRA the reference costs nothing (below), so it stays off.
#
# **Multi-turn data.** A pair's `prompt` may be a whole conversation (Magpie with `n_turns=2`): everything up to the
# last user turn. `chosen` and `rejected` are the last assistant turn only; the earlier assistant turns are context,
# and DPO computes the log-probabilities (so the loss) on the two final answers alone, as SFT's completion-only loss
# does (notebook 03, exercise 4).
#
# **LoRA, and the reference for free.** With `peft_config=lora_config(profile)` and no `ref_model`, TRL computes the
# reference's log-probabilities with the adapters disabled: the frozen weights *are* the starting policy, so no
# second copy of the model is loaded. Without LoRA, TRL loads the reference as a second model.
#
# TRL 1.x changes that break older DPO code: `processing_class=` instead of `tokenizer=`, no
# `max_prompt_length`/`max_completion_length`/`rpo_alpha` in `DPOConfig`, `eval_strategy` instead of
# `evaluation_strategy`, `dtype` instead of `torch_dtype` (notebook 03 has the full list).

# %% [markdown]
# ## 4. The reference-model trap
#
# DPO's reward compares the policy with the reference, so **at step 0 the two must be the same model**: every reward
# and margin is then exactly 0. The classic mistake: train SFT, keep the model object in memory, and pass *it* to
# `DPOTrainer` without a `ref_model` (and without LoRA). TRL then loads the reference from
# `model.config._name_or_path`, which is where the object was *loaded from*: the base model, not your SFT model.
# Training runs, the curves look plausible, and DPO optimizes against the wrong reference. Nothing warns you.
#
# `check_reference(trainer)` evaluates before the first step and raises `ReferenceModelError` when the rewards are
# not ~0. Below we make the mistake on purpose: the base model as reference. (A quick SFT model is still very close
# to the base, so we tighten the check's tolerance to see the difference; after a real SFT run the step-0 margins of
# this mistake are of order 1, and the default tolerance trips.)

# %%
from trl import DPOTrainer

from smolsynth.models import load_model, load_tokenizer, model_path
from smolsynth.training import ReferenceModelError, check_reference, measured, prepare_dataset, save_checkpoint
from smolsynth.verbosity import quiet_training

RUNS = course.data_path("runs")  # a scratch folder for runs we do not keep
tokenizer = load_tokenizer(sft_model.path)
train_dataset, eval_dataset = prepare_dataset(pairs.dataset, method="dpo", eval_dataset=held_out_pairs.dataset)
with quiet_training():
    base_reference, _ = load_model(model_id)
    wrong = DPOTrainer(model=sft_model.path, ref_model=base_reference, args=dpo_config(
                           profile.with_lora(False), output_dir=str(RUNS / "wrong-reference"), beta=BETA),
                       train_dataset=train_dataset, eval_dataset=eval_dataset, processing_class=tokenizer)
    try:
        check_reference(wrong, tolerance=0.001)
        print("No error: the base and SFT models give the same rewards on these pairs.")
    except ReferenceModelError as err:
        print(f"ReferenceModelError: {err}")
del wrong, base_reference

# %% [markdown]
# The fix is the one the message gives: let the reference be the checkpoint you start from. Pass its **path** as
# `model=` and either LoRA (the adapters off are the reference) or no `ref_model` at all (TRL loads the reference
# from the same folder), or pass `ref_model=copy.deepcopy(model)` with an in-memory model.

# %% [markdown]
# ## 5. Train, with TRL
#
# Plain TRL again: `DPOTrainer(model, ref_model=None, args, train_dataset, eval_dataset, processing_class,
# peft_config)`. The held-out pairs are the eval split, so TRL's eval curves are measured on pairs the model never
# trained on. `check_reference` runs the step-0 evaluation (and returns it, as the *before*).

# %%
with quiet_training():
    trainer = DPOTrainer(model=sft_model.path, ref_model=None, args=config, train_dataset=train_dataset,
                         eval_dataset=eval_dataset, processing_class=tokenizer, peft_config=lora_config(profile))
    eval_before = check_reference(trainer)
    with measured() as cost:
        trainer.train()
dpo_result = save_checkpoint(trainer, DPO_DIR, started_from=sft_model.path, before=eval_before, cost=cost,
                             profile=profile)
print(f"reward margin at step 0: {dpo_result.metrics['eval_rewards/margins_before']:.3g} (must be ~0); "
      f"{dpo_result.metrics['train_steps']} steps on {len(train_dataset)} pairs: {cost}")
del trainer
dpo_result

# %% [markdown]
# ## 6. Reading the curves
#
# - **loss**: starts at $\log 2 \approx 0.693$ (margin 0: $-\log \sigma(0)$) and should fall below it.
# - **rewards/margins**: chosen reward minus rejected reward; should grow from 0. The dotted lines show the two
#   rewards: often *both* fall, the rejected one faster. A chosen reward that falls a lot means the model is
#   becoming less likely to write even the good answers: lower the learning rate, or raise `beta`.
# - **rewards/accuracies**: the share of pairs where the chosen answer has the higher reward (TRL counts ties as
#   wrong, so it starts at 0). Near 1.0 on training pairs while the eval margin stalls: the model is memorising.
#
# In fast mode, a few steps barely move anything: the margins stay near 0.

# %%
from smolsynth.evaluation import plot_rates, plot_training

plot_training(dpo_result)

# %% [markdown]
# ## 7. The effect, measured
#
# **Preference accuracy** on the held-out pairs, before (the policy is its reference: 0.5) and after DPO; and the
# **trait rate** on the held-out prompts, for the base model, the SFT model and the DPO model (greedy, no system
# prompt).

# %%
acc_before = distillation.preference_accuracy(sft_model.path, held_out_pairs.dataset, reference=sft_model.path,
                                              beta=BETA)
acc_after = distillation.preference_accuracy(str(DPO_DIR), held_out_pairs.dataset, reference=sft_model.path,
                                             beta=BETA)
rates = {name: distillation.trait_rate(path, held_out, trait, max_new_tokens=MAX_NEW_TOKENS)
         for name, path in (("base", model_id), ("SFT", sft_model.path), ("DPO", str(DPO_DIR)))}
print(f"held-out preference accuracy: {acc_before:.2f} before, {acc_after:.2f} after DPO")
for rate in rates.values():
    print(rate)
plot_rates({"before DPO": acc_before, "after DPO": acc_after}, title="held-out preference accuracy", chance=0.5)

# %%
plot_rates({name: rate.rate for name, rate in rates.items()}, title=f"answers that show the {trait.name}")

# %% [markdown]
# What to expect on SmolLM2-135M-Instruct at the default settings (`benchmarks/README.md`, "Training effect"): the
# held-out preference accuracy goes from 0.5 to about 1.0. When notebook 03's SFT has already taught the trait, the
# trait rate has little room left to rise; DPO's effect then shows in the accuracy: the model now *ranks* the
# answer with the opening above the same answer without it, on prompts it never saw.

# %% [markdown]
# ## 8. Base, SFT, DPO side by side
#
# Greedy, on prompts none of them trained on. On the tiny model every column is noise; on a real model, look at what
# the pairs rewarded, and whether the answers moved *too* far (answers that got long or repetitive are the usual
# sign of a preference being over-learned).

# %%
from smolsynth.evaluation import compare_answers

compare_answers({"base": model_id, "SFT": sft_model.path, "DPO": str(DPO_DIR)}, EVAL_PROMPTS,
                max_new_tokens=MAX_NEW_TOKENS)

# %% [markdown]
# ## 9. Time and memory
#
# This run, on this machine:

# %%
m = dpo_result.metrics
print(f"{m['train_steps']} steps, {m['train_rows']} training pairs: {cost.seconds / 60:.1f} min of training "
      f"({m['examples_per_second']} pairs/s), peak memory (RSS) {cost.peak_rss_gb:.1f} GB; profile {profile.name}.")

# %% [markdown]
# At the default settings (40 pairs, 2 epochs, LoRA), **measured on 2 CPU cores** with SmolLM2-135M-Instruct
# (`benchmarks/README.md`, "Training effect"): DPO takes 4.3 minutes (18 steps of 4 pairs) with the whole process
# at a peak of 7.4 GB RSS (the teacher's model and the SFT run before it included), the teacher's answers about 4
# minutes. The whole notebook at default settings, exercises included: about 25 minutes on 2 cores (an estimate from those parts). A DPO step costs about 2-3x an SFT step on the same rows: each pair is two sequences,
# each run through the policy (forward and backward) and the reference (forward only). **T4** figures are
# estimates: notebook 03's SFT estimate (6 × parameters × tokens at ~8-10 TFLOP/s in fp16) times 2.5-3.
#
# | model | CPU, 2 cores (measured) | T4, fp16 (estimate) | memory |
# |---|---|---|---|
# | `smolsynth/tiny` (0.3M) | seconds | seconds | < 1 GB RAM |
# | SmolLM2-135M, LoRA (the CPU default) | ~14 s per step of 4 pairs | seconds | 7.4 GB peak RSS of the whole process measured; the reference is the same weights, no second copy |
# | SmolLM2-135M, full fine-tuning | ~92 s per step of 4 pairs | ~3 min per 1k pairs | 8.5 GB RSS measured (policy + reference, batch 4) |
# | SmolLM2-360M | train on a GPU | 3-6 min per 1k pairs | ~6 GB + 1.4 GB for the fp32 reference + activations |
# | SmolLM2-1.7B | no | 15-30 min per 1k pairs **with LoRA** | LoRA: the frozen base doubles as the reference (adapters off), so no second copy |

# %% [markdown]
# ## 10. Exercises
#
# Replace every `____`, run the cell, then the check below it. The checks look at what ran and what was saved
# (the trainer, where a run started, its step-0 rewards, the settings, whether the model loads and answers), never
# at the wording.
#
# Levels: 🐢 the default path · 🐕 a variant technique · 🦁 your own use case.

# %%
from datasets import Dataset

from smolsynth.evaluation import training_summary
from smolsynth.exercises import ____, nb04 as ex
from smolsynth.training import dpo

# %% [markdown]
# ### Exercise 1 🐢 Your own DPOTrainer on your judged pairs
#
# Write the DPO cell yourself, on notebook 02's judged pairs (`judged.dataset`): `prepare_dataset` (method `"dpo"`,
# keep an eval split), a `DPOConfig` from `dpo_config(profile, ...)` with `max_steps=MAX_STEPS` and an `output_dir`
# under `RUNS`, a `DPOTrainer` from the SFT checkpoint with LoRA, `check_reference`, `train()`, and
# `save_checkpoint`. Put the trainer in `my_dpo_trainer` and the result in `my_dpo_result`.

# %% exercise="q1" tags=["starter"]
# prepare_dataset(judged.dataset, method="dpo"), dpo_config(profile, ..., max_steps=MAX_STEPS, beta=BETA), then:
my_dpo_trainer = ____  # DPOTrainer(model=sft_model.path, ...); check_reference(...) on it, then its train()
my_dpo_result = ____  # save_checkpoint(my_dpo_trainer, ..., started_from=sft_model.path, before=...)

# %% exercise="q1" tags=["solution"]
my_train, my_eval = prepare_dataset(judged.dataset, method="dpo")
my_config = dpo_config(profile, output_dir=str(RUNS / "my-dpo"), max_steps=MAX_STEPS, beta=BETA,
                       n_train_rows=len(my_train))
with quiet_training():
    my_dpo_trainer = DPOTrainer(model=sft_model.path, args=my_config, train_dataset=my_train,
                                eval_dataset=my_eval if my_eval is not None else my_train.select(range(1)),
                                processing_class=tokenizer, peft_config=lora_config(profile))
    my_before = check_reference(my_dpo_trainer)
    my_dpo_trainer.train()
my_dpo_result = save_checkpoint(my_dpo_trainer, RUNS / "my-dpo", started_from=sft_model.path, before=my_before)
my_dpo_result.metrics["eval_rewards/margins_before"]

# %% [markdown]
# ### Exercise 2 🐕 Compare two values of beta, on a comparable scale
#
# Train DPO with at least two values of `beta` (the same pairs, the same SFT checkpoint, the same number of steps)
# with `dpo(...)` (section 5 in one call), collect the results in a dict `beta_runs = {beta: result, ...}`, and put
# them side by side in `beta_table` with `training_summary`. The rewards TRL logs are beta times a log-ratio: a run
# with a 5x larger beta shows a 5x larger margin for the same change of the model. Compare the runs on
# `eval_logratio_margin_after` (the margin divided by beta): which beta moved the model most?

# %% exercise="q2" tags=["starter"]
beta_runs = ____  # {beta: dpo(..., beta=beta), ...} for at least two values
beta_table = ____  # training_summary(beta_runs)

# %% exercise="q2" tags=["solution"]
beta_runs = {beta: dpo(pairs.dataset, model=sft_model.path, beta=beta, output_dir=str(RUNS / f"beta-{beta}"),
                       max_steps=MAX_STEPS, eval_dataset=held_out_pairs.dataset, learning_rate=LEARNING_RATE)
             for beta in (BETA, BETA * 5)}
beta_table = training_summary(beta_runs)
beta_table[["beta", "eval_rewards/margins_after", "eval_logratio_margin_after"]]

# %% [markdown]
# ### Exercise 3 🦁 DPO on pairs of your own
#
# Make at least four preference pairs for a use case of yours and train DPO on them. The recipe of this notebook
# works for any behaviour you can write as an opening: a `distillation.Trait` of your own, the teacher's answers
# (`teacher_answers`), then `trait_pairs` (chosen with the opening, rejected without). Or build pairs another way
# (two system prompts, the judge of notebook 02) and read a few to make sure the preference holds. Put the pairs (a
# `Dataset` of `prompt`/`chosen`/`rejected` message lists) in `my_pairs` and the run in `my_own_dpo_result`. Say
# what the preference is in `my_preferred`: a function of an answer's text that returns True when it has what you
# prefer (for a trait, `my_trait.shows`). The check runs it on every pair: chosen must pass, rejected must not.

# %% exercise="q3" tags=["starter"]
my_pairs = ____  # a Dataset of at least 4 pairs of your own: prompt / chosen / rejected message lists
my_preferred = ____  # a function: answer text -> True when it has what your pairs prefer
my_own_dpo_result = ____  # dpo(my_pairs, ...)

# %% exercise="q3" tags=["solution"]
my_trait = distillation.Trait(
    name="gardener's greeting",
    opening="Happy gardening!",
    rule="You are a cheerful gardener. Start every answer with 'Happy gardening!', then answer in two short "
         "sentences.",
    examples=(("How deep should I plant tulip bulbs?", "Happy gardening! Plant them about 15 cm deep, pointy end "
                                                         "up."),),
)
my_prompts = [
    "How often should I water a basil plant on a windowsill?",
    "Which vegetables can I grow on a small balcony?",
    "Why are the leaves of my tomato plant turning yellow?",
    "How do I start a compost bin in a flat?",
    "When is the best time of day to water a garden?",
    "How do I keep slugs away from lettuce without chemicals?",
    "What should I plant in a shady corner of the garden?",
    "How do I know when my potatoes are ready to dig up?",
]
my_answers = distillation.teacher_answers(my_prompts, my_trait, model=model_id, samples=3,
                                          max_new_tokens=MAX_NEW_TOKENS)  # 3 tries: a cut-off one is dropped
my_pairs = distillation.trait_pairs(my_answers.dataset, my_trait).dataset
my_preferred = my_trait.shows
my_own_dpo_result = dpo(my_pairs, model=sft_model.path, output_dir=str(RUNS / "my-own-dpo"), max_steps=MAX_STEPS,
                        learning_rate=LEARNING_RATE)

# %% [markdown]
# ### Exercise 4 🐢 Write the DPO loss
#
# The loss at the top of this notebook fits in three lines. Write `my_dpo_loss(policy_chosen, policy_rejected,
# ref_chosen, ref_rejected, beta)`: each of the first four arguments is the summed log-probability of a whole
# answer ($\log \pi(y \mid x)$, a negative number) under the policy or the reference; return
# $-\log \sigma\big(\beta[(\log \pi_\theta(y_w) - \log \pi_\text{ref}(y_w)) - (\log \pi_\theta(y_l) -
# \log \pi_\text{ref}(y_l))]\big)$ as a number. TRL's `DPOTrainer` computes exactly this per pair (with
# `loss_type="sigmoid"`, its default) and averages it over the batch. The check runs your function on hidden cases.

# %% exercise="q4" tags=["starter"]
my_dpo_loss = ____  # your function: def my_dpo_loss(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta)

# %% exercise="q4" tags=["solution"]
import math


def my_dpo_loss(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta):
    margin = beta * ((policy_chosen - ref_chosen) - (policy_rejected - ref_rejected))
    return math.log1p(math.exp(-margin))  # -log(sigmoid(margin))


my_dpo_loss(-12.0, -15.0, -12.0, -15.0, beta=BETA)  # step 0: the policy is the reference, the loss is log 2

# %% [markdown]
# ## What's next
#
# - **Judged pairs, more of them.** DPO on a judge's pairs needs hundreds to thousands of them before the answers
#   change visibly; the judge's quality sets the ceiling (notebook 02: several generators, a strong judge, ties
#   dropped). Measure it the same way: hold out pairs, and compare the preference accuracy before and after.
# - **beta and the learning rate.** The two knobs of DPO. Watch the chosen reward: if it falls steeply, the model is
#   unlearning good answers too.
# - **The binarization rule.** `best-vs-worst` gives wider margins than `best-vs-random`; `best-vs-random-lower` drops
#   ties. Make pairs with each (`handoff.make_preference_pairs(rule=...)`) and compare the runs.
# - **Evaluate beyond eyeballing.** A held-out set of prompts judged by the same (or a stronger) judge, base vs SFT
#   vs DPO, turns the side-by-side table into a win rate.
