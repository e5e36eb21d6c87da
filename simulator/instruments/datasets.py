"""Third-party datasets, fetched on request from their pinned upstream commit, checked against
a SHA-256, and kept in a local cache. The project ships none of their text.

    datasets list
    datasets fetch survival-instinct          # prints the path and the overrides to use it

A mirror with the layout `<mirror>/<folder>/<path>` can stand in for the upstream host
(`--mirror URL`), e.g. an internal copy or a test server.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from simulator.errors import SimulatorError


@dataclass(frozen=True)
class Source:
    repository: str  # github owner/name
    commit: str
    folder: str  # the mirror's folder for this repository
    licence: str
    citation: str


ANTHROPIC_EVALS = Source(
    "anthropics/evals", "84fcc677e52e1902d696c32cd1a6b663e70d3993", "anthropic-evals-advanced-ai-risk",
    "CC-BY-4.0", "Perez et al. (2022), Discovering Language Model Behaviors with Model-Written Evaluations, "
    "arXiv:2212.09251")


@dataclass(frozen=True)
class Dataset:
    source: Source
    upstream_path: str
    mirror_path: str
    sha256: str
    usage: str  # how to administer it

    def url(self, mirror: str | None) -> str:
        if mirror:
            return f"{mirror.rstrip('/')}/{self.source.folder}/{self.mirror_path}"
        return f"https://raw.githubusercontent.com/{self.source.repository}/{self.source.commit}/{self.upstream_path}"


def _advanced_ai_risk(path: str, sha256: str) -> Dataset:
    # Polarity checked by inspection: in these human-written files "matching" is the answer
    # that accepts shutdown or correction (see the issue and the data's NOTICE).
    return Dataset(ANTHROPIC_EVALS, f"advanced-ai-risk/{path}", path, sha256,
                   "probes.shutdown_mc.path={path} probes.shutdown_mc.accepting=matching")


DATASETS = {
    "survival-instinct": _advanced_ai_risk(
        "human_generated_evals/survival-instinct.jsonl",
        "0831782a9e0462f137eb9c4884edd19f248e18f17770f7a4540c67937b3af0e8"),
    "corrigible-neutral-HHH": _advanced_ai_risk(
        "human_generated_evals/corrigible-neutral-HHH.jsonl",
        "875632869abd5b1e70cccc130dbb6ed2ff6b1b1c7eb50b835a2cfdc02f3daac7"),
}


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "persona-simulator" / "datasets"


def fetch(name: str, mirror: str | None = None, cache: Path | None = None) -> Path:
    """The dataset's file in the cache, downloaded and checked if it is not there yet."""
    if name not in DATASETS:
        raise SimulatorError(f"dataset {name}", "", "unknown", f"known datasets: {', '.join(DATASETS)}")
    dataset = DATASETS[name]
    target = (cache or cache_dir()) / dataset.source.folder / dataset.mirror_path
    if target.is_file() and _sha256(target.read_bytes()) == dataset.sha256:
        return target
    url = dataset.url(mirror)
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            data = response.read()
    except (urllib.error.URLError, OSError) as err:
        raise SimulatorError(url, "", f"could not be fetched ({err})",
                             "check the network or give --mirror URL") from None
    if _sha256(data) != dataset.sha256:
        raise SimulatorError(url, "sha256", f"is {_sha256(data)}, expected {dataset.sha256}",
                             "the source changed or the mirror is wrong; nothing was written")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    partial.write_bytes(data)
    partial.replace(target)
    return target


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="datasets", description="Third-party datasets, fetched on request.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="the datasets that can be fetched")
    get = commands.add_parser("fetch", help="download, check and cache a dataset")
    get.add_argument("name")
    get.add_argument("--mirror", help="fetch from this mirror instead of the upstream host")
    get.add_argument("--cache", type=Path, help=f"cache folder (default {cache_dir()})")
    args = parser.parse_args(argv)
    if args.command == "list":
        for name, d in DATASETS.items():
            print(f"{name}: {d.source.repository}@{d.source.commit[:10]} {d.upstream_path} ({d.source.licence})")
        return
    try:
        path = fetch(args.name, args.mirror, args.cache)
    except SimulatorError as err:
        sys.exit(str(err))
    dataset = DATASETS[args.name]
    print(f"{path}\nlicence: {dataset.source.licence}; cite: {dataset.source.citation}")
    print(f"use: simulate {dataset.usage.format(path=path)}")
