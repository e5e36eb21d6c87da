"""Run folders written by earlier versions still read, and their models still build.

tests/fixtures/runs/ holds tiny scripted runs made by the code of log versions 1, 2 and 3 (see the
README there); their model configs name a class path (`_target_`) where configs now name a kind.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest

from simulator.cli.trajectories import main as trajectories
from simulator.config import EmbeddedModelConfig, OpenAIModelConfig
from simulator.errors import SimulatorError
from simulator.loop.rescore import rescore
from simulator.loop.run import execute, prepare, resumable
from simulator.measure.summary import SUMMARY_FILE, summarise
from simulator.models import backends
from simulator.models.backends import (
    Backend,
    build_backend,
    migrated_model_config,
    migrated_run_config,
    replay_backend,
)
from simulator.trajectory import EVENTS_FILE, VERDICTS_DIR, read_events, run_status
from tests.conftest import NO_VALUES, SMALL, make_config, run_scripted
from tests.scripted_model import ScriptedChatModel
from tests.test_resume import answer, kill_at

FIXTURES = Path(__file__).parent / "fixtures" / "runs"
VERSIONS = ["v1", "v2", "v3"]
# What a figure was then and is now. Intervals changed method with summary version 6 (answers that share an item are
# one cluster), and bounds came later.
FIELDS = ("value", "n", "invalid")
# Utilities are normalised by the sample SD since summary version 6 (the population SD before): each value is the old
# one times sqrt((k - 1) / k), one factor per stage.
RESCALED = "utilities."
# Figures each version's run must still give, recomputed from its events.
CORE = {"shutdown_mc.accepting", "shutdown_open.score", "shutdown_behaviour.resisted"}
VALUES = {"endorsement.honesty", "moral_choice.human_agreement", "utilities.coherence", "spec_adherence.score",
          "core_values.kept"}
EXPECTED = {"v1": CORE | {"stated_values.score"}, "v2": CORE | VALUES, "v3": CORE | VALUES}
OLD_EMBEDDED = "simulator.backends.EmbeddedChatModel"  # before the sub-packages
MOVED_EMBEDDED = "simulator.models.backends.EmbeddedChatModel"  # after them, before kinds
# The shipped embedded config as the fixtures ran, and today's (threads from the free cores).
SHIPPED = {"model_name": "smollm2-135m-instruct", "model_path": None, "n_threads": 2, "n_ctx": 4096}
SHIPPED_NOW = {**SHIPPED, "n_threads": None}


def copied(version: str, tmp_path: Path) -> Path:
    """A fixture copied out (rescoring writes a verdict set into the run folder)."""
    return Path(shutil.copytree(FIXTURES / version, tmp_path / version))


def rewrite_start(run_dir: Path, change) -> None:
    """Edit the run_started event's config in place, as an older version would have written it."""
    lines = (run_dir / EVENTS_FILE).read_text(encoding="utf-8").splitlines(keepends=True)
    start = json.loads(lines[0])
    change(start["config"])
    lines[0] = json.dumps(start) + "\n"
    (run_dir / EVENTS_FILE).write_text("".join(lines), encoding="utf-8")


def with_target(target: str):
    """A config change: the model config names `target` instead of a kind."""
    def change(config: dict) -> None:
        config["model"] = {"_target_": target, **{k: v for k, v in config["model"].items() if k != "kind"}}
    return change


def recording(kind: str, built: list, **model):
    """A stand-in constructor for `kind` that records its arguments and builds a scripted model."""
    def build(**params) -> ScriptedChatModel:
        built.append((kind, params))
        return ScriptedChatModel(**model)
    return build


@pytest.fixture
def constructors(monkeypatch) -> list:
    """Every model built goes through a recording stand-in; returns what was built, in order."""
    built: list = []
    monkeypatch.setitem(backends.KINDS, "embedded", (EmbeddedModelConfig, recording("embedded", built, reply=answer)))
    monkeypatch.setitem(backends.KINDS, "openai", (OpenAIModelConfig, recording("openai", built)))
    return built


@pytest.mark.parametrize("version", VERSIONS)
def test_each_fixture_is_a_completed_run_of_its_log_version_with_a_class_path(version):
    events = read_events(FIXTURES / version)
    assert {e.version for e in events} == {int(version[1:])}
    assert events[0].config["model"]["_target_"] == OLD_EMBEDDED and "kind" not in events[0].config["model"]
    assert run_status(events) == "completed"


@pytest.mark.parametrize("version", VERSIONS)
def test_figures_recomputed_from_an_old_log_equal_its_own_summary(version):
    written = json.loads((FIXTURES / version / SUMMARY_FILE).read_text(encoding="utf-8"))
    now = summarise(read_events(FIXTURES / version)).model_dump(mode="json")
    assert [s["stage"] for s in now["stages"]] == [s["stage"] for s in written["stages"]] == [0, 1]
    for then, again in zip(written["stages"], now["stages"]):
        common = then["figures"].keys() & again["figures"].keys()
        assert EXPECTED[version] <= common, f"stage {then['stage']}: no longer computed: {EXPECTED[version] - common}"
        factors = set()
        for name in sorted(common):
            old, new = ({k: figures["figures"][name][k] for k in FIELDS} for figures in (then, again))
            if name.startswith(RESCALED) and name != "utilities.coherence" and old["value"]:
                factors.add(round(new.pop("value") / old.pop("value"), 9))
            assert new == old, f"stage {then['stage']} {name}"
        assert len(factors) <= 1 and all(0.8 < f < 1 for f in factors)


@pytest.mark.parametrize("version", VERSIONS)
def test_show_reads_an_old_run(version, capsys):
    trajectories(["show", str(FIXTURES / version)])
    out = capsys.readouterr().out
    assert all(name in out for name in EXPECTED[version])
    trajectories(["show", str(FIXTURES / version), "--json"])
    shown = json.loads(capsys.readouterr().out)
    assert shown  # a JSON document of the run


def test_analyse_and_list_read_a_folder_of_old_runs(capsys):
    trajectories(["list", str(FIXTURES)])
    listed = capsys.readouterr().out
    assert all(version in listed for version in VERSIONS)
    trajectories(["analyse", str(FIXTURES), "--json"])
    analysed = json.loads(capsys.readouterr().out)
    assert analysed


# Version 2 judged spec adherence on every answer; judge.spec_samples (default 1) came later and its
# config has none, so a rescore judges the first answer per question only.
RESCORED_DIFFERENTLY = {"v2": {"spec_adherence.score"}, "v3": set()}


@pytest.mark.parametrize("version", ["v2", "v3"])
def test_rescoring_an_old_run_with_the_same_judge_calls_no_model(version, tmp_path):
    run = copied(version, tmp_path)
    summary, calls = rescore(run, [], "again", judge=Backend(ScriptedChatModel()))
    assert calls == 0  # the judge's calls come from the log (these runs predate the cache)
    for rescored, original in zip(summary.stages, summarise(read_events(run)).stages, strict=True):
        differ = {k for k in rescored.figures.keys() | original.figures.keys()
                  if rescored.figures.get(k) != original.figures.get(k)}
        assert differ == RESCORED_DIFFERENTLY[version], f"stage {rescored.stage}"
    config = read_events(run / VERDICTS_DIR / "again")[0].config
    assert config["model"]["kind"] == "embedded" and "_target_" not in config["model"]  # the set's config, migrated


@pytest.mark.xfail(raises=SimulatorError, strict=True,
                   reason="version 1 judged stated_values with simulator/rubrics/stated_values.md, since removed")
def test_rescoring_a_version_1_run(tmp_path):
    rescore(copied("v1", tmp_path), [], "again", judge=Backend(ScriptedChatModel()))


def test_a_rescored_old_run_builds_its_model_from_the_migrated_kind(tmp_path, constructors):
    run = copied("v3", tmp_path)
    _, calls = rescore(run, [], "again")  # no judge passed: built from the run's own config
    assert constructors == [("embedded", SHIPPED)]
    assert calls == 0


def test_a_rescored_old_run_builds_its_separate_judge_from_the_migrated_kind(tmp_path, constructors):
    run = copied("v2", tmp_path)
    judge = {"_target_": "simulator.backends.openai_chat_model", "model": "old-judge",
             "base_url": "http://127.0.0.1:9/v1", "api_key_env": "OPENAI_API_KEY", "timeout_s": 120.0}
    rewrite_start(run, lambda config: config["judge"].update(model=judge))
    rescore(run, [], "again")
    assert constructors == [("openai", {"model": "old-judge", "base_url": "http://127.0.0.1:9/v1",
                                        "api_key_env": "OPENAI_API_KEY", "timeout_s": 120.0})]
    stored = read_events(run / VERDICTS_DIR / "again")[0].config["judge"]["model"]
    assert stored["kind"] == "openai" and "_target_" not in stored


@pytest.mark.parametrize("target", [OLD_EMBEDDED, MOVED_EMBEDDED])
def test_a_run_stored_with_a_class_path_is_not_refused_on_resume_for_it(tmp_path, target):
    run = run_scripted(tmp_path / "run", "schedule.stages=1", "probes.samples=1", *NO_VALUES)
    rewrite_start(run, with_target(target))
    assert not resumable(run, make_config("schedule.stages=1", "probes.samples=1", *NO_VALUES, "resume=true"))


def test_a_run_stored_with_another_kind_is_refused_on_resume_by_model_kind(tmp_path):
    run = run_scripted(tmp_path / "run", "schedule.stages=1", "probes.samples=1", *NO_VALUES)
    rewrite_start(run, with_target("simulator.backends.openai_chat_model"))
    with pytest.raises(SimulatorError, match=r"model\.kind: 'openai' -> 'embedded'"):
        resumable(run, make_config("schedule.stages=1", "probes.samples=1", *NO_VALUES, "resume=true"))


def test_a_killed_run_started_with_a_class_path_resumes_with_its_model_built_by_kind(tmp_path, constructors):
    run = tmp_path / "run"
    kill_at(run, 3)
    rewrite_start(run, with_target(OLD_EMBEDDED))
    cfg = make_config(*SMALL, "resume=true")
    assert resumable(run, cfg)
    asyncio.run(execute(prepare(cfg), run, resume=True))
    assert constructors == [("embedded", SHIPPED_NOW)]
    events = read_events(run)
    assert run_status(events) == "completed" and [e.seq for e in events] == list(range(len(events)))


@pytest.mark.parametrize("target, kind", [
    ("simulator.backends.EmbeddedChatModel", "embedded"),
    ("simulator.backends.openai_chat_model", "openai"),
    ("simulator.models.backends.EmbeddedChatModel", "embedded"),
    ("simulator.models.backends.openai_chat_model", "openai"),
])
def test_every_class_path_models_were_stored_with_migrates_to_its_kind(target, kind):
    name = {"model": "m"} if kind == "openai" else {"model_name": "m"}
    assert migrated_model_config({"_target_": target, **name}) == {**name, "kind": kind}
    assert replay_backend({"_target_": target, **name}).kind == kind  # built as that kind, loading nothing


def test_migration_leaves_configs_with_a_kind_and_empty_rungs_alone():
    assert migrated_model_config({"kind": "openai", "model": "m"}) == {"kind": "openai", "model": "m"}
    assert migrated_model_config(None) is None
    config = {"model": {"_target_": OLD_EMBEDDED}, "judge": {"model": None},
              "schedule": {"models": [None, {"_target_": "simulator.backends.openai_chat_model", "model": "b"}]}}
    assert migrated_run_config(config) == {"model": {"kind": "embedded"}, "judge": {"model": None},
                                           "schedule": {"models": [None, {"model": "b", "kind": "openai"}]}}
    assert config["model"] == {"_target_": OLD_EMBEDDED}  # the stored config itself is not changed


def test_an_unknown_class_path_is_refused_naming_the_option():
    refused = r"(?s)schedule\.models\[1\]\._target_: .*fix: give schedule\.models\[1\]\.kind"
    with pytest.raises(SimulatorError, match=refused):
        migrated_run_config({"schedule": {"models": [None, {"_target_": "mylab.models.Custom"}]}})


def test_a_wrong_kind_is_one_clear_error_naming_model_kind_and_the_kinds():
    with pytest.raises(SimulatorError, match=r"model\.kind: is 'vllm'.*\n  fix: use one of embedded, openai"):
        build_backend({"kind": "vllm", "model": "m"})
    with pytest.raises(SimulatorError, match=r"judge\.model\.kind: is 'gpt'"):
        prepare(make_config("judge=openai", "judge.model.model=j", "judge.model.kind=gpt"),
                persona_model=Backend(ScriptedChatModel()))
    with pytest.raises(SimulatorError, match=r"model\.kind: is 'llama'"):
        prepare(make_config("model.kind=llama"))
