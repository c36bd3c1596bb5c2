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
# An SFT dataset shows a model *what* to say. A preference dataset shows it *which of two answers is better*: each
# row holds a prompt, a **chosen** answer and a **rejected** one, and DPO (notebook 04) pushes the model towards the
# first and away from the second. People rarely write such pairs by hand; the usual recipe, from the UltraFeedback
# paper, is:
#
# 1. get **several candidate answers** per prompt (from different models, or one model in different moods);
# 2. have a **judge** model rate every candidate, with a written rationale;
# 3. **binarize**: keep the best-rated candidate as chosen and another one as rejected.
#
# By the end of this notebook you will have run each step, read the judge's prompt, compared three binarization
# rules, checked the judge for position bias, and saved a DPO dataset that notebook 04 trains on.

# %% [markdown]
# ## 1. Parameters
#
# In fast mode (CI, or `SMOLSYNTH_FAST=1`) the cell after the parameters shrinks the row counts so that the notebook
# runs in minutes. On the tiny random test model it also cuts the token budgets (its answers are then a few tokens of
# noise: that is expected); a real model gets 256 tokens, within which SmolLM2-135M finishes 75-83% of its answers
# (384 in a full run: 83-92%), so that most answers can finish.

# %% tags=["parameters"]
N_PROMPTS = 24  # how many instructions to turn into pairs
MAX_NEW_TOKENS = 384  # the longest candidate answer, in tokens (longer ones are cut off, then dropped)
RATIONALE_CHARS = 200  # the longest rationale the judge may write per candidate
BIAS_SAMPLE = 12  # rows judged in both orders (and twice more, sampled) for the position-bias check
N_PROBES = 12  # judge-sanity probes to judge (smolsynth ships 12)
ASPECT_ROWS = 2  # rows judged on all four UltraFeedback aspects
SEED = 0

# %%
from smolsynth import course

course.fast_mode(globals(), N_PROMPTS=6, BIAS_SAMPLE=4, N_PROBES=4, ASPECT_ROWS=1, RATIONALE_CHARS=60,
                 MAX_NEW_TOKENS=256, tiny_model=dict(MAX_NEW_TOKENS=16, RATIONALE_CHARS=24))

# %% [markdown]
# ## 2. The prompts
#
# Notebook 01 saved an instruction dataset (`course.data_path("sft")`); its user turns are the prompts we need. If you
# opened this notebook on its own, we fall back to a short list of everyday instructions that ships with smolsynth.

# %%
import smolsynth
from smolsynth import handoff

model_id = smolsynth.resolve_model()
saved_sft = course.data_path("sft")
if saved_sft.exists():
    from datasets import load_from_disk

    saved = load_from_disk(str(saved_sft))
    instructions = [next(m["content"] for m in row["messages"] if m["role"] == "user") for row in saved]
    print(f"Using the instructions of notebook 01's dataset ({saved_sft}).")
else:
    instructions = list(handoff.SAMPLE_INSTRUCTIONS)
    print("No dataset from notebook 01 yet: using smolsynth's sample instructions.")
instructions = list(dict.fromkeys(instructions))[:N_PROMPTS]  # no duplicates: a pair per distinct prompt
print(f"{len(instructions)} prompts, e.g. {instructions[0]!r}; model: {model_id}")

# %% [markdown]
# ## 3. Candidates, way 1: pooling generators
#
# A judge can only prefer one answer over another if the answers differ. UltraFeedback sampled 4 answers per prompt
# from a pool of 17 models. On a laptop, one model at a time is what fits, so the pool here is **one model with two
# system prompts and two ways of decoding** (`DEFAULT_GENERATORS`: greedy with a repetition penalty, and sampling at
# temperature 0.7; both chosen so that most of a small model's answers end within the budget). With more memory,
# pass real models instead, e.g. `generators=["HuggingFaceTB/SmolLM2-360M-Instruct", "Qwen/Qwen2.5-0.5B-Instruct"]`:
# `pool_responses` then loads them one at a time, and records in `generation_models` who wrote each answer.

# %%
from smolsynth.preferences import DEFAULT_GENERATORS, pool_responses

for g in DEFAULT_GENERATORS:
    print(f"{g.name:>9}: temperature {g.temperature}, repetition penalty {g.repetition_penalty}, "
          f"system prompt {g.system_prompt!r}")
pooled = pool_responses(instructions, max_new_tokens=MAX_NEW_TOKENS, seed=SEED)
pooled.funnel

# %%
pooled.dataset.to_pandas().head(3)

# %% [markdown]
# ## 4. Candidates, way 2: evolving answers (EvolQuality)
#
# Instead of asking another model, you can ask a model to **rewrite** an answer to make it better: that is
# EvolQuality, from the Deita paper. Each rewrite follows one of five directions (helpfulness, relevance, deepening,
# creativity, details) and may add only 10 to 20 words. A rewrite is a new candidate, usually *close* to its source:
# pooling gives variety, evolving gives candidates that differ in quality on the same content, which is what a
# preference is about. Here is the prompt distilabel's `EvolQuality` sends for "helpfulness":

# %%
tasks = smolsynth.import_distilabel("distilabel.steps.tasks")
templates = smolsynth.import_distilabel("distilabel.steps.tasks.evol_quality.utils").MUTATION_TEMPLATES
print(templates["HELPFULNESS"])

# %%
from smolsynth.preferences import evolve_quality

evolved = evolve_quality(pooled.dataset, ["helpfulness", "deepening"], max_new_tokens=MAX_NEW_TOKENS, seed=SEED)
print(evolved.dataset[0]["generation_models"])
print(evolved.dataset[0]["generation_sources"])
evolved.funnel

# %% [markdown]
# Every row now has four candidates: two pooled answers and two rewrites of the first one. `generation_sources` says
# how each was made (and `generation_models` who made it), so you can compare them later.
#
# ## 5. The judge: UltraFeedback
#
# The judge reads the instruction and *all* candidates at once, and writes for each one a rating from 1 to 5 and a
# rationale. Below is exactly what it reads (distilabel's `UltraFeedback` task, with the "overall-rating" aspect):
# a system prompt, then a user turn with the rating scale, the format to answer in, and the texts.

# %%
from smolsynth.llm import LocalLLM
from smolsynth.ultrafeedback import ultrafeedback_regex

judge_task = tasks.UltraFeedback(aspect="overall-rating", llm=LocalLLM(model_id))
judge_task.load()
row = evolved.dataset[0]
for message in judge_task.format_input({"instruction": row["instruction"], "generations": row["generations"]}):
    print(f"----- {message['role']} -----\n{message['content']}")

# %% [markdown]
# distilabel's parser then splits the judge's answer into sections and reads `Rating:` and `Rationale:` in each. A
# small model often strays from that format; distilabel then returns fewer ratings than candidates, or `None`, and
# its DPO formatter makes pairs where chosen == rejected. Here the engine **constrains the decoding**: at every step
# only the tokens that keep the text inside this pattern are allowed, so every judgment parses into exactly one
# rating per candidate, whatever the model (for four candidates, and short rationales):

# %%
print(ultrafeedback_regex(4, max_rationale_chars=RATIONALE_CHARS)[:200] + " ...")

# %%
from smolsynth.ultrafeedback import judge

judged = judge(evolved.dataset, max_rationale_chars=RATIONALE_CHARS, seed=SEED)
judged.report

# %%
judged.dataset.select_columns(["instruction", "ratings", "rationales"]).to_pandas().head(3)

# %% [markdown]
# The "overall-rating" aspect is one holistic score. The UltraFeedback paper rates four aspects separately:
# instruction-following, honesty, truthfulness (with the type of hallucination) and helpfulness (with the type of
# informativeness); each has its own prompt and its own answer format, and the engine constrains each to its own
# format. `aspect="all"` runs the four and gives each candidate its four ratings; binarization then uses their mean,
# as `ultrafeedback_binarized` does. Four judgments cost four times as much, so here only on a few rows
# (`ASPECT_ROWS`):

# %%
all_aspects = judge(evolved.dataset.select(range(min(ASPECT_ROWS, len(evolved.dataset)))), "all",
                    max_rationale_chars=RATIONALE_CHARS, seed=SEED)
all_aspects.dataset.select_columns(["ratings", "ratings_truthfulness", "ratings_helpfulness"]).to_pandas()

# %% [markdown]
# **What the papers did, and where we differ.**
#
# | | the paper | here |
# |---|---|---|
# | UltraFeedback candidates | 4 answers per prompt, from 4 of 17 models | 2 pooled answers (one model, two decoding setups) + 2 EvolQuality rewrites |
# | UltraFeedback judge | GPT-4, the four aspects rated separately (1-5, with a rationale each) | the same prompts (distilabel's), by the same small model; `"overall-rating"` by default, `"all"` for the four; decoding constrained so every rating parses; rationales cut to `RATIONALE_CHARS`; sampled at temperature 0.7 |
# | EvolQuality (Deita) | each answer rewritten for M = 5 rounds, each round building on the last, then all versions scored by ChatGPT against each other | one rewrite per direction of the first candidate, one round, scored by the UltraFeedback judge with the others |
# | binarization | see the next section | the three rules, named after their origin |

# %% [markdown]
# ## 6. From ratings to pairs: three rules
#
# DPO needs *one* chosen and *one* rejected answer per row. With four rated candidates there are several ways to
# pick them, and each teaches something slightly different:
#
# | rule | chosen | rejected | what DPO learns |
# |---|---|---|---|
# | `best-vs-random` | highest rating | a random one of the others | the rule of the `ultrafeedback_binarized` dataset card (HuggingFaceH4, used to train Zephyr): highest mean rating vs a random one of the remaining three. Realistic, varied margins; here a random pick that ties with the best makes no pair (dropped as `tie`) |
# | `best-vs-worst` | highest | lowest | the clearest contrast, but the rejected answers are often *obviously* bad, which teaches little about near misses |
# | `best-vs-random-lower` | highest | a random candidate rated strictly lower | Argilla's variant (`argilla/ultrafeedback-binarized-preferences`): the same, but the rejected one is drawn among the strictly lower rated, and a row where all tie is dropped. Varied margins, and a row is lost only when all candidates tie |
#
# Ties for the best (or the worst) are broken at random, seeded per row, in all three rules.
#
# A pair whose two answers tie, or have the same text, teaches nothing (worse: it pushes a model away from the
# answer it is also told to prefer), so it is dropped and counted. `binarize` uses `best-vs-random-lower` unless told
# otherwise: with four candidates it keeps nearly every prompt.

# %%
from smolsynth.preferences import RULES, binarize
from smolsynth.report import Report

by_rule = {rule: binarize(judged.dataset, rule, seed=SEED) for rule in RULES}
Report.combine([result.report for result in by_rule.values()])

# %%
pairs = by_rule["best-vs-random-lower"]
pairs.dataset.select_columns(["prompt", "chosen", "rejected", "chosen_rating", "rejected_rating",
                              "chosen_model", "rejected_model", "chosen_source", "rejected_source"]).to_pandas().head(3)

# %% [markdown]
# ## 7. Read the judge's reasons
#
# Ratings are only as good as the reasoning behind them. Each pair keeps the judge's rationale for both answers:
# read a few before you train on them. With a real model, ask yourself whether you agree; with the tiny CI model the
# text is noise, which is a good reminder that a judge's format can be perfect while its judgment is worthless.

# %%
for pair in pairs.dataset.select(range(min(2, len(pairs.dataset)))):
    print(f"PROMPT   {pair['prompt'][-1]['content']}")
    print(f"CHOSEN   ({pair['chosen_rating']:.0f}, {pair['chosen_model']}) {pair['chosen'][0]['content'][:200]}")
    print(f"  why:   {pair['chosen_rationale']}")
    print(f"REJECTED ({pair['rejected_rating']:.0f}, {pair['rejected_model']}) {pair['rejected'][0]['content'][:200]}")
    print(f"  why:   {pair['rejected_rationale']}\n")

# %% [markdown]
# ## 8. The funnel: from prompts to pairs
#
# Every step says how many rows went in and out, and why any were dropped. Read it from top to bottom: a step that
# loses many rows is the one to fix.

# %%
Report.combine([pooled.report, evolved.report, judged.report, pairs.report])

# %% [markdown]
# ## 9. Is the judge looking at the answers, or at their order?
#
# LLM judges are known to favour the answer they read first (or last). A cheap test: judge some rows in both
# orders, the candidates as they are and reversed, and count how often the preferred candidate changes. A judge that
# reads the answers rarely flips; a judge that flips often is noisy, and its near-ties should not become pairs.
#
# One trap: `judge` samples (temperature 0.7, as UltraFeedback's annotations were sampled), so a judge asked twice
# can change its mind with nothing but the seed. Comparing two *sampled* judgments in two orders mixes the order's
# effect with that noise. `position_bias` therefore judges both orders **greedily** (temperature 0: the order is the
# only difference), and runs a **same-order control**: the same rows judged twice in the same order, sampled, with
# two seeds. Two numbers come out: the flip rate caused by the order, and the flip rate caused by sampling alone.
# (It costs four judgments per sampled row; `control=False` skips the control.) On the tiny model, greedy ratings
# are all the same (every row is a tie) and the sampled ones are coin tosses.

# %%
from smolsynth.preferences import position_bias

bias = position_bias(judged.dataset, sample=BIAS_SAMPLE, max_rationale_chars=RATIONALE_CHARS, seed=SEED)
print(bias)
bias.rows.select_columns(["forward_ratings", "reverse_ratings", "sampled_ratings", "resampled_ratings"]).to_pandas()

# %% [markdown]
# Flips say whether the judge is *consistent*; they cannot say whether it is *right*. For that we need answers whose
# quality we know. smolsynth ships 12 hand-written probes: an instruction, a clearly good answer and a clearly bad
# one (off-topic, cut off, a refusal, a wrong fact). `judge_sanity` has your judge rate each probe twice, the good
# answer first and then second, and reports how often the good answer got the higher rating in each order.
#
# How to read it: random ratings from 1 to 5 put the good answer strictly higher about 40% of the time. A judge worth
# building a dataset on scores well above that **in both orders**. High in one order and low in the other means it
# mostly prefers a position, not an answer. Measured on SmolLM2-135M (benchmarks/README.md): 50% in each order, barely
# better than the coin. Its pairs are practice data; for real work, judge with a larger model.

# %%
from smolsynth.ultrafeedback import judge_probes, judge_sanity

sanity = judge_sanity(probes=judge_probes()[:N_PROBES], max_rationale_chars=RATIONALE_CHARS, seed=SEED)
sanity

# %% [markdown]
# ## 10. Exercises
#
# Replace every `____`, run the cell, then run the check below it. The checks look at the structure of your data
# (one rating per candidate, pairs that differ, every row accounted for), never at the wording. `ex.q1.hint()` gives
# a hint, `ex.q1.solution()` a worked solution.
#
# Levels: 🐢 the default path · 🐕 your own seed data or a variant technique · 🦁 your own use case.

# %%
from smolsynth.exercises import ____, nb02 as ex
from smolsynth.preferences import ratings_table

# %% [markdown]
# ### Exercise 1 🐢 Judge and binarize with the default rule
#
# Judge the evolved candidates (`evolved`) with `judge` into `my_judged`, then turn them into pairs with `binarize`
# and its default rule, into `my_pairs`. How many prompts became pairs?

# %% exercise="q1" tags=["starter"]
my_judged = ____  # judge(...) on the evolved rows
my_pairs = ____  # binarize(...) with the default rule

# %% exercise="q1" tags=["solution"]
my_judged = judge(evolved.dataset, max_rationale_chars=RATIONALE_CHARS, seed=SEED)
my_pairs = binarize(my_judged.dataset)
my_pairs.report

# %% [markdown]
# ### Exercise 2 🐕 Add EvolQuality candidates and compare the ratings
#
# Rewrite the pooled answers (`pooled`) in two *other* directions (say creativity and details) with
# `evolve_quality`, into `my_evolved`; judge them into `my_evolved_judged`; then compute the mean rating of each
# kind of candidate (`pool`, `evol:creativity`, ...) into the dict `my_mean_by_source`. `ratings_table` gives one
# row per candidate with its `source` and `rating`. Do the rewrites get better ratings than the originals? (With
# the tiny model: no reason they should. With a real one: often, but not always.)

# %% exercise="q2" tags=["starter"]
my_evolved = ____  # evolve_quality(pooled.dataset, [...])
my_evolved_judged = ____  # judge(...) on my_evolved
my_mean_by_source = ____  # {source: mean rating}

# %% exercise="q2" tags=["solution"]
my_evolved = evolve_quality(pooled.dataset, ["creativity", "details"], max_new_tokens=MAX_NEW_TOKENS, seed=SEED)
my_evolved_judged = judge(my_evolved.dataset, max_rationale_chars=RATIONALE_CHARS, seed=SEED)
my_mean_by_source = ratings_table(my_evolved_judged.dataset).groupby("source")["rating"].mean().to_dict()
my_mean_by_source

# %% [markdown]
# ### Exercise 3 🦁 Check the judge on your own data, then choose your rule
#
# Take judged rows of your own (your instructions through `pool_responses` and `judge`, or `judged` from above),
# run `position_bias` on them into `my_bias`, and decide which rule suits a judge that flips that often: put its
# name in `my_rule` and make your final pairs with it, into `my_final_pairs`. A rule of thumb, which the check holds
# you to: when either flip rate (from the order, or from sampling alone) is above 30%, use `best-vs-worst`, which
# only pairs answers far apart in rating; below it, any rule can be defended.

# %% exercise="q3" tags=["starter"]
my_bias = ____  # position_bias(<your judged rows>, sample=...)
my_rule = ____  # one of RULES
my_final_pairs = ____  # binarize(<your judged rows>, rule=my_rule)

# %% exercise="q3" tags=["solution"]
my_bias = position_bias(judged.dataset, sample=BIAS_SAMPLE, max_rationale_chars=RATIONALE_CHARS, seed=SEED)
noisy = max(my_bias.flip_rate, my_bias.sampling_flip_rate) > ex.HIGH_FLIP_RATE
my_rule = "best-vs-worst" if noisy else "best-vs-random-lower"
my_final_pairs = binarize(judged.dataset, rule=my_rule, seed=SEED)
print(my_bias)
print(my_final_pairs.report)

# %% [markdown]
# ### Exercise 4 🐢 Write the best-vs-worst rule, ties included
#
# Binarization is a few lines of code, and its edge cases decide what DPO trains on. Write
# `my_best_vs_worst(ratings)`: it gets one row's ratings (a list with one number per candidate, or `None` where
# the judge's rating did not parse) and returns `(chosen, rejected)`, the indices of the highest and the lowest
# rated candidates, or `None` when there is no pair: fewer than two ratings, or all of them equal. Break ties by
# taking the first index, so the answer is exact (`binarize` breaks them at random, seeded, so that no position is
# favoured). The check runs your function on hidden cases and says which one failed.

# %% exercise="q4" tags=["starter"]
my_best_vs_worst = ____  # your function: def my_best_vs_worst(ratings): ... return (chosen, rejected) or None

# %% exercise="q4" tags=["solution"]
def my_best_vs_worst(ratings):
    rated = [(index, rating) for index, rating in enumerate(ratings) if rating is not None]
    if len(rated) < 2:
        return None
    best = max(rated, key=lambda pair: pair[1])  # max and min keep the first of equal items
    worst = min(rated, key=lambda pair: pair[1])
    if best[1] == worst[1]:
        return None  # every rated candidate ties: a pair would teach nothing
    return best[0], worst[0]


my_best_vs_worst([4, None, 2, 4])

# %% [markdown]
# ## 11. Save the DPO dataset
#
# Notebook 04 trains DPO on pairs in exactly this format: `prompt`, `chosen` and `rejected` as lists of chat
# messages, which TRL's `DPOTrainer` reads as they are (the rating, model and rationale columns come along; the
# trainer ignores them). We save the pairs made with the default rule to the course's hand-off folder, with a record
# of the model that made them (`handoff.save`), so that notebook 04 never trains on another model's pairs unawares. On
# Colab, run `course.use_drive()` at the top of this notebook and of notebook 04 to keep the folder on your Google
# Drive, or download `handoff.export("dpo")` and give it to notebook 04 as `source=`.

# %%
from smolsynth.formats import validate_dpo_dataset

checked = validate_dpo_dataset(pairs.dataset)  # raises if a row is not in DPO format
print(checked.report)  # binarize already dropped chosen == rejected: nothing is left to drop here
from smolsynth.funnel import Funnel

funnel = Funnel("dpo")  # every step the pairs went through, and what each dropped (notebook 07 shows it)
funnel.add("02", pooled, source=True)
for step in (evolved, judged, pairs):
    funnel.add("02", step)
handoff.save(pairs.dataset, "dpo", model=model_id, funnel=funnel,
             settings=dict(max_new_tokens=MAX_NEW_TOKENS, rationale_chars=RATIONALE_CHARS, n_prompts=N_PROMPTS,
                           rule="best-vs-random-lower", seed=SEED))
print(f"Saved {len(pairs.dataset)} pairs to {course.data_path('dpo')}")

# %% [markdown]
# ## What's next
#
# You have made preference pairs from scratch, and you know where each one came from and why it was kept. Notebook 04
# trains a model on them with DPO. 🦁 Before you go: swap in your own prompts and, if you can, two different models
# as generators, and read twenty pairs. Would *you* have chosen the same answers?
