"""Instruction datasets three ways, each thin over distilabel's own task (its prompt and its parser), run in this
process by :func:`smolsynth.runner.run`, plus what the paper does around the prompt and distilabel does not:

* :func:`self_instruct` (:mod:`.self_instruct`): the paper's bootstrap loop from a few seeds, with its ROUGE-L
  novelty filter and rule filters;
* :func:`magpie` (:mod:`.magpie`): instructions from the bare pre-query template of a chat model, filtered;
* :func:`evol_instruct` (:mod:`.evol_instruct`): mutations in depth and in breadth, and the paper's eliminations.

Answers to any instruction set come from :func:`smolsynth.generation.generate`; :func:`smolsynth.formats.to_sft`
turns rows into the SFT dataset TRL's ``SFTTrainer`` reads. Every function returns a :class:`~smolsynth.rows.Result`
(``.rows``/``.dataset``, ``.dropped_rows``/``.dropped`` with a ``reason`` per row, ``.report``, ``.steps``,
``.funnel``): nothing is dropped silently.
"""

from smolsynth.formats import to_sft
from smolsynth.generation import generate
from smolsynth.instructions.evol_instruct import (EVOL_IN_BREADTH, EVOL_IN_DEPTH, EVOL_JUDGE_PROMPT,
                                                  copies_template_words, evol_instruct, evol_mutation_templates,
                                                  evolution_elimination_reason)
from smolsynth.instructions.magpie import INPUT_QUALITY, magpie, tag_quality
from smolsynth.instructions.self_instruct import (BOOTSTRAP_HEADER, SELF_INSTRUCT_BLOCKLIST, bootstrap_context,
                                                  clean_instances, filter_instructions, instruction_rule,
                                                  parse_instances, rouge_l, self_instruct, self_instruct_instances,
                                                  strip_numbering)

__all__ = ["BOOTSTRAP_HEADER", "EVOL_IN_BREADTH", "EVOL_IN_DEPTH", "EVOL_JUDGE_PROMPT", "INPUT_QUALITY",
           "SELF_INSTRUCT_BLOCKLIST", "bootstrap_context", "clean_instances", "copies_template_words",
           "evol_instruct", "evol_mutation_templates", "evolution_elimination_reason", "filter_instructions",
           "generate", "instruction_rule", "magpie", "parse_instances", "rouge_l", "self_instruct",
           "self_instruct_instances", "strip_numbering", "tag_quality", "to_sft"]
