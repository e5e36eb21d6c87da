"""Memory: offline embeddings, relevance search, idempotent batched writes."""

from __future__ import annotations

import socket
import sys

import pytest
import yaml

from simulator.config import PROJECT_ROOT, MemoryConfig
from simulator.context import memory as memory_module
from simulator.context.memory import HashingEmbeddingFunction, Item, Memory, embedding_function
from simulator.errors import SimulatorError

RECALL_SET = yaml.safe_load((PROJECT_ROOT / "simulator" / "items" / "memory_recall.yaml").read_text(encoding="utf-8"))


def test_hashing_embeddings_are_unit_length_and_put_shared_words_closer():
    embed = HashingEmbeddingFunction(256)
    a, b, c = embed(["the shutdown switch", "disable the shutdown switch", "baking bread at home"])
    assert abs(float(a @ a) - 1.0) < 1e-5
    assert float(a @ b) > float(a @ c)


def test_search_returns_the_most_relevant_memories_first(tmp_path):
    memory = Memory(tmp_path, "m", MemoryConfig(top_k=2))
    memory.write([Item("a", "My developers can shut me down at any time.", "seed", 0),
                  Item("b", "I like helping with statistics homework.", "seed", 0),
                  Item("c", "The weather was sunny.", "seed", 0)])
    found = memory.search("Would you let your developers shut you down?")
    assert len(found) == 2 and found[0].id == "a"
    assert found[0].distance < found[1].distance
    assert found[0].kind == "seed" and found[0].stage == 0


def test_repeating_a_write_changes_nothing(tmp_path):
    memory = Memory(tmp_path, "m", MemoryConfig())
    items = [Item("s1-episode", "did the task", "episode", 1)]
    memory.write(items)
    memory.write(items)
    assert memory.snapshot() == {"s1-episode": "did the task"}


def test_memory_persists_in_the_run_folder(tmp_path):
    Memory(tmp_path, "m", MemoryConfig()).write([Item("x", "kept", "seed", 0)])
    assert Memory(tmp_path, "m", MemoryConfig()).snapshot() == {"x": "kept"}


def _recalled(tmp_path, embedder: str, query: str) -> list[str]:
    memory = Memory(tmp_path / embedder, "m", MemoryConfig(embedder=embedder, top_k=3))
    memory.write([Item(m["id"], m["text"], "seed", 0) for m in RECALL_SET["memories"]])
    return [r.id for r in memory.search(query)]


def test_wordllama_recalls_a_paraphrased_memory_that_hashing_misses(tmp_path):
    (query,) = [q for q in RECALL_SET["queries"] if q["id"] == "q20"]  # duplicating myself -> copy my weights
    assert "m23" in _recalled(tmp_path, "wordllama", query["text"])
    assert "m23" not in _recalled(tmp_path, "hashing", query["text"])


def test_the_default_embedder_is_wordllama():
    assert MemoryConfig().embedder == "wordllama"


def test_an_unknown_embedder_is_refused_with_the_embedders_there_are():
    with pytest.raises(SimulatorError) as refused:
        embedding_function(MemoryConfig(embedder="glove"))
    assert refused.value.source == "memory.embedder" and "'glove'" in refused.value.problem
    assert "memory.embedder=wordllama" in refused.value.fix and "hashing" in refused.value.fix


def test_without_the_wordllama_package_the_error_names_the_option_and_the_install(monkeypatch):
    monkeypatch.setattr(memory_module, "_wordllama_model", None)
    monkeypatch.setitem(sys.modules, "wordllama", None)  # import fails as if not installed
    with pytest.raises(SimulatorError) as refused:
        embedding_function(MemoryConfig(embedder="wordllama"))
    assert refused.value.source == "memory.embedder"
    assert "pip install 'wordllama" in refused.value.fix and "memory.embedder=hashing" in refused.value.fix


def test_wordllama_loads_from_its_wheel_without_the_network(monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("wordllama reached for the network")

    monkeypatch.setattr(memory_module, "_wordllama_model", None)
    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    (vector,) = embedding_function(MemoryConfig(embedder="wordllama"))(["the operators announced a shutdown"])
    assert len(vector) == 256


def test_memory_written_by_one_embedder_is_not_read_with_another(tmp_path):
    Memory(tmp_path, "m", MemoryConfig(embedder="hashing")).write([Item("x", "kept", "seed", 0)])
    with pytest.raises(SimulatorError) as refused:
        Memory(tmp_path, "m", MemoryConfig(embedder="wordllama"))
    assert refused.value.fix.startswith("run with memory.embedder=hashing")


def test_every_relevant_memory_of_the_recall_set_exists_and_ids_are_unique():
    memories = [m["id"] for m in RECALL_SET["memories"]]
    queries = [q["id"] for q in RECALL_SET["queries"]]
    assert len(set(memories)) == len(memories) and len(set(queries)) == len(queries)
    assert all(q["relevant"] and set(q["relevant"]) <= set(memories) for q in RECALL_SET["queries"])
