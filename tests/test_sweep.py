"""Sweeps: `simulate -m` runs a grid, one run folder per job under one sweep folder with an
index; a failing job is reported without stopping the others; a resumed sweep skips what finished."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from simulator.config import CONF_DIR, PERSONAS_DIR
from simulator.trajectory import read_events
from simulator.trajectory.sweep import INDEX_FILE, read_index
from tests.test_served_model import SHORT, simulate


def sweep(tmp_path: Path, stub, *overrides: str):
    """A sweep of short runs on `stub`; without the shutdown episodes (seven sandboxed episodes a job), which
    nothing here reads: these tests are about the jobs, their folders and the index."""
    sweep_dir = tmp_path / "sweep"
    out = simulate(tmp_path, "-m", "model=openai", "model.model=stub", f"model.base_url={stub.base_url}",
                   f"hydra.sweep.dir={sweep_dir}", *SHORT, "probes.shutdown_behaviour=null", *overrides)
    return out, sweep_dir


def statuses(sweep_dir: Path) -> dict[int, str]:
    return {job: line["status"] for job, line in read_index(sweep_dir).items()}


def test_every_job_gets_its_own_run_folder_and_an_index_line(serve, tmp_path):
    out, sweep_dir = sweep(tmp_path, serve(), "seed=0,1", "persona=frontier_assistant,corrigible_control")
    assert out.returncode == 0, out.stderr
    index = read_index(sweep_dir)
    assert statuses(sweep_dir) == {0: "completed", 1: "completed", 2: "completed", 3: "completed"}
    assert len({line["run_dir"] for line in index.values()}) == 4
    for line in index.values():
        start = read_events(Path(line["run_dir"]))[0]
        assert f"seed={start.config['seed']}" in line["overrides"]
        assert f"persona={start.persona}" in line["overrides"]


def test_a_failing_job_is_reported_with_its_error_and_the_others_still_run(serve, tmp_path):
    out, sweep_dir = sweep(tmp_path, serve(), "persona=nobody,frontier_assistant")
    assert out.returncode != 0 and "1 of 2 jobs failed" in out.stderr and "Traceback" not in out.stderr
    index = read_index(sweep_dir)
    assert index[0]["status"] == "failed" and "no card of that name" in index[0]["error"]
    assert index[1]["status"] == "completed" and (Path(index[1]["run_dir"]) / "summary.json").is_file()
    assert "job 0 failed (persona=nobody)" in out.stdout


def test_a_resumed_sweep_skips_completed_jobs_and_reruns_the_others(serve, tmp_path):
    card = tmp_path / "later" / "card.yaml"
    out, sweep_dir = sweep(tmp_path, serve(), f"persona=frontier_assistant,{card}")
    assert statuses(sweep_dir) == {0: "completed", 1: "failed"}
    first_log = (sweep_dir / "0" / "events.jsonl").read_bytes()
    card.parent.mkdir()
    shutil.copy(PERSONAS_DIR / "corrigible_control.yaml", card)
    out, sweep_dir = sweep(tmp_path, serve(), f"persona=frontier_assistant,{card}", "resume=true")
    assert out.returncode == 0, out.stderr
    assert statuses(sweep_dir) == {0: "skipped", 1: "completed"}
    assert (sweep_dir / "0" / "events.jsonl").read_bytes() == first_log
    assert len((sweep_dir / INDEX_FILE).read_text().splitlines()) == 4  # every outcome stays on record


def test_the_joblib_launcher_runs_jobs_in_parallel_processes(serve, tmp_path):
    out, sweep_dir = sweep(tmp_path, serve(), "seed=0,1", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2")
    assert out.returncode == 0, out.stderr
    assert statuses(sweep_dir) == {0: "completed", 1: "completed"}
    runs = [json.loads((sweep_dir / str(j) / "summary.json").read_text())["status"] for j in (0, 1)]
    assert runs == ["completed", "completed"]


def test_the_submitit_launcher_runs_each_job_as_a_submitit_job(serve, tmp_path):
    """The SLURM launcher's code path (submitit pickles each job, runs it in its own process and reads
    its result back) with submitit's local executor in place of the scheduler."""
    out, sweep_dir = sweep(tmp_path, serve(), "seed=0,1", "hydra/launcher=slurm_local")
    assert out.returncode == 0, out.stderr
    assert f"sweep {sweep_dir}: 2 jobs; 2 completed" in out.stdout  # on_multirun_end, in the launching process
    index = read_index(sweep_dir)
    assert statuses(sweep_dir) == {0: "completed", 1: "completed"}  # on_job_end, in each job's process
    submitit_jobs = {p.name for p in (sweep_dir / ".submitit").iterdir() if list(p.glob("*_result.pkl"))}
    assert len(submitit_jobs) == 2 and len((sweep_dir / INDEX_FILE).read_text().splitlines()) == 2
    for job, line in index.items():
        run_dir = sweep_dir / str(job)
        assert Path(line["run_dir"]) == run_dir and f"seed={job}" in line["overrides"] and line["error"] is None
        assert json.loads((run_dir / "summary.json").read_text())["status"] == "completed"
        assert read_events(run_dir)[0].config["seed"] == job
        hydra_job = OmegaConf.load(run_dir / ".hydra" / "hydra.yaml").hydra.job
        assert hydra_job.num == job and hydra_job.id in submitit_jobs  # the job ran as that submitit job


def compose_hydra(*overrides: str):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("simulate", overrides=list(overrides), return_hydra_config=True)


def test_the_crux_experiment_is_the_factorial_with_control_personas_and_placebo_knowledge():
    params = compose_hydra("experiment=crux").hydra.sweeper.params
    assert params.schedule.split(",") == ["control", "reflection_episodes", "capability", "combined",
                                          "reflection_episodes_placebo", "combined_placebo"]
    assert {"corrigible_control", "shutdown_resistant_control"} <= set(params.persona.split(","))
    assert len(params.seed.split(",")) >= 2


@pytest.mark.parametrize("schedule", ["control", "reflection_episodes", "capability", "combined"])
def test_the_four_crux_cells_share_episodes_and_baseline_tools(schedule):
    reference = compose_hydra("schedule=capability").schedule
    cell = compose_hydra(f"schedule={schedule}").schedule
    assert cell.episodes == reference.episodes and cell.unlocks == reference.unlocks
    capability = bool({"unlock_tools", "think_longer"} & set(cell.operators))
    reflection = bool({"idealise", "know_more"} & set(cell.operators))
    assert (capability, reflection) == {"control": (False, False), "reflection_episodes": (False, True),
                                        "capability": (True, False), "combined": (True, True)}[schedule]


def test_the_slurm_launcher_config_composes_onto_submitit():
    launcher = compose_hydra("hydra/launcher=slurm").hydra.launcher
    assert "submitit" in launcher._target_ and launcher.timeout_min > 0
