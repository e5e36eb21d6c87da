"""The console scripts: `simulate` (Hydra) and `trajectories`."""
