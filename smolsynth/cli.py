"""The ``smolsynth`` command: ``smolsynth doctor`` (what would run here, and why), ``smolsynth demo`` and
``smolsynth run RECIPE`` (a recipe of the course's steps, headless and resumable: :mod:`smolsynth.recipes`).

    $ smolsynth doctor
    $ smolsynth demo --out demo-output
    $ smolsynth run course --out runs/course --set 1.rows=16
    $ smolsynth publish runs/course your-name/course-data        # private, with a dataset card
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from importlib import metadata

KEY_PACKAGES = ("smolsynth", "torch", "transformers", "tokenizers", "datasets", "trl", "peft", "accelerate",
                "distilabel", "xgrammar", "huggingface_hub", "jupyterlab", "ipywidgets")


def package_versions() -> dict[str, str]:
    """Installed versions of the packages smolsynth stands on (read from metadata: nothing is imported)."""
    versions = {}
    for name in KEY_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def doctor() -> str:
    """A plain-text account of this machine: hardware, profile, the model smolsynth would use, versions, hub access.

    Never hangs offline: the hub check is one socket connection with a short timeout.
    """
    from smolsynth.hardware import current_profile
    from smolsynth.models import hub_offline_requested, hub_reachable, resolve_model
    from smolsynth.settings import MODEL_ENV, smolsynth_home

    started = time.perf_counter()
    profile = current_profile()
    hw = profile.hardware
    reachable = hub_reachable()
    model = resolve_model()
    lines = ["smolsynth doctor", "", "Hardware"]
    lines.append(f"  device       {hw.device}" + (f" ({hw.gpu_name})" if hw.gpu_name else ""))
    if hw.capability:
        lines.append(f"  capability   {hw.capability[0]}.{hw.capability[1]}")
    if hw.gpu_memory_gb:
        lines.append(f"  GPU memory   {hw.gpu_memory_gb:.1f} GiB")
    lines.append(f"  CPU cores    {hw.cpu_count}")
    if hw.ram_gb:
        lines.append(f"  RAM          {hw.ram_gb:.1f} GiB")
    lines.append(f"  platform     {hw.platform}")
    lines += ["", "Profile", f"  name         {profile.name}", f"  dtype        {profile.dtype}",
              f"  batch size   generation {profile.generation_batch_size} (training: see training_profile())",
              f"  why          {profile.reason}"]
    lines += ["", "Model", f"  would use    {model}" + (f"  (from ${MODEL_ENV})" if _env_model() else ""),
              f"  default      {profile.model}  (profile {profile.name})",
              f"  cache        {smolsynth_home()}"]
    hub = "reachable" if reachable else ("offline (HF_HUB_OFFLINE=1)" if hub_offline_requested() else "not reachable")
    lines += ["", "Hugging Face Hub", f"  status       {hub}"]
    if not reachable:
        lines.append(f"  tip          use the offline model: {MODEL_ENV}=smolsynth/tiny")
    lines += ["", "Packages"] + [f"  {k:<16} {v}" for k, v in package_versions().items()]
    lines += ["", f"(checked in {time.perf_counter() - started:.1f} s)"]
    return "\n".join(lines)


def _env_model() -> str | None:
    from smolsynth.settings import MODEL_ENV

    return os.environ.get(MODEL_ENV)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="smolsynth", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("doctor", help="print the hardware, profile, model, package versions and hub status")
    demo_p = sub.add_parser("demo", help="run the whole course path in miniature, offline-capable")
    demo_p.add_argument("--out", default="demo-output", help="folder for the datasets and summary (default: %(default)s)")
    demo_p.add_argument("--model", default=None, help="model id (default: $SMOLSYNTH_MODEL, else the profile's model, "
                                                       "else the embedded smolsynth/smollm2-135m when the hub is unreachable)")
    demo_p.add_argument("--rows", type=int, default=8, help="instructions to generate per round (default: %(default)s)")
    demo_p.add_argument("--steps", type=int, default=4, help="SFT and DPO training steps (default: %(default)s)")
    demo_p.add_argument("--seed", type=int, default=0)
    run_p = sub.add_parser("run", help="run a recipe (a TOML file, or a shipped one: course, instructions, "
                                       "classification) into a folder; run again to resume")
    run_p.add_argument("recipe", help="a .toml file, or the name of a shipped recipe")
    run_p.add_argument("--out", default=None, help="the run's folder (default: runs/<recipe name>)")
    run_p.add_argument("--model", default=None, help="model id (default: the recipe's, else the course model)")
    run_p.add_argument("--set", dest="changes", action="append", default=[], metavar="KEY=VALUE",
                       help="change a setting: seed=1, 1.rows=16 (step 1's rows); repeatable")
    run_p.add_argument("--estimate", action="store_true", help="only estimate the run's minutes, tokens and memory "
                                                               "from a pilot of 10 rows, then stop")
    run_p.add_argument("--no-estimate", action="store_true", help="start a big run without the pilot estimate")
    pub_p = sub.add_parser("publish", help="push a run folder of `smolsynth run` to the Hub with a dataset card "
                                           "(private unless --public; needs a login)")
    pub_p.add_argument("folder", help="the run's folder")
    pub_p.add_argument("repo_id", help="your-name/dataset-name")
    pub_p.add_argument("--public", action="store_true", help="make the repository public")
    pub_p.add_argument("--card-only", action="store_true", help="print the dataset card and send nothing")
    args = parser.parse_args(argv)

    if args.command == "publish":
        from smolsynth.cards import dataset_card, publish_run

        try:
            if args.card_only:
                print(dataset_card(args.folder))
            else:
                print(publish_run(args.folder, args.repo_id, private=not args.public))
        except (ValueError, FileNotFoundError, RuntimeError) as err:
            print(f"smolsynth publish: {err}", file=sys.stderr)
            return 2
        return 0
    if args.command == "doctor":
        print(doctor())
        return 0
    if args.command == "run":
        from smolsynth.recipes import PILOT_ROWS, estimate_recipe, load_recipe, run_recipe

        try:
            recipe = load_recipe(args.recipe, changes=args.changes)
            out = args.out or os.path.join("runs", recipe.get("name") or "recipe")
            big = int(recipe["step"][0].get("rows") or 0) >= 5 * PILOT_ROWS
            if args.estimate or (big and not args.no_estimate and not os.path.exists(os.path.join(out, "run.json"))):
                print(estimate_recipe(args.recipe, changes=args.changes, model=args.model))
                if args.estimate:
                    return 0
            run_recipe(args.recipe, out, changes=args.changes, model=args.model)
        except (ValueError, FileNotFoundError, TypeError) as err:
            print(f"smolsynth run: {err}", file=sys.stderr)
            return 2
        return 0
    from smolsynth.demo import run_demo

    run_demo(out=args.out, model=args.model, rows=args.rows, steps=args.steps, seed=args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
