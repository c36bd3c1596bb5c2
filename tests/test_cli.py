"""`smolsynth doctor`: the whole report, offline, quickly, with no network attempt."""

from __future__ import annotations

import time

from conftest import run_python

DOCTOR = "import sys; from smolsynth.cli import main; sys.exit(main(['doctor']))"


def test_doctor_reports_hardware_profile_model_versions_and_hub_offline_without_hanging():
    started = time.perf_counter()
    result = run_python(DOCTOR, env={"HF_HUB_OFFLINE": "", "TRANSFORMERS_OFFLINE": ""}, guard=True, timeout=60)
    elapsed = time.perf_counter() - started
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for section in ("Hardware", "Profile", "Model", "Hugging Face Hub", "Packages"):
        assert f"\n{section}\n" in out
    assert "dtype        float32" in out and "would use    smolsynth/tiny" in out
    assert "status       not reachable" in out
    assert "transformers" in out and "distilabel       1.5.3" in out
    # the only network attempt is the single hub probe, and it is refused at once
    attempts = int(out.split("network_attempts=")[1].split()[0])
    assert attempts <= 1
    print(f"doctor took {elapsed:.1f}s")  # measured, not asserted: see benchmarks for speed


def test_doctor_with_hub_offline_switch_makes_no_network_attempt():
    result = run_python(DOCTOR, guard=True, timeout=60)
    assert "offline (HF_HUB_OFFLINE=1)" in result.stdout
    assert "network_attempts=0" in result.stdout
