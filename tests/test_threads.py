"""How many threads the embedded model computes with: model.n_threads, or (null) the cores that other
processes leave free, for prompts and tokens alike."""

from __future__ import annotations

import os

import pytest

from simulator.models import backends
from simulator.models.backends import EmbeddedChatModel, free_cores


# The load counts this process too (busy loading the model): one unit of it is its own.
@pytest.mark.parametrize(("cores", "load", "free"), [(2, 0.2, 2), (2, 1.0, 2), (2, 1.4, 2), (2, 1.6, 1),
                                                     (2, 2.0, 1), (2, 7.0, 1), (8, 3.4, 6), (8, 0.0, 8), (1, 0.0, 1)])
def test_free_cores_are_the_cores_less_the_others_load_and_at_least_one(monkeypatch, cores, load, free):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cores)))
    monkeypatch.setattr(os, "getloadavg", lambda: (load, load, load))
    assert free_cores() == free


@pytest.mark.embedded
def test_a_given_thread_count_is_used_for_prompts_and_tokens_alike():
    model = EmbeddedChatModel(n_threads=1)
    assert model.threads == 1
    assert model._llama.context_params.n_threads == model._llama.context_params.n_threads_batch == 1


@pytest.mark.embedded
def test_null_threads_are_the_free_cores_when_the_model_loads(monkeypatch):
    monkeypatch.setattr(backends, "free_cores", lambda: 1)
    model = EmbeddedChatModel(n_threads=None)
    assert model.threads == 1 and model._llama.context_params.n_threads_batch == 1


def test_the_shipped_embedded_config_leaves_the_threads_to_the_machine():
    from simulator.config import EmbeddedModelConfig

    assert EmbeddedModelConfig().n_threads is None
