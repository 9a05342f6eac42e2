// rewardlab annotate: a no-build UI. Every text from the server goes through textContent (never innerHTML),
// so imported prompts and responses cannot run as code.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { token: sessionStorage.getItem("rewardlab-token"), project: null, assignment: null, shownAt: 0,
                ranking: [], steps: [], stepCursor: 0 };

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

async function api(method, path, body) {
  const headers = { "Content-Type": "application/json" };
  if (state.token) headers.Authorization = "Bearer " + state.token;
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (response.status === 401 && path !== "/api/login") { logout(); throw new Error("please log in again"); }
  if (!response.ok) {
    let detail = response.statusText;
    try { detail = JSON.stringify((await response.json()).detail); } catch (_) { /* not JSON */ }
    throw new Error(detail);
  }
  return response;
}

function show(view) {
  for (const id of ["login-view", "projects-view", "task-view", "admin-view"]) $(id).hidden = id !== view;
  $("error").textContent = "";
}

function fail(error) { $("error").textContent = String(error.message || error); }

function logout() {
  sessionStorage.removeItem("rewardlab-token");
  state.token = null;
  $("who").textContent = "";
  $("logout").hidden = true;
  show("login-view");
}

async function login(event) {
  event.preventDefault();
  try {
    const token = $("token").value.trim();
    state.token = token;
    await api("POST", "/api/login", { token });
    sessionStorage.setItem("rewardlab-token", token);
    await listProjects();
  } catch (error) { state.token = null; fail(error); }
}

async function listProjects() {
  const me = await (await api("GET", "/api/me")).json();
  $("who").textContent = me.name + " (" + me.role + ")";
  $("logout").hidden = false;
  const list = $("project-list");
  list.replaceChildren();
  for (const project of me.projects) {
    const item = el("li", {}, el("a", { href: "#", text: project.name + " — " + project.task_type,
                                       onclick: (e) => { e.preventDefault(); openProject(project.id).catch(fail); } }));
    if (me.role === "admin") {
      item.append(" · ", el("a", { href: "#", text: "stats & export", class: "admin-link",
                                   onclick: (e) => { e.preventDefault(); openAdmin(project.id, project.name).catch(fail); } }));
    }
    list.append(item);
  }
  if (!me.projects.length) list.append(el("li", { text: "No projects yet: ask an admin to add you to one." }));
  show("projects-view");
}

async function openProject(projectId) {
  state.project = await (await api("GET", "/api/projects/" + projectId)).json();
  $("project-name").textContent = state.project.name;
  $("instructions").textContent = state.project.instructions || "(no instructions)";
  show("task-view");
  await nextItem();
}

function setProgress(progress) {
  $("progress").textContent = "Labelled " + progress.done + " · " + progress.available + " more available";
}

async function nextItem() {
  const reply = await (await api("POST", "/api/projects/" + state.project.id + "/next")).json();
  setProgress(reply.progress);
  state.assignment = reply.assignment;
  const box = $("item");
  box.replaceChildren();
  if (reply.done) {
    box.append(el("p", { id: "all-done", text: "All done — nothing left for you in this project. Thank you!" }));
    $("keys").textContent = "";
    return;
  }
  state.shownAt = performance.now();
  box.append(el("div", { class: "prompt" }, el("div", { class: "text", text: reply.assignment.prompt })));
  renderers[state.project.task_type](box, reply.assignment);
}

async function submit(value) {
  if (!state.assignment) return;
  const assignment = state.assignment;
  state.assignment = null; // one submission per item, even if a key is pressed twice
  try {
    await api("POST", "/api/labels", { assignment_id: assignment.assignment_id, value,
                                       seconds: (performance.now() - state.shownAt) / 1000 });
    await nextItem();
  } catch (error) { state.assignment = assignment; fail(error); }
}

function responseBox(response, position) {
  return el("div", { class: "response", "data-position": String(position) },
            el("div", { class: "hint", text: "Response " + (position + 1) }), el("div", { class: "text", text: response.text }));
}

const renderers = {
  pairwise(box, a) {
    const letter = (position) => (a.responses[position].index === 0 ? "a" : "b");
    box.append(el("div", { class: "pair" }, responseBox(a.responses[0], 0), responseBox(a.responses[1], 1)));
    box.append(el("div", { class: "controls" },
      el("button", { text: "1 · left is better", onclick: () => submit({ choice: letter(0) }) }),
      el("button", { text: "0 · tie", onclick: () => submit({ choice: "tie" }) }),
      el("button", { text: "2 · right is better", onclick: () => submit({ choice: letter(1) }) })));
    $("keys").textContent = "Keys: 1 = left better, 2 = right better, 0 = tie.";
    state.keys = { "1": () => submit({ choice: letter(0) }), "2": () => submit({ choice: letter(1) }),
                   "0": () => submit({ choice: "tie" }) };
  },
  ranking(box, a) {
    state.ranking = [];
    const list = el("div");
    a.responses.forEach((r, position) => list.append(responseBox(r, position)));
    const order = el("p", { class: "hint", text: "Order so far: —" });
    const pick = (position) => {
      if (position >= a.responses.length || state.ranking.includes(position)) return;
      state.ranking.push(position);
      list.children[position].classList.add("picked");
      order.textContent = "Order so far: " + state.ranking.map((p) => p + 1).join(" > ");
      if (state.ranking.length === a.responses.length) submit({ order: state.ranking.map((p) => a.responses[p].index) });
    };
    const reset = () => { state.ranking = []; [...list.children].forEach((c) => c.classList.remove("picked"));
                          order.textContent = "Order so far: —"; };
    box.append(list, order, el("div", { class: "controls" }, el("button", { text: "r · start over", onclick: reset })));
    $("keys").textContent = "Keys: press the response numbers from best to worst; r starts over.";
    state.keys = { r: reset };
    a.responses.forEach((_, position) => { state.keys[String(position + 1)] = () => pick(position); });
  },
  rating(box, a) {
    const [low, high] = state.project.config.scale;
    box.append(responseBox(a.responses[0], 0));
    const controls = el("div", { class: "controls" });
    state.keys = {};
    for (let score = low; score <= high; score++) {
      controls.append(el("button", { text: String(score), onclick: () => submit({ score }) }));
      if (score >= 0 && score <= 9) state.keys[String(score)] = () => submit({ score });
    }
    box.append(controls);
    $("keys").textContent = "Keys: " + low + "–" + high + " rate the response.";
  },
  binary(box, a) {
    box.append(responseBox(a.responses[0], 0), el("div", { class: "controls" },
      el("button", { text: "y · correct", onclick: () => submit({ correct: true }) }),
      el("button", { text: "n · incorrect", onclick: () => submit({ correct: false }) })));
    $("keys").textContent = "Keys: y = correct, n = incorrect.";
    state.keys = { y: () => submit({ correct: true }), n: () => submit({ correct: false }) };
  },
  correction(box, a) { textTask(box, a, a.responses[0].text, "Edit the response into a better one."); },
  critique(box, a) { textTask(box, a, "", "Write what is wrong or right about the response."); },
  steps(box, a) {
    box.append(responseBox(a.responses[0], 0));
    state.steps = a.steps.map(() => 0);
    state.stepCursor = 0;
    const rows = el("div");
    const names = { "-1": "bad", "0": "neutral", "1": "good" };
    const redraw = () => [...rows.children].forEach((row, i) => {
      row.classList.toggle("current", i === state.stepCursor);
      row.lastChild.textContent = names[String(state.steps[i])];
    });
    a.steps.forEach((text, i) => rows.append(el("div", { class: "step" }, el("span", { class: "text", text: (i + 1) + ". " + text }),
                                                el("strong"))));
    const set = (value) => { state.steps[state.stepCursor] = value;
                             state.stepCursor = Math.min(state.stepCursor + 1, a.steps.length - 1); redraw(); };
    box.append(rows, el("div", { class: "controls" },
      el("button", { text: "g · good", onclick: () => set(1) }), el("button", { text: "u · neutral", onclick: () => set(0) }),
      el("button", { text: "b · bad", onclick: () => set(-1) }),
      el("button", { text: "Enter · submit", onclick: () => submit({ steps: state.steps }) })));
    redraw();
    $("keys").textContent = "Keys: g / u / b mark the highlighted step good / neutral / bad; ↑ ↓ move; Enter submits.";
    state.keys = { g: () => set(1), u: () => set(0), b: () => set(-1), Enter: () => submit({ steps: state.steps }),
                   ArrowUp: () => { state.stepCursor = Math.max(0, state.stepCursor - 1); redraw(); },
                   ArrowDown: () => { state.stepCursor = Math.min(a.steps.length - 1, state.stepCursor + 1); redraw(); } };
  },
};

function textTask(box, a, initial, hint) {
  box.append(responseBox(a.responses[0], 0));
  const area = el("textarea", { id: "text-input", "aria-label": hint });
  area.value = initial;
  box.append(el("p", { class: "hint", text: hint }), area, el("div", { class: "controls" },
    el("button", { text: "Ctrl+Enter · submit", onclick: () => area.value.trim() && submit({ text: area.value }) })));
  $("keys").textContent = "Keys: Ctrl+Enter submits.";
  state.keys = {};
  area.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey) && area.value.trim()) { e.preventDefault(); submit({ text: area.value }); }
  });
  area.focus();
}

document.addEventListener("keydown", (event) => {
  if ($("task-view").hidden || !state.assignment || event.target.tagName === "TEXTAREA" || event.target.tagName === "INPUT") return;
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  const action = (state.keys || {})[event.key];
  if (action) { event.preventDefault(); action(); }
});

function cell(estimate) {
  if (!estimate || estimate.value === null) return "—";
  const f = (x) => (x === null ? "?" : x.toFixed(3));
  return f(estimate.value) + " [" + f(estimate.ci_low) + ", " + f(estimate.ci_high) + "] (n=" + estimate.n + ")";
}

async function openAdmin(projectId, name) {
  const stats = await (await api("GET", "/api/admin/projects/" + projectId + "/stats")).json();
  $("admin-name").textContent = name;
  $("export").onclick = () => exportProject(projectId, name).catch(fail);
  const box = $("stats");
  box.replaceChildren(el("p", { text: stats.labels + " labels on " + stats.items_labelled + " items (" + stats.task_type + ")" }));
  const summary = el("table", { id: "agreement" });
  const agreement = stats.agreement || {};
  const rows = [["Krippendorff's α (" + (agreement.alpha_level || "—") + ")", cell(agreement.alpha)],
                ["Krippendorff's α (nominal)", cell(agreement.alpha_nominal || (agreement.alpha_level === "nominal" ? agreement.alpha : null))],
                ["Fleiss' κ", cell(agreement.fleiss_kappa)],
                ["Left response preferred (position bias)", cell(stats.position_bias_left_wins)]];
  for (const [label, value] of rows) summary.append(el("tr", {}, el("th", { text: label }), el("td", { text: value })));
  const people = el("table", { id: "annotators" }, el("tr", {}, el("th", { text: "annotator" }), el("th", { text: "labels" }),
    el("th", { text: "median seconds" }), el("th", { text: "agreement with others' majority" })));
  for (const [who, entry] of Object.entries(stats.per_annotator)) {
    people.append(el("tr", {}, el("td", { text: who }), el("td", { text: String(entry.labels) }),
      el("td", { text: entry.median_seconds === null ? "—" : entry.median_seconds.toFixed(1) }),
      el("td", { text: cell(entry.agreement_with_others) })));
  }
  box.append(summary, people);
  if (stats.agreement_error) box.append(el("p", { class: "hint", text: stats.agreement_error }));
  show("admin-view");
}

async function exportProject(projectId, name) {
  const blob = await (await api("GET", "/api/admin/projects/" + projectId + "/export")).blob();
  const link = el("a", { href: URL.createObjectURL(blob), download: name + ".zip" });
  document.body.append(link);
  link.click();
  link.remove();
}

$("login-form").addEventListener("submit", login);
$("logout").addEventListener("click", logout);
$("back").addEventListener("click", (e) => { e.preventDefault(); listProjects().catch(fail); });
$("admin-back").addEventListener("click", (e) => { e.preventDefault(); listProjects().catch(fail); });
if (state.token) listProjects().catch(() => show("login-view")); else show("login-view");
