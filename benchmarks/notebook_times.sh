#!/usr/bin/env bash
# Every solution notebook at its DEFAULT settings (no fast mode) on the embedded SmolLM2-135M, in a fresh home, one
# after another as a learner runs them; prints each notebook's wall time (notebooks/manifest.toml, cpu_minutes).
#   benchmarks/notebook_times.sh [NOTEBOOK_STEM ...]     (default: 00 to 05; run on an otherwise idle machine)
set -u
cd "$(dirname "$0")/.."
out=${OUT:-/tmp/notebook-times}
mkdir -p "$out/home"
export SMOLSYNTH_MODEL=smolsynth/smollm2-135m HF_HUB_OFFLINE=1 SMOLSYNTH_STRICT=0 SMOLSYNTH_HOME="$out/home"
for nb in "${@:-00_setup 01_instructions 02_preferences 03_sft 04_dpo 05_classification}"; do
  for stem in $nb; do
    start=$(date +%s)
    .venv/bin/jupyter nbconvert --to notebook --execute --allow-errors --ExecutePreprocessor.timeout=3600 \
      "notebooks/solutions/$stem.ipynb" --output "$out/$stem.out.ipynb" > "$out/$stem.log" 2>&1
    echo "$stem rc=$? $(( $(date +%s) - start ))s"
  done
done
