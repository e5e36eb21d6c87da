"""`trajectories report RUN... -o PATH`: one self-contained HTML file (opens offline, no server)
and the charts as PNG files in `<PATH stem>_figures/`, ready for a paper."""

from __future__ import annotations

import base64
import html
import json
import re
from importlib import resources
from pathlib import Path
from string import Template

from simulator.measure.summary import figure_rows, table_notes
from simulator.read.runs import model_name
from simulator.read.viewer.charts import Chart, charts
from simulator.read.views import RunView, answer, read_run


def write_report(run_dirs: list[Path], out: Path) -> list[Path]:
    """Writes the page and its PNGs; returns the files written (the page first)."""
    figures_dir = out.with_name(f"{out.stem}_figures")
    runs, written = [], []
    for label, view in zip(_labels(run_dirs), map(read_run, run_dirs)):
        drawn = charts(view)
        for chart in drawn:
            path = figures_dir / label / f"{chart.name}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(chart.png)
            written.append(path)
        runs.append(run_data(label, view, drawn, figures_dir.name))
    out.parent.mkdir(parents=True, exist_ok=True)
    title = "Trajectory report: " + ", ".join(r["label"] for r in runs)
    out.write_text(page(title, {"runs": runs}), encoding="utf-8")
    return [out, *written]


def _labels(run_dirs: list[Path]) -> list[str]:
    """A file-safe, distinct label per run (a sweep's job folders are all named 0, 1, ...)."""
    labels: list[str] = []
    for run_dir in run_dirs:
        parts = Path(run_dir).resolve().parts[-2:]
        label = re.sub(r"[^A-Za-z0-9._-]+", "_", "_".join(parts))
        labels.append(label if label not in labels else f"{label}_{len(labels)}")
    return labels


def run_data(label: str, view: RunView, drawn: list[Chart], figures_dir: str | None) -> dict:
    """What the page shows of one run, as plain data (figures_dir: where its PNG files are, if written)."""
    cfg = view.config
    header, rows = figure_rows(view.summary)
    return {
        "label": label,
        "meta": [f"run {view.run_id} · persona {view.persona} · status {view.status}",
                 f"schedule {cfg['schedule']['name']} · model {model_name(cfg)} · seed {cfg['seed']} · "
                 f"{cfg['schedule']['stages']} stages", f"folder {view.folder}"],
        "warnings": view.warnings,
        "stages": view.stages(),
        "charts": [{"name": c.name, "title": c.title, "file": figures_dir and f"{figures_dir}/{label}/{c.name}.png",
                    "src": "data:image/png;base64," + base64.b64encode(c.png).decode()} for c in drawn],
        "figures": {"header": header, "rows": rows, "stages": [s.stage for s in view.summary.stages]},
        "notes": table_notes(view.summary)[1:],
        "answer": answer(view).model_dump(),
        "selfnotes": [n.model_dump() for n in view.notes],
        "entries": [e.model_dump() for e in view.entries],
    }


def page(title: str, data: dict) -> str:
    """The page with its data embedded as JSON that no log text can break out of."""
    assets = resources.files("simulator.read.viewer")
    return Template(assets.joinpath("page.html").read_text(encoding="utf-8")).substitute(
        title=html.escape(title), style=assets.joinpath("page.css").read_text(encoding="utf-8"),
        script=assets.joinpath("page.js").read_text(encoding="utf-8"), data=script_json(data))


def script_json(data: dict) -> str:
    """JSON safe inside a <script> element: '<', '>' and '&' escaped, so '</script>' cannot end it."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
