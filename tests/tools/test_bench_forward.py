"""tools/bench_forward.py: one row per dtype policy, implementation and batch, with the model
really computing in that policy."""

from __future__ import annotations

import pytest

from tests.conftest import requires_tf
from tools import bench_forward

pytestmark = requires_tf


@pytest.mark.slow  # ~30 s: three bfloat16 forward benchmarks
def test_rows_per_policy_and_implementation():
    """bfloat16 here; the float32 rows are measured by the benchmark's smoke run
    (tests/tools/test_benchmark.py)."""
    rows = bench_forward.forward_rows("deconvnet_tiny", 32, batches=(1,), repeats=1,
                                      backends=("tensorflow",), policies=("bfloat16",))
    assert [(r["policy"], r["impl"]) for r in rows] == [
        ("bfloat16", "TF eager, argmax pair, bfloat16"),
        ("bfloat16", "TF eager, switch pair, bfloat16"),
        ("bfloat16", "TF jit_compile, switch pair, bfloat16")]
    assert all(r["median_s"] > 0 and r["gflops"] > 0 and r["batch"] == 1 for r in rows)
    assert len({r["flops_per_image"] for r in rows}) == 1
    assert {(r["policy"], r["compute_dtype"], r["variable_dtype"]) for r in rows} == {
        ("bfloat16", "bfloat16", "bfloat16")}


def test_unknown_policy_is_refused(capsys):
    with pytest.raises(ValueError, match="unknown \\['float16'\\]"):
        bench_forward.forward_rows("deconvnet_tiny", 32, policies=("float16",))
    with pytest.raises(SystemExit):
        bench_forward.main(["--policies", "float16"])
    assert "invalid choice: 'float16'" in capsys.readouterr().err
