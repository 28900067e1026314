"""Every benchmark runs in quick mode in `make test`, so none can rot unnoticed (bench_datasets once
crashed on main for weeks); the report shape `python -m bench` relies on is checked here too."""

import json
import os
import subprocess
import sys

import pytest

from bench import __main__ as bench_main
from bench import report

pytestmark = pytest.mark.worker  # real PostgreSQL, Redis and Celery workers, in subprocesses


@pytest.mark.parametrize("name", bench_main.available())
def test_every_benchmark_runs_in_quick_mode_and_reports_figures(name, tmp_path):
    out = tmp_path / "results.json"
    proc = subprocess.run([sys.executable, "-m", "bench", "--quick", "--out", str(out), name],
                          cwd=bench_main.ROOT, env={**os.environ, "JAX_PLATFORMS": "cpu"},
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    document = json.loads(out.read_text())
    assert document["quick"] is True and not document["errors"]
    assert document["machine"]["cores"] and document["machine"]["memory_gib"] > 0
    figures = document["figures"]
    assert figures and all(f["issue"].startswith("#") and f["name"] and f["unit"] for f in figures)
    assert all(isinstance(f["value"], int | float) or f.get("note") for f in figures)
    assert all(f.get("met") is None for f in figures)  # quick sizes are never judged against targets
    assert all(f["name"] in proc.stdout for f in figures)  # the table lists every figure


def test_a_repeated_figure_is_its_median_with_the_range(monkeypatch):
    monkeypatch.setattr(report, "QUICK", False)
    entry = report.figure("#3 datasets", "build", [9.0, 12.0, 8.0], "s", target=("<=", 10),
                          comparison=report.compare("full build", [5.0, 7.0], "s"))
    assert entry["value"] == 9.0 and entry["range"] == [8.0, 12.0] and entry["samples"] == [9.0, 12.0, 8.0]
    assert entry["target"] == "<= 10" and entry["met"] is True
    assert entry["comparison"] == {"what": "full build", "unit": "s", "range": [5.0, 7.0], "value": 6.0}
    assert report.figure("#2", "rate", 4000, "traces/s", target=(">=", 5000))["met"] is False
    assert "met" not in report.figure("#2", "no target", 1.0, "x")


def test_the_table_marks_shortfalls_and_quoted_anchors(monkeypatch):
    monkeypatch.setattr(report, "QUICK", False)
    rows = bench_main.table([
        report.figure("#10 runs", "metrics read", 200.0, "ms", target=("<=", 150),
                      comparison=report.compare("MLflow", 1270, "ms", quoted=True)),
        report.figure("#10 runs", "ingest", [30_000, 31_000, 29_000], "points/s", target=(">=", 27_000)),
    ]).splitlines()
    assert "SHORT" in rows[1] and "MLflow: 1,270 ms (quoted)" in rows[1]
    assert "met" in rows[2] and "30,000 points/s (29,000–31,000, n=3)" in rows[2]


def test_an_unknown_benchmark_name_is_refused_with_the_known_ones(capsys):
    with pytest.raises(SystemExit) as exit_info:
        bench_main.main(["no-such-bench"])
    assert exit_info.value.code == 2 and "known: ['api'" in capsys.readouterr().err


def test_string_steps_counts_the_word_read_and_the_word_written():
    from bench.bench_training import string_steps

    def item(prompt, expected, output, category="string"):
        return {"prompt": prompt, "expected_answer": expected, "output": output, "category": category}

    predictions = [
        item("Write 'kite' backwards.", "etik", "<reasoning>Letters: 1 k, 2 i, 3 t, 4 e\nJoined: etik</reasoning>"),
        item("Reverse the letters of 'dog'.", "god", "<reasoning>Letters: 1 d, 2 o, 3 g\nJoined: 'gdo'</reasoning>"),
        item("Count the letter 'a' in 'banana'.", "3", "<reasoning>Letters: 1 b, 2 a, 3 n</reasoning>"),
        item("What is 2 + 2?", "4", "<reasoning>Letters: 1 k</reasoning>", category="arithmetic"),
    ]
    assert string_steps(predictions) == {"items": 3, "letters_line_right": 2, "word_items": 2,
                                         "joined_word_right": 1}
