"""The model-call cache: every model call's reply in SQLite, keyed by a hash of the call.

A repeated call (a resumed run, a rerun, a replay, a rescore with the same judge) is served from it
and calls no model. WAL mode and a busy timeout let several processes share one file (a sweep).
It holds prompts and replies only: no key, no server URL.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from simulator.config import CacheConfig, resolve_path
from simulator.errors import SimulatorError
from simulator.models.backends import Reply

CACHE_FILE = "model_calls.sqlite"
BUSY_TIMEOUT_S = 60.0  # how long a writer waits for another process's write to finish


def cache_file(cfg: CacheConfig, run_dir: Path) -> Path:
    return resolve_path(cfg.path) if cfg.path else run_dir / CACHE_FILE


def validate(cfg: CacheConfig) -> None:
    if cfg.replay and not cfg.enabled:
        raise SimulatorError("cache.replay", "", "replays from the cache, but cache.enabled=false",
                             "set cache.enabled=true, or cache.replay=[]")


class ModelCallCache:
    """Replies by call key (`state.call_key`). A key keeps the first reply stored for it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        # Autocommit: each put is its own short transaction, so other processes wait for milliseconds.
        self._db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
        self._set_up()

    def _set_up(self) -> None:
        """WAL mode and the table. Switching to WAL needs the file to itself, and SQLite answers a
        second process doing the same at that moment with 'locked' at once, without waiting: so
        retry until the busy timeout rather than fail a run that merely started beside another."""
        deadline = time.monotonic() + BUSY_TIMEOUT_S
        while True:
            try:
                self._db.execute("PRAGMA journal_mode=WAL")
                # No fsync per put (the event log already pays one per call): WAL stays consistent, and
                # an entry lost to a power cut is only a call made again.
                self._db.execute("PRAGMA synchronous=NORMAL")
                self._db.execute("CREATE TABLE IF NOT EXISTS calls (key TEXT PRIMARY KEY, reply TEXT NOT NULL)")
                return
            except sqlite3.OperationalError as err:
                if "locked" not in str(err) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def get(self, key: str) -> Reply | None:
        row = self._db.execute("SELECT reply FROM calls WHERE key = ?", (key,)).fetchone()
        return Reply(**json.loads(row[0])) if row else None

    def put(self, key: str, reply: Reply) -> None:
        self._db.execute("INSERT OR IGNORE INTO calls (key, reply) VALUES (?, ?)", (key, json.dumps(asdict(reply))))

    def absorb(self, other: Path) -> None:
        """Add every entry of another cache file. It is read from a copy: opening a WAL database,
        even read-only, writes files beside it, and the other may be a finished run's."""
        with tempfile.TemporaryDirectory() as tmp:
            copy = Path(tmp) / CACHE_FILE
            for suffix in ("", "-wal"):  # the -wal holds what was not yet checkpointed into the file
                if Path(f"{other}{suffix}").exists():
                    shutil.copyfile(f"{other}{suffix}", f"{copy}{suffix}")
            self._db.execute("ATTACH DATABASE ? AS other", (str(copy),))
            try:
                self._db.execute("INSERT OR IGNORE INTO calls SELECT key, reply FROM other.calls")
            finally:
                self._db.execute("DETACH DATABASE other")

    def miss(self, stage: int, role: str, purpose: str) -> SimulatorError:
        """The error of a replayed call that the cache does not hold."""
        return SimulatorError(
            str(self.path), f"stage {stage} {role} call ({purpose})",
            f"is not in the cache, and cache.replay includes {role}: no {role} model is called",
            "replay with the cached run's persona, schedule, probes, seed and models (its prompts must be the "
            f"same), point cache.path at that run's {CACHE_FILE}, or drop {role} from cache.replay")

    def close(self) -> None:
        self._db.close()
