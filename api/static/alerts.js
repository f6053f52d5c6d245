// Operator page: alerts, open ones first, filtered by state, rule, severity and site; acknowledge with a note; a
// device's radio figures and last uplinks one click away. The operator key is the pickup page's (sessionStorage).
import { clock, num, t, translatePage } from "/static/i18n.js";
import { el } from "/static/dom.js";
import { apiFetch, problemDetail } from "/static/live.js";
import { keyForm, say, storedKey } from "/static/operator-key.js";
import { api } from "/static/town.js";

const filterForm = document.getElementById("filter-form");
const ruleSelect = document.getElementById("rule");
const listMessage = document.getElementById("list-message");
const list = document.getElementById("alerts");

async function call(url, options = {}) {
  const key = storedKey();
  if (!key) {
    say(listMessage, t("alerts.key.missing"), "error");
    keyPanel.focus();
    return null;
  }
  const res = options.method
    ? await fetch(api(url), { ...options, headers: { "X-API-Key": key, "Content-Type": "application/json" } })
    : await apiFetch(api(url), key);
  if (res.status === 401 || res.status === 403) {
    keyPanel.refused(await problemDetail(res));
    return null;
  }
  if (!res.ok) {
    say(listMessage, t("alerts.error", { detail: await problemDetail(res) }), "error");
    return null;
  }
  return res.json();
}

function filters() {
  const form = new FormData(filterForm);
  const q = new URLSearchParams();
  for (const name of ["rule", "severity", "site"]) if (form.get(name)) q.set(name, form.get(name));
  const state = form.get("state");
  if (state && state !== "active") q.set("state", state);
  return { q, activeOnly: state === "active" };
}

async function loadRules() {
  const rules = await call("/api/v1/alert-rules");
  if (!rules) return;
  const chosen = ruleSelect.value;
  ruleSelect.replaceChildren(el("option", "", t("alerts.any")), ...rules.data.map((r) => {
    const o = el("option", "", r.rule_id);
    o.value = r.rule_id;
    return o;
  }));
  ruleSelect.firstElementChild.value = "";
  ruleSelect.value = chosen;
}

async function deviceDetails(box, dev) {
  const [radio, uplinks] = await Promise.all([
    call(`/api/v1/devices/${dev}/radio`),
    call(`/api/v1/devices/${dev}/uplinks?limit=10`),
  ]);
  if (!radio || !uplinks) return;
  const fmt = (v, d = 0) => (v === null || v === undefined ? "–" : num(Math.round(v * 10 ** d) / 10 ** d));
  const summary = el("p", "meta", t("alerts.radio", {
    n: fmt(radio.uplinks_24h), expected: fmt(radio.expected_24h), lost: fmt(radio.missing_f_cnt_24h),
    rssi: fmt(radio.rssi_avg), snr: fmt(radio.snr_avg, 1), seen: radio.last_seen ? clock(radio.last_seen) : "–",
  }));
  const readings = el("ul", "readings");
  readings.replaceChildren(...uplinks.data.map((u) => el("li", "", [
    clock(u.time), `f_cnt ${u.f_cnt ?? "–"}`, `${fmt(u.rssi)} dBm`, `SNR ${fmt(u.snr, 1)} dB`,
  ].join(" · "))));
  box.replaceChildren(summary, readings);
}

function alertItem(a) {
  const li = el("li", "card alert");
  li.id = `alert-${a.alert_id}`;
  li.dataset.state = a.state;
  li.dataset.severity = a.severity;
  const head = el("div", "card-head");
  head.append(el("h2", "", `${a.rule_id}: ${a.subject}`),
    el("span", "badge", `${t(`alerts.severity.${a.severity}`)} · ${t(`alerts.state.${a.state}`)}`));
  const sub = [t("alerts.since", { time: clock(a.opened_at) })];
  if (a.site_id) sub.push(t("alerts.at_site", { site: a.site_id }));
  if (a.acknowledged_by) sub.push(t("alerts.acked_by", { who: a.acknowledged_by, note: a.ack_note || "" }));
  if (a.resolved_at) sub.push(t("alerts.resolved_at", { time: clock(a.resolved_at) }));
  li.append(head, el("p", "big", a.message), el("p", "meta", sub.join(" · ")));
  const tools = el("div", "row");
  if (a.state === "open") {
    const label = el("label", "visually-hidden", t("alerts.note"));
    const note = el("input");
    note.type = "text";
    note.maxLength = 1000;
    note.id = label.htmlFor = `note-${a.alert_id}`;
    note.placeholder = t("alerts.note");
    const ack = el("button", "ack", t("alerts.ack"));
    ack.type = "button";
    ack.addEventListener("click", async () => {
      ack.disabled = true;
      const done = await call(`/api/v1/alerts/${a.alert_id}/ack`, { method: "POST", body: JSON.stringify({ note: note.value }) });
      if (done) { say(listMessage, t("alerts.acked", { id: a.alert_id })); li.replaceWith(alertItem(done)); }
      else ack.disabled = false;
    });
    tools.append(label, note, ack);
  }
  if (a.dev_eui) {
    const details = el("div", "device");
    const more = el("button", "secondary device-toggle", t("alerts.device"));
    more.type = "button";
    more.setAttribute("aria-expanded", "false");
    more.addEventListener("click", async () => {
      const open = more.getAttribute("aria-expanded") !== "true";
      more.setAttribute("aria-expanded", String(open));
      details.hidden = !open;
      if (open) await deviceDetails(details, a.dev_eui);
    });
    details.hidden = true;
    tools.append(more);
    li.append(tools, details);
  } else {
    li.append(tools);
  }
  return li;
}

let latestLoad = 0; // filters changed quickly: only the newest request's answer is shown, whatever order they come in

async function loadAlerts() {
  const mine = ++latestLoad;
  const { q, activeOnly } = filters();
  say(listMessage, t("alerts.loading"));
  const res = await call(`/api/v1/alerts?${q}`);
  if (!res || mine !== latestLoad) return;
  const rows = activeOnly ? res.data.filter((a) => a.state !== "resolved") : res.data;
  list.replaceChildren(...rows.map(alertItem));
  say(listMessage, rows.length ? t("alerts.count", { n: num(rows.length) }, rows.length) : t("alerts.none"));
  if (location.hash) document.getElementById(location.hash.slice(1))?.scrollIntoView();
}

translatePage();
const keyPanel = keyForm({
  missing: t("alerts.key.missing"),
  onKey: () => loadRules().then(loadAlerts),
  onForget: () => list.replaceChildren(),
});
filterForm.addEventListener("submit", (ev) => { ev.preventDefault(); loadAlerts(); });
for (const name of ["state", "rule", "severity"]) document.getElementById(name).addEventListener("change", loadAlerts);

if (storedKey()) loadRules().then(loadAlerts);
else say(listMessage, t("alerts.key.missing"));
