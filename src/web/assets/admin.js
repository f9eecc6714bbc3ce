// Vitrine's admin console. The token lives in sessionStorage for this tab
// only and goes out as an Authorization header, never in a URL. Every
// value from the API is shown with textContent.
"use strict";
(function () {
  const KEY = "vitrine.adminToken";
  const $ = (id) => document.getElementById(id);
  const login = $("login"), consoleEl = $("console"), loginError = $("login-error");
  const filters = $("event-filters"), tbody = document.querySelector("#events tbody");
  const listStatus = $("list-status"), pageInfo = $("page-info");
  const detail = $("detail");
  let page = 1, totalPages = 1, current = null;

  function token() { return sessionStorage.getItem(KEY); }

  async function api(path, opts) {
    const headers = Object.assign({}, opts && opts.headers, { Authorization: "Bearer " + token() });
    const resp = await fetch(path, Object.assign({}, opts, { headers }));
    let data = null;
    try { data = await resp.json(); } catch (e) { /* not JSON */ }
    if (resp.status === 401) { logout("The token was refused; log in again."); }
    return { ok: resp.ok, status: resp.status, data };
  }

  function show(loggedIn) {
    login.hidden = loggedIn;
    consoleEl.hidden = !loggedIn;
  }

  function logout(message) {
    sessionStorage.removeItem(KEY);
    show(false);
    loginError.hidden = !message;
    loginError.textContent = message || "";
  }

  $("login-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    sessionStorage.setItem(KEY, $("token").value);
    $("token").value = "";
    const r = await api("/api/v1/events?limit=1");
    if (!r.ok) {
      if (r.status !== 401) logout(r.data && r.data.error ? r.data.error : "Login failed (" + r.status + ")");
      return;
    }
    loginError.hidden = true;
    show(true);
    page = 1;
    list();
    stats();
    rules();
    duplicates();
    bots();
    providers();
  });
  $("logout").addEventListener("click", () => logout(""));

  function cell(text, cls) {
    const td = document.createElement("td");
    td.textContent = text === null || text === undefined ? "" : String(text);
    if (cls) td.className = cls;
    return td;
  }

  async function list() {
    const q = new URLSearchParams();
    for (const [k, v] of new FormData(filters)) { if (String(v).trim()) q.set(k, String(v).trim()); }
    q.set("page", String(page));
    listStatus.textContent = "Loading…";
    const r = await api("/api/v1/events?" + q);
    if (!r.ok) { listStatus.textContent = r.data && r.data.error ? r.data.error : "Failed (" + r.status + ")"; return; }
    const rows = r.data.data, p = r.data.pagination;
    totalPages = Math.max(1, p.totalPages);
    tbody.replaceChildren();
    for (const ev of rows) {
      const tr = document.createElement("tr");
      tr.dataset.id = ev.id;
      tr.append(cell(ev.created_at), cell(ev.provider), cell(ev.event_type), cell(ev.entity_id),
        cell(ev.status, "st-" + ev.status), cell(ev.retry_count + "/" + ev.max_retries), cell(ev.error, "err"));
      tr.addEventListener("click", () => open(ev.id));
      tbody.append(tr);
    }
    listStatus.textContent = p.total + " event" + (p.total === 1 ? "" : "s");
    pageInfo.textContent = "page " + p.page + " of " + totalPages;
    $("prev").disabled = page <= 1;
    $("next").disabled = page >= totalPages;
  }

  filters.addEventListener("submit", (e) => { e.preventDefault(); page = 1; list(); });
  $("prev").addEventListener("click", () => { if (page > 1) { page--; list(); } });
  $("next").addEventListener("click", () => { if (page < totalPages) { page++; list(); } });

  async function open(id) {
    const r = await api("/api/v1/events/" + encodeURIComponent(id));
    if (!r.ok) { listStatus.textContent = r.data && r.data.error ? r.data.error : "Failed (" + r.status + ")"; return; }
    current = r.data.data;
    $("detail-title").textContent = current.event_type + " · " + (current.entity_id || current.id);
    const dl = $("detail-fields");
    dl.replaceChildren();
    for (const k of ["id", "provider", "external_id", "event_subtype", "entity_type", "entity_id", "org",
      "status", "retry_count", "max_retries", "outcome",
      "created_at", "updated_at", "processing_started_at", "processed_at", "next_retry_at"]) {
      const dt = document.createElement("dt"), dd = document.createElement("dd");
      dt.textContent = k;
      dd.textContent = current[k] === null || current[k] === undefined ? "—" : String(current[k]);
      if (k === "status") { dd.id = "detail-status"; dd.className = "st-" + current[k]; }
      dl.append(dt, dd);
    }
    $("detail-error").textContent = current.error || "—";
    const attempts = document.querySelector("#attempts tbody");
    attempts.replaceChildren();
    for (const a of current.attempts || []) {
      const tr = document.createElement("tr");
      tr.append(cell(a.started_at), cell(a.ended_at || "running"), cell(a.kind),
        cell(a.outcome || "—", a.outcome ? "st-" + a.outcome : ""), cell(a.error, "err"));
      attempts.append(tr);
    }
    $("detail-payload").textContent = typeof current.payload === "string"
      ? current.payload : JSON.stringify(current.payload, null, 2);
    $("retry-status").textContent = "";
    detail.hidden = false;
    detail.scrollIntoView({ block: "nearest" });
  }

  $("close-detail").addEventListener("click", () => { detail.hidden = true; });
  $("retry").addEventListener("click", async () => {
    if (!current) return;
    const r = await api("/api/v1/events/" + encodeURIComponent(current.id) + "/retry", { method: "POST" });
    if (!r.ok) { $("retry-status").textContent = r.data && r.data.error ? r.data.error : "Failed (" + r.status + ")"; return; }
    const st = r.data.data.status;
    $("retry-status").textContent = "Queued again: now " + st;
    const dd = $("detail-status");
    if (dd) { dd.textContent = st; dd.className = "st-" + st; }
    list();
  });

  // Bulk replay: the history filters as the job's filter; a dry-run count
  // first, then the job, polled until it ends, cancellable.
  let replayJob = null, replayTimer = null;
  const replayStatus = $("replay-status");
  function replayFilter() {
    const body = {};
    for (const [k, v] of new FormData(filters)) {
      if (k !== "limit" && String(v).trim()) body[k] = String(v).trim();
    }
    return body;
  }
  function errorOf(r) { return r.data && r.data.error ? r.data.error : "Failed (" + r.status + ")"; }
  $("replay-count").addEventListener("click", async () => {
    const r = await api("/api/v1/events/replay?dry_run=true", {
      method: "POST", body: JSON.stringify(replayFilter()),
      headers: { "Content-Type": "application/json" } });
    if (!r.ok) { replayStatus.textContent = errorOf(r); return; }
    const d = r.data.data;
    replayStatus.textContent = d.matched + " event" + (d.matched === 1 ? "" : "s") + " match; a replay puts "
      + d.would_replay + " back to pending" + (d.matched > d.cap ? " (the cap is " + d.cap + ")" : "") + ".";
    $("replay-start").hidden = d.would_replay === 0;
  });
  $("replay-start").addEventListener("click", async () => {
    $("replay-start").hidden = true;
    const r = await api("/api/v1/events/replay", {
      method: "POST", body: JSON.stringify(replayFilter()),
      headers: { "Content-Type": "application/json" } });
    if (!r.ok) { replayStatus.textContent = errorOf(r); return; }
    replayJob = r.data.data;
    $("replay-cancel").hidden = false;
    pollReplay();
  });
  $("replay-cancel").addEventListener("click", async () => {
    if (!replayJob) return;
    const r = await api("/api/v1/events/replay/" + encodeURIComponent(replayJob.id) + "/cancel", { method: "POST" });
    if (!r.ok) { replayStatus.textContent = errorOf(r); return; }
    replayJob = r.data.data;
    pollReplay();
  });
  async function pollReplay() {
    clearTimeout(replayTimer);
    if (!replayJob) return;
    const r = await api("/api/v1/events/replay/" + encodeURIComponent(replayJob.id));
    if (!r.ok) { replayStatus.textContent = errorOf(r); return; }
    const j = r.data.data;
    replayStatus.textContent = "Replay " + j.status + ": " + j.replayed + " of " + Math.min(j.matched, j.cap)
      + " put back" + (j.skipped ? ", " + j.skipped + " skipped (being processed)" : "") + ".";
    if (j.status === "running") {
      replayTimer = setTimeout(pollReplay, 1000);
    } else {
      $("replay-cancel").hidden = true;
      replayJob = null;
      list();
    }
  }

  // The dashboard: the last hour per minute from GET /api/v1/stats, drawn
  // with uPlot (vendored); refreshed every 15 s while the console is open.
  // The queue depth has no history in the database: it is sampled here.
  const COLORS = ["#0b57d0", "#137333", "#a50e0e", "#8a5a00", "#6a1b9a", "#00796b", "#c2185b", "#455a64"];
  const charts = {}, depthSamples = [[], []];
  let statsTimer = null;
  function chartBox(key, title) {
    let box = document.getElementById("chart-" + key);
    if (!box) {
      box = document.createElement("div");
      box.className = "chart"; box.id = "chart-" + key;
      const h = document.createElement("h3");
      h.textContent = title;
      box.append(h);
      $("charts").append(box);
    }
    return box;
  }
  function draw(key, title, xs, named, lastSeconds) {
    const names = Object.keys(named);
    const data = [xs].concat(names.map((n) => named[n]));
    const sig = names.join("\u0000");
    const box = chartBox(key, title);
    const width = Math.max(280, box.clientWidth - 16);
    if (charts[key] && charts[key].sig === sig) {
      charts[key].plot.setData(data);
      return;
    }
    if (charts[key]) charts[key].plot.destroy();
    const opts = {
      width, height: 200,
      // A window ending at the newest sample (else one sample spans years).
      scales: { x: lastSeconds ? { time: true, range: (u, lo, hi) => [hi - lastSeconds, hi + 1] } : { time: true } },
      series: [{}].concat(names.map((n, i) => ({ label: n, stroke: COLORS[i % COLORS.length], width: 2,
        fill: names.length === 1 ? COLORS[i % COLORS.length] + "22" : undefined }))),
      axes: [{}, { size: 40 }],
    };
    charts[key] = { sig, plot: new uPlot(opts, data, box) };
  }
  window.addEventListener("resize", () => {
    for (const key of Object.keys(charts)) {
      const box = document.getElementById("chart-" + key);
      charts[key].plot.setSize({ width: Math.max(280, box.clientWidth - 16), height: 200 });
    }
  });
  async function stats() {
    clearTimeout(statsTimer);
    if (!token() || consoleEl.hidden) return;
    const r = await api("/api/v1/stats?minutes=60");
    const status = $("stats-status");
    if (!r.ok) { status.textContent = errorOf(r); return; }
    const d = r.data.data, q = d.queue_depth;
    status.textContent = "Queue now: " + q.pending + " pending, " + q.retrying + " retrying, "
      + q.processing + " processing.";
    const xs = d.timestamps;
    const byProvider = Object.keys(d.received.by_provider).length ? d.received.by_provider : { events: d.received.total };
    draw("provider", "Events received per minute, by provider", xs, byProvider);
    const byStatus = Object.keys(d.received.by_status).length ? d.received.by_status : { events: d.received.total };
    draw("status", "Events received per minute, by status now", xs, byStatus);
    draw("failures", "Failures per minute", xs, { "failed for good": d.failures.final, "failed tries": d.failures.tries });
    draw("embeddings", "Images embedded per minute", xs, { embedded: d.embeddings });
    depthSamples[0].push(Math.floor(Date.now() / 1000));
    depthSamples[1].push(q.total);
    if (depthSamples[0].length > 240) { depthSamples[0].shift(); depthSamples[1].shift(); }
    draw("depth", "Queue depth (sampled while this page is open)", depthSamples[0], { queued: depthSamples[1] }, 3600);
    statsTimer = setTimeout(stats, 15000);
  }

  // The CRM's rules (the section stays hidden when the CRM is not mounted)
  // and every mounted provider's status.
  function time(ms) { return ms ? new Date(ms).toISOString() : ""; }
  async function rules() {
    const r = await api("/api/v1/crm/rules");
    if (r.status === 404) return;
    $("rules-panel").hidden = false;
    if (!r.ok) { $("rules-status").textContent = errorOf(r); return; }
    const m = await api("/api/v1/crm/rules/metrics");
    const counts = {};
    for (const c of (m.ok ? m.data.data : [])) counts[c.rule_id] = c;
    const body = document.querySelector("#rules tbody");
    body.replaceChildren();
    for (const rule of r.data.data) {
      const c = counts[rule.id] || { fired: 0, failed: 0, skipped: 0 };
      const tr = document.createElement("tr");
      tr.append(cell(rule.name), cell(rule.enabled ? "yes" : "no"), cell((rule.triggers || []).join(", ")),
        cell((rule.actions || []).map((a) => a.type).join(", ")), cell(c.fired), cell(c.failed, c.failed ? "st-failed" : ""),
        cell(c.skipped));
      tr.addEventListener("click", () => openRule(rule));
      body.append(tr);
    }
    $("rules-status").textContent = r.data.data.length + " rule" + (r.data.data.length === 1 ? "" : "s");
  }
  async function openRule(rule) {
    $("rule-title").textContent = rule.name;
    $("rule-spec").textContent = JSON.stringify({ triggers: rule.triggers, conditions: rule.conditions,
      actions: rule.actions }, null, 2);
    const r = await api("/api/v1/crm/rules/" + encodeURIComponent(rule.id) + "/runs?limit=20");
    const body = document.querySelector("#rule-runs tbody");
    body.replaceChildren();
    for (const run of (r.ok ? r.data.data : [])) {
      const tr = document.createElement("tr");
      tr.append(cell(time(run.created_at)), cell(run.event_id), cell(run.outcome, "st-" + run.outcome), cell(run.error, "err"));
      tr.addEventListener("click", () => open(run.event_id));
      body.append(tr);
    }
    $("rule-detail").hidden = false;
  }
  $("close-rule").addEventListener("click", () => { $("rule-detail").hidden = true; });
  async function duplicates() {
    const r = await api("/api/v1/duplicates?limit=50");
    const status = $("duplicates-status");
    if (!r.ok) { status.textContent = errorOf(r); return; }
    const body = document.querySelector("#duplicates tbody");
    body.replaceChildren();
    for (const c of r.data.data) {
      const tr = document.createElement("tr");
      const td = document.createElement("td");
      c.product_ids.forEach((id, i) => {
        if (i) td.append(", ");
        const a = document.createElement("a");
        a.href = "/products/" + encodeURIComponent(id);
        a.textContent = id;
        td.append(a);
      });
      tr.append(td, cell(c.pairs), cell(Number(c.best_score).toFixed(3)));
      body.append(tr);
    }
    const n = r.data.pagination.total;
    status.textContent = n ? n + " cluster" + (n === 1 ? "" : "s") + " of products that look the same"
      : "No near-duplicates found.";
  }
  // The messenger bots stored in the database (hidden when the Telegram
  // provider, which serves their API, is not mounted). Tokens and secrets
  // are only ever sent, never shown: the API does not return them.
  let rotating = null;
  async function bots() {
    const r = await api("/api/v1/channels/bots");
    if (r.status === 404) return;
    $("bots-panel").hidden = false;
    const body = document.querySelector("#bots tbody");
    body.replaceChildren();
    if (!r.ok) { $("bots-status").textContent = errorOf(r); return; }
    for (const b of r.data.data) {
      const tr = document.createElement("tr");
      const actions = document.createElement("td");
      const toggle = document.createElement("button");
      toggle.type = "button";
      toggle.textContent = b.enabled ? "Disable" : "Enable";
      toggle.addEventListener("click", async () => {
        const x = await api("/api/v1/channels/bots/" + encodeURIComponent(b.id) + (b.enabled ? "/disable" : "/enable"), { method: "POST" });
        // Reload first, then say what happened: the list is what the
        // status line describes (and reloading resets the status line).
        await bots();
        $("bots-status").textContent = x.ok ? b.name + (b.enabled ? " disabled" : " enabled") : errorOf(x);
      });
      const rotate = document.createElement("button");
      rotate.type = "button";
      rotate.textContent = "Rotate…";
      rotate.addEventListener("click", () => {
        rotating = b;
        $("rotate-title").textContent = "New credentials for " + b.name + " (" + b.external_id + ")";
        $("rotate-form").hidden = false;
      });
      actions.append(toggle, " ", rotate);
      tr.append(cell(b.name), cell(b.kind), cell(b.external_id), cell(b.enabled ? "yes" : "no", b.enabled ? "" : "st-failed"),
        cell(b.secret_set ? "set" : "none"), cell(time(b.updated_at)), actions);
      body.append(tr);
    }
    const n = r.data.data.length;
    $("bots-status").textContent = n + " stored bot" + (n === 1 ? "" : "s");
  }
  function formBody(form) {
    const out = {};
    for (const [k, v] of new FormData(form)) { if (String(v).trim()) out[k] = String(v).trim(); }
    return out;
  }
  $("bot-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const form = e.target;
    const r = await api("/api/v1/channels/bots", { method: "POST", body: JSON.stringify(formBody(form)),
      headers: { "Content-Type": "application/json" } });
    if (r.ok) form.reset();
    await bots();
    $("bots-status").textContent = r.ok ? "Added " + r.data.data.name : errorOf(r);
  });
  $("rotate-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const form = e.target;
    if (!rotating) return;
    const r = await api("/api/v1/channels/bots/" + encodeURIComponent(rotating.id) + "/rotate", { method: "POST",
      body: JSON.stringify(formBody(form)), headers: { "Content-Type": "application/json" } });
    if (r.ok) { form.reset(); form.hidden = true; rotating = null; }
    await bots();
    $("bots-status").textContent = r.ok ? "Rotated" : errorOf(r);
  });
  $("rotate-cancel").addEventListener("click", () => { $("rotate-form").reset(); $("rotate-form").hidden = true; rotating = null; });
  async function providers() {
    const r = await fetch("/api/v1/webhooks/health");
    const d = r.ok ? await r.json() : { providers: [] };
    const dl = $("providers");
    dl.replaceChildren();
    for (const name of d.providers || []) {
      const dt = document.createElement("dt"), dd = document.createElement("dd");
      dt.textContent = name;
      dd.textContent = JSON.stringify(d[name] || {});
      dl.append(dt, dd);
    }
  }

  show(!!token());
  if (token()) { list(); stats(); rules(); duplicates(); bots(); providers(); }
})();
