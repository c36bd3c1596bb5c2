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
# You can now make, judge, curate and train on synthetic data inside a notebook. This one takes the same steps
# outside it, to run them bigger:
#
# 1. **against a model server**: any OpenAI-compatible server (vLLM, TGI, llama.cpp's server, `transformers serve`,
#    a hosted provider) instead of a model in this process, with timeouts, retries and a clear error when the server
#    is down;
# 2. **as a recipe**: the steps in a TOML file, run by `smolsynth run` from a terminal or a scheduler, resumable
#    after a crash;
# 3. **as a pipeline**: distilabel's `Pipeline`, every step its own process, or its `RayPipeline` on a cluster of
#    machines, with the same rows as the notebook's steps;
# 4. **with an estimate first**: a pilot of a few rows says how long the full run will take on this machine;
# 5. **published with a card**: the data on the Hub, private by default, with a dataset card made from what the run
#    recorded.

# %% [markdown]
# ## 1. Parameters

# %% tags=["parameters"]
ROWS = 6  # instructions the recipe makes
MAX_NEW_TOKENS = 128  # token budget of an answer
PILOT_ROWS = 10  # rows of the pilot run the estimate extrapolates from
SEED = 0
USE_RAY = False  # True: run the pipeline on Ray (a local cluster, or the one RAY_ADDRESS names)

# %%
from smolsynth import course

course.fast_mode(globals(), ROWS=4, PILOT_ROWS=4)

# %%
import shutil

import pandas as pd

import smolsynth
from smolsynth.course import data_path
from smolsynth.generation import generate
from smolsynth.instructions import magpie
from smolsynth.models import is_tiny
from smolsynth.servers import LocalServer, ServerLLM

model_id = smolsynth.resolve_model()
TINY = is_tiny(model_id)  # the tiny random model never ends an answer: its cut-off ones are kept, for the plumbing
folder = data_path("beyond")
shutil.rmtree(folder, ignore_errors=True)  # each run of this notebook starts afresh
print(f"model: {model_id}; data in {folder}")

# %% [markdown]
# ## 2. A model server
#
# A server holds the model; your code sends requests. Here we start `transformers serve` (transformers' own
# OpenAI-compatible server) on this machine, on a loopback port, with the course model. For vLLM on a GPU it would
# be `vllm serve <model>`; for a hosted provider you only need its `base_url` and a key.

# %%
server = LocalServer(model_id)
server

# %% [markdown]
# `ServerLLM` is a distilabel LLM like the `LocalLLM` every step has used so far, so every step takes it as `llm=`.
# Requests go `concurrency` at a time; each has a timeout; a refused connection, a timeout or a 5xx is retried with
# backoff, then the batch fails with a message that names the server.

# %%
llm = server.llm(generation_kwargs={"max_new_tokens": MAX_NEW_TOKENS, "temperature": 0.7})
answers = generate(["Name a fruit that is red.", "Why do cats purr?", "Give me a tip for packing light."], llm=llm,
                   allow_truncated=TINY)
print(answers.report)
pd.DataFrame(answers.rows)[["instruction", "generation"]]

# %% [markdown]
# **Magpie needs the text-completions endpoint.** Magpie sends the chat template's *pre-query* prompt and lets the
# model write the user's turn. A chat endpoint wraps whatever it gets in the server's own chat template, and the model
# then writes fragments: the most reported Magpie failure. So `magpie` refuses a chat endpoint, and on
# `endpoint="completions"` the prompt is rendered here, with the model's own tokenizer.

# %%
try:
    magpie(2, llm=llm, only_instruction=True)
except ValueError as err:
    print("refused:", err)

instructions = magpie(3, llm=server.llm(endpoint="completions",
                                        generation_kwargs={"max_new_tokens": MAX_NEW_TOKENS, "temperature": 1.0}),
                      only_instruction=True, allow_truncated=TINY)
print(instructions.report)
[row["instruction"] for row in instructions.rows]

# %% [markdown]
# **Structured output, where the server has it.** With a JSON schema (records, the judge's grammar) `ServerLLM`
# sends OpenAI's `response_format`, or vLLM's `guided_regex`. `transformers serve` ignores the first and rejects the
# second (the request then goes again without it), so here nothing is constrained, and every output is parsed and
# validated after, as it is on any server. With a 135M model and no constraint, expect most judgments to fail to
# parse: they are dropped and counted, never turned into data.

# %%
from smolsynth.ultrafeedback import judge

judged = judge([{"instruction": "Name a fruit that is red.", "generations": ["A strawberry.", "The moon."]}],
               llm=llm, max_new_tokens=96)
print(judged.report)

# %% [markdown]
# **A server that is down** fails fast, with the fix, and never hangs. (Here: a port where nothing listens.)

# %%
from smolsynth.servers import free_port

down = ServerLLM(base_url=f"http://127.0.0.1:{free_port()}/v1", model="any", api_key_env=None, timeout=2,
                 max_retries=1)
failed = generate(["Hello?"], llm=down)
print(failed.report)
print(failed.dropped_rows[0]["error"])

# %% [markdown]
# **A hosted provider** needs a key. `ServerLLM` reads it from an environment variable at each request (`api_key_env`,
# default `OPENAI_API_KEY`); it is not a setting, so it never lands in a dataset, a cache key or a card:
#
# ```python
# import os, getpass
# os.environ["OPENAI_API_KEY"] = getpass.getpass("key: ")
# hosted = ServerLLM(base_url="https://api.openai.com/v1", model="gpt-4o-mini")
# ```

# %% [markdown]
# ## 3. A recipe: the same steps, without Jupyter
#
# A recipe lists the steps and their settings, the same settings as in the notebooks. `smolsynth run recipe.toml`
# runs it from a terminal; `run_recipe` runs it from Python. A typo is refused before anything runs.

# %%
from smolsynth.recipes import estimate_recipe, load_recipe, run_recipe

recipe_text = f"""
name = "my-instructions"
seed = {SEED}

[[step]]
kind = "magpie"
rows = {ROWS}
max_new_tokens = 128

[[step]]
kind = "answers"
system_prompt = "Answer in at most three short sentences."
temperature = 0.0
max_new_tokens = {MAX_NEW_TOKENS}
allow_truncated = {"true" if TINY else "false"}
"""
recipe_path = folder / "my-instructions.toml"
recipe_path.parent.mkdir(parents=True, exist_ok=True)
recipe_path.write_text(recipe_text)

try:
    load_recipe(recipe_path, changes=["2.temprature=0.5"])
except ValueError as err:
    print("refused:", err)

# %%
run_folder = folder / "runs" / "my-instructions"
record = run_recipe(recipe_path, run_folder)

# %% [markdown]
# The folder has everything: each step's kept and dropped rows, `run.json` (versions, model, each step's report) and
# `summary.md`. **Run the same command again** after a crash and it resumes: finished steps are read back, a step
# cut off midway gets its finished batches back from the cache, and a training step goes on from its last checkpoint.
# Here everything is finished, so nothing runs again:

# %%
again = run_recipe(recipe_path, run_folder)
sorted(p.name for p in run_folder.iterdir())

# %% [markdown]
# ## 4. A pipeline: every step its own process, or a Ray cluster
#
# A recipe runs its steps one after another in one process. distilabel's `Pipeline` runs each step in a process of
# its own, passing batches along as they finish, and its `RayPipeline` spreads the steps over the machines of a Ray
# cluster. `build_pipeline` puts distilabel tasks, the same tasks the course's functions run, into one: here answers
# (two per instruction) and then a judge that rates them, its decoding constrained as in notebook 02 (`judge_llm`).

# %%
from smolsynth.generation import llm_for
from smolsynth.pipelines import build_pipeline
from smolsynth.runner import run, run_pipeline
from smolsynth.ultrafeedback import judge_llm

tasks = smolsynth.import_distilabel("distilabel.steps.tasks")
questions = [{"instruction": q} for q in ["Name a fruit that is red.", "Why do cats purr?",
                                          "Give me a tip for packing light.", "What is a haiku?"]]
answer = tasks.TextGeneration(llm=llm_for(model_id, seed=SEED, max_new_tokens=MAX_NEW_TOKENS, temperature=0.7),
                              system_prompt="Answer in at most three short sentences.", num_generations=2,
                              group_generations=True)
rate = tasks.UltraFeedback(llm=judge_llm(2, model=model_id, seed=SEED), input_mappings={"generations": "generation"})
pipeline = build_pipeline(questions, [answer, rate], ray=USE_RAY, allow_truncated=TINY)
distiset = run_pipeline(pipeline, use_cache=False)
rated = distiset["default"]["train"].to_list()
pd.DataFrame(rated)[["instruction", "generation", "ratings"]]

# %% [markdown]
# A pipeline changes where the steps run, not what they make: on the course's 135M model the ratings are as weak as
# notebook 02's judge-sanity check found them (read a few rationales), and a bigger judge is the fix there too.
#
# Each step does to a batch what `run` does in a notebook: it reads the content cache, seeds the batch from its
# content, and sets aside truncated or unparsed rows. So the same tasks run here, one after the other, give the same
# rows, and they come from the cache the pipeline filled, without a token generated:

# %%
here = run(rate, run(answer, questions, allow_truncated=TINY).dataset, allow_truncated=TINY)
columns = ("instruction", "generation", "ratings")
print(here.report)
print("same rows as the pipeline:", [{c: r[c] for c in columns} for r in here.rows]
      == [{c: r[c] for c in columns} for r in rated])

# %% [markdown]
# **On a cluster**: start Ray on each machine (`ray start --head` on one, `ray start --address=<head>:6379` on the
# others), with the same environment everywhere (`pip install -c constraints.txt -e ".[ray]"` in a clone), then set
# `RAY_ADDRESS=<head>:6379` and build with `ray=True` (`USE_RAY` above). Without `RAY_ADDRESS`, `ray=True` starts a
# Ray on this machine: the same code, one node. The model must be where every node finds it: a hub id, or a path on
# a shared disk.

# %% [markdown]
# ## 5. Estimate before a big run
#
# How long would 500 instructions take on this machine? `estimate_recipe` runs a pilot of a few rows (nothing is
# cached or kept) and extrapolates: the rows each step keeps, the tokens, and the minutes of the batches a CPU
# decodes. `smolsynth run` prints it by itself before a run of 50 rows or more.

# %%
estimate = estimate_recipe(recipe_path, changes=["1.rows=500"], pilot_rows=PILOT_ROWS)
print(estimate)

# %% [markdown]
# ## 6. Publish, with a card made from what happened
#
# Everything stays on this machine until you ask. A dataset card says which model made the data and under which
# licence, the prompts, the settings, what every step dropped and why, the recipe, and the smolsynth version, all read
# from the run's own record:

# %%
from IPython.display import Markdown

from smolsynth.cards import dataset_card, publish_run

card = dataset_card(run_folder)
Markdown(card)

# %% [markdown]
# `publish_run(run_folder, "your-name/my-instructions")` (or `smolsynth publish <folder> <repo>`) pushes the rows,
# the record and the card to a **private** Hub repository, after checking that you are logged in. Without a login
# nothing is sent:

# %%
try:
    publish_run(run_folder, "your-name/my-instructions")
except RuntimeError as err:
    print(err)

# %% [markdown]
# ## 7. Exercises
#
# Replace every `____`, run the cell, then run the check below it. `ex.q1.hint()` gives a hint, `ex.q1.solution()` a
# worked solution.
#
# Levels: 🐢 the default path · 🐕 your own seed data or a variant technique · 🦁 your own use case.

# %%
from smolsynth.exercises import ____, nb08 as ex

# %% [markdown]
# ### Exercise 1 🐢 Write a recipe
#
# Write `my_recipe`, a recipe (a dict like the TOML above, or TOML text) with two steps: `magpie` making at least 4
# instructions, then `answers` with a system prompt of your own. The check loads it as `smolsynth run` would.

# %% exercise="q1" tags=["starter"]
my_recipe = ____  # {"name": ..., "step": [{"kind": "magpie", ...}, {"kind": "answers", ...}]}

# %% exercise="q1" tags=["solution"]
my_recipe = {"name": "short-answers", "seed": SEED, "step": [
    {"kind": "magpie", "rows": 4, "max_new_tokens": 128},
    {"kind": "answers", "system_prompt": "Answer in one sentence.", "temperature": 0.0},
]}

# %% [markdown]
# ### Exercise 2 🐕 Your own request to the server
#
# Make `my_llm`, a `ServerLLM` on the running server with settings of your choice (`server.llm(...)`), and put its
# answers to at least three instructions of your own in `my_answers`.

# %% exercise="q2" tags=["starter"]
my_llm = ____  # server.llm(generation_kwargs={...})
my_answers = ____  # generate([...], llm=my_llm)

# %% exercise="q2" tags=["solution"]
my_llm = server.llm(generation_kwargs={"max_new_tokens": MAX_NEW_TOKENS, "temperature": 0.0})
my_answers = generate(["What is a haiku?", "Name a river in Africa.", "How do I boil an egg?"], llm=my_llm,
                      allow_truncated=True)
my_answers.report

# %% [markdown]
# ### Exercise 3 🐕 A pipeline of your own
#
# Build `my_pipeline` with `build_pipeline`: at least three instructions of your own, answered twice each by a
# `TextGeneration` with a system prompt of your own, then rated by `UltraFeedback` (its LLM from `judge_llm`). Run it
# and put the rated rows in `my_rated`.

# %% exercise="q3" tags=["starter"]
my_pipeline = ____  # build_pipeline([{"instruction": ...}, ...], [tasks.TextGeneration(...), ...])
my_rated = ____  # run_pipeline(my_pipeline, use_cache=False)["default"]["train"].to_list()

# %% exercise="q3" tags=["solution"]
my_pipeline = build_pipeline(
    [{"instruction": q} for q in ["How do I keep basil fresh?", "What is a sourdough starter?",
                                  "Why do onions sting?"]],
    [tasks.TextGeneration(llm=llm_for(model_id, seed=SEED, max_new_tokens=MAX_NEW_TOKENS, temperature=0.7),
                          system_prompt="You are a patient cooking teacher. Answer in two sentences.",
                          num_generations=2, group_generations=True),
     tasks.UltraFeedback(llm=judge_llm(2, model=model_id, seed=SEED), input_mappings={"generations": "generation"})],
    allow_truncated=TINY)
my_rated = run_pipeline(my_pipeline, use_cache=False)["default"]["train"].to_list()
pd.DataFrame(my_rated)[["instruction", "ratings"]]

# %% [markdown]
# ### Exercise 4 🦁 A run of your own, with its card
#
# Write a recipe of your own use case (not the course's, at least two steps), run it into `my_run` (a folder), and
# put its dataset card in `my_card`. The check reads the folder: the run finished, and the card tells every step and
# what it dropped.

# %% exercise="q4" tags=["starter"]
my_run = ____  # the folder run_recipe(<your recipe>, <folder>) wrote
my_card = ____  # dataset_card(my_run)

# %% exercise="q4" tags=["solution"]
my_run = folder / "runs" / "mine"
run_recipe({"name": "cooking-questions", "seed": SEED, "step": [
    {"kind": "magpie", "rows": 4, "max_new_tokens": 128,
     "system_prompt": "You are a home cook who asks short questions about recipes."},
    {"kind": "answers", "system_prompt": "Answer like a chef, in two sentences.", "max_new_tokens": MAX_NEW_TOKENS,
     "allow_truncated": TINY},
]}, my_run)
my_card = dataset_card(my_run)

# %% [markdown]
# ## Stop the server

# %%
server.stop()
server

# %% [markdown]
# ## What's next
#
# The same recipe runs on a bigger machine with a bigger model (`--model`, or `model = "..."` in the recipe), and on a
# GPU server through `ServerLLM`. Read the card before you publish: it is what others will know of your data.
