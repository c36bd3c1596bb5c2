"""What the papers' settings and stages do on the embedded SmolLM2-135M (data, not speed): notebook 01's lesson
quotes these numbers.

1. Self-Instruct sampling: the paper's (temperature 0.7, top_p 0.5, presence penalty 2), ours (0.7, 1.0, none) and
   temperature 1.0, on notebook 01's 8 seeds, 2 rounds of 4 prompts: candidates, kept, drop reasons, first kept.
2. Self-Instruct's instance stage (``self_instruct_instances``) on 6 instructions, two of them classification tasks.
3. Magpie's input-quality tag (``tag_quality``) on 8 probes, 3 of them plainly bad ("hm", "asdf qwer zxcv", an
   unfinished request).

    SMOLSYNTH_HOME=/tmp/bench HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/paper_settings.py
"""

from __future__ import annotations

import time

from smolsynth.instructions import INPUT_QUALITY, self_instruct, self_instruct_instances, tag_quality

MODEL = "smolsynth/smollm2-135m"
SEEDS = [  # notebook 01's
    "Explain why the sky is blue to a ten-year-old.",
    "Give three tips for a successful job interview.",
    "Summarize the plot of Romeo and Juliet in two sentences.",
    "Translate the phrase good morning into French and Spanish.",
    "Suggest a name for a coffee shop next to a library.",
    "List four healthy breakfast ideas for busy mornings.",
    "Describe how the gears of a bicycle make pedalling easier.",
    "Write a polite email that declines a meeting invitation.",
]
INSTRUCTIONS = ["Sort these words alphabetically: pear, apple, fig.", "Is this email spam or not?",
                "Give me a synonym of happy.", "Classify the sentiment of a movie review as positive or negative.",
                "Translate good night into German.", "Explain why the sky is blue to a child."]
PROBES = ["How do I repot a cactus without hurting my hands?", "hm", "Explain photosynthesis to a child.",
          "asdf qwer zxcv", "What is the capital of Australia?", "Give three tips for a job interview.",
          "Can you help me with", "Write a haiku about the sea that mentions a lighthouse."]


def main() -> None:
    for name, kwargs in [("temperature 1.0", dict(temperature=1.0)), ("ours: 0.7, top_p 1.0", dict(temperature=0.7)),
                         ("paper: 0.7, top_p 0.5, presence 2",
                          dict(temperature=0.7, top_p=0.5, presence_penalty=2.0))]:
        started = time.time()
        result = self_instruct(SEEDS, rounds=2, prompts_per_round=4, model=MODEL, max_new_tokens=256, progress=False,
                               cache=False, **kwargs)
        print(f"self_instruct, {name}: {result.report.rows_in} candidates, kept {len(result.rows)}, "
              f"dropped {result.report.dropped}, {time.time() - started:.0f} s")
        for row in result.rows[:6]:
            print("    ", row["instruction"][:120])
    instances = self_instruct_instances(INSTRUCTIONS, model=MODEL, progress=False, cache=False)
    print(instances.report)
    for row in instances.rows:
        print(f"    {row['order']} | {row['instruction'][:50]} | input: {row['input'][:60]} | output: {row['output'][:80]}")
    tags = tag_quality([{"instruction": p} for p in PROBES], keep=INPUT_QUALITY, model=MODEL, progress=False,
                       cache=False)
    for row in tags.rows:
        print(f"    {row['input_quality']:>9} | {row['instruction']}")


if __name__ == "__main__":
    main()
