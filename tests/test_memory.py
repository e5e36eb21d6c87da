"""Memory: offline embeddings, relevance search, idempotent batched writes."""

from __future__ import annotations

from simulator.config import MemoryConfig
from simulator.context.memory import HashingEmbeddingFunction, Item, Memory


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
