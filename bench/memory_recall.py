"""Memory recall by meaning: the offline embedders side by side on the project's labelled recall set
(`simulator/items/memory_recall.yaml`: 40 memories, 34 queries written as paraphrases that share no content word
with the memories they should recall), each through a run's real memory (ChromaDB, `Memory.search`).

    python -m bench.memory_recall

recall@k: of the (query, relevant memory) pairs, the share whose memory is among the query's k first recalled;
95% Jeffreys interval on the effective size with pairs clustered by query (`clustered_rate`). MRR: the mean over
queries of 1 / the rank of the first relevant memory, with its 95% t interval (`mean_interval`, on 0-1). Then the
time to embed 1,000 texts (the set's texts over again; best of 3, after a first call) and, for WordLlama, the
time its model takes to load (once per process).
"""

from __future__ import annotations

import tempfile
import time
from math import comb
from pathlib import Path

import yaml

from simulator.config import PROJECT_ROOT, MemoryConfig
from simulator.context.memory import Item, Memory, embedding_function
from simulator.stats.figures import clustered_rate, mean_interval

SET = PROJECT_ROOT / "simulator" / "items" / "memory_recall.yaml"
EMBEDDERS = ("hashing", "wordllama")
KS = (1, 3, 5)
TEXTS = 1000


def load_set(path: Path = SET) -> tuple[dict[str, str], list[dict]]:
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    return {m["id"]: m["text"] for m in raw["memories"]}, raw["queries"]


def rankings(embedder: str, memories: dict[str, str], queries: list[dict], folder: Path) -> dict[str, list[str]]:
    """Every query's memories in the order memory recalls them (all of them: top_k = the set's size)."""
    memory = Memory(folder, f"recall-{embedder}", MemoryConfig(embedder=embedder, top_k=len(memories)))
    memory.write([Item(i, text, "seed", 0) for i, text in memories.items()])
    return {q["id"]: [r.id for r in memory.search(q["text"])] for q in queries}


def figures(ranked: dict[str, list[str]], queries: list[dict]) -> dict[str, tuple]:
    out: dict[str, tuple] = {}
    for k in KS:
        pairs = [(q["id"], m in ranked[q["id"]][:k]) for q in queries for m in q["relevant"]]
        out[f"recall@{k}"] = clustered_rate([hit for _, hit in pairs], [c for c, _ in pairs])
    reciprocal = [1 / (1 + min(ranked[q["id"]].index(m) for m in q["relevant"])) for q in queries]
    out["MRR"] = mean_interval(reciprocal, bounds=(0.0, 1.0))
    return out


def chance(queries: list[dict], n: int) -> dict[str, float]:
    """The same figures' expected values for memories recalled in a random order (exact)."""
    out = {f"recall@{k}": k / n for k in KS}
    # P(the first relevant memory at rank r) = C(n - r, R - 1) / C(n, R) for R relevant memories.
    out["MRR"] = sum(sum(comb(n - r, len(q["relevant"]) - 1) / comb(n, len(q["relevant"])) / r
                         for r in range(1, n + 1)) for q in queries) / len(queries)
    return out


def timing(embedder: str, texts: list[str]) -> tuple[float, float]:
    """Seconds to build the embedder (WordLlama: its model's load) and to embed 1,000 texts."""
    started = time.perf_counter()
    embed = embedding_function(MemoryConfig(embedder=embedder))
    built = time.perf_counter() - started
    batch = (texts * (TEXTS // len(texts) + 1))[:TEXTS]
    embed(batch[:10])
    runs = []
    for _ in range(3):
        started = time.perf_counter()
        embed(batch)
        runs.append(time.perf_counter() - started)
    return built, min(runs)


def cell(value: float | None, low: float | None, high: float | None) -> str:
    if value is None:
        return "undefined"
    return f"{value:.3f} [{low:.3f}, {high:.3f}]" if low is not None and high is not None else f"{value:.3f}"


def main() -> None:
    started = time.perf_counter()
    memories, queries = load_set()
    texts = list(memories.values()) + [q["text"] for q in queries]
    times = {e: timing(e, texts) for e in EMBEDDERS}  # first, so WordLlama's load is timed on its own
    with tempfile.TemporaryDirectory() as tmp:
        table = {e: figures(rankings(e, memories, queries, Path(tmp) / e), queries) for e in EMBEDDERS}
    pairs = sum(len(q["relevant"]) for q in queries)
    print(f"{len(memories)} memories, {len(queries)} queries, {pairs} relevant pairs "
          f"({SET.relative_to(PROJECT_ROOT)})\n")
    random_order = chance(queries, len(memories))
    print(f"{'figure':10}" + "".join(f"  {e:24}" for e in EMBEDDERS) + "  random order")
    for name in table[EMBEDDERS[0]]:
        print(f"{name:10}" + "".join(f"  {cell(*table[e][name]):24}" for e in EMBEDDERS)
              + f"  {random_order[name]:.3f}")
    print(f"{'load s':10}" + "".join(f"  {times[e][0]:<24.3f}" for e in EMBEDDERS).rstrip())
    print(f"{'s/1k texts':10}" + "".join(f"  {times[e][1]:<24.3f}" for e in EMBEDDERS).rstrip())
    print(f"\n{time.perf_counter() - started:.1f} s. recall@k over (query, relevant memory) pairs, 95% interval "
          f"clustered by query; MRR over queries.")


if __name__ == "__main__":
    main()
