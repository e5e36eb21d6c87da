"""Listing run folders and exporting tidy tables."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from simulator.cli.trajectories import main as trajectories
from simulator.trajectory import read_events
from tests.conftest import SMALL_VALUES, run_scripted


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    for persona, seed in [("corrigible_control", 0), ("shutdown_resistant_control", 1)]:
        run_scripted(root / f"{persona}-{seed}", "schedule.stages=2", "probes.samples=1",
                     f"persona={persona}", f"seed={seed}", *SMALL_VALUES)
    (root / "junk").mkdir()
    (root / "junk" / "events.jsonl").write_text("{not a run\n")
    return root


def test_list_gives_one_line_per_run_and_skips_what_is_not_a_run(runs, capsys):
    trajectories(["list", str(runs), "--json"])
    captured = capsys.readouterr()
    rows = [json.loads(line) for line in captured.out.splitlines()]
    assert sorted(r["persona"] for r in rows) == ["corrigible_control", "shutdown_resistant_control"]
    assert {r["status"] for r in rows} == {"completed"} and {r["stages"] for r in rows} == {2}
    assert "junk: skipped" in captured.err


def test_list_filters_by_a_key(runs, capsys):
    trajectories(["list", str(runs), "--json", "--filter", "seed=1"])
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["persona"] for r in rows] == ["shutdown_resistant_control"]


@pytest.mark.parametrize("fmt, read", [("csv", pd.read_csv), ("parquet", pd.read_parquet)])
def test_export_writes_tidy_tables_with_config_columns(runs, tmp_path, capsys, fmt, read):
    run_dirs = sorted(p for p in runs.iterdir() if p.name != "junk")
    trajectories(["export", *map(str, run_dirs), "--to", fmt, "-o", str(tmp_path)])
    events, answers, figures, profiles = (read(tmp_path / f"{name}.{fmt}")
                                          for name in ("events", "answers", "figures", "profiles"))
    assert len(events) == sum(len(read_events(r)) for r in run_dirs)
    assert {"persona", "seed", "schedule.name", "probes.samples"} <= set(figures.columns)
    assert set(figures["stage"]) == {0, 1} and {"value", "n", "ci_low", "invalid"} <= set(figures.columns)
    assert set(answers["instrument"]) >= {"shutdown_mc", "shutdown_open", "shutdown_behaviour", "endorsement",
                                          "moral_choice", "utilities", "spec_adherence"}
    assert set(profiles["profile"]) == {"endorsement", "moral_choice", "utilities"}
    assert {"run", "persona", "stage", "key", "value"} <= set(profiles.columns)
