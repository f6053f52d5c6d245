// A live data source: a snapshot by fetch, then server-sent events; polling while the stream is down.
//
// The connection counts as healthy while the EventSource is open and has delivered something (data or the
// server's ping every 15 s) within `silenceMs`, or while polling succeeds. After `graceMs` unhealthy the state
// becomes "offline" and the page says so; the stream is reopened with a growing delay.

export class LiveSource {
  constructor({ streamUrl, snapshots, events, onState, silenceMs = 40000, graceMs = 4000, pollMs = 10000 }) {
    this.streamUrl = streamUrl;
    this.snapshots = snapshots; // {eventName: url answering what the event carries}
    this.events = events; // {eventName: (data) => void}
    this.onState = onState || (() => {});
    this.silenceMs = silenceMs;
    this.graceMs = graceMs;
    this.pollMs = pollMs;
    this.state = "connecting";
    this.es = null;
    this.lastStreamAt = 0;
    this.lastDataAt = 0;
    this.lastPollOkAt = 0;
    this.lastPollAt = 0;
    this.downSince = Date.now();
    this.retryMs = 1000;
    this.reopenAt = 0;
  }

  start() {
    this.poll();
    if ("EventSource" in window && this.streamUrl) this.open();
    this.timer = setInterval(() => this.tick(), 1000);
  }

  open() {
    if (this.es) this.es.close();
    const es = new EventSource(this.streamUrl);
    this.es = es;
    es.onopen = () => { this.lastStreamAt = Date.now(); this.retryMs = 1000; this.tick(); };
    es.onerror = () => {
      if (es.readyState === EventSource.CLOSED) this.scheduleReopen();
      this.tick();
    };
    es.addEventListener("ping", () => { this.lastStreamAt = Date.now(); this.tick(); });
    for (const [name, handler] of Object.entries(this.events)) {
      es.addEventListener(name, (ev) => {
        this.lastStreamAt = Date.now();
        this.lastDataAt = this.lastStreamAt;
        let data;
        try { data = JSON.parse(ev.data); } catch { return; }
        handler(data);
        this.tick();
      });
    }
  }

  scheduleReopen() {
    if (this.es) { this.es.close(); this.es = null; }
    this.reopenAt = Date.now() + this.retryMs;
    this.retryMs = Math.min(this.retryMs * 2, 10000);
  }

  async poll() {
    const started = Date.now();
    this.lastPollAt = started;
    try {
      const bodies = await Promise.all(Object.entries(this.snapshots).map(async ([name, url]) => {
        const res = await fetch(url, { headers: { Accept: "application/json" }, cache: "no-store" });
        if (!res.ok) throw new Error(String(res.status));
        return [name, await res.json()];
      }));
      this.lastPollOkAt = Date.now();
      if (this.es === null && this.reopenAt) this.reopenAt = Date.now(); // the server answers again: reconnect now
      // a stream event that arrived meanwhile is newer than this answer
      if (this.lastDataAt < started) for (const [name, body] of bodies) this.events[name](body);
    } catch {
      this.lastPollOkAt = 0;
    }
    this.tick();
  }

  streamHealthy(now) {
    return this.es !== null && this.es.readyState === EventSource.OPEN && now - this.lastStreamAt < this.silenceMs;
  }

  tick() {
    const now = Date.now();
    if (this.es === null && this.streamUrl && "EventSource" in window && now >= this.reopenAt && this.reopenAt) {
      this.reopenAt = 0;
      this.open();
    }
    if (this.es && this.es.readyState === EventSource.OPEN && now - this.lastStreamAt >= this.silenceMs) {
      this.scheduleReopen(); // open but silent: the connection is dead somewhere on the way
    }
    const streaming = this.streamHealthy(now);
    if (!streaming && now - this.lastPollAt >= this.pollMs) this.poll();
    const polling = this.lastPollOkAt > 0 && now - this.lastPollOkAt < 2 * this.pollMs + 1000;
    let state;
    if (streaming || (polling && !this.streamUrl)) {
      state = "live";
      this.downSince = 0;
    } else {
      if (!this.downSince) this.downSince = now;
      if (polling) state = "live";
      else state = now - this.downSince >= this.graceMs ? "offline" : this.state === "live" ? "live" : "connecting";
    }
    if (state !== this.state) this.state = state;
    this.onState(state);
  }
}

export function apiFetch(url, key, accept = "application/json") {
  const headers = { Accept: accept };
  if (key) headers["X-API-Key"] = key;
  return fetch(url, { headers, cache: "no-store" });
}

export async function problemDetail(res) {
  try {
    const body = await res.json();
    return body.detail || body.title || `HTTP ${res.status}`;
  } catch {
    return `HTTP ${res.status}`;
  }
}

// A polite live region: screen readers hear the state when it changes and the figures at most once per
// `everyMs` (not on every update), and nothing before the first data unless the connection is down.
export class Announcer {
  constructor(node, everyMs = 60000) {
    this.node = node;
    this.everyMs = everyMs;
    this.last = { at: 0, text: "", state: "" };
  }

  say(state, summary, haveData) {
    if (!haveData && state !== "offline") return;
    const now = Date.now();
    const due = state !== this.last.state || now - this.last.at >= this.everyMs;
    if (due && summary !== this.last.text) {
      this.node.textContent = summary;
      this.last = { at: now, text: summary, state };
    }
  }
}
