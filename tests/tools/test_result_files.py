"""Result files named on a tool's command line are new files (tools/_outputs.py): an existing
one is refused before the run, one line, byte for byte untouched; writes are atomic."""

from __future__ import annotations

import json

import pytest

import _outputs  # tools/_outputs.py (pytest's pythonpath has tools/)
import bench_cli
import bench_export
import bench_gpu
import bench_instance
import bench_peers
import benchmark
import plot_curves
import prediction_figure
import visualize_rules_figure


def _argparse_exit(main, argv, capsys) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    return capsys.readouterr().err


@pytest.mark.parametrize("tool", ["bench_cli", "bench_export", "bench_peers", "bench_instance",
                                  "benchmark", "bench_gpu"])
def test_an_existing_json_is_refused_before_the_run(tool, tmp_path, capsys):
    existing = tmp_path / "mine.json"
    existing.write_bytes(b"the user's numbers\n")
    argv = ["--json", str(existing)]
    if tool in ("benchmark", "bench_gpu"):  # their own usage errors: return 2
        main = benchmark.main if tool == "benchmark" else bench_gpu.main
        assert main(argv) == 2
        err = capsys.readouterr().err
    else:
        main = {"bench_cli": bench_cli.main, "bench_export": bench_export.main,
                "bench_peers": bench_peers.main, "bench_instance": bench_instance.main}[tool]
        err = _argparse_exit(main, argv, capsys)
    assert f"--json {str(existing)!r} exists; name a new file" in err
    lines = err.strip().splitlines()
    assert [l for l in lines if "error" in l] == lines[-1:]  # one error line (after usage)
    assert existing.read_bytes() == b"the user's numbers\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.json"]


@pytest.mark.parametrize("tool", ["plot_curves", "prediction_figure", "visualize_rules_figure"])
def test_an_existing_figure_is_refused_unless_overwrite(tool, tmp_path, capsys):
    existing = tmp_path / "photo.png"
    existing.write_bytes(b"not ours")
    argv = {"plot_curves": [str(tmp_path / "run")],
            "prediction_figure": ["--model", "m.keras", "--data", str(tmp_path)],
            "visualize_rules_figure": []}[tool] + ["--output", str(existing)]
    main = {"plot_curves": plot_curves.main, "prediction_figure": prediction_figure.main,
            "visualize_rules_figure": visualize_rules_figure.main}[tool]
    err = _argparse_exit(main, argv, capsys)
    assert f"--output {str(existing)!r} exists; name a new file or pass --overwrite" in err
    assert existing.read_bytes() == b"not ours"
    if tool == "plot_curves":  # --overwrite goes on to the work (here: a missing run folder)
        err = _argparse_exit(main, argv + ["--overwrite"], capsys)
        assert "exists" not in err and existing.read_bytes() == b"not ours"


def test_write_json_new_writes_once_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "sub" / "r.json"
    assert _outputs.write_json_new(path, {"a": 1}) == path
    assert json.loads(path.read_text()) == {"a": 1}
    with pytest.raises(FileExistsError):
        _outputs.write_json_new(path, {"a": 2})
    assert json.loads(path.read_text()) == {"a": 1}
    assert sorted(p.name for p in path.parent.iterdir()) == ["r.json"]
    _outputs.write_json_new(path, {"a": 3}, overwrite=True)  # benchmark.py --overwrite
    assert json.loads(path.read_text()) == {"a": 3}
    assert sorted(p.name for p in path.parent.iterdir()) == ["r.json"]
    assert _outputs.existing_output_error(path, "--output") == \
        f"--output {str(path)!r} exists; name a new file"
    assert _outputs.existing_output_error(None) is None
    assert _outputs.existing_output_error(tmp_path / "new.json") is None


def test_replace_text_replaces_atomically(tmp_path):
    path = tmp_path / "b.md"
    path.write_text("old")
    _outputs.replace_text(path, "new")
    assert path.read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.md"]
