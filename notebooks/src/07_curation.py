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
# Before you train on synthetic data, look at it. A generator repeats itself, some rows say the same thing in other
# words, a few may copy the prompts you will later test on, and most datasets are bigger than they are good. This
# notebook takes notebook 01's SFT data and:
#
# 1. **deduplicates** it three ways, each with a maintained library: exact (a hash of the normalized text),
#    near-duplicates with MinHash-LSH (`datasketch`), paraphrases with sentence embeddings
#    (`sentence-transformers`, all-MiniLM-L6-v2), after measuring each method's recall on planted duplicates;
# 2. measures its **diversity**: distinct-n, pairwise ROUGE-L, repeated openings, how the rows spread over topic
#    clusters, lengths;
# 3. **decontaminates** it: removes rows that share word n-grams with the prompts notebooks 03 and 04 evaluate on;
# 4. **selects** the best diverse subset the Deita way: complexity × quality scores from an LLM, then a greedy pass
#    that adds a row only if it is not too close (cosine ≤ 0.9) to any row already selected;
# 5. shows **one funnel**: every row that left the data in notebooks 01-07, the step and the reason.
#
# Each step returns the same `Result` as every smolsynth step (`.rows`, `.dropped_rows` with a `reason`, `.report`).

# %% [markdown]
# ## 1. Parameters

# %% tags=["parameters"]
BUDGET = 32  # rows Deita selection keeps
MINHASH_THRESHOLD = 0.7  # estimated word 3-gram Jaccard at or above which two rows are near duplicates
EMBEDDING_THRESHOLD = 0.75  # cosine (all-MiniLM-L6-v2) at or above which two rows are paraphrases
DEITA_THRESHOLD = 0.9  # Deita: a row joins the selection only if its cosine to every selected row is <= this
N_ROWS = None  # rows of notebook 01's data to look at (None: all)
SEED = 0

# %%
from smolsynth import course

course.fast_mode(globals(), BUDGET=6, N_ROWS=12)

# %% [markdown]
# ## 2. The data, and its funnel so far
#
# `handoff.sft_data()` loads what notebook 01 saved (or, if you have not run it, makes a small dataset on the spot
# and says so). Notebook 01 saved its funnel with it: every step its rows went through and what each dropped.
# This notebook adds its own steps to that funnel.

# %%
import smolsynth
from smolsynth import handoff
from smolsynth.course import data_path
from smolsynth.funnel import Funnel
from smolsynth.report import Report
from smolsynth.rows import Result

model_id = smolsynth.resolve_model()
sft = handoff.sft_data(rows=N_ROWS, model=model_id)
print(sft.note)


def as_instruction_rows(dataset):
    """One row per conversation: its user turn as `instruction`, its assistant turn as `generation`."""
    rows = []
    for row in dataset:
        turns = {m["role"]: m["content"] for m in row["messages"]}
        rows.append({"instruction": turns.get("user", ""), "generation": turns.get("assistant", ""),
                     "messages": row["messages"]})
    return rows


rows = as_instruction_rows(sft.dataset)
funnel = Funnel.load(data_path("sft"), "curated") if sft.source == "saved" else Funnel("curated")
if funnel.rows_kept != len(rows):  # made on the spot, or only N_ROWS of it: the funnel starts here
    funnel = Funnel("curated")
    funnel.add("07", Result(rows, [], Report("load notebook 01's data", len(rows), len(rows))), source=True)
print(f"{len(rows)} rows; the funnel so far: {funnel.rows_made} rows made, {len(funnel.dropped_rows)} dropped")
funnel

# %% [markdown]
# ## 3. Three ways to find duplicates, measured first
#
# Duplicates come in kinds, and each method sees some of them:
#
# | kind | example | found by |
# |---|---|---|
# | exact | "Write a haiku about rain." / "write a haiku about rain" | a hash of the normalized text (lower case, no punctuation) |
# | reworded | "...about rain." / "...about the rain, please." | MinHash-LSH over word 3-grams: the share of 3-grams two texts share (Jaccard), estimated from 128 hashes, with buckets so that only likely pairs are compared |
# | paraphrased | "Explain photosynthesis simply." / "In plain words, how do plants make food from light?" | sentence embeddings: the cosine of two texts' vectors |
#
# Before trusting a method on your data, measure it on data where you know the answer. `planted_duplicates()` is a
# small set of distinct instructions plus planted copies of each kind, each row labelled with its `kind`. Recall
# (the share of planted copies a method drops) and false drops (originals it drops) tell you what each one catches.

# %%
import pandas as pd

from smolsynth.dedup import (deduplicate, duplicate_rates, embedding_duplicates, exact_duplicates,
                             minhash_duplicates, planted_duplicates)

planted = planted_duplicates(seed=SEED)
methods = {"exact": exact_duplicates(planted),
           "minhash": minhash_duplicates(planted, threshold=MINHASH_THRESHOLD, seed=SEED),
           "embedding": embedding_duplicates(planted, threshold=EMBEDDING_THRESHOLD)}
kinds = pd.Series([row["kind"] for row in planted]).value_counts()
recall = pd.DataFrame({name: pd.Series([row["kind"] for row in result.dropped_rows]).value_counts()
                       .reindex(kinds.index, fill_value=0) / kinds for name, result in methods.items()})
recall.round(2)

# %% [markdown]
# Read the table by row: exact copies are found by all three (a copy is also a perfect near-duplicate and a perfect
# paraphrase); reworded copies by MinHash and embeddings; paraphrases by embeddings only. The `original` row is the
# false-drop rate: an original dropped as a duplicate of another original. On the tiny test model the embedding
# column is noise (its encoder has random weights): look at it with the real encoder.
#
# Every dropped row names the row it duplicates (`duplicate_of`, `duplicate_text`) and how similar they are:

# %%
methods["minhash"].dropped.to_pandas()[["instruction", "duplicate_text", "similarity", "kind"]].head(8)

# %% [markdown]
# ## 4. Deduplicate the data
#
# `deduplicate` runs the three in order, cheapest first, and keeps the first row of each cluster of duplicates.
# `duplicate_rates` gives the rate per generator model: notebook 01's data comes from one model; with several
# generators (as in notebook 05) a model that repeats itself shows up here.

# %%
deduplicated = deduplicate(rows, threshold=MINHASH_THRESHOLD, embedding_threshold=EMBEDDING_THRESHOLD, seed=SEED)
funnel.add("07", deduplicated)
print(duplicate_rates(deduplicated))
deduplicated

# %% [markdown]
# ## 5. How diverse is it?
#
# `diversity_report` measures one dataset; `reference=` measures another against the same topic clusters, so that
# "before" and "after" can be compared (section 8).

# %%
from smolsynth.diversity import diversity_report

before = diversity_report(deduplicated, seed=SEED)
before

# %%
before.plot()

# %% [markdown]
# ## 6. Decontamination: never train on your test
#
# Notebooks 03 and 04 measure what training did on held-out prompts. If the training data contains those prompts
# (or light edits of them), the measurement tells you how well the model memorized, not how it generalizes.
# `decontaminate` drops every row that shares a word n-gram with an evaluation prompt; `contamination_report` lists
# the overlaps without removing anything.

# %%
from smolsynth.contamination import contamination_report, decontaminate

decontaminated = decontaminate(deduplicated)
funnel.add("07", decontaminated)
print(decontaminated.report)
contamination_report(deduplicated).head()

# %% [markdown]
# ## 7. Deita: the best diverse subset
#
# Deita (Liu et al., 2023) scores every row twice with an LLM: the **complexity** of the instruction and the
# **quality** of the answer, each from 1 to 6, and ranks rows by complexity × quality. Then it walks down the ranking
# and adds a row only if its embedding's cosine similarity to every row already selected is at most 0.9, until the
# budget is full: good rows, but not twenty versions of the best one.
#
# Like Deita's scorers, `deita_scores` does not let the model *write* a digit: it reads the probabilities the model
# gives the tokens `1` .. `6` as its next token and takes the expected score. The answer cannot fail to parse, and
# it moves even when the most likely digit does not (on SmolLM2-135M the most likely digit is 1 for almost every
# row). A 135M model is a weak judge, so first check it on pairs whose order you know: `scorer_check` scores a simple
# and a complex request, a good and a garbage answer.

# %%
from smolsynth.selection import deita_scores, deita_select, scorer_check

scorer_check(model_id)

# %% [markdown]
# If a line says `agrees: False`, the scorer ranks that aspect by noise (the tiny test model always does). Then score
# the data, and read the scores against the texts: do the rows you would keep score higher?

# %%
scored = deita_scores(decontaminated, model=model_id)
funnel.add("07", scored)
scored.dataset.to_pandas()[["instruction", "generation", "complexity", "quality", "deita_score"]] \
    .sort_values("deita_score", ascending=False) if len(scored) else scored.report

# %%
selected = deita_select(scored, BUDGET, threshold=DEITA_THRESHOLD)
funnel.add("07", selected)
selected

# %% [markdown]
# ## 8. Before and after
#
# The same report on the selection, against the clusters of the data before it: fewer rows, but does it still
# cover the topics?

# %%
after = diversity_report(selected, reference=before, seed=SEED)
before.compare(after)

# %% [markdown]
# ## 9. One funnel for the course
#
# The curated data is saved with its funnel (`handoff.save` checks that every row is accounted for: rows in = rows
# out + dropped at every step, and overall). `course_funnel()` reads the funnel of every dataset the course saved:
# notebook 01's SFT data, notebook 02's pairs and this curated set.

# %%
from datasets import Dataset

from smolsynth.funnel import course_funnel

curated = Dataset.from_list([{"messages": row["messages"]} for row in selected.rows])
handoff.save(curated, "curated", model=model_id, funnel=funnel,
             settings=dict(budget=BUDGET, minhash_threshold=MINHASH_THRESHOLD,
                           embedding_threshold=EMBEDDING_THRESHOLD, deita_threshold=DEITA_THRESHOLD))
funnels = course_funnel()
pd.concat([f.table for f in funnels.values()], ignore_index=True)

# %%
funnel.plot()

# %% [markdown]
# Every dropped row is in `funnel.dropped` (notebook, step, reason, text, and the row it duplicates), and it is
# saved beside the data (`smolsynth_dropped.jsonl`): `handoff.export("curated")` packs both into one file.

# %%
funnel.dropped.groupby(["notebook", "step", "reason"]).size().rename("rows").reset_index() \
    if funnel.dropped_rows else "nothing was dropped"

# %% [markdown]
# ## 10. Exercises
#
# Replace every `____`, run the cell, then run the check below it. `ex.q1.hint()` gives a hint, `ex.q1.solution()` a
# worked solution.
#
# Levels: 🐢 the default path · 🐕 your own seed data or a variant technique · 🦁 your own use case.

# %%
from smolsynth.exercises import ____, nb07 as ex
from smolsynth.stats import normalize_text

# %% [markdown]
# ### Exercise 1 🐢 Exact deduplication, by hand
#
# Write `my_dedup(texts)`: given a list of strings, return the indices of the texts to keep, in order: the first of
# every group of texts that are equal after `normalize_text`. The check runs it on hidden cases.

# %% exercise="q1" tags=["starter"]
my_dedup = ____  # your function: def my_dedup(texts): ... return [indices to keep]

# %% exercise="q1" tags=["solution"]
def my_dedup(texts):
    seen, keep = set(), []
    for index, text in enumerate(texts):
        key = normalize_text(text)
        if key not in seen:
            seen.add(key)
            keep.append(index)
    return keep


my_dedup(["Write a poem.", "write a poem", "Explain rain."])

# %% [markdown]
# ### Exercise 2 🐕 Choose a MinHash threshold by measuring it
#
# Choose `my_threshold` for `minhash_duplicates` on the planted set, so that it finds at least 80% of the
# `reworded` copies and drops no `original`, and put the result in `my_minhash`. Try 0.9 (distilabel's default)
# first: what does it miss, and why?

# %% exercise="q2" tags=["starter"]
my_threshold = ____  # a number between 0 and 1
my_minhash = ____  # minhash_duplicates(planted, threshold=my_threshold, seed=SEED)

# %% exercise="q2" tags=["solution"]
my_threshold = 0.5
my_minhash = minhash_duplicates(planted, threshold=my_threshold, seed=SEED)
pd.Series([row["kind"] for row in my_minhash.dropped_rows]).value_counts()

# %% [markdown]
# ### Exercise 3 🦁 Curate your own data to a budget
#
# Write at least 12 instructions of your own use case, with answers (`my_rows`: dicts with `instruction` and
# `generation`; plant a duplicate or two). Deduplicate them, decontaminate, score and Deita-select `my_budget` rows
# into `my_selected`, adding every step to `my_funnel` (a `Funnel`, its first stage `source=True`). The check
# recomputes the accounting.

# %% exercise="q3" tags=["starter"]
my_rows = ____  # at least 12 {"instruction": ..., "generation": ...}
my_budget = ____  # how many rows to keep
my_funnel = ____  # Funnel("mine"), then my_funnel.add("07", <each step's result>)
my_selected = ____  # deita_select(<scored rows>, my_budget)

# %% exercise="q3" tags=["solution"]
my_rows = [
    {"instruction": "How do I repot a cactus without getting pricked?",
     "generation": "Wrap it in folded newspaper, lift it out, and set it in a pot one size larger with cactus soil."},
    {"instruction": "how do I repot a cactus without getting pricked",
     "generation": "Use thick gloves and a newspaper collar."},
    {"instruction": "Which houseplants survive in a dark bathroom?",
     "generation": "Snake plants, pothos and ZZ plants tolerate low light and like the humidity."},
    {"instruction": "Why are the leaves of my basil turning yellow?",
     "generation": "Usually too much water: let the top of the soil dry out between waterings."},
    {"instruction": "How often should I water a snake plant in winter?",
     "generation": "About once a month; wait until the soil is completely dry."},
    {"instruction": "What is the easiest vegetable to grow on a balcony?",
     "generation": "Cherry tomatoes or lettuce: both grow well in pots with six hours of sun."},
    {"instruction": "Can I use coffee grounds as fertilizer?",
     "generation": "In small amounts, mixed into compost; on their own they can compact the soil."},
    {"instruction": "How do I get rid of fungus gnats in potted plants?",
     "generation": "Let the soil dry, use yellow sticky traps, and water from below for a few weeks."},
    {"instruction": "When should I prune my rose bushes?",
     "generation": "In late winter or early spring, just as the buds begin to swell."},
    {"instruction": "Is it safe to keep lilies in a home with cats?",
     "generation": "No: every part of a lily is toxic to cats, even the pollen."},
    {"instruction": "How deep should I plant tulip bulbs?",
     "generation": "About three times the height of the bulb, roughly 15-20 cm, pointy end up."},
    {"instruction": "What does it mean when a succulent gets leggy?",
     "generation": "It is stretching towards light: move it somewhere brighter."},
    {"instruction": "How can I tell if my orchid needs water?",
     "generation": "The roots turn silvery when dry and green when watered; water when they are silver."},
]
my_budget = 8
my_funnel = Funnel("mine")
my_deduplicated = deduplicate(my_rows, seed=SEED)
my_funnel.add("07", my_deduplicated, source=True)
my_clean = decontaminate(my_deduplicated)
my_funnel.add("07", my_clean)
my_scored = deita_scores(my_clean, model=model_id)
my_funnel.add("07", my_scored)
my_selected = deita_select(my_scored, my_budget)
my_funnel.add("07", my_selected)
my_funnel

# %% [markdown]
# ## What's next
#
# You can now say of any synthetic dataset how much of it repeats, how varied it is, whether it touches your test,
# and what every filter took out. 🦁 Run this notebook on notebook 05's texts (`column="text"`) and on notebook
# 02's prompts, and compare their funnels.
