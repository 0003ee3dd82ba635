// focuswrap's page: add photos, stack them, watch the progress, see and keep the result.
// Plain JavaScript, no build step and nothing loaded from the network.
"use strict";

const TOKEN = document.querySelector('meta[name="focuswrap-token"]').content;
const $ = (id) => document.getElementById(id);

const state = { info: null, job: null, events: null, running: null, starts: {}, lastState: null };

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "text") node.textContent = value;
    else if (key === "testid") node.dataset.testid = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
}

async function api(method, path, body, headers = {}) {
  const options = { method, headers: { ...headers }, credentials: "same-origin" };
  if (method !== "GET") options.headers["X-Focuswrap-Token"] = TOKEN;
  if (body instanceof Blob) options.body = body;
  else if (body !== undefined) {
    options.body = JSON.stringify(body);
    options.headers["Content-Type"] = "application/json";
  }
  const response = await fetch(path, options);
  let data = null;
  try { data = await response.json(); } catch (e) { data = null; }
  if (!response.ok) {
    const message = (data && data.error) || `The page's server said no (${response.status}); reload the page.`;
    throw new Error(message);
  }
  return data;
}

function seconds(value) {
  if (value === null || value === undefined) return "";
  const s = Math.max(0, Math.round(value));
  return s < 60 ? `${s} s` : `${Math.floor(s / 60)} min ${s % 60} s`;
}

function say(text) { $("upload-status").textContent = text; }

// ------------------------------------------------------------------ start

async function start() {
  state.info = await api("GET", "/api/info");
  $("results-dir").textContent = state.info.results_dir;
  const presets = $("presets");
  for (const preset of state.info.presets) {
    const id = `preset-${preset.name}`;
    presets.append(el("div", { class: "preset" },
      el("input", { type: "radio", name: "preset", id, value: preset.name, checked: preset.default,
                    testid: `preset-${preset.name}` }),
      el("label", { for: id },
        el("strong", { text: preset.name + (preset.default ? " (start here)" : "") }),
        el("span", { class: "description", text: preset.description }))));
  }
  const format = $("format");
  for (const f of state.info.formats) format.append(el("option", { value: f.value, text: f.label }));
  await newJob();
}

async function newJob() {
  if (state.events) state.events.close();
  state.job = await api("POST", "/api/jobs");
  state.running = null;
  state.starts = {};
  $("brackets").replaceChildren();
  $("progress").replaceChildren();
  $("results").replaceChildren();
  $("upload-errors").replaceChildren();
  $("queue").textContent = "Nothing is being stacked.";
  say("");
  render(state.job);
  const source = new EventSource(`/api/jobs/${state.job.id}/events`);
  for (const kind of ["run_queued", "run_waiting", "run_started", "bracket_started", "progress", "warning",
                      "bracket_finished", "run_finished", "closed"]) {
    source.addEventListener(kind, (message) => onEvent(JSON.parse(message.data)));
  }
  state.events = source;
}

// ------------------------------------------------------------------ adding photos

async function addFiles(items) {
  if (!items.length) return;
  let done = 0;
  for (const { file, folder } of items) {
    done += 1;
    say(`Adding photo ${done} of ${items.length} (${file.name})…`);
    try {
      const answer = await api("POST", `/api/jobs/${state.job.id}/photos`, file, {
        "X-File-Name": encodeURIComponent(file.name),
        "X-File-Folder": encodeURIComponent(folder || ""),
        "X-File-Modified": String(file.lastModified || ""),
        "Content-Type": "application/octet-stream",
      });
      render(answer.state);
    } catch (error) {
      $("upload-errors").append(el("li", { testid: "upload-error", text: error.message }));
    }
  }
  const ready = (state.lastState ? state.lastState.brackets : []).filter((b) => b.ready).length;
  say(`Added ${items.length} file${items.length === 1 ? "" : "s"}. ` +
      (ready ? `${ready} bracket${ready === 1 ? " is" : "s are"} ready to stack.` : "No bracket is ready to stack yet."));
}

function readEntries(reader) {
  return new Promise((resolve, reject) => reader.readEntries(resolve, reject));
}

async function walk(entry, path, out) {
  if (entry.isFile) {
    const file = await new Promise((resolve, reject) => entry.file(resolve, reject));
    out.push({ file, folder: path });
  } else if (entry.isDirectory) {
    const reader = entry.createReader();
    const inside = path ? `${path}/${entry.name}` : entry.name;
    for (;;) {
      const batch = await readEntries(reader);
      if (!batch.length) break;
      for (const child of batch) await walk(child, inside, out);
    }
  }
}

async function onDrop(event) {
  event.preventDefault();
  $("drop-zone").classList.remove("over");
  const items = [];
  const entries = [...(event.dataTransfer.items || [])]
    .map((item) => (item.webkitGetAsEntry ? item.webkitGetAsEntry() : null)).filter(Boolean);
  if (entries.length) {
    for (const entry of entries) await walk(entry, "", items);
  } else {
    for (const file of event.dataTransfer.files) items.push({ file, folder: "" });
  }
  await addFiles(items);
}

function fromInput(input, asFolder) {
  const items = [...input.files].map((file) => {
    const rel = asFolder && file.webkitRelativePath ? file.webkitRelativePath : "";
    return { file, folder: rel.includes("/") ? rel.slice(0, rel.lastIndexOf("/")) : "" };
  });
  input.value = "";
  return addFiles(items);
}

// ------------------------------------------------------------------ brackets

function render(job) {
  state.lastState = job;
  const names = Object.fromEntries(job.photos.map((p) => [p.index, p]));
  const list = $("brackets");
  list.replaceChildren();
  for (const bracket of job.brackets) {
    const refused = bracket.refused;
    const good = bracket.photos.length - Object.keys(refused).length;
    const title = bracket.how === "none" ? "Not photos"
      : `${bracket.name}: ${bracket.photos.length} photo${bracket.photos.length === 1 ? "" : "s"}` +
        (good !== bracket.photos.length ? `, ${good} will be stacked` : "");
    const row = el("ol", { class: "thumbs", "aria-label": `Photos of ${bracket.name}, in stacking order` });
    for (const index of bracket.photos) {
      const photo = names[index];
      const reason = refused[String(index)];
      const figure = el("figure", { class: reason ? "refused" : "" },
        el("img", { src: `/api/jobs/${job.id}/photos/${index}/thumb`, alt: `Photo ${photo ? photo.name : index}`,
                    loading: "lazy", width: 120, height: 90 }),
        el("figcaption", { text: photo ? photo.name : "" }),
        reason ? el("p", { class: "refusal", testid: "refusal", role: "note", text: reason }) : null);
      row.append(el("li", { testid: "photo", "data-photo": index, "data-refused": reason ? "yes" : "no" }, figure));
    }
    list.append(el("article", { class: "bracket", testid: "bracket", "data-bracket": bracket.index,
                                "data-ready": bracket.ready ? "yes" : "no" },
      el("h3", { testid: "bracket-title", text: title }), row));
  }
  updateButtons();
}

function updateButtons() {
  const ready = state.lastState && state.lastState.brackets.some((b) => b.ready);
  $("stack").disabled = !ready || state.running !== null;
  $("cancel").disabled = state.running === null;
  for (const button of document.querySelectorAll("[data-testid=try-preset-button]")) {
    button.disabled = state.running !== null;
  }
}

// ------------------------------------------------------------------ stacking

function chosenPreset() {
  const checked = document.querySelector('input[name="preset"]:checked');
  return checked ? checked.value : state.info.default_preset;
}

async function stack(preset, brackets) {
  try {
    const run = await api("POST", `/api/jobs/${state.job.id}/stack`, {
      preset, crop: $("crop").checked, format: $("format").value, brackets: brackets || null,
    });
    state.running = run.id;
    updateButtons();
  } catch (error) {
    $("queue").textContent = error.message;
  }
}

async function cancel() {
  if (state.running === null) return;
  $("queue").textContent = "Stopping…";
  try {
    await api("POST", `/api/jobs/${state.job.id}/runs/${state.running}/cancel`);
  } catch (error) {
    $("queue").textContent = error.message;
  }
}

function progressRow(run, bracket) {
  const id = `progress-${run}-${bracket}`;
  let row = $(id);
  if (!row) {
    row = el("li", { id, testid: "bracket-progress", "data-run": run, "data-bracket": bracket },
      el("strong", { class: "name" }),
      el("span", { class: "text", testid: "progress-text" }),
      el("progress", { max: 1, "aria-label": "progress" }),
      el("span", { class: "elapsed", testid: "elapsed" }));
    $("progress").append(row);
  }
  return row;
}

function onEvent(event) {
  const key = `${event.run}-${event.bracket}`;
  switch (event.kind) {
    case "run_queued":
    case "run_waiting":
      if (event.elsewhere) {
        $("queue").textContent = "Waiting: another focuswrap page on this computer is stacking (one stack at a time).";
      } else if (event.ahead > 0) {
        $("queue").textContent = `Waiting: ${event.ahead} other stack${event.ahead === 1 ? " runs" : "s run"} first ` +
          "(one stack at a time).";
      } else $("queue").textContent = "Starting…";
      break;
    case "run_started":
      state.running = event.run.id;
      $("queue").textContent = `Stacking with the ${event.run.preset} preset…`;
      for (const b of event.run.brackets) {
        const row = progressRow(event.run.id, b.bracket);
        row.querySelector(".name").textContent = `${b.name} (${b.count} photos, ${event.run.preset}): `;
        row.querySelector(".text").textContent = "waiting";
      }
      updateButtons();
      break;
    case "bracket_started": {
      state.starts[key] = performance.now();
      progressRow(event.run, event.bracket).querySelector(".text").textContent = "starting";
      break;
    }
    case "progress": {
      const row = progressRow(event.run, event.bracket);
      row.querySelector(".text").textContent = event.text;
      if (event.fraction !== null && event.fraction !== undefined) row.querySelector("progress").value = event.fraction;
      if (event.elapsed !== undefined) state.starts[key] = performance.now() - event.elapsed * 1000;
      break;
    }
    case "warning":
      break;
    case "bracket_finished": {
      delete state.starts[key];
      const row = progressRow(event.run, event.bracket);
      const words = { done: "finished", failed: "failed", cancelled: "cancelled: nothing was kept" };
      row.querySelector(".text").textContent = words[event.state] || event.state;
      row.querySelector(".elapsed").textContent = event.seconds !== undefined ? seconds(event.seconds) : "";
      row.querySelector("progress").value = event.state === "done" ? 1 : 0;
      row.dataset.state = event.state;
      if (event.state === "done") showResult(event);
      if (event.state === "failed") showFailure(event);
      break;
    }
    case "run_finished": {
      const words = { done: "Finished.", failed: "Finished, with a failure (see below).",
                      cancelled: "Cancelled: the tools were stopped and nothing was kept." };
      $("queue").textContent = words[event.run.state] || event.run.state;
      if (state.running === event.run.id) state.running = null;
      updateButtons();
      break;
    }
    case "closed":
      break;
    default:
      break;
  }
}

setInterval(() => {
  for (const [key, began] of Object.entries(state.starts)) {
    const row = $(`progress-${key}`);
    if (row) row.querySelector(".elapsed").textContent = seconds((performance.now() - began) / 1000);
  }
}, 500);

// ------------------------------------------------------------------ results

function resultGroup(bracket, name) {
  const id = `result-group-${bracket}`;
  let group = $(id);
  if (!group) {
    group = el("section", { id, class: "result-group", testid: "compare", "data-bracket": bracket },
      el("h3", { text: name }), el("div", { class: "side-by-side" }));
    $("results").append(group);
  }
  return group;
}

function bracketName(event) {
  const b = state.lastState && state.lastState.brackets.find((x) => x.index === event.bracket);
  return b ? b.name : `bracket ${event.bracket + 1}`;
}

function showResult(event) {
  const r = event.result;
  const base = `/api/jobs/${state.job.id}/runs/${event.run}/${event.bracket}`;
  const image = el("img", { src: `${base}/image`, alt: `The stacked result of ${bracketName(event)} with the ${r.preset} preset`,
                            testid: "result-image", class: "result-image" });
  const before = r.sharpest !== null
    ? el("img", { src: `/api/jobs/${state.job.id}/photos/${r.sharpest}`, hidden: true, testid: "before-image",
                  alt: `The sharpest single photo, ${r.sharpest_name}, for comparison`, class: "result-image" })
    : null;
  const overlay = r.map ? el("img", { src: `${base}/map`, hidden: true, testid: "map-overlay", class: "map-overlay",
                                     alt: "Contribution map: the colour of each area shows which photo it came from" })
    : null;
  const frame = el("div", { class: "frame", testid: "result-frame", tabindex: 0, role: "button",
                            "aria-label": "Picture: press Enter to switch between fitted and 100 %" },
    image, before, overlay ? el("div", { class: "overlay-clip" }, overlay) : null);
  const zoom = () => frame.classList.toggle("zoomed");
  frame.addEventListener("click", zoom);
  frame.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); zoom(); } });

  const legend = el("ul", { class: "legend", testid: "map-legend", hidden: true });
  for (const entry of r.legend) {
    const swatch = el("span", { class: "swatch" });
    swatch.style.background = entry.colour; // through the CSSOM: the page's policy forbids inline style attributes
    legend.append(el("li", {}, swatch, document.createTextNode(entry.name)));
  }
  legend.append(el("li", {}, el("span", { class: "swatch stripes" }), document.createTextNode("no photo was sharp here")));

  const buttons = el("div", { class: "buttons" });
  if (before) {
    const toggle = el("button", { type: "button", testid: "before-after", "aria-pressed": "false",
                                  text: "Show the sharpest single photo" });
    toggle.addEventListener("click", () => {
      const showing = toggle.getAttribute("aria-pressed") === "true";
      toggle.setAttribute("aria-pressed", String(!showing));
      toggle.textContent = showing ? "Show the sharpest single photo" : "Show the stacked result";
      before.hidden = showing;
      image.hidden = !showing;
    });
    buttons.append(toggle);
  }
  if (overlay) {
    const toggle = el("button", { type: "button", testid: "map-toggle", "aria-pressed": "false",
                                  text: "Show which photo each part came from" });
    toggle.addEventListener("click", () => {
      const showing = toggle.getAttribute("aria-pressed") === "true";
      toggle.setAttribute("aria-pressed", String(!showing));
      overlay.hidden = showing;
      legend.hidden = showing;
      toggle.textContent = showing ? "Show which photo each part came from" : "Hide the map";
    });
    buttons.append(toggle);
  }
  buttons.append(el("a", { class: "button primary", href: `${base}/download`, download: r.download_name,
                           testid: "download", text: `Download (${r.format})` }));

  const facts = el("ul", { class: "facts" });
  if (r.gain !== null && r.gain !== undefined) {
    facts.append(el("li", { testid: "gain",
      text: `${r.gain.toFixed(2)}× as sharp as the sharpest single photo (${r.sharpest_name || "?"})` }));
  }
  facts.append(el("li", { text: `Preset ${r.preset}${r.cached ? ", lined-up photos reused: only blended again" : ""}, ` +
                                 `took ${seconds(event.seconds)}` }));
  facts.append(el("li", { testid: "saved",
    text: r.saved ? `Saved as ${r.saved}` : "Not saved into the results folder (see the warning); use Download." }));
  const warnings = el("ul", { class: "warnings", testid: "warnings" });
  for (const w of event.warnings || []) warnings.append(el("li", { testid: "warning", text: w }));

  const another = el("select", { testid: "try-preset", "aria-label": "Another preset" });
  for (const p of state.info.presets) if (p.name !== r.preset) another.append(el("option", { value: p.name, text: p.name }));
  const again = el("button", { type: "button", testid: "try-preset-button", text: "Try this preset" });
  again.addEventListener("click", () => stack(another.value, [event.bracket]));

  const card = el("article", { class: "result", testid: "result", "data-run": event.run, "data-bracket": event.bracket,
                               "data-preset": r.preset },
    el("h4", { text: `${r.preset}` }), frame, legend, buttons, facts, warnings,
    el("div", { class: "row" }, el("label", { text: "Try another preset on these photos: " }), another, again));
  resultGroup(event.bracket, bracketName(event)).querySelector(".side-by-side").append(card);
  updateButtons();
}

function showFailure(event) {
  const f = event.failure || {};
  const card = el("article", { class: "failure", testid: "failure", "data-run": event.run, "data-bracket": event.bracket },
    el("h4", { text: `${bracketName(event)}: the stack failed` }),
    el("p", { class: "message", testid: "failure-message", text: f.message || "The stack failed." }));
  if (f.attempts && f.attempts.length) {
    const table = el("table", { testid: "attempts" },
      el("caption", { text: "What was tried" }),
      el("thead", {}, el("tr", {}, el("th", { text: "#" }), el("th", { text: "changed" }), el("th", { text: "what went wrong" }))));
    const body = el("tbody");
    for (const a of f.attempts) {
      body.append(el("tr", {}, el("td", { text: String(a.number ?? "") }),
        el("td", { text: a.added || a.flags || "" }), el("td", { text: a.diagnosis || a.explanation || "" })));
    }
    table.append(body);
    card.append(table);
  }
  if (f.hint) card.append(el("p", { class: "advice", testid: "advice", text: f.hint }));
  if (f.tool_output) card.append(el("details", {}, el("summary", { text: "What the tools said" }), el("pre", { text: f.tool_output })));
  resultGroup(event.bracket, bracketName(event)).querySelector(".side-by-side").append(card);
}

// ------------------------------------------------------------------ wiring

window.addEventListener("DOMContentLoaded", () => {
  const zone = $("drop-zone");
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", onDrop);
  zone.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); $("file-input").click(); } });
  zone.addEventListener("click", () => $("file-input").click());
  // Photos dropped beside the zone must not make the browser leave the page.
  window.addEventListener("dragover", (e) => e.preventDefault());
  window.addEventListener("drop", (e) => { if (!zone.contains(e.target)) onDrop(e); });
  $("file-input").addEventListener("change", (e) => fromInput(e.target, false));
  $("folder-input").addEventListener("change", (e) => fromInput(e.target, true));
  $("stack").addEventListener("click", () => stack(chosenPreset()));
  $("cancel").addEventListener("click", cancel);
  $("start-over").addEventListener("click", async () => {
    if (state.job) { try { await api("POST", `/api/jobs/${state.job.id}/close`); } catch (e) { /* already gone */ } }
    await newJob();
  });
  start().catch((error) => { say(error.message); });
});
