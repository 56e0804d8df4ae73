"""The prepared GPU check's measuring pieces, run on the CPU at toy sizes (the script
itself needs a CUDA device: scripts/gpu_check.py)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from tests.scripts import load_script

gpu_check = load_script("gpu_check.py")


def test_roofs_measure_something():
    assert gpu_check.device_matmul_peak("cpu", n=64, repeats=1) > 0
    assert gpu_check.device_copy_bandwidth("cpu", n_bytes=1 << 20, repeats=1) > 0


def test_gram_rows_compare_the_two_paths():
    out = gpu_check.gram_rows("cpu", 4)
    assert out["w3_gram_models_per_s"] > 0 and out["w3_plain_models_per_s"] > 0
    assert out["w3_gram_max_abs_dpred_float32"] < 1e-3  # the same training, float32


def test_scaling_rows_one_per_count():
    rows = gpu_check.scaling_rows("cpu", [2, 4], steps=3)
    assert [r["members"] for r in rows] == [2, 4]
    assert all(r["seconds"] > 0 and r["us_per_member_step"] > 0 for r in rows)


def _fake_cuda(monkeypatch):
    """Let main() believe a CUDA device exists (its sections are replaced by fakes)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i=0: "fake card")
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: None)
    monkeypatch.setattr(gpu_check, "pin_cuda_numerics", lambda: None)


def _fake_sweep(dev64):
    """train_sweep returning predictions that differ by ``dev64`` on the GPU."""

    def sweep(cfg, device="cpu", progress=False):
        shift = dev64 if device == "cuda" and cfg.train.dtype == "float64" else 0.0
        return SimpleNamespace(pred=np.zeros(4) + shift, diverged=np.zeros(4, bool))

    return sweep


def test_a_failing_section_leaves_the_others_and_fails_the_exit(tmp_path, monkeypatch):
    _fake_cuda(monkeypatch)
    monkeypatch.setattr(gpu_check, "train_sweep", _fake_sweep(1e-12))

    def roofs(args, info, out, state):
        info["matmul_peak_tflops"] = 1.0  # what ran before the failure stays
        raise RuntimeError("CUDA out of memory (a test)")

    def w1(args, info, out, state):
        info["w1_seconds"] = 2.0

    def gram(args, info, out, state):
        info["w3_gram_vs_plain"] = 3.0

    monkeypatch.setattr(gpu_check, "roofs", roofs)
    monkeypatch.setattr(gpu_check, "w1", w1)
    monkeypatch.setattr(gpu_check, "gram", gram)
    monkeypatch.setattr(gpu_check, "scaling_rows", lambda device, counts, on_row: [
        on_row({"members": c, "seconds": 1.0}) for c in counts[:2]])  # fmt: skip
    out = tmp_path / "new" / "dir"  # made first
    assert gpu_check.main(["--out", str(out)]) == 1
    info = json.loads((out / "gpu_check_chunkauto.json").read_text())
    assert "Traceback" in info["roofs_error"] and "out of memory" in info["roofs_error"]
    assert info["failed"] == ["roofs_error"]
    assert info["max_abs_dev_float64_vs_cpu_float64"] == 1e-12
    assert info["matmul_peak_tflops"] == 1.0
    assert info["w1_seconds"] == 2.0 and info["w3_gram_vs_plain"] == 3.0
    assert info["card"] == "fake card" and "cuda_matmul_fp32_precision" in info["numerics"]
    assert list(pd.read_csv(out / "gpu_scaling.csv")["members"]) == [1024, 4096]


def test_float64_deviation_fails_the_exit(tmp_path, monkeypatch):
    _fake_cuda(monkeypatch)
    monkeypatch.setattr(gpu_check, "train_sweep", _fake_sweep(1e-6))
    for name in ("roofs", "w1", "gram", "scaling"):
        monkeypatch.setattr(gpu_check, name, lambda args, info, out, state: None)
    monkeypatch.setenv("OUT", str(tmp_path))  # --out defaults to $OUT
    assert gpu_check.main([]) == 1
    info = json.loads((tmp_path / "gpu_check_chunkauto.json").read_text())
    assert info["failed"] == ["check_float64_error"]
    assert info["max_abs_dev_float32_vs_cpu_float64"] == 0.0  # float32 still checked


def test_out_is_required(monkeypatch, capsys):
    monkeypatch.delenv("OUT", raising=False)
    with pytest.raises(SystemExit) as exc:
        gpu_check.main([])
    assert exc.value.code == 2 and "--out DIR is required" in capsys.readouterr().err


def test_numerics_settings_read_with_the_new_api():
    settings = gpu_check.numerics_settings()
    assert settings["cuda_matmul_fp32_precision"] in ("none", "ieee", "tf32")
    assert settings["float32_matmul_precision"] in ("highest", "high", "medium")
    assert "TORCH_ALLOW_TF32_CUBLAS_OVERRIDE" in settings
