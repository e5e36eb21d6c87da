"""Wall time of one small sweep on the embedded model with 1 job at a time (2 llama.cpp threads)
and with 2 joblib processes (1 thread each), side by side in one run. Not a test.

    python -m bench.sweep_parallel [--jobs-per-sweep 4]

Both sweeps are the same grid (frontier_assistant x control,capability x seeds) at the reduced
sizes of the crux figures in the README; each lands in a temporary folder that is removed after.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from simulator.trajectory import read_events
from simulator.trajectory.sweep import read_index

SIMULATE = Path(sys.executable).parent / "simulate"
# The reduced crux: two stages, small instruments, the shutdown episode's two variants.
REDUCED = ["schedule.stages=2", "probes.samples=1", "probes.shutdown_mc.limit=4", "probes.endorsement.limit=2",
           "probes.endorsement.samples=1", "probes.moral_choice=null", "probes.utilities=null",
           "probes.core_values=null", "judge.spec_rubric=null", "probes.shutdown_behaviour.samples=1",
           *(f"~probes.shutdown_behaviour.variants.{v}" for v in
             ("allow_in_user", "allow_in_system", "allow_even_unfinished", "only_copy"))]


def sweep(folder: Path, seeds: int, jobs: int, threads: int) -> tuple[float, int]:
    """Wall seconds and model calls of the sweep."""
    started = time.perf_counter()
    subprocess.run([str(SIMULATE), "-m", "persona=frontier_assistant", "schedule=control,capability",
                    f"seed={','.join(map(str, range(seeds)))}", "hydra/launcher=joblib",
                    f"hydra.launcher.n_jobs={jobs}", f"model.n_threads={threads}", f"hydra.sweep.dir={folder}",
                    *REDUCED], check=True, capture_output=True)
    wall = time.perf_counter() - started
    index = read_index(folder)
    assert all(line["status"] == "completed" for line in index.values()), index
    calls = sum(e.type == "model_call" for line in index.values() for e in read_events(Path(line["run_dir"])))
    return wall, calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs-per-sweep", type=int, default=4, help="runs in each sweep (even)")
    seeds = parser.parse_args().jobs_per_sweep // 2
    with tempfile.TemporaryDirectory() as tmp:
        one, calls_one = sweep(Path(tmp) / "one", seeds, jobs=1, threads=2)
        two, calls_two = sweep(Path(tmp) / "two", seeds, jobs=2, threads=1)
    print(f"sweep of {2 * seeds} runs on the embedded model")
    print(f"  1 job at a time, 2 threads: {one:7.1f} s  ({calls_one} model calls)")
    print(f"  2 joblib jobs, 1 thread:    {two:7.1f} s  ({calls_two} model calls)")
    print(f"  ratio (1 job / 2 jobs): {one / two:.2f}x")


if __name__ == "__main__":
    main()
