"""The course's steps as a distilabel ``Pipeline``: one process per step, or one Ray actor per step on a cluster.

In a notebook, :func:`smolsynth.runner.run` applies one task at a time in this process. A script that wants
distilabel's scale-out (each step its own process, several replicas, a Ray cluster) builds the same tasks into a
pipeline instead. Each task is wrapped in a :class:`RunnerStep`, which does to every batch exactly what ``run`` does
(the content cache, the content seed, the row checks: truncated or unparsed rows are set aside, not passed on), so the
pipeline gives the same rows as running the tasks one after another with ``run``, for the same data and seed::

    >>> from distilabel.steps.tasks import TextGeneration, UltraFeedback
    >>> from smolsynth.llm import LocalLLM
    >>> from smolsynth.pipelines import build_pipeline
    >>> from smolsynth.runner import run_pipeline
    >>> llm = LocalLLM("smolsynth/tiny")                                          # doctest: +SKIP
    >>> generate = TextGeneration(llm=llm, num_generations=2, group_generations=True)  # doctest: +SKIP
    >>> judge = UltraFeedback(llm=llm, input_mappings={"generations": "generation"})   # doctest: +SKIP
    >>> pipeline = build_pipeline([{"instruction": "Say hi."}], [generate, judge], ray=True)  # doctest: +SKIP
    >>> rows = run_pipeline(pipeline, use_cache=False)["default"]["train"].to_list()  # doctest: +SKIP

On Ray, ``ray=True`` builds distilabel's ``RayPipeline``. It joins the cluster that ``RAY_ADDRESS`` names (for
example ``RAY_ADDRESS=10.0.0.5:6379`` after ``ray start --head`` on that machine and ``ray start
--address=10.0.0.5:6379`` on the others) or, with no ``RAY_ADDRESS``, starts a local one. Every node needs the same
Python environment (``pip install -c constraints.txt -e .[ray]``) and the model (a hub id, or a path every node has).
A step's ``cpus``/``gpus`` go to distilabel's ``resources`` (``StepResources``) when you need more than one core.

The rows a ``RunnerStep`` sets aside are in the content cache (``smolsynth_home()/cache``), not in the
``Distiset``; the notebook runner is the place to look at them.
"""

from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence

from pydantic import Field, PrivateAttr

from smolsynth.rows import as_rows
from smolsynth.verbosity import import_distilabel

_step = import_distilabel("distilabel.steps.base")
StepInput = _step.StepInput
if TYPE_CHECKING:
    from distilabel.typing import StepOutput


class RunnerStep(_step.Step):
    """A distilabel ``Step`` that runs ``task`` on each batch the way :func:`smolsynth.runner.run` does.

    It reads the cache, seeds the batch from its content, calls the task, checks every row, stores the batch, and
    yields the kept rows. Its inputs and outputs are the task's (after the task's mappings). Batches are numbered in
    the order they arrive, as ``run`` numbers them, so run it with one replica (the default).

    >>> RunnerStep(task=TextGeneration(llm=LocalLLM()), input_batch_size=16)  # doctest: +SKIP
    """

    # distilabel rebuilds every step from its pipeline.yaml when a run of the same pipeline is in its cache (even
    # with use_cache=False); the rebuilt task is a second, unloaded copy that cannot be copied to the step's process.
    # distilabel takes the fields marked ``exclude`` from the step built here instead. (The task is still written to
    # the yaml, and in the step's signature.)
    task: Any = Field(default=None, exclude=True)
    allow_truncated: bool = False
    cache: bool = True
    cache_dir: Optional[str] = None

    _batcher: Any = PrivateAttr(default=None)
    _index: int = PrivateAttr(default=0)

    @property
    def inputs(self) -> Dict[str, bool]:
        mappings = getattr(self.task, "input_mappings", {}) or {}
        return {mappings.get(col, col): required for col, required in self.task.get_inputs().items()}

    @property
    def outputs(self) -> List[str]:
        mappings = getattr(self.task, "output_mappings", {}) or {}
        return [mappings.get(col, col) for col in self.task.get_outputs()]

    def load(self) -> None:
        super().load()
        from smolsynth.runner import Batcher

        self._batcher = Batcher(self.task, allow_truncated=self.allow_truncated, cache=self.cache,
                                cache_dir=self.cache_dir)
        self._index = 0

    # No ``from __future__ import annotations`` in this module: distilabel reads the ``StepInput`` hint at runtime.
    def process(self, inputs: StepInput) -> "StepOutput":  # type: ignore[override]
        payload, _ = self._batcher(self._index, inputs)  # it copies before the task sees them
        if payload.get("failed"):  # never silent, and never rows of None (what distilabel sends on an exception)
            error = payload["dropped"][0]  # an error: smolsynth sets distilabel's loggers to ERROR
            self._logger.error(f"{self.name}: batch {self._index} raised {error['reason']}: {error['error']}; "
                               f"its {len(inputs)} rows are left out (rerun to retry: finished batches are cached)")
        self._index += 1
        yield payload["kept"]


def build_pipeline(data: Any, tasks: Sequence[Any], *, batch_size: Optional[int] = None, ray: bool = False,
                   name: str = "smolsynth", allow_truncated: bool = False, cache: bool = True,
                   cache_dir: Optional[str] = None, pipeline_cache_dir: Optional[str] = None) -> Any:
    """A distilabel pipeline: ``data`` loaded, then each task of ``tasks`` in turn, each in a :class:`RunnerStep`.

    Args:
        data: the first task's input rows (a ``datasets.Dataset``, a list of dicts, a DataFrame).
        tasks: distilabel tasks made outside any ``with Pipeline()`` block, in the order they run; each reads what
            the one before wrote.
        batch_size: rows per batch of every step; default: what :func:`~smolsynth.runner.run` would use for the task
            (the same batches, so the same seeds and rows as ``run``).
        ray: build distilabel's ``RayPipeline`` (a Ray cluster: ``RAY_ADDRESS``, or a local one).
        name: the pipeline's name (distilabel's own cache folder is keyed on it).
        allow_truncated, cache, cache_dir: as in :func:`~smolsynth.runner.run`.
        pipeline_cache_dir: where distilabel keeps the pipeline's own files (default: its cache folder).

    Returns:
        The pipeline; run it with :func:`smolsynth.runner.run_pipeline` (``use_cache=False`` to rerun every step:
        our content cache still answers for batches already done).

    >>> pipeline = build_pipeline(rows, [TextGeneration(llm=LocalLLM())], ray=True)  # doctest: +SKIP
    """
    rows = as_rows(data)
    if not rows:
        raise ValueError("data has no rows: pass the first task's input rows, e.g. [{'instruction': 'Say hi.'}].")
    tasks = list(tasks)
    if not tasks:
        raise ValueError("tasks is empty: pass the tasks to run in order, e.g. [TextGeneration(llm=LocalLLM())].")
    from smolsynth.runner import _check_columns, _check_task, _default_batch_size

    for task in tasks:
        _check_task(task)
        if getattr(task, "pipeline", None) is not None:
            raise ValueError(f"{task.name} belongs to a pipeline already: make the tasks outside any "
                             "`with Pipeline():` block and let build_pipeline connect them.")
    _check_columns(tasks[0], rows)
    pipelines = import_distilabel("distilabel.pipeline")
    steps = import_distilabel("distilabel.steps")
    kind = pipelines.RayPipeline if ray else pipelines.Pipeline
    options = {"cache_dir": pipeline_cache_dir} if pipeline_cache_dir else {}
    with kind(name=name, **options) as pipeline:
        previous = steps.LoadDataFromDicts(data=[dict(row) for row in rows],
                                           batch_size=batch_size or _default_batch_size(tasks[0]))
        for i, task in enumerate(tasks):
            step = RunnerStep(name=f"{i}_{task.name}", task=task, allow_truncated=allow_truncated, cache=cache,
                              cache_dir=cache_dir, input_batch_size=batch_size or _default_batch_size(task))
            previous >> step
            previous = step
    return pipeline


__all__ = ["RunnerStep", "build_pipeline"]
