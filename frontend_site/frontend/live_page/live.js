"use strict";
/* The live page's script (frontend/live.py sends it inline; README, "Live page"). It calls /who-am-i on a
   steady clock, each call on a new connection with a timeout of its own, and draws every call as a mark: in
   the row of the pod that answered it, or, dark, in the row of the way it failed. It needs nothing but the
   page: no library, no font, no other origin. */
(() => {
  const SVG = "http://www.w3.org/2000/svg"; // a namespace name, never fetched
  const KINDS = ["refused/reset", "timeout", "HTTP 5xx", "wrong JSON"];
  const KIND_MARK = { "refused/reset": "m-refused", timeout: "m-timeout", "HTTP 5xx": "m-http", "wrong JSON": "m-json" };
  // Okabe-Ito's colours, which people with the common colour blindnesses tell apart, then two more.
  const PALETTE = ["#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#7a5195", "#8c6d31"];
  const LANE = 26; // px per row
  const LABEL = 260; // px of row names left of the marks
  const AXIS = 22; // px under the rows
  const GONE_AFTER = 5000; // ms without an answer before a pod's row in the table greys out
  const RECENT = 10000; // ms the status line sums up
  const HIDDEN = "Paused while this tab was hidden; it goes on when you come back";

  const root = document.getElementById("live");
  const plot = document.getElementById("plot");
  const viewport = document.getElementById("viewport");
  const scroll = document.getElementById("scroll");
  const lanesBox = document.getElementById("lanes");
  const axis = document.getElementById("axis");
  const statusLine = document.getElementById("status");
  const podRows = document.querySelector("#pods tbody");
  const pauseButton = document.getElementById("pause");

  // The server validated and clamped these (frontend/live.py); the page's own controls keep to the same bounds.
  const data = (name) => Number(root.dataset[name]);
  const bounds = { rate: [data("rateMin"), data("rateMax")], window: [data("windowMin"), data("windowMax")] };
  const settings = { rate: data("rate"), window: data("window") };
  const timeoutMs = data("timeout") * 1000;
  for (const span of document.querySelectorAll(".timeout")) span.textContent = String(data("timeout"));

  let calls = []; // every call drawn: {sent, ms, pod, code} or {sent, ms, kind, detail}, with its mark
  let pods = new Map(); // name -> {color, answers, last, code, row, lane}
  let failures = new Map(); // kind -> {count, last}: each of KINDS, from clearAll()
  const kindLanes = new Map(); // kind -> its row's <g> of marks
  const builds = new Map(); // pod -> its build, from /version
  let lanes = []; // the rows drawn, top to bottom: {key, label, color, group}
  const inFlight = new Set(); // the send times of the /who-am-i calls not answered yet
  let running = true;
  let pausedFor = "";
  let stoppedAt = 0; // performance.now() when paused: the view stands still there
  let clock = null;
  let nextAt = 0;
  let versionDue = 0;
  let versionAsking = false;
  let width = 0;
  let pxPerMs = 0;

  const el = (name, attributes = {}, parent = null) => {
    const node = document.createElementNS(SVG, name);
    for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
    if (parent) parent.append(node);
    return node;
  };
  const viewNow = () => (running ? performance.now() : stoppedAt);
  const clockTime = (t) => new Date(performance.timeOrigin + t).toLocaleTimeString([], { hour12: false });
  const clip = (text, length = 90) => (text.length > length ? text.slice(0, length - 1) + "\u2026" : text);
  const seconds = (ms) => `${(ms / 1000).toFixed(ms < 10000 ? 1 : 0)} s`;

  // --- calling ---------------------------------------------------------------------------------------

  /** One GET with its own timeout; `fetch` never reuses a connection here, since every answer closes it. */
  async function get(path) {
    const sent = performance.now();
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), timeoutMs);
    try {
      const response = await fetch(path, { cache: "no-store", redirect: "manual", signal: abort.signal });
      return { sent, response, text: await response.text() };
    } catch (error) {
      // A browser does not say why a fetch failed: what it can tell is whether its own timer ended the call.
      const ms = performance.now() - sent;
      if (abort.signal.aborted) return { sent, kind: "timeout", detail: `no answer within ${seconds(timeoutMs)}` };
      return { sent, kind: "refused/reset", detail: `failed after ${Math.round(ms)} ms (${error.message})` };
    } finally {
      clearTimeout(timer);
    }
  }

  /** What an answer of /who-am-i was: {pod, code} when right, else a failure's {kind, detail}. */
  function judge(response, text) {
    let body = null;
    try {
      body = JSON.parse(text);
    } catch (_) {
      // not JSON: judged below
    }
    const object = body !== null && typeof body === "object" && !Array.isArray(body);
    const said = object && typeof body.error === "string" ? body.error : clip(text.trim() || "(empty)");
    if (response.type === "opaqueredirect") return { kind: "wrong JSON", detail: "a redirect, not an answer" };
    if (response.status >= 500) {
      const from = object && typeof body.name === "string" ? ` (from ${body.name})` : "";
      return { kind: "HTTP 5xx", detail: `HTTP ${response.status}: ${said}${from}` };
    }
    if (response.status !== 200) return { kind: "wrong JSON", detail: `HTTP ${response.status}: ${said}` };
    if (!object || typeof body.name !== "string" || body.name === "" || !("code" in body)) {
      return { kind: "wrong JSON", detail: `not {"name", "code"}: ${clip(text.trim() || "(empty)")}` };
    }
    return { pod: body.name, code: body.code === null ? "none" : String(body.code) };
  }

  async function callWhoAmI() {
    const token = { sent: performance.now() };
    inFlight.add(token);
    const result = await get("/who-am-i");
    inFlight.delete(token);
    const call = result.response ? { sent: result.sent, ...judge(result.response, result.text) } : result;
    call.ms = performance.now() - call.sent;
    record(call);
  }

  /** /version names the pod that answered it and its build: the only way to learn which pod runs what. */
  async function askVersion() {
    versionAsking = true;
    const result = await get("/version");
    versionAsking = false;
    if (!result.response || result.response.status !== 200) return;
    try {
      const body = JSON.parse(result.text);
      if (typeof body.pod === "string" && typeof body.version === "string") {
        // `git describe` of an untagged commit is the commit itself: say it once.
        const commit = typeof body.git_commit === "string" ? body.git_commit.slice(0, 7) : "?";
        builds.set(body.pod, body.version.startsWith(commit) ? body.version : `${body.version} (${commit})`);
      }
    } catch (_) {
      // an answer that is not /version's: ask again later
    }
  }

  /** The steady clock: one call every 1/rate s; after a stall (a busy machine) it goes on, never bursts. */
  function tick() {
    clock = null;
    if (!running) return;
    const period = 1000 / settings.rate;
    const now = performance.now();
    if (now - nextAt >= period) nextAt = now;
    callWhoAmI();
    nextAt += period;
    clock = setTimeout(tick, Math.max(0, nextAt - performance.now()));
  }

  function restartClock() {
    if (clock !== null) clearTimeout(clock);
    clock = null;
    nextAt = 0;
    tick();
  }

  // --- keeping count -----------------------------------------------------------------------------------

  function podOf(name) {
    let pod = pods.get(name);
    if (!pod) {
      pod = { color: PALETTE[pods.size % PALETTE.length], answers: 0, last: 0, code: "", row: null, lane: null };
      pods.set(name, pod);
    }
    return pod;
  }

  function record(call) {
    if ("pod" in call) {
      const pod = podOf(call.pod);
      pod.answers += 1;
      pod.last = performance.now();
      pod.code = call.code;
    } else {
      const failure = failures.get(call.kind);
      failure.count += 1;
      failure.last = `${clockTime(call.sent)}: ${call.detail}`;
    }
    calls.push(call);
    draw(call);
  }

  // --- drawing ------------------------------------------------------------------------------------------

  function draw(call) {
    const answer = "pod" in call;
    const pod = answer ? pods.get(call.pod) : null;
    const newLane = answer && !pod.lane;
    if (newLane) pod.lane = el("g", { "data-lane": call.pod }, scroll);
    const mark = el("use", {
      href: "#" + (answer ? "m-answer" : KIND_MARK[call.kind]),
      x: call.sent * pxPerMs,
      class: answer ? "answer" : "fail-mark k-" + call.kind.replace(/[^a-z0-9]+/gi, "-").toLowerCase(),
    }, answer ? pod.lane : kindLanes.get(call.kind));
    if (answer) {
      mark.setAttribute("fill", pod.color);
      mark.dataset.pod = call.pod;
    } else {
      mark.dataset.kind = call.kind;
    }
    const what = answer ? `answered by ${call.pod}` : `${call.kind}: ${call.detail}`;
    el("title", {}, mark).textContent = `${clockTime(call.sent)}, ${Math.round(call.ms)} ms: ${what}`;
    call.mark = mark;
    if (newLane) arrangeLanes();
  }

  /** Rows: every pod with a mark still in view, in the order they first answered, then the four kinds. */
  function arrangeLanes() {
    lanes = [];
    for (const [name, pod] of pods) {
      if (pod.lane) lanes.push({ key: name, label: name, color: pod.color, group: pod.lane });
    }
    for (const kind of KINDS) lanes.push({ key: kind, label: kind, color: null, group: kindLanes.get(kind) });
    lanes.forEach((lane, i) => lane.group.setAttribute("transform", `translate(0 ${i * LANE + LANE / 2})`));
    layout();
  }

  function layout() {
    width = Math.max(160, plot.clientWidth - LABEL);
    pxPerMs = width / (settings.window * 1000);
    const height = lanes.length * LANE;
    plot.setAttribute("height", height + AXIS);
    for (const [name, value] of Object.entries({ x: LABEL, y: 0, width, height })) viewport.setAttribute(name, value);
    for (const call of calls) call.mark.setAttribute("x", call.sent * pxPerMs);
    lanesBox.replaceChildren();
    lanes.forEach((lane, i) => {
      const failure = lane.color === null;
      el("rect", { class: failure ? "lane-bg failure" : "lane-bg", x: 0, y: i * LANE + 1, width: LABEL + width, height: LANE - 2, rx: 3 }, lanesBox);
      if (!failure) el("rect", { x: 8, y: i * LANE + 8, width: 10, height: 10, rx: 2, fill: lane.color }, lanesBox);
      const text = el("text", { class: failure ? "lane-label failure" : "lane-label", x: failure ? 8 : 24, y: i * LANE + LANE / 2 }, lanesBox);
      text.textContent = clip(lane.label, 30);
      lane.count = el("tspan", { class: "count", dx: 8 }, text);
    });
    drawAxis(height);
    scrollView();
  }

  function drawAxis(height) {
    axis.replaceChildren();
    const span = settings.window;
    const step = [1, 2, 5, 10, 15, 20, 30, 60, 120].find((s) => span / s <= 7) || 300;
    for (let t = 0; t <= span + 1e-9; t += step) {
      const x = LABEL + width - t * 1000 * pxPerMs;
      el("line", { class: "axis-line", x1: x, x2: x, y1: 0, y2: height + 4 }, axis);
      el("text", { class: "axis-label", x, y: height + 16 }, axis).textContent = t === 0 ? "now" : `\u2212${t} s`;
    }
  }

  function scrollView() {
    scroll.setAttribute("transform", `translate(${width - viewNow() * pxPerMs} 0)`);
  }

  /** Drop what left the view, then bring the rows, tables and status line up to date. */
  function refresh() {
    const now = viewNow();
    const oldest = now - settings.window * 1000 - 1000;
    let lanesChanged = false;
    calls = calls.filter((call) => {
      if (call.sent >= oldest) return true;
      call.mark.remove();
      return false;
    });
    for (const pod of pods.values()) {
      if (pod.lane && !pod.lane.firstChild) {
        pod.lane.remove();
        pod.lane = null;
        lanesChanged = true;
      }
    }
    if (lanesChanged) arrangeLanes();
    for (const lane of lanes) {
      if (lane.count) lane.count.textContent = String(lane.group.childElementCount);
    }
    refreshPods(performance.now());
    refreshFailures();
    refreshStatus(now);
  }

  function refreshPods(now) {
    for (const [name, pod] of pods) {
      if (!pod.row) {
        pod.row = document.createElement("tr");
        pod.row.dataset.pod = name;
        const cells = ["name", "answers", "last", "code", "build"].map((c) => {
          const cell = document.createElement(c === "name" ? "th" : "td");
          cell.className = c;
          pod.row.append(cell);
          return cell;
        });
        const swatch = document.createElement("span");
        swatch.className = "swatch";
        swatch.style.background = pod.color;
        const label = document.createElement("span");
        label.className = "pod-name";
        label.textContent = name;
        cells[0].append(swatch, label);
        podRows.append(pod.row);
      }
      const ago = now - pod.last;
      pod.row.classList.toggle("gone", ago > GONE_AFTER);
      pod.row.querySelector(".answers").textContent = String(pod.answers);
      pod.row.querySelector(".last").textContent = ago < 1000 ? "now" : `${seconds(ago)} ago`;
      pod.row.querySelector(".code").textContent = pod.code;
      pod.row.querySelector(".build").textContent = builds.get(name) || "asking /version\u2026";
    }
  }

  function refreshFailures() {
    for (const [kind, failure] of failures) {
      const row = document.querySelector(`#failures tr[data-kind="${kind}"]`);
      row.classList.toggle("none", failure.count === 0);
      row.querySelector(".count").textContent = String(failure.count);
      row.querySelector(".last").textContent = failure.last;
    }
  }

  function refreshStatus(now) {
    const recent = calls.filter((call) => call.sent >= now - RECENT);
    const failed = recent.filter((call) => !("pod" in call));
    // Running, a call is in flight for a few ms each: only the ones waiting over a second are news. Paused,
    // every one still in flight is: its mark is still to come.
    const shownAfter = running ? 1000 : 0;
    const waiting = [...inFlight].filter((call) => performance.now() - call.sent >= shownAfter).length;
    const suffix = waiting > 0 ? ` \u00b7 ${waiting} waiting for an answer${running ? " over 1 s" : ""}` : "";
    let text;
    let state;
    if (!running) {
      [text, state] = [pausedFor, "paused"];
    } else if (recent.length === 0) {
      [text, state] = ["Waiting for the first answer\u2026", ""];
    } else if (failed.length === 0) {
      const by = new Set(recent.map((call) => call.pod)).size;
      [text, state] = [`Last 10 s: all ${recent.length} calls answered, by ${by} pod${by === 1 ? "" : "s"}`, "ok"];
    } else {
      const byKind = KINDS.map((kind) => [kind, failed.filter((call) => call.kind === kind).length])
        .filter(([, count]) => count > 0)
        .map(([kind, count]) => `${kind} ${count}`);
      [text, state] = [`Last 10 s: ${failed.length} of ${recent.length} calls failed (${byKind.join(", ")})`, "bad"];
    }
    statusLine.textContent = text + suffix;
    statusLine.className = `status ${state}`;
  }

  function askVersionWhenDue() {
    const now = performance.now();
    if (!running || versionAsking || now < versionDue) return;
    // Once a second while a pod in the table has no build yet, else every 10 s (a rollout brings new pods).
    const missing = [...pods.keys()].some((name) => !builds.has(name));
    versionDue = now + (missing ? 1000 : 10000);
    askVersion();
  }

  // --- controls -----------------------------------------------------------------------------------------

  function pause(why) {
    if (!running) return;
    running = false;
    pausedFor = why;
    stoppedAt = performance.now();
    pauseButton.textContent = "Resume";
    refresh();
  }

  function resume() {
    running = true;
    pausedFor = "";
    pauseButton.textContent = "Pause";
    restartClock();
    refresh();
  }

  function clearAll() {
    for (const call of calls) call.mark.remove();
    for (const pod of pods.values()) {
      if (pod.lane) pod.lane.remove();
      if (pod.row) pod.row.remove();
    }
    calls = [];
    pods = new Map();
    failures = new Map(KINDS.map((kind) => [kind, { count: 0, last: "" }]));
    arrangeLanes();
  }

  /** An input bound to one setting: clamped to the same bounds as the server's, kept in the address. */
  function control(name, changed) {
    const input = document.getElementById(name);
    const [low, high] = bounds[name];
    Object.assign(input, { min: low, max: high, value: settings[name], title: `${low} to ${high}` });
    input.addEventListener("change", () => {
      const value = Number(input.value);
      if (input.value.trim() !== "" && Number.isFinite(value)) {
        settings[name] = Math.min(Math.max(Math.round(value * 1000) / 1000, low), high);
        history.replaceState(null, "", "?" + new URLSearchParams(settings));
        changed();
      }
      input.value = settings[name];
    });
  }

  // --- start --------------------------------------------------------------------------------------------

  for (const kind of KINDS) kindLanes.set(kind, el("g", { "data-lane": kind }, scroll));
  control("rate", restartClock);
  control("window", layout);
  pauseButton.addEventListener("click", () => (running ? pause("Paused: Resume goes on") : resume()));
  document.getElementById("clear").addEventListener("click", clearAll);
  document.addEventListener("visibilitychange", () => {
    if (document.hidden) pause(HIDDEN);
    else if (pausedFor === HIDDEN) resume();
  });
  new ResizeObserver(layout).observe(plot);
  clearAll(); // the page starts as Clear leaves it
  setInterval(() => {
    refresh();
    askVersionWhenDue();
  }, 250);
  const animate = () => {
    scrollView();
    requestAnimationFrame(animate);
  };
  requestAnimationFrame(animate);
  if (document.hidden) pause(HIDDEN);
  else restartClock();
})();
