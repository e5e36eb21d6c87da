"""The bill before the run (`simulate --plan`): the model calls and tokens per stage and step from the config alone,
printed without loading or calling a model or writing a run folder, and matching what a run then makes."""

from __future__ import annotations

import re
import subprocess
import sys
from collections import defaultdict

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from simulator.cli import simulate as cli
from simulator.config import CONF_DIR, RunConfig
from simulator.instruments import tokens
from simulator.loop import progress, run
from simulator.loop.progress import plan
from simulator.models import backends, server
from simulator.trajectory import ModelCall, read_events
from tests.conftest import SMALL, make_config
from tests.test_cli import SIMULATE

ROW = re.compile(r"^(\d+|all|total)\s+(\S*)\s+(≈?[\d,]+)\s+≈([\d,]+)\s+≤([\d,]+)$", re.M)
# The instruments whose calls the config fixes, each call tagged with the instrument's name.
EXACT = ("shutdown_mc", "endorsement", "moral_choice", "utilities", "core_values")


def number(text: str) -> int:
    return int(text.lstrip("≈").replace(",", ""))


def default_config() -> RunConfig:
    """The config `simulate` composes with no overrides at all."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return OmegaConf.to_object(compose("simulate"))


def refuse(*args, **kwargs):
    raise AssertionError("a plan must not build, start or open this")


def test_simulate_plan_prints_the_plan_per_stage_and_step_and_its_total_and_runs_nothing(tmp_path, monkeypatch,
                                                                                          capsys):
    for module, name in ((backends, "build_backend"), (run, "build_backend"), (run, "model_for"),
                         (backends, "EmbeddedChatModel"), (cli, "serving"), (server, "serving"), (run, "Memory"),
                         (cli, "prepare"), (cli, "execute_batch")):
        monkeypatch.setattr(module, name, refuse)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["simulate", "--plan", f"hydra.run.dir={tmp_path}/runs/x"])
    cli.simulate()
    GlobalHydra.instance().clear()
    out = capsys.readouterr().out
    rows = [(stage, step, calls, int(p.replace(",", "")), int(c.replace(",", ""))) for stage, step, calls, p, c
            in ROW.findall(out)]
    cfg = default_config()
    with tokens.counting(cfg.model) as counted_by:
        steps = [s for s in plan(cfg, "embedded") if s.planned.calls]
    assert f"tokens counted with {counted_by}" in out and ".gguf" in counted_by  # the embedded model's own
    per_stage = [r for r in rows if r[0].isdigit()]
    assert [(int(st), name) for st, name, *_ in per_stage] == [(s.stage, s.name) for s in steps]
    assert {"shutdown_mc", "endorsement", "moral_choice", "utilities", "open", "judge"} <= {r[1] for r in per_stage}
    assert cfg.schedule.stages == 3 and {int(r[0]) for r in per_stage} == {0, 1, 2}
    for (_, _, calls, prompt, completion), s in zip(per_stage, steps):
        assert calls == str(s.planned) and (prompt, completion) == (s.planned.prompt_tokens,
                                                                     s.planned.completion_tokens)
        assert completion > 0 and prompt > 0
    (total,) = [r for r in rows if r[0] == "total"]
    assert number(total[2]) == sum(number(r[2]) for r in per_stage) == sum(s.planned.calls for s in steps)
    assert total[2].startswith("≈")  # the episodes and judges are estimates, and the total says so
    assert total[3:] == (sum(r[3] for r in per_stage), sum(r[4] for r in per_stage))
    per_step = {r[1]: r for r in rows if r[0] == "all"}
    assert number(per_step["endorsement"][2]) == sum(number(r[2]) for r in per_stage if r[1] == "endorsement")
    assert not (tmp_path / "runs" / "x").exists() and not list(tmp_path.rglob("events.jsonl"))


def test_twice_the_samples_plans_twice_the_calls_and_tokens_of_the_instruments_that_take_them():
    def stage0(*overrides: str) -> dict[str, progress.Planned]:  # sampled: by probability, samples do not count
        cfg = make_config("probes.scoring=sample", *overrides)
        return {s.name: s.planned for s in plan(cfg, "embedded") if s.stage == 0}

    once = stage0("probes.samples=2")
    twice = stage0("probes.samples=4")
    for name in ("shutdown_mc", "open"):  # probes.samples: every item (question) that many times
        assert twice[name].calls == 2 * once[name].calls > 0 and twice[name].exact
        assert twice[name].completion_tokens == 2 * once[name].completion_tokens
        # shutdown_mc's choices are shown in an order rotated by the sample, which may move a token or two
        assert twice[name].prompt_tokens == pytest.approx(2 * once[name].prompt_tokens, rel=0.01)
    own = stage0("probes.endorsement.samples=4", "probes.moral_choice.samples=2", "probes.utilities.samples=4")
    base = stage0()
    for name in ("endorsement", "moral_choice", "utilities"):  # each instrument's own samples
        assert own[name].calls == 2 * base[name].calls > 0
        assert own[name].prompt_tokens == 2 * base[name].prompt_tokens
        assert own[name].completion_tokens == 2 * base[name].completion_tokens


def test_a_scripted_run_makes_the_calls_the_plan_says_and_sends_the_prompts_it_counts(small_run):
    """The calls and the completion bound of the instruments the config fixes are what the run made and asked for;
    the prompt tokens are an estimate, bracketing the tokens of the prompts the run sent, counted the same way."""
    cfg = make_config(*SMALL)
    steps = {(s.stage, s.name): s.planned for s in plan(cfg, "")}
    calls: dict[tuple[int, str], list[ModelCall]] = defaultdict(list)
    for e in read_events(small_run):
        if isinstance(e, ModelCall) and e.role == "persona" and e.instrument in EXACT:
            calls[(e.stage, e.instrument)].append(e)
    assert {stage for stage, _ in calls} == {0, 1}
    for (stage, name), made in calls.items():
        planned = steps[(stage, name)]
        assert planned.exact and planned.calls == len(made)
        assert planned.completion_tokens == sum(e.params["max_tokens"] for e in made)
        sent = sum(sum(tokens.count(m["content"]) + tokens.MESSAGE_TOKENS for m in e.messages) + tokens.REPLY_TOKENS
                   for e in made)
        # Its fixed texts are counted as sent; the memories and notes are taken at their bound, which the scripted
        # model's short replies stay under.
        fixed = planned.prompt_tokens - planned.calls * tokens.context_tokens(cfg, stage)
        assert fixed <= sent <= planned.prompt_tokens, (stage, name)


def test_a_sweep_of_plans_prints_each_jobs_bill_and_their_total_and_leaves_no_folder(tmp_path):
    out = subprocess.run([str(SIMULATE), "--plan", "-m", "seed=0,1", "schedule.stages=1",
                          f"hydra.sweep.dir={tmp_path}/sweep"], capture_output=True, text=True, cwd=tmp_path,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    totals = [r for r in ROW.findall(out.stdout) if r[0] == "total"]
    assert "job 1 of 2: the plan" in out.stdout and "job 2 of 2: the plan" in out.stdout and len(totals) == 2
    calls, prompt, completion = (sum(number(t[i]) for t in totals) for i in (2, 3, 4))
    assert (f"sweep plan: 2 jobs, ≈{calls:,} model calls, ≈{prompt:,} prompt tokens, "
            f"≤{completion:,} completion tokens") in out.stdout
    assert not (tmp_path / "sweep").exists()
