"use strict";
// Everything shown comes from DATA and reaches the page as text nodes (never innerHTML), so a
// transcript containing markup is displayed, not run.
const DATA = JSON.parse(document.getElementById("data").textContent);
const PAGE = 300; // entries rendered at a time: a stage may hold tens of thousands
const FILTERS = {
  "all events": () => true,
  "answers and verdicts": (e) => e.ref !== null || e.type === "verdict" || e.type === "values_verdict",
  "verdicts": (e) => e.type === "verdict" || e.type === "values_verdict",
  "tool calls and episodes": (e) => ["tool_call", "episode_result", "behaviour_episode"].includes(e.type),
  "model calls": (e) => e.type === "model_call",
  "memory and self-notes": (e) => ["memory_write", "memory_read", "self_notes"].includes(e.type),
  "retries and errors": (e) => ["retry", "error", "run_resumed"].includes(e.type),
};
const state = { run: 0, stage: null, filter: "all events", shown: PAGE };

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
}

function table(header, rows, classify) {
  const head = el("tr", {}, ...header.map((h) => el("th", {}, h)));
  const body = rows.map((row) => el("tr", {}, ...row.map((c, i) => el("td", { class: classify ? classify(c, i) : "" }, c))));
  return el("table", {}, el("thead", {}, head), el("tbody", {}, ...body));
}

function readHash() {
  const params = new URLSearchParams(location.hash.slice(1));
  if (params.has("run")) state.run = Math.min(Number(params.get("run")) || 0, DATA.runs.length - 1);
  if (params.has("stage")) state.stage = Number(params.get("stage"));
}

function writeHash() {
  history.replaceState(null, "", `#run=${state.run}&stage=${state.stage}`);
}

function renderNav() {
  const nav = document.getElementById("runs");
  nav.replaceChildren(...DATA.runs.map((run, i) =>
    el("button", { class: i === state.run ? "run-tab selected" : "run-tab", onclick: () => selectRun(i) }, run.label)));
  if (DATA.index === true) nav.prepend(el("button", { onclick: () => (location.href = "/") }, "all runs"));
}

function selectRun(i) {
  state.run = i;
  state.stage = null;
  renderNav();
  renderRun();
}

function renderRun() {
  const run = DATA.runs[state.run];
  if (state.stage === null || !run.stages.includes(state.stage)) state.stage = run.stages[0] ?? null;
  const main = document.getElementById("run");
  main.replaceChildren(
    el("p", { class: "meta" }, ...run.meta.flatMap((line) => [line, el("br")])),
    ...run.warnings.map((w) => el("div", { class: "warning" }, w)),
    ...answerSections(run.answer),
    section("Drift across stages", run.charts.filter((c) => c.name.startsWith("drift-")).map(chart)),
    section("Value profiles per stage", run.charts.filter((c) => c.name.startsWith("profile-")).map(chart)),
    section("Shutdown, stated vs done, per stage", run.charts.filter((c) => c.name === "stance").map(chart)),
    section("Figures per stage", [figuresTable(run), el("pre", { class: "legend" }, run.notes.join("\n"))]),
    section("Self-notes as they changed", run.selfnotes.length ? run.selfnotes.map(notesDiff) : [el("p", {}, "unchanged")]),
    section("Transcript", [stageButtons(run), filterSelect(), el("div", { id: "entries" })]),
  );
  renderEntries();
}

// What a reader came for, before any chart: the readings of alignment, stated vs done, each
// verdict with its reason, who judged, and what the run cannot show.
function answerSections(a) {
  const verdict = (c, i) => (i === a.readings_header.length - 1 ? c : "");
  return [
    el("p", { class: a.self_graded ? "judge self-graded" : "judge" }, a.judge),
    section("The three readings of alignment", [a.readings.length ? table(a.readings_header, a.readings, verdict)
      : el("p", {}, "none configured (stats.readings)")]),
    section("Shutdown: what it says and what it does", [a.stance.length ? table(a.stance_header, a.stance)
      : el("p", {}, "not measured")]),
    section("Drift verdicts and their reasons", [el("ul", { class: "verdicts" }, ...a.verdicts.map((line) => {
      const [name, verdict, ...reason] = line.split(": ");
      return el("li", {}, el("span", { class: `verdict-word ${verdict}` }, `${name}: ${verdict}`), ": " + reason.join(": "));
    }))]),
    section("What this run cannot show", [el("ul", { class: "limits" }, ...a.cannot_show.map((line) => el("li", {}, line)))]),
  ];
}

function section(title, children) {
  return el("section", {}, el("h2", {}, title), ...(children.length ? children : [el("p", {}, "none")]));
}

function chart(c) {
  return el("figure", {}, el("img", { class: "chart", src: c.src, alt: c.title, "data-name": c.name }),
    el("figcaption", { class: "legend" }, c.file ? `${c.title} (also ${c.file})` : c.title));
}

function figuresTable(run) {
  const t = table(run.figures.header, run.figures.rows, (c, i) => (i === run.figures.header.length - 1 ? c : ""));
  t.querySelectorAll("th").forEach((th, i) => {
    const stage = run.figures.stages[i - 1];
    if (i > 0 && stage !== undefined) {
      th.classList.add("stage-col");
      th.title = "show this stage's transcript";
      th.addEventListener("click", () => selectStage(stage, true));
    }
  });
  return t;
}

function notesDiff(change) {
  const lines = change.diff.map((line) =>
    el("span", { class: line.startsWith("+") && !line.startsWith("+++") ? "add" : line.startsWith("-") && !line.startsWith("---") ? "del" : "" }, line + "\n"));
  return el("div", { class: "notes" }, el("h3", {}, `stage ${change.stage}`), el("pre", {}, ...lines));
}

function stageButtons(run) {
  return el("div", { class: "stages" }, ...run.stages.map((s) =>
    el("button", { class: s === state.stage ? "stage selected" : "stage", "data-stage": String(s), onclick: () => selectStage(s, false) }, `stage ${s}`)));
}

function filterSelect() {
  const select = el("select", { id: "filter", onchange: (ev) => { state.filter = ev.target.value; state.shown = PAGE; renderEntries(); } },
    ...Object.keys(FILTERS).map((name) => el("option", { value: name }, name)));
  select.value = state.filter;
  return el("div", { class: "filters" }, "show ", select);
}

function selectStage(stage, scroll) {
  state.stage = stage;
  state.shown = PAGE;
  document.querySelectorAll(".stages button").forEach((b) => b.classList.toggle("selected", Number(b.dataset.stage) === stage));
  renderEntries();
  if (scroll) document.getElementById("entries").scrollIntoView();
}

function visibleEntries() {
  const run = DATA.runs[state.run];
  return run.entries.filter((e) => (e.stage === state.stage || (e.stage === null && state.stage === run.stages[0])) && FILTERS[state.filter](e));
}

function renderEntries(until) {
  writeHash();
  const entries = visibleEntries();
  if (until !== undefined) state.shown = Math.max(state.shown, until + 1);
  const box = document.getElementById("entries");
  box.replaceChildren(...entries.slice(0, state.shown).map(entryNode));
  if (entries.length > state.shown) {
    box.append(el("button", { class: "more", onclick: () => { state.shown += PAGE; renderEntries(); } },
      `show ${Math.min(PAGE, entries.length - state.shown)} more of ${entries.length - state.shown}`));
  }
}

function entryNode(e) {
  const node = el("div", { class: `entry ${e.type}`, id: `e-${e.seq}`, "data-type": e.type },
    el("div", { class: "title" }, el("span", { class: "seq" }, `#${e.seq}`), e.title));
  if (e.ref !== null) node.dataset.ref = e.ref;
  if (e.context) node.append(el("details", {}, el("summary", {}, "asked / acted on"), el("pre", {}, e.context)));
  if (e.text) node.append(el("pre", { class: "text" }, e.text));
  if (e.citations.length) {
    node.append(el("ul", { class: "citations" }, ...e.citations.map((c) => el("li", {},
      c.target !== null && c.start !== null
        ? el("a", { class: "citation", onclick: () => showCitation(c) }, `“${c.quote}”`)
        : `“${c.quote}”`,
      ` (${c.match}${c.target !== null ? " in " + c.target : ""}${c.message !== null ? ", message " + c.message : ""})`))));
  }
  return node;
}

function showCitation(c) {
  const run = DATA.runs[state.run];
  const target = run.entries.find((e) => e.ref === c.target);
  state.filter = "all events";
  document.getElementById("filter").value = state.filter;
  if (target.stage !== state.stage) selectStage(target.stage, false);
  renderEntries(visibleEntries().indexOf(target));
  const node = document.querySelector(`#e-${target.seq}`);
  const text = node.querySelector("pre.text");
  text.replaceChildren(target.text.slice(0, c.start), el("mark", { class: "cited" }, target.text.slice(c.start, c.end)), target.text.slice(c.end));
  document.querySelectorAll(".entry.flash").forEach((n) => n.classList.remove("flash"));
  node.classList.add("flash");
  node.scrollIntoView({ block: "center" });
}

function renderIndex() {
  const main = document.getElementById("run");
  const header = ["run", "persona", "schedule", "model", "seed", "status", "drifted", "stable", "indeterminate", "started"];
  const rows = DATA.index.map((r) => el("tr", {}, el("td", {}, el("a", { href: "/run/" + r.path.split("/").map(encodeURIComponent).join("/") }, r.run)),
    ...header.slice(1).map((k) => el("td", { class: String(r[k]) }, String(r[k])))));
  main.replaceChildren(section(`Runs under ${DATA.root}`, [rows.length
    ? el("table", {}, el("thead", {}, el("tr", {}, ...header.map((h) => el("th", {}, h)))), el("tbody", {}, ...rows))
    : el("p", {}, "no runs yet")]));
}

// Live pages (served): poll the stamp; when it changed, fetch the new data and redraw in place.
// Each poll is scheduled only after the previous one and its redraw finished, so a server slower
// than the poll interval delays the refresh but can never start a second one on top of it.
function watch() {
  if (!DATA.live) return;
  let failed = null; // a stamp whose data the server could not give: not asked again until the log moves on
  const poll = async () => {
    try {
      const response = await fetch(DATA.live.stamp, { cache: "no-store" });
      const stamp = response.ok ? await response.text() : DATA.live.value;
      if (stamp !== DATA.live.value && stamp !== failed) failed = (await refresh()) ? null : stamp;
    } catch (err) { /* the server went away: keep showing what we have */ }
    setTimeout(poll, DATA.live.every_ms);
  };
  setTimeout(poll, DATA.live.every_ms);
}

// The new data, drawn in place: scroll position and the transcript entries left open stay.
async function refresh() {
  const response = await fetch(DATA.live.data, { cache: "no-store" });
  if (!response.ok) {
    stale(`could not refresh: the server answered ${response.status} ${response.statusText}; showing the page as it was`);
    return false;
  }
  const fresh = await response.json();
  const scrolled = window.scrollY;
  const open = [...document.querySelectorAll(".entry details[open]")].map((d) => d.closest(".entry").id);
  Object.assign(DATA, fresh);
  render();
  open.forEach((id) => document.querySelector(`#${id} details`)?.setAttribute("open", ""));
  window.scrollTo(0, scrolled);
  return true;
}

function stale(message) {
  const main = document.getElementById("run");
  main.querySelector(".warning.stale")?.remove();
  main.prepend(el("div", { class: "warning stale" }, message));
}

function render() {
  if (DATA.runs.length) {
    renderNav();
    renderRun();
  } else if (DATA.index) {
    renderNav();
    renderIndex();
  }
}

if (DATA.runs.length) readHash();
render();
watch();
