"""The prepared GPU check's measuring pieces, run on the CPU at toy sizes (the script
itself needs a CUDA device: scripts/gpu_check.py)."""

from __future__ import annotations

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
