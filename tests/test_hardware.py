"""Hardware profiles from injected facts: no GPU needed to test what a T4 or an A100 would get."""

from __future__ import annotations

import pytest

from smolsynth.hardware import CPU_MODEL, GPU_MODEL, SMALL_MODEL, Hardware, choose_profile, detect

T4 = Hardware(device="cuda", gpu_name="Tesla T4", capability=(7, 5), gpu_memory_gb=15.0, cpu_count=2, ram_gb=12.7,
              platform="colab")
A100 = Hardware(device="cuda", gpu_name="NVIDIA A100-SXM4-40GB", capability=(8, 0), gpu_memory_gb=39.4)


def test_cpu_profile_is_fp32_with_the_cpu_model():
    profile = choose_profile(Hardware(device="cpu", cpu_count=2, ram_gb=24.0))
    assert (profile.name, profile.device, profile.dtype, profile.model) == ("cpu", "cpu", "float32", SMALL_MODEL)
    # training decisions (batch sizes, LoRA) live in smolsynth.training.training_profile, not here
    assert not hasattr(profile, "lora") and not hasattr(profile, "train_batch_size")


def test_capability_7_5_gets_fp16_never_bf16():
    profile = choose_profile(T4)
    assert (profile.device, profile.dtype, profile.model) == ("cuda", "float16", GPU_MODEL)
    assert "7.5" in profile.reason and "T4" in profile.reason


def test_capability_8_0_gets_bf16():
    profile = choose_profile(A100)
    assert (profile.device, profile.dtype) == ("cuda", "bfloat16")
    assert profile.generation_batch_size > choose_profile(T4).generation_batch_size


@pytest.mark.parametrize("capability,dtype", [((6, 1), "float16"), ((7, 0), "float16"), ((8, 6), "bfloat16"),
                                              ((9, 0), "bfloat16"), ((12, 0), "bfloat16")])
def test_bf16_only_from_capability_8(capability, dtype):
    assert choose_profile(Hardware(device="cuda", capability=capability, gpu_memory_gb=24.0)).dtype == dtype


def test_small_gpu_gets_the_small_model():
    assert choose_profile(Hardware(device="cuda", capability=(7, 5), gpu_memory_gb=6.0)).model == CPU_MODEL


def test_cpu_batch_follows_memory():
    sizes = [choose_profile(Hardware(ram_gb=gb)).generation_batch_size for gb in (24.0, 8.0)]
    assert sizes == [64, 32]
    assert choose_profile(Hardware(platform="binder", ram_gb=2.0)).generation_batch_size == 8


def test_binder_and_low_memory_get_the_smallest_model():
    assert choose_profile(Hardware(platform="binder", ram_gb=2.0)).model == SMALL_MODEL
    assert choose_profile(Hardware(ram_gb=3.0)).model == SMALL_MODEL


def test_mps_profile():
    profile = choose_profile(Hardware(device="mps"))
    assert (profile.device, profile.dtype) == ("mps", "float16")


def test_detect_on_this_machine(monkeypatch):
    monkeypatch.setenv("BINDER_REPO_URL", "https://example.invalid/repo")
    hw = detect()
    assert hw.cpu_count >= 1 and hw.platform == "binder"
    assert hw.device in {"cpu", "cuda", "mps"}
