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
# A text classifier (spam or not, which team should answer this message, is this review positive) needs labelled
# examples, often thousands, and labelling them by hand is slow. A language model can write them for you: you give
# it a label, and it writes a text that belongs under that label. This notebook builds such a dataset for a customer
# support inbox, checks it the ways such data goes wrong, trains a small classifier on it, and then tests that
# classifier on **messages written apart from the generator**. That last test says whether the synthetic data was
# worth anything.
#
# The recipe, as the guides this course follows teach it:
#
# 1. a **label set**, each label with a one-line **description** in the prompt (a name alone is ambiguous);
# 2. a **category and type** drawn at random per text (stores → appliances, toys, ...), seeded, so that the model
#    does not write the same message a hundred times;
# 3. the model writes its **reasoning first**, then the text, in a JSON object whose shape is enforced while it
#    decodes, so every row parses;
# 4. **several generators**, because one model repeats itself. One published measurement gave three 7-9B models
#    identical prompts: 0.04% of one model's texts were duplicates, 7% of another's, and 94.6% of the third's;
# 5. a check for the known trap: the **same text under two labels** (a label conflict), which no classifier can
#    learn;
# 6. a second, independent **re-labelling** pass, and its agreement with the assigned labels.

# %% [markdown]
# ## 1. Parameters
#
# In fast mode (CI, or `SMOLSYNTH_FAST=1`) the cell after the parameters makes fewer texts. A real model keeps its
# budget. Expect to lose many rows: SmolLM2-135M finished 9 of 24 in a fast run (2026-12-02); most of the others
# rambled into the reasoning's 200-character limit, and were dropped. The tiny random test model writes noise whose strings almost never end by themselves, so in its
# fast runs (CI) its cut-off texts are kept (`ALLOW_TRUNCATED`), only so that every later step has rows to work on.

# %% tags=["parameters"]
N_TEXTS = 96  # labelled texts to write (some are dropped: the report says why)
MAX_NEW_TOKENS = 192  # the token budget per text, reasoning included
EPOCHS = 8  # passes over the training texts when fine-tuning the classifier
SEED = 0
ALLOW_TRUNCATED = False  # keep cut-off texts? Never for data: only the tiny test model needs it

# %%
from smolsynth import course

course.fast_mode(globals(), N_TEXTS=24, tiny_model=dict(MAX_NEW_TOKENS=160, ALLOW_TRUNCATED=True))

# %% [markdown]
# ## 2. Labels, categories, and the prompt of one row
#
# The course's task: customers write to the support team of an online store, and each message goes to one of four
# queues. Each label's description is what the model reads. A vague description gives vague texts, and later a
# classifier that mixes up those labels.

# %%
import pandas as pd

import smolsynth
from smolsynth.classification import SUPPORT_CATEGORIES, SUPPORT_LABELS, SUPPORT_TASK, assign

model_id = smolsynth.resolve_model()
print(f"Task: {SUPPORT_TASK!r}; model: {model_id}")
pd.DataFrame({"label": list(SUPPORT_LABELS), "description": list(SUPPORT_LABELS.values())})

# %%
{category: ", ".join(types) for category, types in SUPPORT_CATEGORIES.items()}

# %% [markdown]
# `assign` decides, before any model runs, what each row will be: its label (balanced across labels), and a category
# and type drawn at random, with a seed, so that a rerun makes the same rows. Two more knobs come from the paper
# behind distilabel's classification task ("Improving Text Embeddings with Large Language Models", Wang et al.
# 2024): `difficulties` (e.g. high school, college, PhD) and `clarities` (clear, understandable with some effort,
# ambiguous). Both are drawn per row too. Here they stay at "clear", without a difficulty: a support message is not
# a PhD text, and the first dataset you build should be one you can check.

# %%
pd.DataFrame(assign(SUPPORT_LABELS, 8, seed=SEED))

# %% [markdown]
# And this is the prompt one row becomes: distilabel's `Task` machinery, with a template of ours
# (`WriteLabelledText`). Why not distilabel's own `GenerateTextClassificationData`? It asks the model to *choose*
# the label as well as write the text, so the balance of labels is the model's whim, and its prompt has no label
# descriptions and no reasoning step. The schema below the prompt is enforced while the model decodes: each field
# has a pattern that bounds its length and leaves out brackets, braces, `*` and `_` (`WRITTEN_CHARS`), because
# without it SmolLM2-135M fills texts with placeholders such as "[customer's benefit here]".

# %%
from smolsynth.classification import WRITTEN_CHARS, WriteLabelledText, text_schema
from smolsynth.llm import LocalLLM

writer = WriteLabelledText(llm=LocalLLM(model_id), task_description=SUPPORT_TASK, labels=SUPPORT_LABELS)
writer.load()
row = assign(SUPPORT_LABELS, 1, seed=SEED)[0]
for message in writer.format_input(row):
    print(f"----- {message['role']} -----\n{message['content']}")
print("----- the JSON answer is held to (while decoding) -----")
for name, field in text_schema()["properties"].items():
    print(f"{name!r}: {field['minLength']} to {field['maxLength']} characters of {WRITTEN_CHARS}")

# %% [markdown]
# ## 3. Generate, batch by batch, into a file you can resume
#
# `generate_texts` writes the rows with the two default writers: one model at two temperatures, because that is what
# fits on a laptop (pass `generators=[Generator(model="Qwen/Qwen2.5-0.5B-Instruct"), ...]` for real variety). Every
# finished batch is appended to a CSV file, the dropped rows go to a `.dropped.jsonl` file beside it, and a
# `.progress` journal records where each batch ends. If the kernel dies half way, or you press stop, call it again
# with the same `path`: finished batches are read back, an unfinished one is written again, whole, and the file
# ends up the same as if nothing had happened (a test kills a run with `kill -9` and compares the files byte by
# byte). The same `path` with other settings is refused, so two runs never mix in one file.

# %%
from smolsynth.classification import generate_texts

texts_path = course.data_path("classification") / f"texts-{model_id.replace('/', '--')}-n{N_TEXTS}-seed{SEED}.csv"
texts = generate_texts(SUPPORT_LABELS, N_TEXTS, max_new_tokens=MAX_NEW_TOKENS, path=texts_path, seed=SEED,
                       allow_truncated=ALLOW_TRUNCATED)
texts.report

# %% [markdown]
# Run it again: nothing is generated, every row is read back from the file (`cached_rows` in the report).

# %%
again = generate_texts(SUPPORT_LABELS, N_TEXTS, max_new_tokens=MAX_NEW_TOKENS, path=texts_path, seed=SEED,
                       allow_truncated=ALLOW_TRUNCATED)
print(f"{again.report.cached_rows} of {again.report.rows_in} rows read back from {texts_path.name}")
assert again.rows == texts.rows

# %% [markdown]
# Look at what was written before you measure it. The reasoning comes first, so the model has thought about the
# label before it writes the text. A row whose reasoning or text hit its length limit, or whose token budget ran out
# (the engine then closes the JSON itself, so it parses), was cut off mid-sentence: it is dropped as `truncated`, and
# an empty one as `empty_output`, never silently kept.

# %%
texts.dataset.to_pandas()[["label", "type", "generator", "reasoning", "text"]].head(6)

# %%
texts.dropped.to_pandas()[["label", "generator", "reason"]].head(6) if texts.dropped_rows else "nothing dropped"

# %%
from smolsynth.classification import plot_balance

plot_balance(texts);

# %% [markdown]
# Labels went in balanced; if one bar is much shorter now, that label's rows were dropped more often. Look at its
# dropped rows: a label whose description invites long texts runs out of budget first.
#
# ## 4. Diversity: duplicates per generator
#
# An exact duplicate is the same text after lower-casing and removing punctuation; a near duplicate shares most of
# its word 3-grams (Jaccard similarity ≥ 0.7) with an earlier text of the same writer. The published measurement,
# beside ours:

# %%
from smolsynth.classification import duplicates_by_generator

published = pd.DataFrame({"generator": ["8B model A", "8B model B", "7-9B model C"], "exact %": [0.04, 7.0, 94.6]})
ours = duplicates_by_generator(texts)
print("published (identical prompts, three models):")
print(published.to_string(index=False))
ours

# %% [markdown]
# With a few dozen rows, one duplicate is several percent; the rate means more over thousands of rows. Random
# categories keep a small model's rate down, and a model that still repeats itself should get a smaller share of the
# rows, or none.
#
# ## 5. Label conflicts
#
# A conflict is the same text, or nearly the same, under two different labels. A classifier trained on both rows
# is told two answers for one question. Conflicts come from vague descriptions ("where is my refund?" is billing or
# delivery?) and from a model that ignores the label it was given. `label_conflicts` lists them; what to do about
# them is your choice:
#
# - `how="drop"` drops both rows (neither label can be trusted);
# - `how="keep_agreeing"` keeps the row whose label the re-labelling pass (section 6) confirms.

# %%
from smolsynth.classification import label_conflicts, resolve_conflicts

conflicts = label_conflicts(texts)
print(f"{len(conflicts)} conflicting pairs")
conflicts.head(10)

# %%
clean = resolve_conflicts(texts, conflicts, how="drop")
clean.report

# %% [markdown]
# ## 6. A second opinion: re-labelling
#
# Did the model write what it was asked to? A second pass reads every text, with the label descriptions but
# *without* the assigned label, and picks one. It is distilabel's `TextClassification` task, with the answer
# constrained to the label set plus "unclear", so it cannot invent a label. The agreement rate is the share of texts
# whose two labels match; the confusion matrix shows which labels get mixed up.

# %%
from smolsynth.classification import agreement, relabel

relabelled = relabel(clean, SUPPORT_LABELS, seed=SEED)
agreed = agreement(relabelled)
agreed

# %%
agreed.plot();

# %% [markdown]
# How to read it: with four labels, a pass that guesses at random agrees about 25% of the time. Where agreement is
# low, read the rows: is the text wrong for its label, or is the re-labelling model wrong? SmolLM2-135M is a weak
# judge of either (measured: it put most texts under one label), so here the rate says more about the judge than
# about the data. With a larger model, rows it disagrees on are the first ones to read, or drop.
#
# ## 7. Train a classifier, and test it on messages it never saw
#
# We fine-tune a small encoder (all-MiniLM-L6-v2, 22M parameters; the tiny test model uses a tiny random one) with
# transformers' `Trainer`, on the synthetic texts, then test it twice:
#
# - on a **held-out synthetic split**: texts like the ones it learned from;
# - on **80 customer messages** that ship with smolsynth (`real_messages()`): 20 per label, with typos, order
#   numbers, curt and chatty ones, never seen in training. Plainly: they were written one by one for this course by
#   an AI assistant, not collected from real customers, and not by smolsynth's generator. They stand in for real
#   messages; for your own work, test on texts people wrote (exercise 3 asks you to write some).
#
# The gap between the two accuracies is what the synthetic data costs you: how far its texts are from the ones your
# classifier will meet.

# %%
from smolsynth.classification import evaluate_classifier, real_messages, split, train_classifier

train, test = split(clean, test_fraction=0.2, seed=SEED)
print(f"{len(train)} texts to train on, {len(test)} held out")
classifier = train_classifier(train, labels=list(SUPPORT_LABELS), output_dir=course.data_path("classifier"),
                              epochs=EPOCHS, seed=SEED)
print(classifier)

# %%
on_synthetic = evaluate_classifier(classifier, test, name="synthetic test split")
on_real = evaluate_classifier(classifier, real_messages(), name="80 customer messages")
gap = pd.DataFrame([{"evaluated on": e.name, "rows": e.rows, "accuracy": round(e.accuracy, 3)}
                    for e in (on_synthetic, on_real)])
print(f"gap: {on_synthetic.accuracy - on_real.accuracy:+.0%} (synthetic split minus the 80 messages)")
gap

# %%
on_real.plot();

# %% [markdown]
# With a few dozen texts from a 135M model, expect little. Measured in a fast run on SmolLM2-135M (2026-12-02): 9
# texts kept, 6 to train on, and 25% right on the 80 messages, which is chance for four labels; the synthetic split
# is 3 rows, so its accuracy moves by a third per row. For scale, the same encoder trained on 60 of the 80 messages
# gets 65% on the other 20 (22 seconds on a CPU): the messages are learnable, and the synthetic texts are what is
# missing. Make more of them, with better generators, and watch that accuracy climb.
#
# ## 8. Use it: `pipeline("text-classification")`
#
# The classifier is a plain transformers folder, with the label names in its config. Anyone can load it without
# smolsynth:

# %%
from transformers import pipeline

classify = pipeline("text-classification", model=str(course.data_path("classifier")))
classify(["I was charged twice for one order", "My parcel has not arrived yet", "I cannot log in to my account"])

# %% [markdown]
# ## 9. Exercises
#
# Replace every `____`, run the cell, then run the check below it. The checks look at what your data is (labels
# from your set, rows accounted for, an accuracy they recompute), never at the wording. `ex.q1.hint()` gives a hint,
# `ex.q1.solution()` a worked solution.
#
# Levels: 🐢 the default path · 🐕 your own seed data or a variant technique · 🦁 your own use case.

# %%
from smolsynth.exercises import ____, nb05 as ex
from smolsynth.preferences import Generator
from smolsynth.stats import normalize_text

# %% [markdown]
# ### Exercise 1 🐢 Find label conflicts yourself
#
# Write `my_find_conflicts(rows)`: given a list of dicts with `"text"` and `"label"`, return the list of index pairs
# `(i, j)` (with `i < j`) whose texts are the same after `normalize_text` but whose labels differ. The check runs it
# on six hidden cases, from no rows at all to three copies of one text under two labels.

# %% exercise="q1" tags=["starter"]
my_find_conflicts = ____  # your function: def my_find_conflicts(rows): ... return [(i, j), ...]

# %% exercise="q1" tags=["solution"]
def my_find_conflicts(rows):
    normal = [normalize_text(row["text"]) for row in rows]
    return [(i, j) for j in range(len(rows)) for i in range(j)
            if normal[i] == normal[j] and rows[i]["label"] != rows[j]["label"]]


my_find_conflicts([{"text": "Where is my parcel?", "label": "delivery"},
                   {"text": "where is my parcel", "label": "billing"}])

# %% [markdown]
# ### Exercise 2 🐕 Your own label descriptions and categories
#
# Same four queues, your words: write `my_labels` (the same or other label names, each with a description *you*
# wrote) and `my_categories` (what the store sells, in your own categories and types). Generate texts with them
# into `my_texts`, re-label those with `my_labels` into `my_relabelled`, and put the agreement rate in
# `my_agreement`. Does it go up or down compared with section 6? Read the rows where it disagrees.

# %% exercise="q2" tags=["starter"]
my_labels = ____  # {label: one-line description}
my_categories = ____  # {category: [type, ...]}
my_texts = ____  # generate_texts(my_labels, ..., categories=my_categories)
my_relabelled = ____  # relabel(my_texts, my_labels)
my_agreement = ____  # the agreement rate

# %% exercise="q2" tags=["solution"]
my_labels = {
    "billing": "the customer was charged, wants money back, or asks about an invoice or how to pay",
    "delivery": "the parcel is late, lost, at the wrong address, or the customer asks when it will come",
    "product_issue": "what arrived is broken, faulty, incomplete or not what the customer ordered",
    "account": "logging in, passwords, the customer's profile, e-mail address or newsletter settings",
}
my_categories = {"garden": ["lawn mower", "hose", "seeds"], "kitchen": ["kettle", "frying pan", "toaster"]}
my_texts = generate_texts(my_labels, max(8, N_TEXTS // 3), categories=my_categories,
                          max_new_tokens=MAX_NEW_TOKENS, seed=SEED, allow_truncated=ALLOW_TRUNCATED)
my_relabelled = relabel(my_texts, my_labels, seed=SEED)
my_agreement = agreement(my_relabelled).rate
print(f"agreement {my_agreement:.0%} (section 6: {agreed.rate:.0%})")

# %% [markdown]
# ### Exercise 3 🦁 Your own task: train, then test on texts you wrote
#
# Pick a classification task of your own: who writes what to whom (`my_task`), and its labels with descriptions
# (`my_own_labels`, other labels than the course's). Generate training texts for it into `my_train`, train a
# classifier on them into `my_classifier`, then write **at least eight test texts yourself** (`my_test`, a list of
# `{"text": ..., "label": ...}`, at least two labels) and put the classifier's accuracy on them in
# `my_real_accuracy`. Your texts are the real messages of your task: what does the gap tell you?

# %% exercise="q3" tags=["starter"]
my_task = ____  # e.g. "A diner writes a review of a restaurant"
my_own_labels = ____  # {label: description}
my_train = ____  # generate_texts(my_own_labels, ..., task=my_task, categories=...)
my_classifier = ____  # train_classifier(my_train, labels=list(my_own_labels), output_dir=...)
my_test = ____  # at least 8 {"text": ..., "label": ...} that you write
my_real_accuracy = ____  # evaluate_classifier(my_classifier, my_test).accuracy

# %% exercise="q3" tags=["solution"]
my_task = "A diner writes a short review of a restaurant"
my_own_labels = {
    "food": "the dishes: taste, freshness, portions, temperature, the menu",
    "service": "the staff: how friendly, quick or attentive the waiters were, waiting times",
    "price": "the bill: value for money, prices, extra charges, tips",
}
my_train = generate_texts(my_own_labels, max(9, N_TEXTS // 2), task=my_task,
                          categories={"restaurant": ["pizzeria", "sushi bar", "bistro", "steakhouse"]},
                          max_new_tokens=MAX_NEW_TOKENS, seed=SEED, allow_truncated=ALLOW_TRUNCATED)
my_classifier = train_classifier(my_train, labels=list(my_own_labels), epochs=EPOCHS, seed=SEED,
                                 output_dir=course.data_path("runs") / "review-classifier")
my_test = [
    {"text": "The pasta was cold and the sauce tasted of nothing.", "label": "food"},
    {"text": "Best ramen I have had in years, rich broth, perfect noodles!", "label": "food"},
    {"text": "tiny portions, stale bread", "label": "food"},
    {"text": "We waited 40 minutes before anyone took our order.", "label": "service"},
    {"text": "Our waitress was lovely and remembered my allergy without being asked.", "label": "service"},
    {"text": "the staff ignored us all evening", "label": "service"},
    {"text": "Forty euros for two pizzas and a water is too much.", "label": "price"},
    {"text": "They added a 15% service charge nobody told us about.", "label": "price"},
    {"text": "Cheap lunch menu, great value for the money.", "label": "price"},
]
my_real_accuracy = evaluate_classifier(my_classifier, my_test).accuracy
print(f"{my_real_accuracy:.0%} right on your {len(my_test)} texts")

# %% [markdown]
# ## What's next
#
# You have built a labelled dataset from nothing but label descriptions, measured how much it repeats itself,
# found the texts it could not decide on, had it checked by a second pass, and learned what it is worth on messages
# people wrote. Two levers move that last number most: better and more varied generators (several models, not one
# at two temperatures), and descriptions sharp enough that a text can only belong to one label. 🦁 Before you go:
# replace `real_messages()` with fifty messages from your own inbox, and see how far the synthetic data carries.
