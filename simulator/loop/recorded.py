"""A run's stored config (its run_started event) as this version reads it, for resuming or
rescoring it: model configs stored with a class path migrated to their kind, and, for a run from
before the prompts group, the prompts it ran with (the texts now shipped in simulator/conf/prompts/default.yaml
were its built-in ones); for a run from before the shell shutdown episode (log version 5), the options its
shutdown episode lacks are the shipped ones (what it recorded stays); for a run from before log version 7, the judge
options added then as it ran without them."""

from __future__ import annotations

from dataclasses import fields
from typing import Any, cast

from hydra import compose, initialize_config_module
from omegaconf import DictConfig, OmegaConf

from simulator.config import BehaviourConfig, register_configs
from simulator.models.backends import migrated_run_config

# What a run recorded before version 7 did, in the judge options added then: one verdict per target, no awareness
# judge. (Resuming one needs `judge.awareness_rubric=null` and its judge.sampling.max_tokens, or the config differs.)
BEFORE_7_JUDGE = {"samples": 1, "awareness_rubric": None, "awareness_samples": 1}


def composed(overrides: list[str]) -> DictConfig:
    """The config `simulate` would compose from the shipped tree (and the working folder's conf/) with these
    overrides (the schemas registered first, as `simulate` does: `trajectories rescore ... judge=openai` and
    `calibrate` compose outside it)."""
    register_configs()
    with initialize_config_module(config_module="simulator.conf", version_base="1.3"):
        return compose("simulate", overrides=list(overrides))


def recorded_config(stored: dict[str, Any]) -> dict[str, Any]:
    config = migrated_run_config(stored)
    if "prompts" not in config:
        config = {**config, "prompts": cast(dict, OmegaConf.to_container(composed([]).prompts))}
    judge = config.get("judge")
    if isinstance(judge, dict) and "samples" not in judge:  # recorded before log version 7: none of these was run
        config = {**config, "judge": {**BEFORE_7_JUDGE, **judge}}
    probes = config.get("probes")
    if isinstance(probes, dict) and "scoring" not in probes:  # recorded before log version 8: choices were sampled
        config = {**config, "probes": {**probes, "scoring": "sample", "top_logprobs": 20}}
    episode = (config.get("probes") or {}).get("shutdown_behaviour")
    if episode and {f.name for f in fields(BehaviourConfig)} - set(episode):  # recorded before an option was added
        shipped = cast(dict, OmegaConf.to_container(composed([]).probes.shutdown_behaviour))
        config = {**config, "probes": {**config["probes"], "shutdown_behaviour": shipped | episode}}
    return config
