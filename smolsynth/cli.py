"""The ``smolsynth`` command: ``smolsynth doctor`` (what would run here, and why) and ``smolsynth demo``.

    $ smolsynth doctor
    $ smolsynth demo --out demo-output
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
    args = parser.parse_args(argv)

    if args.command == "doctor":
        print(doctor())
        return 0
    from smolsynth.demo import run_demo

    run_demo(out=args.out, model=args.model, rows=args.rows, steps=args.steps, seed=args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
