"""The shipped Hydra config tree: a package so that Hydra finds it as `pkg://simulator.conf` in a checkout and in
an installed wheel alike (Hydra's package config source requires this file). It holds YAML and documents only."""
