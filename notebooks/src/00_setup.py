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
# Welcome! This first notebook gets you ready for the rest of the course. By the end you will have:
#
# 1. seen what your machine can run, and why smolsynth picked the settings it picked;
# 2. generated your first answers with a language model;
# 3. looked one layer down, at the [distilabel](https://distilabel.argilla.io/) task that does the work;
# 4. built a tiny synthetic dataset of your own, checked by the notebook.
#
# **Why synthetic data?** Training a model to follow instructions (SFT) or to prefer better answers (DPO) needs
# thousands of examples. Writing them by hand is slow and expensive; a language model can draft them in minutes,
# and you spend your time on what matters: choosing the seeds, steering the generation, filtering the results.
# The course follows this path:
#
# ![From seeds to instructions, responses, SFT data, and, through a judge, to chosen/rejected pairs for DPO](../images/pipeline.svg)
#
# and covers the main kinds of synthetic data:
#
# ![A taxonomy of synthetic data: instructions, responses, preferences, classification data, structured records](../images/synthetic-data-taxonomy.svg)

# %% [markdown]
# ## 1. Parameters
#
# Every notebook keeps the values you may want to change in one cell of plain values, just below. In CI (and when
# you set `SMOLSYNTH_FAST=1`) the course runs in *fast mode*: the cell after it shrinks these values so the whole
# notebook runs in seconds. Fast mode makes fewer rows and fewer training steps; it shortens answers only on
# `smolsynth/tiny`, the random test model (a real model needs its token budget to finish an answer: cut to 16 tokens,
# every answer would be cut off, and the course drops cut-off answers).

# %% tags=["parameters"]
MAX_NEW_TOKENS = 128  # the longest answer, in tokens (a token is roughly 3/4 of a word)
TEMPERATURE = 0.7  # 0 always picks the most likely next token; higher values give more varied answers

# %%
from smolsynth import course

course.fast_mode(globals(), tiny_model=dict(MAX_NEW_TOKENS=16))

# %% [markdown]
# ## 2. Where are you running?
#
# smolsynth looks at the machine once and picks a *profile*: where to compute (CPU or GPU), in which number
# format, and which model to use by default. The rules are simple, and each has a reason:
#
# - **No GPU**: 32-bit floats (`float32`), because half precision is slow or unsupported on most CPUs, and a small
#   model (SmolLM2-135M, the smallest real one: on a CPU it generates and trains in a lesson's time; on Binder, with
#   about 2 GB of memory, in smaller batches).
# - **A GPU older than Ampere** (compute capability below 8, e.g. Colab's free T4): `float16`. Such GPUs *say* they
#   support `bfloat16`, but only by emulating it, slowly.
# - **An Ampere or newer GPU** (A100, L4, RTX 30xx and later): `bfloat16`, which is as fast as `float16` and more
#   robust when training.

# %%
import smolsynth

setup = course.describe_setup()
setup

# %% [markdown]
# The profile is computed from plain facts, so you can ask what *another* machine would get without having it.
# Here is Colab's free T4:

# %%
from smolsynth.hardware import Hardware, choose_profile

t4 = Hardware(device="cuda", gpu_name="Tesla T4", capability=(7, 5), gpu_memory_gb=15.0, platform="colab")
print(choose_profile(t4).reason)

# %% [markdown]
# ## 3. The model
#
# One switch chooses the model for the whole course: the `SMOLSYNTH_MODEL` environment variable (or `model=` in
# any call). Without it you get the profile's default, a real model from the Hugging Face Hub. The name
# `smolsynth/tiny` is special: a tiny model with random weights that smolsynth builds on your machine, with no
# download. It writes nonsense, very fast, which is exactly what automated tests need: every notebook of this course
# runs in CI on it. If your answers below look like word salad, that is the model you are on.

# %%
from smolsynth.llm import LocalLLM

model_id = smolsynth.resolve_model()
llm = LocalLLM(model_id, generation_kwargs={"max_new_tokens": MAX_NEW_TOKENS, "temperature": TEMPERATURE})
llm.load()  # the first time: download (hub models) and load; afterwards every cell reuses it from memory
print(f"{model_id} is loaded on {llm.resolved_device}, in {llm.resolved_dtype}.")

# %% [markdown]
# ## 4. A first generation
#
# `generate` takes a list of instructions and returns a `Result`, the one result type of every smolsynth step: the
# data (`.rows`, a list of dicts, and `.dataset`, the same rows as a Hugging Face `datasets.Dataset`, with an
# `instruction` and a `generation` column), the rows set aside (`.dropped_rows`, each with its `reason`) and a report
# of the run (`.report`: rows in and out, rows dropped and why, tokens, time). Nothing is dropped silently, ever.

# %%
from smolsynth.generation import generate

first = generate(["Explain in two sentences what synthetic data is."], model=model_id,
                 max_new_tokens=MAX_NEW_TOKENS, temperature=TEMPERATURE)
first.dataset.to_pandas()

# %%
first.report

# %% [markdown]
# ## 5. One layer down: the distilabel task
#
# smolsynth is thin. `generate` is a shortcut for three pieces you will meet again in every notebook:
#
# | `generate(...)` argument | underneath |
# |---|---|
# | `model=`, `max_new_tokens=`, `temperature=` | `LocalLLM(model=..., generation_kwargs={...})`: smolsynth's local model, a distilabel LLM |
# | `system_prompt=` | `TextGeneration(llm=..., system_prompt=...)`: distilabel's task, which owns the prompt and the parsing |
# | the list of instructions | `run(task, rows)`: smolsynth's runner feeds rows `{"instruction": ...}` to the task in batches, with a cache and a report |
#
# Below, the same generation as above, written out:

# %%
from smolsynth.runner import run

tasks = smolsynth.import_distilabel("distilabel.steps.tasks")
task = tasks.TextGeneration(llm=llm)  # llm: the LocalLLM loaded in section 3
same = run(task, [{"instruction": "Explain in two sentences what synthetic data is."}])
same.dataset.to_pandas()

# %% [markdown]
# The task turns each row into chat messages; the model's chat template turns the messages into the exact text the
# model reads (the special markers such as `<|im_start|>` tell it who speaks). Seeing that text is the best debugging
# tool you have:

# %%
task.load()  # a distilabel task builds its prompt template when loaded (run() does it when it computes)
messages = task.format_input({"instruction": "Explain in two sentences what synthetic data is."})
print(messages)
print(llm.prepare_input(messages))

# %% [markdown]
# ## 6. Exercises
#
# Each exercise has a cell to fill in: replace every `____` with your answer, run the cell, then run the check
# below it. The check says **Correct**, **Not attempted** or **Incorrect**, with a reason. It looks at the shape of
# your data (types, columns, counts), never at the wording, so it works with any model. Stuck? `ex.q1.hint()` gives
# one hint per call, and `ex.q1.solution()` shows a worked solution.
#
# Levels: 🐢 the default path · 🐕 your own seed data or a variant technique · 🦁 your own use case.

# %%
from smolsynth.exercises import ____, nb00 as ex

# %% [markdown]
# ### Exercise 1 🐢 Your first generated dataset
#
# Write at least three different instructions of your own in `my_instructions` (a list of strings), then generate
# an answer to each with `generate`, into `my_result`. Tip: the more different your instructions are (a question,
# a task, a request for a list...), the more useful the dataset.

# %% exercise="q1" tags=["starter"]
my_instructions = ____  # a list of at least 3 different instructions (strings)
my_result = ____  # generate(...) on my_instructions

# %% exercise="q1" tags=["solution"]
my_instructions = [
    "Give three tips for writing a clear email.",
    "Explain what a prime number is to a ten-year-old.",
    "Suggest a name for a bakery that sells only croissants.",
]
my_result = generate(my_instructions, model=model_id, max_new_tokens=MAX_NEW_TOKENS, temperature=TEMPERATURE)
my_result.dataset.to_pandas()

# %% [markdown]
# ### Exercise 2 🐕 The same call, one layer down: a system prompt
#
# A *system prompt* steers every answer at once ("Answer like a patient teacher", "Reply in French", ...): a cheap
# way to get a different flavour of data from the same instructions. Build a distilabel `TextGeneration` task on
# `llm` with a system prompt of your choice, in `my_task`, and run it with `run` on at least two instructions, into
# `my_task_result`.

# %% exercise="q2" tags=["starter"]
my_task = ____  # a TextGeneration task with a system prompt
my_task_result = ____  # run(...) of my_task on at least two instructions

# %% exercise="q2" tags=["solution"]
my_task = tasks.TextGeneration(llm=llm, system_prompt="You are a patient teacher. Answer in two short sentences.")
my_task_result = run(my_task, [{"instruction": i} for i in my_instructions])
my_task_result.dataset.to_pandas()

# %% [markdown]
# ## What's next
#
# You have a working set-up, a first dataset, and you know what runs underneath. 🦁 Before moving on, try it on your
# own use case: swap the instructions and the system prompt for your domain (customer support, cooking, code
# review...) and read the answers with a critical eye. Which would you keep in a training set, and why? The next
# notebooks turn that judgement into code: generating instructions at scale, filtering them, and judging answers.
