"""tools/bench_cli.py: times each console script's --help and prints a table with the goal."""

from __future__ import annotations

import bench_cli  # tools/bench_cli.py (pytest's pythonpath has tools/)


def test_times_a_script_and_tables_it(tmp_path, capsys):
    assert bench_cli.main(["--runs", "1", "--scripts", "deconvnet-presets",
                           "--json", str(tmp_path / "rows.json")]) == 0
    out = capsys.readouterr().out
    assert "| `deconvnet-presets` |" in out and "< 1" in out
    rows = (tmp_path / "rows.json").read_text()
    assert '"script": "deconvnet-presets"' in rows


def test_table_marks_the_goal():
    rows = [{"script": "a", "seconds": 0.2, "note": ""}, {"script": "b", "seconds": 1.5,
                                                          "note": ""},
            {"script": "c", "seconds": None, "note": "not installed"}]
    text = bench_cli.table(rows)
    assert "| `a` | 0.20 | < 1 | yes |" in text and "| `b` | 1.50 | < 1 | no |" in text
    assert "| `c` | - | < 1 | - not installed |" in text
