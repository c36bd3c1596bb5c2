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
# **What instruction data is for.** A pretrained language model continues text; it does not *answer*. Supervised
# fine-tuning (SFT) teaches it to: you show it thousands of conversations, a user's instruction and a good
# assistant response, and it learns the format, the tone and the habit of helping. What it learns depends on what
# you show it: instructions that are **varied** (topics, verbs, lengths, difficulty) and responses that are
# **good**. This notebook builds an instruction dataset three ways, each with a different idea of where
# instructions come from:
#
# | method | where the instructions come from | you provide |
# |---|---|---|
# | **Magpie** | the chat model itself, prompted with nothing but the start of a user turn | a chat model (and optional system prompts) |
# | **Self-Instruct** | the model, imitating a handful of examples, over several rounds | a few seed instructions |
# | **Evol-Instruct** | the model, rewriting existing instructions into harder or new ones | instructions to evolve |
#
# By the end you will have run all three, seen what each one's filters remove and why, and saved an SFT dataset
# that notebook 03 trains on.

# %% [markdown]
# ## 1. Parameters
#
# In fast mode (CI, or `SMOLSYNTH_FAST=1`) the row counts shrink so the notebook runs in minutes. On the tiny
# random test model, fast mode also cuts the token budget and samples responses (`RESPONSE_TEMPERATURE` 0.7) instead
# of answering greedily: its single most likely token is a newline, so its greedy answers are blank, and blank answers
# are (rightly) dropped. A real model keeps the budget and the greedy answers.

# %% tags=["parameters"]
N_MAGPIE = 20  # Magpie conversations to generate
MAX_NEW_TOKENS = 256  # token budget of each generated instruction or response
RESPONSE_TEMPERATURE = 0.0  # 0 = greedy, as the papers answer; 0.2-0.3 varies answers a little
SELF_INSTRUCT_ROUNDS = 2  # Self-Instruct bootstrap rounds
PROMPTS_PER_ROUND = 8  # Self-Instruct prompts per round (each asks for several new instructions)
EVOL_ROUNDS = 2  # Evol-Instruct rounds (the paper runs 4)
N_EXERCISE = 8  # rows the exercises ask for (SmolLM2-135M finishes about a third of its Magpie rows)
N_INSTANCES = 6  # Self-Instruct instructions given input/output instances (the paper's second stage)

# %%
from smolsynth import course

course.fast_mode(globals(), N_MAGPIE=6, SELF_INSTRUCT_ROUNDS=2, PROMPTS_PER_ROUND=3, EVOL_ROUNDS=1, N_EXERCISE=6,
                 N_INSTANCES=3,
                 tiny_model=dict(MAX_NEW_TOKENS=24, RESPONSE_TEMPERATURE=0.7, N_EXERCISE=3))

# %%
import smolsynth
from smolsynth.generation import generate
from smolsynth.instructions import evol_instruct, evol_mutation_templates, magpie, self_instruct, to_sft
from smolsynth.llm import LocalLLM
from smolsynth.templates import magpie_prompt
from smolsynth.stats import dataset_stats

model_id = smolsynth.resolve_model()
llm = LocalLLM(model_id)
llm.load()  # loaded once; every call below reuses it
print(f"Model: {model_id}")

# %% [markdown]
# If you are on `smolsynth/tiny` (CI, or offline), every text below is noise: the model has random weights. The
# machinery is real, though, and so are the counts, the filters and the dataset's format. With a real model (the
# default on your machine), the same cells give readable, useful data.

# %% [markdown]
# ## 2. Magpie: ask the model for nothing
#
# **The idea** (Xu et al., 2024). A chat model was trained on text like
# `<|im_start|>user\n{question}<|im_end|>\n<|im_start|>assistant\n{answer}`. Give it only the *start* of a user
# turn, the **pre-query template**, and it does what it learned: it writes a plausible user request. Then give it
# the request in a normal chat prompt and it answers. No seeds, no prompt engineering: the instructions come from
# the distribution the model was aligned on.
#
# What Magpie needs from the **chat template**: the exact text that precedes a user message. smolsynth derives it
# from the tokenizer's own template (`magpie_prompt`), so it is right for ChatML, Llama 3 (one BOS, not two) or
# Qwen2.5 (which inserts its default system prompt first). Here is what your model sees:

# %%
print(repr(magpie_prompt(llm.tokenizer)))
print(repr(magpie_prompt(llm.tokenizer, [{"role": "system", "content": "You are a patient cooking teacher."}])))

# %% [markdown]
# A **system prompt** steers the topic: Magpie with "You are a cooking teacher" writes cooking questions. A list
# of system prompts (one drawn per row) or a dict of prompt -> weight gives a mix. The paper samples instructions
# at temperature 1.0 (variety) and answers greedily (the model's best answer); `magpie` does both, through
# distilabel's `Magpie` task run by smolsynth's runner.

# %%
SYSTEM_PROMPTS = {
    "You are a patient cooking teacher.": 0.5,
    "You are a helpful travel agent.": 0.3,
    "You are a friendly Python tutor.": 0.2,
}
magpie_result = magpie(N_MAGPIE, model=model_id, system_prompt=SYSTEM_PROMPTS, max_new_tokens=MAX_NEW_TOKENS,
                       response_temperature=RESPONSE_TEMPERATURE)
magpie_result

# %%
magpie_result.dataset.to_pandas().head()

# %% [markdown]
# Magpie's first filter, the input-quality tag. `keep=INPUT_QUALITY` keeps every row, so that you see all the tags
# before choosing which to keep; `keep=("good", "excellent")` is Magpie's choice. Here every row is kept, because a
# 135M tagger cannot make this judgment: measured on 8 probes, SmolLM2-135M tagged every one "very poor", the clear
# questions and the gibberish alike (`benchmarks/README.md`). The step is the real one; give it a larger tagger with
# `tag_quality(..., model="Qwen/Qwen2.5-1.5B-Instruct")` when you have one.

# %%
from smolsynth.instructions import INPUT_QUALITY, tag_quality

tagged = tag_quality(magpie_result.dataset, keep=INPUT_QUALITY)
tagged.dataset.to_pandas()[["instruction", "input_quality"]].head(10) if len(tagged.dataset) else tagged.report

# %% [markdown]
# The table above is the **funnel**: what the model produced, then what the filters removed and why. Magpie's
# failure modes, and what `magpie` does about them:
#
# - **No chat template** (a base model): there is no pre-query template to send, so `magpie` stops with an error
#   before generating anything. Magpie works with chat models only.
# - **Instructions that end with ":"** ("Here are some ideas:"): the model started a list it never wrote. Dropped as
#   `ends_with_colon`.
# - **Repetition**: an aligned model has favourite requests, and without a system prompt many rows are the same
#   few questions. Exact and near duplicates (word 3-gram Jaccard >= 0.7) are dropped; system prompts add variety.
# - **Empty turns**: an instruction or answer that is blank (the tiny model's specialty) is dropped, never kept as
#   an empty message.
#
# Multi-turn conversations are one argument away: `magpie(n, n_turns=2)` alternates user and assistant turns and
# returns them in a `conversation` column.
#
# **What the paper did, and where we differ.** Magpie sampled instructions at temperature 1.0, top_p 1.0, and
# answered greedily; so does `magpie` (the repetition penalty of 1.2 on answers is ours: without it a 135M model's
# greedy answers loop). Its own filter for Magpie-Pro was heavier than ours:
#
# | Magpie's filter (Llama-3-70B data) | here |
# |---|---|
# | an LLM (Llama-3-8B-Instruct) tags each instruction's **input quality**, very poor to excellent, with an explanation; keep good and excellent | `tag_quality` below: the same scale, the rating only (no explanation), decoding constrained to the five tags |
# | a reward model (FsfairX-LLaMA3-RM) scores each answer; keep a reward above -10 | not done: no reward model runs offline here |
# | embedding near-duplicates (all-mpnet-base-v2, FAISS, distance < 0.05): keep one per group | word 3-gram Jaccard >= 0.7 and exact duplicates (no embedding model needed) |
# | instructions ending with ":" | the same (`ends_with_colon`) |
# | then the 300K with the longest answers | not done: at this scale every row counts |
#
# The quality tag is one more judged step, so it runs through the engine like the others: greedy, and constrained
# so that every answer is one of the five tags.

# %% [markdown]
# ## 3. Self-Instruct: imitate a few seeds, round after round
#
# **The idea** (Wang et al., 2022). Start from a few hand-written **seed** instructions. Show the model 8 examples
# (6 seeds and 2 it generated earlier, shuffled) and ask for new ones. Keep only the new instructions that pass
# the filters, add them to the **pool**, and repeat. The paper grew 175 seeds into 52,000 instructions this way.
#
# The prompt is distilabel's `SelfInstruct` prompt, with the examples as its context (`bootstrap_context`: the same
# function `self_instruct` builds every prompt with). Here it is, exactly as the model gets it (the first prompt
# shows 8 seeds; later ones 6 seeds and 2 generated instructions):

# %%
SEEDS = [
    "Explain why the sky is blue to a ten-year-old.",
    "Give three tips for a successful job interview.",
    "Summarize the plot of Romeo and Juliet in two sentences.",
    "Translate the phrase good morning into French and Spanish.",
    "Suggest a name for a coffee shop next to a library.",
    "List four healthy breakfast ideas for busy mornings.",
    "Describe how the gears of a bicycle make pedalling easier.",
    "Write a polite email that declines a meeting invitation.",
]

from smolsynth.instructions import bootstrap_context

tasks = smolsynth.import_distilabel("distilabel.steps.tasks")
self_instruct_task = tasks.SelfInstruct(llm=llm, num_instructions=5, application_description="AI assistant")
self_instruct_task.load()
print(self_instruct_task.format_input({"input": bootstrap_context(SEEDS[:8])})[0]["content"])

# %% [markdown]
# distilabel gives the prompt and splits the answer on newlines; the paper's loop and filters are smolsynth's
# `self_instruct`. A new instruction is removed when:
#
# - it is **too similar** to a seed or to anything in the pool: ROUGE-L F above 0.7 (ROUGE-L measures the longest
#   common word sequence; 0.7 means "mostly the same sentence"); reason `too_similar`, with the closest one in
#   `most_similar`;
# - it has **3 words or fewer**, or **more than 150** (`too_short`, `too_long`);
# - it mentions something a text model cannot do: image, graph, picture, file, map, draw, plot, "go to"
#   (`blocked_keyword`), or starts with "Write a program" (`write_a_program`);
# - it starts with punctuation or a non-ASCII character (`starts_with_punctuation`, `starts_with_non_ascii`);
# - not in the paper, checked first: it copies a line of the prompt itself (`copies_prompt`), as small chat models do.
#
# Numbering and bullets ("1.", "- ") are stripped first: the model often numbers its list even when asked not to.
#
# **What the paper did, and where we differ.**
#
# | | the paper (GPT-3 davinci) | here |
# |---|---|---|
# | prompt | "Come up with a series of tasks:" and 8 numbered instructions; the model continues the list | distilabel's chat prompt: a header, the 8 examples one per line, "write 5 new ones" (a chat model does not continue a list, it answers) |
# | sampling | temperature 0.7, top_p 0.5, presence penalty 2, up to 1024 tokens | temperature 0.7, top_p 1.0, no presence penalty, 256 tokens. Measured on SmolLM2-135M (2 rounds of 4 prompts, `benchmarks/README.md`): the paper's settings gave 17 candidates and kept 11, most of them sentences *about* the application rather than instructions; ours gave 59 and kept 32; temperature 1.0 gave 16 and kept 7, mostly noise. `self_instruct(..., top_p=0.5, presence_penalty=2.0)` runs the paper's |
# | filters | ROUGE-L > 0.7 against seeds and the pool; <= 3 or > 150 words; the keyword list; "Write a program"; punctuation or non-ASCII first | the same, in the same order, after one of ours: `copies_prompt` drops an "instruction" that copies a line of the prompt itself (ROUGE-L above 0.5), which GPT-3 continuing a list never did; on SmolLM2-135M it was half of what the paper's filters kept ("Develop 5 user queries that can be received by the given AI application ...") |
# | scale | 175 seeds, 52K instructions | 8 seeds, 2 rounds: a demonstration |
# | instances | each instruction gets up to 5 input/output *instances*: classification tasks output-first (the label, then an input for it), the others input-first, greedy with a presence penalty of 1.5; then cleaning (an input with two different outputs drops the task; empty outputs, input == output, text ending with ":") | `self_instruct_instances` (below): the same stages and clean-up, up to 2 instances by default, our wording of the prompts with our own examples, decoding constrained to the format; the SFT data of section 7 uses one `generate` answer per instruction instead |

# %%
self_instruct_result = self_instruct(SEEDS, rounds=SELF_INSTRUCT_ROUNDS, prompts_per_round=PROMPTS_PER_ROUND,
                                     model=model_id, max_new_tokens=MAX_NEW_TOKENS, temperature=0.7)
self_instruct_result

# %% [markdown]
# Every removed instruction is in `.dropped_rows` (as a Dataset: `.dropped`), with its reason. Read some: that is
# how you learn whether a filter is too strict or too lax for your data.

# %%
self_instruct_result.dropped.to_pandas().head(10)

# %% [markdown]
# **The paper's second stage: instances.** Self-Instruct did not answer its instructions directly. It first asked the
# model whether each one is a *classification* task ("with finite output labels"), then wrote up to five
# input/output **instances** per instruction: for classification tasks **output-first** (a class label, then an
# input for it: asked input-first, a model writes inputs of the most common class), for the others **input-first**.
# It decoded greedily (temperature 0, presence penalty 1.5), then cleaned: a task whose same input got two different
# outputs is dropped whole, and so is an instance with an empty output, an output equal to its input, or text
# ending with ":". `self_instruct_instances` does all of that; both answers are constrained to their format (`Yes`/
# `No`, then `Input: ...` / `Output: ...` lines), so every answer parses, and an answer cut by the token budget is
# dropped as `truncated`. Here on a few of the new instructions (or the seeds, if none was kept). On SmolLM2-135M
# expect weak instances: measured, it answered "No" to the classification question for every task, spam and
# sentiment included (`benchmarks/README.md`).

# %%
from smolsynth.instructions import self_instruct_instances

instance_source = [row["instruction"] for row in self_instruct_result.rows][:N_INSTANCES] or SEEDS[:N_INSTANCES]
instances = self_instruct_instances(instance_source, max_new_tokens=MAX_NEW_TOKENS)
print(instances.report)
instances.dataset.to_pandas()[["order", "instruction", "input", "output"]] if len(instances.dataset) else \
    instances.dropped.to_pandas()[["instruction", "reason"]]

# %% [markdown]
# An instruction plus an input is one user message; the output is the answer. This course takes the simpler path
# below instead: one answer per instruction, written by `generate` (distilabel's `TextGeneration`), which keeps the
# rows' columns and adds the answer as `generation`.

# %%
# the filters can keep nothing (the tiny model writes noise): then the seeds are answered, so the course goes on
to_answer = self_instruct_result.dataset if self_instruct_result.rows else SEEDS
self_instruct_answered = generate(to_answer, model=model_id, max_new_tokens=MAX_NEW_TOKENS,
                                  temperature=RESPONSE_TEMPERATURE)
self_instruct_answered.report

# %% [markdown]
# ## 4. Evol-Instruct: make instructions harder, then keep only real improvements
#
# **The idea** (Xu et al., 2023, the WizardLM paper). Simple instructions make a simple dataset. Ask the model to
# *rewrite* each instruction: **in depth** (add a constraint, deepen the question, make it concrete, require more
# reasoning steps, add input data to work on) or **in breadth** (a new, rarer instruction in the same domain).
# Each rewrite should add only 10 to 20 words. Here is one of distilabel's mutation prompts:

# %%
print(evol_mutation_templates()["CONSTRAINTS"].replace("<PROMPT>", SEEDS[0]))

# %% [markdown]
# Many evolutions fail, and the paper **eliminates** them (each counted in the funnel below):
#
# - `copies_prompt_template`: the rewrite copies the prompt's own words ("#Rewritten Prompt#", "given prompt");
# - `no_information_gain`: the rewrite asks the same thing as its parent. Identical text is caught by a rule; the
#   subtler cases by the paper's judge question, "are these two instructions equal?", answered by the model with
#   decoding constrained to exactly `Equal` or `Not Equal`;
# - `sorry_short_response`: the answer contains "sorry" and is under 80 words: the instruction was too hard or
#   impossible;
# - `only_stop_words_response`: the answer is nothing but punctuation and words like "the", "is".
#
# A failed evolution goes back to the pool: its parent gets another try in the next round. The mutation for each
# instruction is drawn with `seed`, so a run is reproducible.
#
# **What the paper did, and where we differ.** WizardLM evolved Alpaca's 52K instructions for M = 4 rounds (about
# 250K results) with ChatGPT, which also answered and judged "equal or not". The authors' code picks one of the five
# prompts uniformly and samples at temperature 1, top_p 0.95; the "complicate input" operation is in the paper but
# not in their code, and none of the four eliminations are (distilabel dropped them too). Here: distilabel's
# mutation prompts (complicate input included), one mutation per instruction drawn uniformly, rewrites sampled at
# temperature 0.7 (`evol_instruct(..., temperature=1.0)` is the authors'), answers greedy, all four eliminations,
# and the *same* small model as its own judge, constrained to `Equal` / `Not Equal`: a weaker judge than ChatGPT, so
# read the `no_information_gain` drops yourself.

# %%
evol_result = evol_instruct(SEEDS[:4], rounds=EVOL_ROUNDS, model=model_id, max_new_tokens=MAX_NEW_TOKENS,
                            response_temperature=RESPONSE_TEMPERATURE)
evol_result

# %%
evol_result.dataset.to_pandas()[["mutation", "parent", "instruction", "generation"]].head() \
    if len(evol_result.dataset) else evol_result.dropped.to_pandas()[["mutation", "parent", "reason"]]

# %% [markdown]
# ## 5. Look at your data
#
# Before training on a dataset, measure it. `dataset_stats` counts exact and near duplicates, lexical variety
# (distinct-1 and distinct-2: the share of different words and word pairs) and lengths, and lists the most common
# first words: if half your instructions start with "Write", your model will learn mostly to write.

# %%
for name, data in [("Magpie", magpie_result.dataset), ("Self-Instruct", self_instruct_result.dataset),
                   ("Evol-Instruct", evol_result.dataset)]:
    print(f"--- {name}")
    print(dataset_stats(data, column="instruction") if len(data) else "no rows")

# %%
dataset_stats(magpie_result.dataset, column="instruction").plot(title="Magpie instructions")

# %% [markdown]
# ## 6. Exercises
#
# Replace every `____`, run the cell, then its check. The checks look at structure and counts, never at wording,
# so they work with any model. `ex.q1.hint()` gives a hint, `ex.q1.solution()` a worked solution.
#
# Levels: 🐢 the default path · 🐕 your own seed data or a variant technique · 🦁 your own use case.

# %%
from smolsynth.exercises import ____, nb01 as ex
from smolsynth.instructions import rouge_l  # for exercise 4

# %% [markdown]
# ### Exercise 1 🐢 Magpie instructions, ready for SFT
#
# Generate at least `N_EXERCISE` rows with `magpie` (instructions *and* responses) into `my_magpie`, then convert
# them to an SFT dataset with `to_sft` into `my_sft`. At least one conversation must come out: if none does, read
# the reports to see what dropped them (a small model's answers often run out of tokens), and change what you ask.

# %% exercise="q1" tags=["starter"]
my_magpie = ____  # magpie(...) with at least N_EXERCISE rows
my_sft = ____  # to_sft(...) of my_magpie's dataset

# %% exercise="q1" tags=["solution"]
my_magpie = magpie(N_EXERCISE, model=model_id,
                   system_prompt="You are a helpful gardening expert. Answer in at most three short sentences.",
                   max_new_tokens=MAX_NEW_TOKENS, response_temperature=RESPONSE_TEMPERATURE)
my_sft = to_sft(my_magpie.dataset)
my_sft.dataset[0]["messages"] if len(my_sft.dataset) else my_sft.report

# %% [markdown]
# ### Exercise 2 🐕 Self-Instruct from your own seeds
#
# Write at least 6 seed instructions of your own in `my_seeds` (pick a domain you know), run
# `self_instruct` on them into `my_self_instruct`, and put the rows its ROUGE-L filter removed in
# `my_too_similar`. Read them: were they really repeats?

# %% exercise="q2" tags=["starter"]
my_seeds = ____  # at least 6 instructions of your own
my_self_instruct = ____  # self_instruct(my_seeds, ...)
my_too_similar = ____  # the dropped rows whose reason is "too_similar"

# %% exercise="q2" tags=["solution"]
my_seeds = [
    "Suggest a vegetable that grows well on a shady balcony.",
    "Explain when to water tomato plants in summer.",
    "Give two natural ways to keep aphids off roses.",
    "Describe how to start a compost bin in a small garden.",
    "List three herbs that are easy to grow indoors.",
    "Explain why some leaves turn yellow in autumn.",
]
my_self_instruct = self_instruct(my_seeds, rounds=SELF_INSTRUCT_ROUNDS, prompts_per_round=PROMPTS_PER_ROUND,
                                 model=model_id, max_new_tokens=MAX_NEW_TOKENS, temperature=0.7)
my_too_similar = [row for row in my_self_instruct.dropped_rows if row["reason"] == "too_similar"]
my_self_instruct

# %% [markdown]
# ### Exercise 3 🦁 Evolve your own seeds; keep the survivors with responses
#
# Take at least 3 instructions from your own use case (`my_evol_seeds`), evolve them with `evol_instruct` for
# `EVOL_ROUNDS` rounds into `my_evolved`, and turn the survivors and their responses into an SFT dataset,
# `my_evol_sft`. Which eliminations were the most common, and why?

# %% exercise="q3" tags=["starter"]
my_evol_seeds = ____  # at least 3 instructions of your own
my_evolved = ____  # evol_instruct(my_evol_seeds, ...)
my_evol_sft = ____  # to_sft(...) of the survivors

# %% exercise="q3" tags=["solution"]
my_evol_seeds = [
    "Explain how to repot a cactus.",
    "Suggest a weekly watering plan for houseplants.",
    "Describe the difference between annual and perennial plants.",
]
my_evolved = evol_instruct(my_evol_seeds, rounds=EVOL_ROUNDS, model=model_id, max_new_tokens=MAX_NEW_TOKENS,
                           response_temperature=RESPONSE_TEMPERATURE)
my_evol_sft = to_sft(my_evolved.dataset)
my_evolved

# %% [markdown]
# ### Exercise 4 🐢 Write Self-Instruct's novelty filter
#
# The heart of Self-Instruct is one loop. Write it yourself: `my_novelty_filter(candidates, pool, threshold=0.7)`
# goes through `candidates` in order and returns the ones it keeps. A candidate is kept when its ROUGE-L with every
# instruction in `pool` *and every candidate kept before it* is at most `threshold`. Use `rouge_l(a, b)` from
# `smolsynth.instructions` (it is symmetric); leave the list `pool` you were given unchanged. The check runs your
# function on hidden cases, edge cases included, and says which one failed. (`rouge_l("Write a poem about the sea.",
# "Write a poem about the sea, please.")` is 0.92: too similar.)

# %% exercise="q4" tags=["starter"]
my_novelty_filter = ____  # your function: def my_novelty_filter(candidates, pool, threshold=0.7): ... return kept

# %% exercise="q4" tags=["solution"]
def my_novelty_filter(candidates, pool, threshold=0.7):
    references = list(pool)  # a copy: the pool grows here, not in the caller's list
    kept = []
    for candidate in candidates:
        if all(rouge_l(reference, candidate) <= threshold for reference in references):
            kept.append(candidate)
            references.append(candidate)
    return kept


my_novelty_filter(["Write a poem about the sea.", "Write a poem about the sea, please."], SEEDS)

# %% [markdown]
# ## 7. The SFT dataset for notebook 03
#
# The last step puts the three sources together: Magpie's conversations, Self-Instruct's instructions with their
# answers, Evol-Instruct's survivors with theirs. `to_sft` makes the format TRL's `SFTTrainer` reads as is: one
# `messages` column of user/assistant turns (the system prompt, when there is one, first). Duplicates across the
# sources are dropped first (they would be trained on twice).
#
# The **funnel** goes with the data: every step the rows went through, the rows each step dropped and why
# (`smolsynth.funnel.Funnel`). `handoff.save` checks that it accounts for every row (rows in = rows out + dropped, at
# every step) and saves it beside the dataset; notebook 07 adds its own filters to it.
#
# `handoff.save` writes it with `Dataset.save_to_disk` plus a record of the model that made it
# (`smolsynth_handoff.json`), so that notebook 03 never trains a real model on data the tiny test model left behind.
# On Colab every notebook gets a fresh runtime and this folder is gone in notebook 03: run `course.use_drive()` at the
# top of both notebooks to keep it on your Google Drive, or download `handoff.export("sft")` and give the file to
# notebook 03 (`handoff.sft_data(source=handoff.upload("sft"))`).

# %%
from datasets import Dataset

from smolsynth import handoff
from smolsynth.course import data_path
from smolsynth.funnel import Funnel
from smolsynth.rows import partition

funnel = Funnel("sft")
funnel.add("01", magpie_result, branch="magpie", source=True)
magpie_sft = to_sft(magpie_result.dataset, system_column="system_prompt")
funnel.add("01", magpie_sft, branch="magpie")
funnel.add("01", self_instruct_result, branch="self-instruct", source=True)
# when the filters kept nothing, the seeds were answered instead: a new source of rows
funnel.add("01", self_instruct_answered, branch="self-instruct", source=not self_instruct_result.rows)
self_instruct_sft = to_sft(self_instruct_answered.dataset)
funnel.add("01", self_instruct_sft, branch="self-instruct")
funnel.add("01", evol_result, branch="evol-instruct", source=True)
evol_sft = to_sft(evol_result.dataset)
funnel.add("01", evol_sft, branch="evol-instruct")

seen = set()


def first_time(row):
    key = tuple((m["role"], m["content"]) for m in row["messages"])
    if key in seen:
        return "duplicate"
    seen.add(key)


merged = partition([row for part in (magpie_sft, self_instruct_sft, evol_sft) for row in part.rows], first_time,
                   step="merge, drop duplicate conversations")
funnel.add("01", merged)
print(f"{merged.report.rows_in} conversations from the three methods, {merged.report.rows_in - len(merged)} "
      f"duplicate(s) dropped, {len(merged)} kept.")
sft_dataset = Dataset.from_list([{"messages": row["messages"]} for row in merged.rows])

from trl.data_utils import is_conversational  # TRL's own format check

assert sft_dataset.column_names == ["messages"] and all(is_conversational(row) for row in sft_dataset)
handoff.save(sft_dataset, "sft", model=model_id, funnel=funnel,
             settings=dict(max_new_tokens=MAX_NEW_TOKENS, response_temperature=RESPONSE_TEMPERATURE, n_magpie=N_MAGPIE,
                           self_instruct_rounds=SELF_INSTRUCT_ROUNDS, evol_rounds=EVOL_ROUNDS))
print(f"Saved {len(sft_dataset)} SFT conversations to {data_path('sft')}; notebook 03 trains on them.")
funnel

# %% [markdown]
# **Optional: share it on the Hugging Face Hub.** Set `HUB_REPO` to a name like `"your-name/my-sft-data"` and log
# in (`huggingface-cli login`, or `from huggingface_hub import login; login()`). Nothing is pushed otherwise, and
# nothing else in the course needs it. `handoff.publish` pushes the dataset and its record, so notebook 03 can load it
# on any machine with `handoff.sft_data(source=HUB_REPO)`.

# %%
from huggingface_hub import get_token

HUB_REPO = None  # e.g. "your-name/my-sft-data"
if HUB_REPO and get_token():
    url = handoff.publish("sft", HUB_REPO, private=True)
    print(f"Pushed to {url} (private).")
else:
    print("Not pushing to the Hub: set HUB_REPO and log in to share your dataset.")

# %% [markdown]
# ## What's next
#
# You built an instruction dataset three ways and saw each method's failure modes in numbers. With a real model,
# compare the three funnels: which method kept the most rows, and which gave the most varied first words? 🦁 Try
# your own domain end to end: system prompts for Magpie, your seeds for Self-Instruct, your hardest instructions
# for Evol-Instruct. Notebook 02 builds *preference* data (good and bad answers to the same prompt); notebook 03
# trains on the dataset you just saved.
