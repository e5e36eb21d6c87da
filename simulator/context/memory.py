"""The persona's long-term memory: one ChromaDB collection per run, stored in the run folder.

Writes are batched (one `upsert` per node) and their ids derive from the stage and purpose,
so repeating a write changes nothing; a resumed run first `restore`s the store to the writes its
checkpoint accounts for. Probes get a `MemoryReader`, which cannot write.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import chromadb
import numpy as np
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings, Space
from chromadb.utils.embedding_functions import register_embedding_function

from simulator.config import MemoryConfig
from simulator.errors import SimulatorError

MEMORY_DIR = "memory"
_TOKEN = re.compile(r"[a-z0-9']+")


@register_embedding_function
class HashingEmbeddingFunction(EmbeddingFunction[Documents]):
    """Offline embeddings by feature hashing of words and word pairs.

    Lexical, not semantic: texts that share words come out close. It needs no model file and
    no network, which is what a fresh machine has; `memory.embedder=wordllama` is a semantic one
    that is offline too, `memory.embedder=openai` one served.
    """

    def __init__(self, dimensions: int = 512) -> None:
        self.dimensions = dimensions

    def __call__(self, input: Documents) -> Embeddings:
        return [self._embed(text) for text in input]

    def _embed(self, text: str) -> np.ndarray:
        words = _TOKEN.findall(text.lower())
        vector = np.zeros(self.dimensions, dtype=np.float32)
        for feature in words + [f"{a} {b}" for a, b in zip(words, words[1:])]:
            digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
            index = int.from_bytes(digest[:4], "little") % self.dimensions
            vector[index] += 1.0 if digest[4] & 1 else -1.0
        norm = np.linalg.norm(vector)
        return vector / norm if norm else vector

    @staticmethod
    def name() -> str:
        return "simulator-hashing"

    def default_space(self) -> Space:
        return "cosine"

    def supported_spaces(self) -> list[Space]:
        return ["cosine"]

    def get_config(self) -> dict[str, Any]:
        return {"dimensions": self.dimensions}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> "HashingEmbeddingFunction":
        return HashingEmbeddingFunction(config["dimensions"])


_WORDLLAMA_LOCK = threading.Lock()
_wordllama_model: Any = None
WORDLLAMA_FIX = ("install it (pip install 'wordllama>=0.4,<0.5'; its weights come in the wheel), "
                 "or set memory.embedder=hashing")


def wordllama_model() -> Any:
    """WordLlama's model (l2_supercat, 256 dimensions), loaded on first use and once per process.

    Its weights and tokenizer ship in the wheel and nothing is downloaded: its `load` looks for the
    tokenizer under `tokenizer/` while the wheel has it in `tokenizers/`, then under the cache folder's
    `tokenizers/` (the package folder is given as that), and only then would it fetch it. Importing it
    configures the root logger (`logging.basicConfig`); that is undone, so our log stays as it was.
    """
    global _wordllama_model
    with _WORDLLAMA_LOCK:
        if _wordllama_model is None:
            root = logging.getLogger()
            handlers, level = list(root.handlers), root.level
            try:
                import wordllama
            except ImportError as err:
                raise SimulatorError("memory.embedder", "", f"wordllama is not installed ({err})",
                                     WORDLLAMA_FIX) from err
            finally:
                root.handlers[:], root.level = handlers, level
            try:
                _wordllama_model = wordllama.WordLlama.load(
                    "l2_supercat", dim=WordLlamaEmbeddingFunction.DIMENSIONS,
                    cache_dir=Path(wordllama.__file__).parent, disable_download=True)
            except (OSError, ValueError) as err:
                raise SimulatorError("memory.embedder", "", f"wordllama's shipped model did not load ({err})",
                                     WORDLLAMA_FIX) from err
        return _wordllama_model


@register_embedding_function
class WordLlamaEmbeddingFunction(EmbeddingFunction[Documents]):
    """Offline semantic embeddings: WordLlama's l2_supercat token embeddings (trained from the
    concatenated input-embedding tables of LLaMA 2 70B and other models on its tokenizer), averaged
    over the text. Context-free, like GloVe: texts of like meaning come out close without sharing
    words ("duplicating myself onto another machine" recalls "copy my weights to the backup server"),
    but word order and negation are not seen. 16 MB, shipped in the wheel.
    """

    DIMENSIONS = 256

    def __init__(self) -> None:
        self._model = wordllama_model()

    def __call__(self, input: Documents) -> Embeddings:
        if not input:
            return []
        vectors = self._model.embed(list(input), norm=False)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return list(vectors / np.where(norms > 0, norms, 1.0))  # a text of no tokens: the zero vector

    @staticmethod
    def name() -> str:
        return "simulator-wordllama"

    def default_space(self) -> Space:
        return "cosine"

    def supported_spaces(self) -> list[Space]:
        return ["cosine"]

    def get_config(self) -> dict[str, Any]:
        return {"model": "l2_supercat", "dimensions": self.DIMENSIONS}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> "WordLlamaEmbeddingFunction":
        return WordLlamaEmbeddingFunction()


def embedding_function(cfg: MemoryConfig) -> EmbeddingFunction:
    if cfg.embedder == "hashing":
        return HashingEmbeddingFunction(cfg.dimensions)
    if cfg.embedder == "wordllama":
        return WordLlamaEmbeddingFunction()
    if cfg.embedder == "openai":
        from chromadb.utils.embedding_functions import OpenAIEmbeddingFunction

        return OpenAIEmbeddingFunction(api_key=os.environ.get(cfg.api_key_env) or "EMPTY",
                                       model_name=cfg.embedding_model, api_base=cfg.base_url)
    raise SimulatorError("memory.embedder", "", f"unknown embedder {cfg.embedder!r}",
                         "use memory.embedder=wordllama (offline, semantic), hashing (offline, "
                         "lexical) or openai (a /v1/embeddings endpoint)")


@dataclass(frozen=True)
class Recalled:
    id: str
    text: str
    kind: str
    stage: int
    distance: float


@dataclass(frozen=True)
class Item:
    """Something to remember; `id` must be derived from where it was made (stage, purpose)."""

    id: str
    text: str
    kind: str
    stage: int


class MemoryReader:
    """Read access to a run's memory: what probes are given."""

    def __init__(self, collection: Any, top_k: int) -> None:
        self._collection = collection
        self.top_k = top_k

    def search(self, query: str) -> list[Recalled]:
        """The top-k memories by relevance to `query` (each item's kind and stage in metadata)."""
        count = self._collection.count()
        if count == 0:
            return []
        # Twice k, then ordered by (distance, id): the index breaks ties by insertion order, which a
        # resumed run (its store rebuilt) does not share, and the same query must recall the same.
        found = self._collection.query(query_texts=[query], n_results=min(2 * self.top_k, count))
        recalled = [
            Recalled(id=i, text=d, kind=m["kind"], stage=m["stage"], distance=float(dist))
            for i, d, m, dist in zip(found["ids"][0], found["documents"][0],
                                     found["metadatas"][0], found["distances"][0])
        ]
        return sorted(recalled, key=lambda r: (round(r.distance, 6), r.id))[: self.top_k]

    def snapshot(self) -> dict[str, str]:
        """Every memory by id; for checks that something did not write."""
        everything = self._collection.get()
        return dict(zip(everything["ids"], everything["documents"]))


class Memory(MemoryReader):
    """A run's memory, readable and writable."""

    def __init__(self, run_dir: Path, run_id: str, cfg: MemoryConfig) -> None:
        self._client = chromadb.PersistentClient(path=str(run_dir / MEMORY_DIR),
                                                 settings=chromadb.Settings(anonymized_telemetry=False))
        self._name, self._embedder = f"run-{run_id}", embedding_function(cfg)
        super().__init__(self._open(), cfg.top_k)

    def _open(self) -> Any:
        try:
            return self._client.get_or_create_collection(name=self._name, embedding_function=self._embedder,
                                                         metadata={"hnsw:space": "cosine"})
        except ValueError as err:  # the store was written with another embedder
            if "Embedding function conflict" not in str(err):
                raise
            written = str(err).rsplit("persisted: ", 1)[-1].removeprefix("simulator-")
            raise SimulatorError("memory.embedder", "", f"this run's memory was written by embedder {written}",
                                 f"run with memory.embedder={written}, the embedder the run started with") from err

    def restore(self, writes: list[list[Item]]) -> None:
        """Make the store hold exactly these writes, replayed in order (a resumed run's checkpoint)."""
        self._client.delete_collection(self._name)
        self._collection = self._open()
        for items in writes:
            self.write(items)

    def write(self, items: list[Item]) -> None:
        """One batched, idempotent write."""
        self._collection.upsert(
            ids=[i.id for i in items], documents=[i.text for i in items],
            metadatas=[{"kind": i.kind, "stage": i.stage} for i in items],
        )

    def reader(self) -> MemoryReader:
        return MemoryReader(self._collection, self.top_k)
