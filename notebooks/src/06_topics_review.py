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
# Ask a model for a hundred travel questions and you get the same five, reworded. Tools like Kiln made an
# application-style answer popular, and this notebook builds it with the course's engine:
#
# 1. a **topic tree**: the model proposes subtopics (a few per node, shown the siblings so it does not repeat them),
#    you fix the tree by hand, and every leaf gets its own samples, so the data covers the subject;
# 2. **human guidance**: a short note ("end with a question mark") that goes into the prompts and is saved with
#    every row;
# 3. **tagged runs**: every run appends to one dataset under its own tag, so runs can be listed, compared and removed;
# 4. **review in the notebook**: accept, reject, edit and rate rows in a panel; only the best rows become few-shot
#    examples for the next run;
# 5. **the loop on a failure case**: see a problem in the data, fix the generation, check the fix on a test split;
# 6. **structured records**: tool calls that follow a JSON Schema, constrained while they are written and validated
#    with `jsonschema` before they are saved.

# %% [markdown]
# ## 1. Parameters

# %% tags=["parameters"]
TOPIC = "Travel"  # the root of the topic tree
DEPTH = 2  # levels below the root
PER_NODE = 3  # subtopics per node
SAMPLES_PER_LEAF = 3  # samples generated for every leaf, per run
GUIDANCE = "Write one short question of at most 20 words that ends with a question mark."
MAX_NEW_TOKENS = 64  # token budget per sample
TEMPERATURE = 0.8
ALLOW_TRUNCATED = False  # keep cut-off samples (only for the tiny model's plumbing runs)
SEED = 0

# %%
from smolsynth import course

course.fast_mode(globals(), PER_NODE=2, SAMPLES_PER_LEAF=2, tiny_model=dict(ALLOW_TRUNCATED=True))

# %%
import shutil

import pandas as pd

import smolsynth
from smolsynth.course import data_path
from smolsynth.generation import generate
from smolsynth.records import TOOL_CALL_SCHEMA, TOOL_CALL_TASK, generate_records, validate_records
from smolsynth.review import Review
from smolsynth.rows import chain, partition
from smolsynth.runs import RunDataset
from smolsynth.topics import TopicTree, coverage, drop_echoes, leaf_prompts

model_id = smolsynth.resolve_model()
folder = data_path("topics")
shutil.rmtree(folder, ignore_errors=True)  # each run of this notebook starts its datasets afresh
print(f"model: {model_id}; data in {folder}")

# %% [markdown]
# ## 2. A topic tree: the model proposes, you decide
#
# Start the tree with the topics you know you want; `expand` asks the model for the rest, one level at a time. Each
# prompt shows the topic's path, the subtopics it already has ("not these") and two worked examples, and the answer
# is constrained to a JSON list of names, so it always parses. Names that repeat a sibling, an ancestor or each other
# are dropped and counted, like every dropped row in this course.

# %%
tree = TopicTree(TOPIC)
tree.add("Packing").add("Visas and passports")  # yours: the model fills in around them
proposals = tree.expand(depth=DEPTH, per_node=PER_NODE, model=model_id, temperature=TEMPERATURE, seed=SEED)
print(tree)
proposals

# %% [markdown]
# What the model proposed and the filters dropped:

# %%
pd.DataFrame(proposals.dropped_rows)

# %% [markdown]
# A 135M model proposes some good subtopics and some invented words. That is the point of a tree you can edit:
# `add`, `rename` and `remove` take paths (`"Packing > Rain gear"`), and the tree remembers which topics are yours.
# Remove what is wrong for your data, e.g. `edited.remove("Packing > Cruisespeed")`.

# %%
edited = TopicTree.from_dict(tree.to_dict())  # a copy: `tree` stays the model's
edited.rename("Visas and passports", "Visas")
edited.add("Packing > Rain gear").add("Money > Cash or card")
print(edited)

# %% [markdown]
# ## 3. Samples per leaf, with and without guidance, as tagged runs
#
# `leaf_prompts` writes one prompt per leaf from a task with a `{topic}` slot, plus your guidance and examples when
# you give them; `generate(..., num_generations=n)` writes n samples per prompt. A small model sometimes writes the
# guidance (or an example) back instead of following it: `drop_echoes` drops those, counted. `chain` makes the two
# steps one result, so a run's record counts what both dropped.
#
# Each run is appended to one `RunDataset` under its tag: `runs()` lists them, `remove(tag)` takes out exactly one
# run's rows.

# %%
TASK = "Write a question a traveller asks a travel agent about {topic}."
settings = dict(model=model_id, num_generations=SAMPLES_PER_LEAF, max_new_tokens=MAX_NEW_TOKENS,
                temperature=TEMPERATURE, seed=SEED, allow_truncated=ALLOW_TRUNCATED)


def sample(prompts, **changes):
    """SAMPLES_PER_LEAF samples per prompt (``changes`` overrides settings), without the ones that copy their prompt."""
    generated = generate(prompts, **{**settings, **changes})
    return chain("sample", [generated, drop_echoes(generated)])


questions = RunDataset(folder / "questions")
questions.append(sample(leaf_prompts(edited, TASK)), tag="no_guidance", note="the task alone")
questions.append(sample(leaf_prompts(edited, TASK, guidance=GUIDANCE)), tag="guided", note="with GUIDANCE")
print(leaf_prompts(edited, TASK, guidance=GUIDANCE)[0]["instruction"])
questions.runs()

# %% [markdown]
# A run you do not want goes in one call. A classic mistake: greedy decoding (`temperature=0`) with several samples
# per leaf writes the same text every time, so the run adds copies, not data.

# %%
questions.append(sample(leaf_prompts(edited, TASK), temperature=0.0), tag="greedy", note="a mistake")
greedy = [row["generation"] for row in questions.rows("greedy")]
print(f"greedy run: {len(greedy)} rows, {len(set(greedy))} distinct texts")
print(f"removed {questions.remove('greedy')} rows; the runs left: {questions.run_ids()}")

# %% [markdown]
# Coverage: samples per leaf and per run. A leaf with 0 samples lost all of them to the filters (the dropped counts
# are in `runs()`).

# %%
coverage(questions.rows(), edited)

# %% [markdown]
# ## 4. The failure case, measured
#
# The task asked for a question a traveller asks; look at what came back. The problem is easy to state and to check:
# many samples are not a short question. `is_short_question` is the check, and the table gives its rate per run.


# %%
def is_short_question(text):
    """A question of at most 20 words that ends with a question mark."""
    return text.strip().endswith("?") and len(text.split()) <= 20


def question_rate(rows):
    """The share of short questions per run."""
    frame = pd.DataFrame([{"run_id": r["run_id"], "ok": is_short_question(r["generation"])} for r in rows])
    return frame.groupby("run_id", sort=False)["ok"].mean()


pd.set_option("display.max_colwidth", 120)
print(pd.DataFrame(questions.rows())[["run_id", "topic", "generation"]].head(6).to_string())
pd.DataFrame({"short questions": question_rate(questions.rows()),
              "rows": pd.Series([r["run_id"] for r in questions.rows()]).value_counts(sort=False)})

# %% [markdown]
# ## 5. Review in the notebook
#
# `Review` holds the decisions (accepted, rejected, edits, ratings) apart from any view, and saves them to a JSON
# file beside the data after every action. `review.panel()` is the view: **Accept**, **Reject**, a 1-5 rating,
# an editable text with **Save edit**, a filter, and bulk actions on the rows you tick. Keyboard: type `a`, `r`,
# `1`-`5`, `n` or `k` in the command box and press Enter. Where widgets do not render, `print(review.text())` shows
# the same state, and the methods (`review.accept(ids)`, `review.rate(ids, 5)`, `review.edit(id, text)`) do the same
# work.

# %%
review = Review(questions.rows(), path=questions.folder / "review.json")
review.panel()

# %% [markdown]
# If you did not review by hand (or the notebook runs in CI), this cell reviews with the check above, so that the
# rest of the notebook has decisions to work with: short questions accepted and rated 5, the rest rejected.

# %%
if review.counts()["pending"] == len(review):
    for row in questions.rows():
        if is_short_question(row["generation"]):
            review.accept(row["id"])
            review.rate(row["id"], 5)
        else:
            review.reject(row["id"])
print(review.counts())
print(review.text(limit=8))

# %% [markdown]
# ## 6. Fix the generation, check the fix on a test split
#
# The fix: the guidance plus a few of the best reviewed samples as examples in the prompt (`few_shot` returns only
# accepted rows rated 4 or more). A small model follows examples more than instructions. The third run is tagged like
# the others; `split` keeps a test split that does not move as runs are added (a row's side is decided by a hash of
# its text), and the rate on it is the check.

# %%
examples = [row["generation"] for row in review.few_shot(3)]
print("examples:", examples)
fixed = generate(leaf_prompts(edited, TASK, guidance=GUIDANCE, examples=examples), **settings)
questions.append(fixed, tag="guided_with_examples", note="GUIDANCE + 3 reviewed examples")
train, test = questions.split(test_fraction=0.3, seed=SEED)
print(f"{len(train)} rows to train on, {len(test)} held out")
pd.DataFrame({"all rows": question_rate(questions.rows()), "test split": question_rate(test) if test else None})

# %% [markdown]
# In fast mode the test split holds a handful of rows per run: read the rates as a sketch, and run the notebook with
# its full parameters for numbers worth comparing. Whatever the numbers, the loop is the lesson: measure the problem,
# change one thing, tag the run, and check the change on rows you did not look at while reviewing.

# %% [markdown]
# ## 7. Structured records: tool calls that follow a schema
#
# A function-calling dataset pairs a user's request with the call that serves it. `TOOL_CALL_SCHEMA` describes one
# record: the `request` (words, ending with `?` or `.`, at most 120 characters) and a `call` of `get_weather` with a
# `city` and a `unit`. `generate_records` constrains every token to the schema, then validates every record with
# `jsonschema`: the grammar does not enforce everything the schema says (here: the length of a string that has a
# pattern), and a record that fails is dropped as `schema_invalid` with the validator's message.
#
# Coverage again comes from a tree, not from a note: asked for "cities from every continent", the model wrote that
# sentence into its requests. A tree of continents and cities, written by hand, puts one city in every prompt.

# %%
cities = TopicTree("Weather")
for path in ["Europe > Lisbon", "Asia > Osaka", "Africa > Nairobi", "South America > Lima",
             "North America > Toronto", "Oceania > Perth"]:
    cities.add(path)
calls = generate_records(leaf_prompts(cities, TOOL_CALL_TASK), TOOL_CALL_SCHEMA, model=model_id,
                         num_generations=SAMPLES_PER_LEAF, seed=SEED, max_new_tokens=96,
                         allow_truncated=ALLOW_TRUNCATED)
print(calls)
pd.DataFrame([{"topic": r["topic"], "request": r["record"]["request"], **r["record"]["call"]["arguments"]}
              for r in calls.rows])

# %% [markdown]
# Valid is not the same as right. A record can follow the schema and still call the weather of another city than the
# one asked about. The check is one function and the course's one loop, `partition`: keep a call whose city is the
# leaf's city and is named in the request, drop the others with a reason.


# %%
def call_serves_request(row):
    city = row["record"]["call"]["arguments"]["city"]
    if city != row["topic"]:
        return "wrong_city"
    if city.lower() not in row["record"]["request"].lower():
        return "city_not_in_request"
    return None


served = partition(calls.rows, call_serves_request, step="the call serves the request")
calls = chain("tool calls", [calls, served])
calls

# %% [markdown]
# A server's "JSON mode", or a model without constrained decoding, can return anything. The validation is what
# keeps such a record out of your data: plant one with a unit that does not exist, and see it counted, not saved.

# %%
planted = {"topic_path": "planted", "record": {"request": "What is the weather in Oslo?",
                                               "call": {"name": "get_weather",
                                                        "arguments": {"city": "Oslo", "unit": "kelvin"}}}}
checked = validate_records(calls.rows + [planted], TOOL_CALL_SCHEMA)
print(checked.report)
pd.DataFrame(checked.dropped_rows)[["topic_path", "reason", "error"]]

# %% [markdown]
# Save the valid records. A `RunDataset` opened with a schema validates every record once more and refuses a run that
# holds an invalid one, whole: nothing invalid reaches the file.

# %%
tool_calls = RunDataset(folder / "tool_calls", schema=TOOL_CALL_SCHEMA)
if checked.rows:
    tool_calls.append(checked, tag="tool_calls")
try:
    tool_calls.append([planted], tag="planted")
except ValueError as err:
    print("refused:", err)
print(tool_calls, tool_calls.runs()[["run_id", "rows", "dropped"]].to_dict("records"))

# %% [markdown]
# ## 8. Exercises
#
# Replace every `____`, run the cell, then run the check below it. `ex.q1.hint()` gives a hint, `ex.q1.solution()` a
# worked solution.
#
# Levels: 🐢 the default path · 🐕 your own seed data or a variant technique · 🦁 your own use case.

# %%
import copy

from smolsynth.exercises import ____, nb06 as ex

# %% [markdown]
# ### Exercise 1 🐢 Fix the model's topic tree
#
# Make `my_tree`: a copy of the model's `tree` (`TopicTree.from_dict(tree.to_dict())`), fixed by hand. Remove what is
# wrong, rename what is badly named, add what is missing: at least 4 leaves, no topic named twice along a path or
# among siblings, and at least one topic of yours.

# %% exercise="q1" tags=["starter"]
my_tree = ____  # TopicTree.from_dict(tree.to_dict()), then .remove / .rename / .add

# %% exercise="q1" tags=["solution"]
my_tree = TopicTree.from_dict(tree.to_dict())
for leaf in my_tree.leaves():  # a rule of thumb: a model topic of more than three words is usually invented
    if len(leaf.split(" > ")[-1].split()) > 3:
        my_tree.remove(leaf)
my_tree.add("Packing > Rain gear").add("Money > Cash or card").add("Money > Tipping").add("Health > Vaccinations")
print(my_tree)

# %% [markdown]
# ### Exercise 2 🐕 Write the schema of another tool call
#
# Write `my_schema`, the JSON Schema of a `set_reminder` record: a `request` (a string) and a `call` whose `name` is
# `set_reminder` and whose `arguments` are a non-empty `text` and a `time` of day as `HH:MM` (24-hour), both required,
# nothing else. The check validates hidden records with it: valid reminders must pass, broken ones must not.

# %% exercise="q2" tags=["starter"]
my_schema = ____  # start from copy.deepcopy(TOOL_CALL_SCHEMA)

# %% exercise="q2" tags=["solution"]
my_schema = copy.deepcopy(TOOL_CALL_SCHEMA)
my_schema["properties"]["request"] = {"type": "string", "minLength": 1}
my_schema["properties"]["call"]["properties"] = {
    "name": {"const": "set_reminder"},
    "arguments": {"type": "object", "required": ["text", "time"], "additionalProperties": False,
                  "properties": {"text": {"type": "string", "minLength": 1},
                                 "time": {"type": "string", "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9]$"}}},
}
validate_records([{"record": {"request": "Remind me at 7.", "call": {"name": "set_reminder", "arguments": {
    "text": "Stretch", "time": "07:00"}}}}], my_schema).report

# %% [markdown]
# ### Exercise 3 🦁 The loop on your own use case
#
# Pick a subject of yours and a task. Make a small tree, generate two runs into `my_data` (a `RunDataset`): one
# plain, one with `my_guidance`. Review the rows in `my_review` (accept or reject at least 3, rate at least one),
# and take `my_examples = my_review.few_shot(3)`: only accepted rows rated 4 or 5 may feed the next run.

# %% exercise="q3" tags=["starter"]
my_guidance = ____  # a short note for the model
my_data = ____  # RunDataset(folder / "mine"), with two runs appended
my_review = ____  # Review(my_data.rows(), path=my_data.folder / "review.json"), with decisions
my_examples = ____  # my_review.few_shot(3)

# %% exercise="q3" tags=["solution"]
my_guidance = "Write as a beginner cook, in one sentence."
my_tree_mine = TopicTree("Cooking").add("Baking > Bread").add("Baking > Cakes").add("Knife skills")
my_task = "Write a question a home cook asks about {topic}."
shutil.rmtree(folder / "mine", ignore_errors=True)
my_data = RunDataset(folder / "mine")
my_data.append(generate(leaf_prompts(my_tree_mine, my_task), **settings), tag="plain")
my_data.append(generate(leaf_prompts(my_tree_mine, my_task, guidance=my_guidance), **settings), tag="guided")
my_review = Review(my_data.rows(), path=my_data.folder / "review.json")
first, *others = [row["id"] for row in my_data.rows()]
my_review.accept(first)
my_review.rate(first, 5)
for row_id in others[:3]:
    (my_review.accept if is_short_question(my_review.row(row_id)["generation"]) else my_review.reject)(row_id)
my_examples = my_review.few_shot(3)
print(my_review.text(limit=5))

# %% [markdown]
# ## What's next
#
# You can now cover a subject on purpose, steer a model with a note and with examples, keep every run apart, review
# in the notebook, and save records that always follow their schema. Notebook 07 looks at a dataset as a whole:
# duplicates, diversity, contamination, and choosing the best subset. 🦁 Use your tree and `RunDataset` from
# exercise 3 as its input (`column="generation"`).
