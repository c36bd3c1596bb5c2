"""In a real Jupyter kernel: after a run (the runner, and a distilabel Pipeline through run_pipeline) logging works."""

from __future__ import annotations

import nbformat
from nbclient import NotebookClient

SETUP = """
import os, logging, tempfile
os.environ.update(SMOLSYNTH_HOME=HOME, SMOLSYNTH_MODEL="smolsynth/tiny", HF_HUB_OFFLINE="1")
from smolsynth.generation import generate
from smolsynth.llm import LocalLLM
from smolsynth.runner import run_pipeline
from smolsynth.verbosity import restore_logging
"""
RUNNER = """
result = generate(["Hi", "Bye"], max_new_tokens=6)
logging.getLogger("x").warning("after-runner-ok")
"""
PIPELINE = """
from distilabel.pipeline import Pipeline
from distilabel.steps import LoadDataFromDicts
from distilabel.steps.tasks import TextGeneration

def make_pipeline():
    with Pipeline(name="kernel-test", cache_dir=tempfile.mkdtemp()) as pipeline:
        load = LoadDataFromDicts(data=[{"instruction": "Say hi."}])
        gen = TextGeneration(llm=LocalLLM("smolsynth/tiny", generation_kwargs={"max_new_tokens": 6}))
        load >> gen
    return pipeline

distiset = run_pipeline(make_pipeline(), use_cache=False)
print("ROWS", len(distiset["default"]["train"]))
logging.getLogger("x").warning("after-pipeline-ok")
"""
RAW_THEN_RESTORE = """
import smolsynth.runner
smolsynth.runner._FORK_GUARD["active"] = True  # keep the forked children from hanging (see run_pipeline)
make_pipeline().run(use_cache=False)  # distilabel's own run leaves its queue handler behind...
from logging.handlers import QueueHandler
print("QUEUE_HANDLER_LEFT", any(isinstance(h, QueueHandler) for h in logging.getLogger().handlers))
print("REMOVED", restore_logging())     # ...which restore_logging() removes
logging.getLogger("x").warning("after-restore-ok")
"""


def _text(cell) -> str:
    parts = []
    for out in cell.get("outputs", []):
        parts.append(out.get("text", "") or "".join(out.get("traceback", [])))
        if "data" in out:
            parts.append(str(out["data"].get("text/plain", "")))
    return "".join(parts)


def test_logging_works_in_a_kernel_after_runs(engine_home, tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(f"HOME = {str(engine_home)!r}\n" + SETUP),
                nbformat.v4.new_code_cell(RUNNER), nbformat.v4.new_code_cell(PIPELINE),
                nbformat.v4.new_code_cell(RAW_THEN_RESTORE)]
    NotebookClient(nb, timeout=240, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    runner, pipeline, restore = (_text(c) for c in nb.cells[1:])
    for text in (runner, pipeline, restore):
        assert "Logging error" not in text, text
        assert "Queue is closed" not in text, text
    assert "after-runner-ok" in runner
    assert "ROWS 1" in pipeline and "after-pipeline-ok" in pipeline
    assert "QUEUE_HANDLER_LEFT True" in restore  # the trap is real...
    assert "REMOVED 1" in restore and "after-restore-ok" in restore  # ...and fixed
