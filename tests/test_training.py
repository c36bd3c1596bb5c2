"""smolsynth.training: profiles, input validation, and real TRL SFT/DPO runs on the tiny model (no mocks).

The SFT and DPO runs are session fixtures in conftest.py (``trained_sft``, ``trained_dpo``), shared with
test_evaluation.py.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path

import pytest
import torch

from conftest import make_chats, make_pairs
from smolsynth.formats import messages_to_prompt_completion, validate_dpo_dataset, validate_sft_dataset
from smolsynth.hardware import LORA_THRESHOLD_PARAMS, Hardware, TrainingProfile, count_parameters, training_profile
from smolsynth.rows import Result
from smolsynth.training import (ReferenceModelError, TrainingResult, check_reference, dpo, dpo_config, lora_config,
                                measured, prepare_dataset, save_checkpoint, sft, sft_config)
from smolsynth.verbosity import quiet_training

CPU = Hardware(device="cpu", cpu_count=2, ram_gb=16.0)
T4 = Hardware(device="cuda", capability=(7, 5), gpu_memory_gb=15.0, gpu_name="Tesla T4")
A100 = Hardware(device="cuda", capability=(8, 0), gpu_memory_gb=40.0, gpu_name="NVIDIA A100-SXM4-40GB")


# ------------------------------------------------------------------------------------------------ profiles
def test_cpu_profile_is_fp32_use_cpu_without_checkpointing():
    p = training_profile(CPU, model_params=400_000)
    assert (p.name, p.dtype, p.bf16, p.fp16, p.use_cpu, p.gradient_checkpointing, p.lora) == \
        ("cpu-fp32", "float32", False, False, True, False, False)
    assert p.sft_learning_rate > p.dpo_learning_rate
    assert "CPU" in p.reason


def test_t4_profile_is_fp16_and_lora_only_above_half_a_billion():
    small = training_profile(T4, model_params=135_000_000)
    big = training_profile(T4, model_params=1_700_000_000)
    for p in (small, big):
        assert (p.name, p.dtype, p.fp16, p.bf16, p.use_cpu, p.gradient_checkpointing) == \
            ("cuda-fp16", "float16", True, False, False, True)
    assert small.lora is False and small.model_dtype == "float32"
    assert big.lora is True and big.model_dtype == "float16"
    assert big.sft_learning_rate == 2e-4 and small.sft_learning_rate == 2e-5
    assert training_profile(T4, model_params=LORA_THRESHOLD_PARAMS + 1).lora is True
    assert "7.5" in big.reason and "LoRA" in big.reason


def test_ampere_profile_is_bf16():
    p = training_profile(A100, model_params=1_700_000_000)
    assert (p.name, p.dtype, p.bf16, p.fp16, p.use_cpu) == ("cuda-bf16", "bfloat16", True, False, False)
    assert p.lora is False  # 1.7B x 16 bytes = 25 GiB: full fine-tuning fits in 3/4 of 40 GB
    assert training_profile(A100, model_params=3_000_000_000).lora is True  # 45 GiB does not
    assert training_profile(Hardware(device="cuda", capability=(9, 0), gpu_memory_gb=80.0,
                                     gpu_name="H100"), model_params=1_700_000_000).bf16 is True


def test_profile_for_this_machine_and_with_lora():
    p = training_profile(model_params=400_000)  # this machine: no GPU here
    assert isinstance(p, TrainingProfile)
    on = p.with_lora(True)
    assert on.lora and on.sft_learning_rate == 2e-4 and on.dpo_learning_rate == 5e-6
    assert on.with_lora(False).sft_learning_rate == 2e-5


def test_count_parameters_without_loading_weights(tiny_path):
    n = count_parameters("smolsynth/tiny")
    assert 100_000 < n < 1_000_000
    assert count_parameters(str(tiny_path)) == n


# ------------------------------------------------------------------------------------------------ configs
def test_configs_show_every_profile_default_and_take_overrides(tmp_path):
    t4 = training_profile(T4, model_params=1_700_000_000)
    cfg = sft_config(t4, output_dir=str(tmp_path), max_steps=10)
    assert (cfg.fp16, cfg.bf16, cfg.use_cpu, cfg.activation_checkpointing) == (True, False, False, True)
    assert cfg.learning_rate == t4.sft_learning_rate and cfg.max_length == t4.max_length
    assert cfg.per_device_train_batch_size * cfg.gradient_accumulation_steps == 16
    assert cfg.model_init_kwargs == {"dtype": "float16"}
    assert cfg.completion_only_loss is True and cfg.assistant_only_loss is False
    assert cfg.report_to == [] and cfg.save_strategy == "no"

    cpu = training_profile(CPU, model_params=400_000)
    cfg = sft_config(cpu, output_dir=str(tmp_path), learning_rate=1e-4, gradient_checkpointing=True, max_length=64)
    assert (cfg.learning_rate, cfg.activation_checkpointing, cfg.max_length) == (1e-4, True, 64)
    assert (cfg.use_cpu, cfg.bf16, cfg.fp16) == (True, False, False)

    d = dpo_config(cpu, output_dir=str(tmp_path), beta=0.3)
    assert (d.beta, d.learning_rate, d.use_cpu, d.bf16) == (0.3, cpu.dpo_learning_rate, True, False)


def test_building_a_config_emits_no_deprecation_warning(tmp_path, recwarn):
    sft_config(training_profile(CPU, model_params=400_000), output_dir=str(tmp_path))
    dpo_config(training_profile(T4, model_params=400_000), output_dir=str(tmp_path))
    assert not [w for w in recwarn if issubclass(w.category, (FutureWarning, DeprecationWarning))]


# ------------------------------------------------------------------------------------------------ validation
def test_messages_become_prompt_and_last_assistant_turn():
    from datasets import Dataset

    msgs = [{"role": "system", "content": "S"}, {"role": "user", "content": "Q1"},
            {"role": "assistant", "content": "A1"}, {"role": "user", "content": "Q2"},
            {"role": "assistant", "content": "A2"}]
    row = messages_to_prompt_completion(Dataset.from_list([{"messages": msgs, "source": "x"}]))[0]
    assert set(row) == {"prompt", "completion"}
    assert [m["content"] for m in row["prompt"]] == ["S", "Q1", "A1", "Q2"]
    assert row["completion"] == [{"role": "assistant", "content": "A2"}]


@pytest.mark.parametrize("rows, match", [
    ([{"text": "hello"}], r"no 'messages' column .*Expected a \"messages\" column"),
    ([{"messages": [{"role": "user", "content": "Q"}]}], r"row 0: the last message must be the assistant"),
    ([{"messages": [{"role": "assistant", "content": "A"}]}], r"no user turn"),
    ([{"messages": "Q: hi A: hello"}], r"Column 'messages', row 0: expected a non-empty list of messages"),
    ([{"messages": [{"role": "user", "text": "Q"}]}], r"'role' and 'content'"),
])
def test_bad_sft_data_fails_early_with_a_clear_error(rows, match, tmp_path):
    with pytest.raises(ValueError, match=match):
        validate_sft_dataset(rows)
    # sft() validates before loading any model: a model that does not exist is never reached
    with pytest.raises(ValueError, match=match):
        sft(rows, model="nobody/no-such-model", output_dir=str(tmp_path))


def test_dpo_validation_drops_extra_columns_and_ties():
    rows = make_pairs(4).to_list()
    rows[1]["rejected"] = rows[1]["chosen"]
    result = validate_dpo_dataset(rows)
    assert result.dataset.column_names == ["prompt", "chosen", "rejected"]
    assert len(result.dataset) == 3 and result.report.dropped == {"chosen_equals_rejected": 1}
    assert result.dropped_rows[0]["reason"] == "chosen_equals_rejected"


@pytest.mark.parametrize("mutate, match", [
    (lambda r: r.pop("rejected"), r"no 'rejected' column"),
    (lambda r: r.update(prompt=[{"role": "assistant", "content": "x"}]), r"'prompt', row 0: .*end with a user turn"),
    (lambda r: r.update(chosen=r["chosen"] * 2), r"'chosen', row 0: expected a list with one assistant message"),
    (lambda r: r.update(rejected=[{"role": "user", "content": "x"}]), r"'rejected', row 0"),
])
def test_bad_dpo_data_fails_early_with_a_clear_error(mutate, match, tmp_path):
    rows = make_pairs(2).to_list()
    for r in rows:
        mutate(r)
    with pytest.raises(ValueError, match=match):
        dpo(rows, model="nobody/no-such-model", output_dir=str(tmp_path))


def test_dpo_counts_the_pairs_it_drops_in_its_report(trained_sft, tmp_path):
    rows = make_pairs(8).to_list()
    rows[0]["rejected"] = rows[0]["chosen"]
    r = dpo(rows, model=trained_sft.output_dir, output_dir=str(tmp_path / "dropped"), max_steps=1, eval_fraction=0)
    assert r.report.dropped == {"chosen_equals_rejected": 1} == r.metrics["dropped_rows"]
    assert (r.report.rows_in, r.report.rows_out) == (8, 7) and r.metrics["train_rows"] == 7
    assert [d["reason"] for d in r.dropped_rows] == ["chosen_equals_rejected"]


def test_dpo_rejects_string_prompts_mixed_with_message_lists():
    rows = [{"prompt": "Q", "chosen": "A", "rejected": "B"},
            {"prompt": "Q2", "chosen": [{"role": "assistant", "content": "A"}], "rejected": "B"}]
    with pytest.raises((ValueError, TypeError)):  # pyarrow itself may refuse the mixed column
        validate_dpo_dataset(rows)


# ------------------------------------------------------------------------------------------------ SFT
def _generates(path: str) -> int:
    """Load a checkpoint with smolsynth.load_model and return how many new tokens greedy generation made."""
    from smolsynth import load_model

    model, tok = load_model(path)
    ids = tok.apply_chat_template([{"role": "user", "content": "What is 2 plus 2?"}], add_generation_prompt=True,
                                  return_tensors="pt", return_dict=True)
    out = model.generate(**ids, max_new_tokens=5, do_sample=False, pad_token_id=tok.pad_token_id)
    return out.shape[1] - ids["input_ids"].shape[1]


def test_sft_trains_saves_and_reports(trained_sft, tiny_path):
    r = trained_sft
    assert isinstance(r, TrainingResult) and isinstance(r, Result)
    assert (r.report.rows_in, r.report.rows_out, r.report.dropped) == (16, 16, {})  # 14 train + 2 eval, none lost
    assert r.report.step == "SFT" and r.dropped_rows == []
    out = Path(r.output_dir)
    assert (out / "config.json").exists() and (out / "model.safetensors").exists()
    assert (out / "tokenizer.json").exists() and (out / "smolsynth_training.json").exists()
    assert not (out / "adapter_config.json").exists()
    assert _generates(r.output_dir) > 0

    from trl import SFTConfig

    assert isinstance(r.config, SFTConfig)
    assert (r.config.use_cpu, r.config.bf16, r.config.learning_rate, r.config.max_steps) == (True, False, 1e-3, 6)
    m = r.metrics
    assert m["train_rows"] == 14 and m["eval_rows"] == 2 and m["train_steps"] == 6  # 10% held out of 16
    assert m["eval_loss_after"] < m["eval_loss_before"]  # lr 1e-3 on a tiny model: the held-out loss drops
    assert math.isfinite(m["train_loss"]) and m["examples_per_second"] > 0 and r.train_seconds > 0
    assert r.log_history[0]["step"] == 0 and "eval_loss" in r.log_history[0]
    assert sum("loss" in h for h in r.log_history) >= 3

    # the weights changed, and the saved weights are the trained ones
    from safetensors.torch import load_file

    base, saved = load_file(tiny_path / "model.safetensors"), load_file(out / "model.safetensors")
    key = next(k for k in saved if "q_proj" in k)
    assert not torch.equal(base[key], saved[key])
    assert torch.equal(saved[key], r.model.state_dict()[key].cpu())


def test_sft_loss_covers_the_completion_only():
    """The prompt/completion conversion makes TRL build labels that mask every prompt token."""
    from transformers import AutoTokenizer
    from trl import SFTTrainer

    from smolsynth.models import model_path
    from smolsynth.verbosity import quiet_training

    ds = validate_sft_dataset(make_chats(2)).dataset
    tok = AutoTokenizer.from_pretrained(model_path("smolsynth/tiny"))
    cfg = sft_config(training_profile(CPU, model_params=400_000), output_dir="unused", max_steps=1, has_eval=False)
    with quiet_training():
        trainer = SFTTrainer(model=model_path("smolsynth/tiny"), args=cfg, train_dataset=ds, processing_class=tok)
    row = trainer.train_dataset[0]
    prompt_len = len(tok.apply_chat_template(ds[0]["prompt"], add_generation_prompt=True))
    mask = row["completion_mask"] if "completion_mask" in row else [int(x != -100) for x in row["labels"]]
    assert sum(mask[:prompt_len]) == 0 and sum(mask[prompt_len:]) > 0
    answer = tok.decode([t for t, keep in zip(row["input_ids"], mask) if keep])
    assert answer.startswith("0 plus 0 is 0.") and "<|im_end|>" in answer  # the stop token is trained too


def test_sft_with_lora_saves_a_merged_checkpoint(tmp_path):
    r = sft(make_chats(8), model="smolsynth/tiny", output_dir=str(tmp_path / "lora"), max_steps=2, lora=True,
            eval_fraction=0)
    assert r.profile.lora and r.config.learning_rate == 2e-4
    assert (tmp_path / "lora" / "model.safetensors").exists()
    assert not (tmp_path / "lora" / "adapter_config.json").exists()
    assert r.metrics["eval_rows"] == 0 and "eval_loss_before" not in r.metrics
    assert _generates(str(tmp_path / "lora")) > 0


# ------------------------------------------------------------------------------------------------ DPO
def test_dpo_from_saved_checkpoint_starts_at_zero_margin(trained_dpo, trained_sft):
    r = trained_dpo
    assert isinstance(r, Result) and r.report.step == "DPO"
    assert (r.report.rows_in, r.report.rows_out, r.report.dropped) == (16, 16, {})
    m = r.metrics
    for k in ("eval_rewards/margins_before", "eval_rewards/chosen_before", "eval_rewards/rejected_before"):
        assert abs(m[k]) < 1e-6, (k, m[k])
    assert abs(m["eval_loss_before"] - math.log(2)) < 1e-4  # -log sigmoid(0)
    assert "eval_rewards/margins_after" in m and "eval_rewards/accuracies_after" in m
    assert m["train_steps"] == 4 and m["model"] == trained_sft.output_dir

    from trl import DPOConfig

    assert isinstance(r.config, DPOConfig) and r.config.beta == 0.1 and r.config.use_cpu
    keys = set().union(*r.log_history)
    assert {"rewards/margins", "rewards/accuracies", "eval_rewards/margins", "loss", "eval_loss"} <= keys
    assert _generates(r.output_dir) > 0


def test_dpo_check_trips_on_in_memory_model_without_reference(trained_sft, tmp_path):
    """The trap of ARCHITECTURE.md ("TRL formats out"): TRL reloads the *base* checkpoint as reference for an in-memory SFT model."""
    with pytest.raises(ReferenceModelError, match=r"in-memory model and no ref_model.*Fix: pass the path"):
        dpo(make_pairs(), model=trained_sft.model, output_dir=str(tmp_path / "trap"), max_steps=1)
    assert not (tmp_path / "trap" / "model.safetensors").exists()  # it stopped before training


def test_dpo_check_passes_for_in_memory_model_with_its_own_reference(trained_sft, tmp_path):
    model = copy.deepcopy(trained_sft.model)
    r = dpo(make_pairs(), model=model, ref_model=copy.deepcopy(model), output_dir=str(tmp_path / "ok"),
            max_steps=1, tokenizer=None)
    assert abs(r.metrics["eval_rewards/margins_before"]) < 1e-6


def test_dpo_check_can_run_without_an_eval_split(trained_sft, tmp_path):
    r = dpo(make_pairs(8), model=trained_sft.output_dir, output_dir=str(tmp_path / "noeval"), max_steps=1,
            eval_fraction=0)
    assert r.metrics["eval_rows"] == 0 and "eval_rewards/margins_before" not in r.metrics
    assert not any("eval_loss" in h for h in r.log_history)


def test_sft_takes_a_datasetdict_and_uses_its_test_split(tmp_path):
    from datasets import DatasetDict

    data = DatasetDict(train=make_chats(8), test=make_chats(3))
    r = sft(data, model="smolsynth/tiny", output_dir=str(tmp_path / "dd"), max_steps=1)
    assert (r.metrics["train_rows"], r.metrics["eval_rows"]) == (8, 3)
    assert "eval_loss_before" in r.metrics and "eval_loss_after" in r.metrics
    assert "<table>" in r._repr_html_() and "SFT" in r._repr_html_()


# ------------------------------------------------------------------- the pieces a learner calls beside TRL
def test_cpu_trains_every_real_model_with_lora_in_batches_of_four():
    """Issue 12: on a CPU the defaults train the smallest real model with LoRA; the tiny test model trains fully."""
    real = training_profile(CPU, model_params=134_515_008)
    tiny = training_profile(CPU, model_params=400_000)
    assert real.lora and real.sft_learning_rate == 2e-4 and "LoRA" in real.reason
    assert (real.per_device_train_batch_size, real.gradient_accumulation_steps) == (4, 1)
    assert not tiny.lora and lora_config(tiny) is None
    config = lora_config(real)
    assert (config.r, config.lora_alpha, config.task_type) == (real.lora_r, real.lora_alpha, "CAUSAL_LM")


def test_prepare_dataset_checks_and_splits_for_each_trainer():
    train, held_out = prepare_dataset(make_chats(10), method="sft", eval_fraction=0.2)
    assert (len(train), len(held_out)) == (8, 2) and set(train.column_names) == {"prompt", "completion"}
    assert train[0]["completion"][-1]["role"] == "assistant"
    pairs, none = prepare_dataset(make_pairs(6), method="dpo", eval_fraction=0)
    assert none is None and set(pairs.column_names) == {"prompt", "chosen", "rejected"}  # judge columns dropped
    with pytest.raises(ValueError, match="method='ppo'"):
        prepare_dataset(make_chats(4), method="ppo")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no 'messages' column"):
        prepare_dataset([{"text": "hi"}], method="sft")


def _dpo_trainer(sft_dir: str, output_dir: str, *, ref_model=None, lora: bool = False):
    from trl import DPOTrainer

    from smolsynth.models import load_tokenizer

    profile = training_profile(CPU, model_params=count_parameters(sft_dir)).with_lora(lora)
    train, held_out = prepare_dataset(make_pairs(8), method="dpo", eval_fraction=0.25)
    with quiet_training():
        return DPOTrainer(model=sft_dir, ref_model=ref_model, args=dpo_config(profile, output_dir=output_dir,
                                                                              max_steps=2),
                          train_dataset=train, eval_dataset=held_out, processing_class=load_tokenizer(sft_dir),
                          peft_config=lora_config(profile))


def test_check_reference_passes_when_the_reference_is_the_start_and_trips_on_the_base(trained_sft, tmp_path):
    from smolsynth.models import load_model

    before = check_reference(_dpo_trainer(trained_sft.output_dir, str(tmp_path / "a")))
    assert abs(before["eval_rewards/margins"]) < 1e-6
    lora_before = check_reference(_dpo_trainer(trained_sft.output_dir, str(tmp_path / "b"), lora=True))
    assert abs(lora_before["eval_rewards/margins"]) < 1e-6  # the adapters off are the reference: exactly the start
    base, _ = load_model("smolsynth/tiny")  # the trap: the base model as reference of an SFT-trained policy
    with pytest.raises(ReferenceModelError, match="expected ~0"):
        check_reference(_dpo_trainer(trained_sft.output_dir, str(tmp_path / "c"), ref_model=base))


def test_save_checkpoint_merges_lora_and_records_the_run(trained_sft, tmp_path):
    import json

    trainer = _dpo_trainer(trained_sft.output_dir, str(tmp_path / "run"), lora=True)
    before = check_reference(trainer)
    with measured() as cost:
        trainer.train()
    result = save_checkpoint(trainer, tmp_path / "saved", started_from=trained_sft.output_dir, before=before,
                             cost=cost)
    assert isinstance(result, TrainingResult) and result.kind == "dpo" and result.config is trainer.args
    assert cost.seconds > 0 and cost.peak_rss_gb > 0.1 and result.metrics["peak_rss_gb"] == cost.peak_rss_gb
    assert result.metrics["lora"] and result.metrics["train_steps"] == 2 and result.metrics["beta"] == 0.1
    assert result.metrics["model_params"] == count_parameters(trained_sft.output_dir)  # merged: no adapter weights
    assert abs(result.metrics["eval_rewards/margins_before"]) < 1e-6 and "eval_rewards/margins_after" in result.metrics
    files = {p.name for p in (tmp_path / "saved").iterdir()}
    assert "model.safetensors" in files and "adapter_config.json" not in files and "tokenizer.json" in files
    record = json.loads((tmp_path / "saved" / "smolsynth_training.json").read_text())
    assert record["kind"] == "dpo" and record["metrics"]["model"] == trained_sft.output_dir
    assert record["log_history"][0]["step"] == 0  # the step-0 evaluation comes first
    assert _generates(str(tmp_path / "saved")) > 0
