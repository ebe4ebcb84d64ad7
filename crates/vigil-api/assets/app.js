// vigil dashboard: reads the agent's JSON endpoints, follows /v1/events, redraws what changed.
"use strict";

const $ = (sel) => document.querySelector(sel);
const MAX_EVENTS = 50;
const REFRESH_MS = 2000;
let refreshQueued = null;
let source = null;
let retryMs = 500;
// The agent says whether it is clustered, so a lone node is never asked for cluster endpoints
// it does not serve.
const standalone = document.body.dataset.cluster !== "true";

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v;
    else if (k.startsWith("data-")) node.setAttribute(k, v);
    else node[k] = v;
  }
  for (const c of children) node.append(c instanceof Node ? c : String(c));
  return node;
}

function state(word) {
  return el("span", { class: "state", "data-state": word }, word);
}

// An agent with a read token answers 401 until the page presents it: the token comes from the
// page's address (?token=) or the form the page then shows, and is kept for this tab only.
const TOKEN_NEEDED = "token needed";
let token = new URLSearchParams(location.search).get("token") || sessionStorage.getItem("vigil-token") || "";

function askForToken() {
  $("#token-form").hidden = false;
  setConn("locked", TOKEN_NEEDED);
}

$("#token-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  token = $("#token").value.trim();
  sessionStorage.setItem("vigil-token", token);
  $("#token-form").hidden = true;
  if (source) source.close();
  connect();
  refresh();
});

async function getJson(path) {
  const headers = token ? { Authorization: `Bearer ${token}` } : {};
  const response = await fetch(path, { cache: "no-store", headers });
  if (response.status === 401) {
    askForToken();
    throw new Error(TOKEN_NEEDED);
  }
  if (response.status === 404) return null;
  if (!response.ok && response.status !== 503) throw new Error(`${path}: HTTP ${response.status}`);
  return response.json();
}

function setConn(word, text) {
  const c = $("#conn");
  c.dataset.conn = word;
  c.textContent = text || word;
}

function fmtLatency(nanos) {
  if (nanos == null) return "–";
  const ms = nanos / 1e6;
  return ms < 10 ? `${ms.toFixed(1)} ms` : `${Math.round(ms)} ms`;
}

function sparkline(history) {
  const recent = (history || []).slice(-20);
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("class", "spark");
  svg.setAttribute("width", "80");
  svg.setAttribute("height", "16");
  svg.setAttribute("role", "img");
  const fails = recent.filter((h) => h.verdict !== "pass").length;
  svg.setAttribute("aria-label", `last ${recent.length} results, ${fails} not passing`);
  recent.forEach((h, i) => {
    const bar = document.createElementNS(ns, "rect");
    const kind = h.verdict === "pass" ? "pass" : h.verdict === "warn" ? "warn" : "fail";
    const height = kind === "pass" ? 16 : kind === "warn" ? 10 : 6;
    bar.setAttribute("class", kind);
    bar.setAttribute("x", String(i * 4));
    bar.setAttribute("y", String(16 - height));
    bar.setAttribute("width", "3");
    bar.setAttribute("height", String(height));
    svg.append(bar);
  });
  return svg;
}

function renderMembers(members, leader) {
  const body = $("#members tbody");
  if (!members) {
    $("#members").hidden = true;
    $("#no-cluster").hidden = false;
    $("#quorum").textContent = "";
    return;
  }
  const leaderId = leader && leader.leader_id;
  const rows = (members.members || []).slice().sort((a, b) => a.id.localeCompare(b.id));
  body.replaceChildren(...rows.map((m) => {
    const name = el("td", {}, m.id);
    if (m.id === members.localNode) name.append(el("span", { class: "muted" }, " (this node)"));
    const role = el("td", { "data-label": "role" }, m.role || "–");
    if (m.id === leaderId) role.append(el("span", { class: "leader", title: "cluster leader" }, " ★ leader"));
    const phi = typeof m.phiScore === "number" ? m.phiScore.toFixed(2) : "–";
    // A member that is gone reports nothing: its last health would read as current.
    const gone = m.state === "dead" || m.state === "left";
    // Members report their score in percent; the page shows every score on one scale, 0 to 1.
    const score = m.healthScore != null ? (m.healthScore / 100).toFixed(2) : null;
    const lastReported = m.health ? `last reported: ${m.health}, score ${score}` : "";
    return el("tr", { "data-member": m.id },
      name,
      el("td", {}, state(m.state)),
      gone ? el("td", { class: "muted", title: lastReported, "data-label": "health" }, "–")
        : el("td", { "data-label": "health" }, m.health ? state(m.health) : "–"),
      el("td", { "data-label": "score" }, !gone && score != null ? score : "–"),
      el("td", { "data-label": "phi" }, phi),
      role);
  }));
  const alive = rows.filter((m) => m.state === "alive").length;
  $("#quorum").textContent = `${alive}/${rows.length} alive · ${members.hasQuorum ? "quorum" : "NO QUORUM"}`;
}

async function renderChecks(checks) {
  const names = Object.keys((checks && checks.checks) || {}).sort();
  const histories = await Promise.all(names.map((n) =>
    getJson(`/v1/checks/${encodeURIComponent(n)}`).catch(() => null)));
  $("#checks tbody").replaceChildren(...names.map((n, i) => {
    const c = checks.checks[n];
    const label = el("td", {}, n);
    if (c.critical) label.append(el("span", { class: "muted" }, " critical"));
    return el("tr", { "data-check": n },
      label,
      el("td", {}, state(c.state)),
      el("td", { "data-label": "latency" }, fmtLatency(c.latency)),
      el("td", { "data-label": "recent" }, sparkline(histories[i] && histories[i].history)),
      el("td", { "data-label": "score" }, c.score != null ? c.score.toFixed(2) : "–"));
  }));
}

// The registry: each service with its instances, each instance's state and its checks' states.
// A registry read may fail (503 without quorum): the last one stays on the page until the next.
function renderServices(registry) {
  const section = $("#services-section");
  section.hidden = standalone;
  if (standalone || !registry || !registry.services) return;
  const names = Object.keys(registry.services).sort();
  let total = 0;
  let passing = 0;
  const rows = names.flatMap((name) => {
    const instances = registry.services[name].slice().sort((a, b) => a.id.localeCompare(b.id));
    const up = instances.filter((i) => i.state === "passing").length;
    total += instances.length;
    passing += up;
    const head = el("tr", { class: "service", "data-service": name },
      el("td", { colSpan: 5 }, name, el("span", { class: "muted" }, ` ${up}/${instances.length} passing`)));
    return [head, ...instances.map((i) => {
      const checks = el("td", { class: "checks", "data-label": "checks" });
      if (!i.checks || i.checks.length === 0) checks.append(el("span", { class: "muted" }, "none"));
      for (const c of i.checks || []) {
        checks.append(el("span", { class: "state", "data-state": c.state, title: c.output || c.probe },
          `${c.name} ${c.state}`));
      }
      const host = i.address.includes(":") && !i.address.startsWith("[") ? `[${i.address}]` : i.address;
      return el("tr", { "data-instance": `${name}/${i.id}` },
        el("td", {}, i.id),
        el("td", {}, state(i.state || "unknown")),
        el("td", { "data-label": "address" }, `${host}:${i.port}`),
        el("td", { "data-label": "node" }, i.node),
        checks);
    })];
  });
  $("#services tbody").replaceChildren(...rows);
  $("#services").hidden = total === 0;
  $("#no-services").hidden = total > 0;
  $("#services-count").textContent = total ? `${passing}/${total} instances passing` : "";
}

// Elections of users' services: each one's leader with its fencing token, and who waits.
function renderElections(list) {
  const section = $("#elections-section");
  section.hidden = standalone;
  if (standalone || !list || !list.roles) return;
  const rows = list.roles.map((r) => {
    const leader = r.leader;
    const who = leader
      ? el("span", {}, state(leader.yielding ? "warning" : "passing"), " ",
        el("span", { class: "leader-id" }, leader.id))
      : state("critical");
    const policy = r.preempt ? `${r.policy}, preempt` : r.policy;
    return el("tr", { "data-election": r.name },
      el("td", {}, r.name, el("span", { class: "muted" }, ` ${policy}`)),
      el("td", { "data-label": "leader" }, who),
      el("td", { "data-label": "token" }, leader ? String(leader.token) : "–"),
      el("td", { "data-label": "since" }, leader ? new Date(leader.since).toLocaleTimeString() : "–"),
      el("td", { "data-label": "candidates" }, r.candidates.map((c) => c.id).join(" ")));
  });
  $("#elections tbody").replaceChildren(...rows);
  $("#elections").hidden = rows.length === 0;
  $("#no-elections").hidden = rows.length > 0;
  const led = list.roles.filter((r) => r.leader).length;
  $("#elections-count").textContent = rows.length ? `${led}/${rows.length} led` : "";
}

function bar(label, score, kind) {
  const pct = Math.round(score * 100);
  const level = score < 0.75 ? " low" : score < 0.95 ? " mid" : "";
  return el("div", { class: `bar ${kind}`, "data-score": label },
    el("span", {}, label),
    el("div", { class: "track" }, el("div", { class: `fill${level}`, style: `width:${pct}%` })),
    el("span", {}, score.toFixed(2)));
}

function renderSummary(summary) {
  if (!summary) return;
  $("#node").textContent = summary.node_id ? `· ${summary.node_id}` : "";
  document.title = `vigil · ${summary.node_id || ""} · ${summary.status}`;
  const badge = $("#status");
  badge.dataset.state = summary.status;
  badge.textContent = summary.status;
  const components = Object.entries(summary.component_scores || {}).sort();
  // The node's own score is named "overall" so that it cannot be taken for a component that
  // happens to be called "system".
  $("#scores").replaceChildren(bar("overall", summary.overall_score, "overall"),
    ...components.map(([name, score]) => bar(name, score, "component")));
}

async function refresh() {
  refreshQueued = null;
  try {
    const [summary, checks, members, leader, registry, elections] = await Promise.all([
      getJson("/health/summary"), getJson("/health/checks"),
      standalone ? null : getJson("/v1/members"), standalone ? null : getJson("/v1/leader"),
      standalone ? null : getJson("/v1/services"), standalone ? null : getJson("/v1/elections"),
    ]);
    renderSummary(summary);
    renderMembers(members, leader);
    renderServices(registry);
    renderElections(elections);
    await renderChecks(checks);
  } catch (err) {
    if (err.message !== TOKEN_NEEDED) setConn("lost", "connection lost");
  }
}

// Bursts of events (a node dying moves several members at once) cost one redraw.
function queueRefresh() {
  if (refreshQueued === null) refreshQueued = setTimeout(refresh, 50);
}

function describe(type, e) {
  switch (type) {
    case "check_changed": return [`check ${e.check}: ${e.from} → ${e.to}`, e.to];
    case "status_changed": return [`node ${e.from} → ${e.to}`, e.to];
    case "leader_changed": return [e.leader_id ? `leader is ${e.leader_id} (term ${e.term})` : `no leader (term ${e.term})`, null];
    case "neighbor_changed": return [`neighbour ${e.neighbor}: ${e.from} → ${e.to}`, e.to];
    // The counts cannot tell an instance not checked yet from a failing one: only "all pass"
    // and "some pass" get a state.
    case "service_changed": return [`service ${e.service}: ${e.passing}/${e.instances} passing`,
      e.instances === 0 || e.passing === 0 ? null : e.passing === e.instances ? "passing" : "warning"];
    case "election_changed": {
      const leader = e.role && e.role.leader;
      return [leader ? `election ${e.name}: ${leader.id} leads (token ${leader.token})`
        : `election ${e.name}: no leader`, leader ? "passing" : "warning"];
    }
    case "lock_changed": return [`lock ${e.name}: ${e.role ? e.role.holders.length : 0} holding`, null];
    case "lagged": return [`missed ${e.missed} events`, "warning"];
    default:
      if (type.startsWith("member_")) return [`member ${e.id} ${type.slice(7)}`, e.state];
      return [type, null];
  }
}

function addEvent(type, data) {
  let e = {};
  try { e = JSON.parse(data); } catch (_) { return; }
  const [text, word] = describe(type, e);
  const at = e.at || (e.at_ms ? new Date(e.at_ms).toISOString() : new Date().toISOString());
  const item = el("li", { "data-event": type },
    el("time", { dateTime: at }, new Date(at).toLocaleTimeString()));
  if (word) item.append(state(word));
  item.append(el("span", {}, text));
  const list = $("#events");
  list.prepend(item);
  while (list.children.length > MAX_EVENTS) list.lastChild.remove();
}

const EVENT_TYPES = ["check_changed", "status_changed", "check_registered", "check_unregistered",
  "leader_changed", "neighbor_changed", "service_changed", "election_changed", "lock_changed", "lagged", "member_up", "member_alive", "member_suspect",
  "member_down", "member_left"];

function connect() {
  source = new EventSource(token ? `/v1/events?token=${encodeURIComponent(token)}` : "/v1/events");
  source.addEventListener("open", () => {
    retryMs = 500;
    setConn("live");
    refresh();
  });
  source.addEventListener("error", () => {
    if (!$("#token-form").hidden) {
      // Refused for want of a token: the form reconnects once one is given.
      source.close();
    } else if (source.readyState === EventSource.CLOSED) {
      // The browser gave up (the agent answered with an error): try again ourselves, backing off.
      setConn("lost", `connection lost · retrying in ${Math.round(retryMs / 1000)} s`);
      setTimeout(connect, retryMs);
      retryMs = Math.min(retryMs * 2, 10000);
    } else {
      setConn("reconnecting", "reconnecting…");
    }
  });
  // Named events only reach named listeners; "message" catches any type not listed here.
  for (const type of EVENT_TYPES) {
    source.addEventListener(type, (ev) => { addEvent(type, ev.data); queueRefresh(); });
  }
  // Metadata updates (a score moving) redraw the tables without crowding the event list.
  source.addEventListener("member_updated", queueRefresh);
}

connect();
refresh();
setInterval(() => { if (source && source.readyState === EventSource.OPEN) queueRefresh(); }, REFRESH_MS);
