// Buses page: how full each line's buses are now (events "lines" and "vehicles" of /api/v1/buses/stream).
import { ago, clock, num, t, translatePage } from "/static/i18n.js";
import { el, flash, placeInOrder, safeId } from "/static/dom.js";
import { Announcer, LiveSource } from "/static/live.js";

const list = document.getElementById("lines");
const empty = document.getElementById("lines-empty");
const status = document.getElementById("status");
const stateText = document.getElementById("state-text");
const updatedText = document.getElementById("updated-text");
const totalText = document.getElementById("total-text");
const cards = new Map();
let lines = [];
let vehicles = [];
const announcer = new Announcer(document.getElementById("announce"));

export function level(pct) {
  if (pct === null || pct === undefined) return "none";
  if (pct >= 80) return "full";
  if (pct >= 50) return "few";
  return "many";
}

const pctText = (pct) => num(Math.round(pct));
// "5" -> "Line 5"; names that already say what they are ("Bus 60", "Tram 11") stay as they are
const SHORT = /^[0-9]+[A-Za-z]?$/;
const lineName = (line) => {
  const name = line.name || line.line_id;
  return SHORT.test(name) ? t("buses.line", { name }) : name;
};
const vehicleName = (v) => {
  const name = v.name || v.vehicle_id;
  return SHORT.test(name) ? t("buses.vehicle", { name }) : name;
};
const rows = (body) => (Array.isArray(body) ? body : body.data || []);

function meter(pct, lv) {
  const m = el("div", "meter");
  m.setAttribute("aria-hidden", "true");
  const bar = el("span", `fill-${lv === "many" ? "ok" : lv}`);
  bar.style.width = `${Math.min(100, Math.max(0, pct || 0))}%`;
  m.append(bar);
  return m;
}

function createCard(line) {
  const li = el("li", "card line");
  li.dataset.lineId = line.line_id;
  const head = el("div", "card-head");
  const h = el("h2", "line-name");
  h.id = safeId("line", line.line_id);
  li.setAttribute("aria-labelledby", h.id);
  head.append(h, el("span", "badge"));
  const big = el("p", "big");
  big.append(el("strong", "pct"), el("span", "pct-label"));
  const meta = el("p", "meta");
  const vh = el("h3", "visually-hidden", "");
  const ul = el("ul", "vehicles");
  li.append(head, big, el("div", "line-meter"), meta, vh, ul);
  return li;
}

function fillCard(li, line, own) {
  const idle = !line.vehicles;
  const lv = idle ? "idle" : level(line.occupancy_pct);
  const before = li.querySelector(".pct").textContent;
  li.dataset.level = lv;
  li.querySelector(".line-name").textContent = lineName(line);
  li.querySelector(".badge").textContent = t(`buses.level.${lv}`);
  const pct = idle || line.occupancy_pct === null ? "–" : pctText(line.occupancy_pct);
  li.querySelector(".pct").textContent = pct;
  li.querySelector(".pct-label").textContent = pct === "–" ? "" : t("buses.pct.label");
  li.querySelector(".line-meter").replaceChildren(meter(line.occupancy_pct, lv));
  const parts = idle ? [t("buses.idle.text")]
    : [t("buses.pax", { n: num(line.passengers || 0) }, line.passengers || 0)];
  if (line.updated_at) parts.push(t("updated", { time: clock(line.updated_at) }));
  li.querySelector(".meta").textContent = parts.join(" · ");
  li.querySelector("h3").textContent = t("buses.vehicles");
  const items = own.map((v) => {
    const vlv = level(v.occupancy_pct);
    const item = el("li", "vehicle");
    item.dataset.vehicleId = v.vehicle_id;
    item.dataset.level = vlv;
    const name = el("span", "vehicle-name", vehicleName(v));
    const figure = el("strong", "vehicle-pct", v.occupancy_pct === null ? "–"
      : t("buses.pct", { pct: pctText(v.occupancy_pct) }));
    const where = [t("buses.pax", { n: num(v.passengers || 0) }, v.passengers || 0)];
    if (v.stop_name || v.stop_id) where.push(t("buses.at_stop", { stop: v.stop_name || v.stop_id }));
    if (v.updated_at) where.push(ago(v.updated_at));
    item.append(name, figure, meter(v.occupancy_pct, vlv), el("span", "sub meta", where.join(" · ")));
    return item;
  });
  li.querySelector(".vehicles").replaceChildren(...items);
  li.querySelector(".vehicles").hidden = items.length === 0;
  if (before && before !== pct) flash(li);
}

function render() {
  const byLine = new Map();
  for (const v of vehicles) {
    if (!v.in_service) continue;
    if (!byLine.has(v.line_id)) byLine.set(v.line_id, []);
    byLine.get(v.line_id).push(v);
  }
  const sorted = [...lines].sort((a, b) =>
    (a.name || a.line_id).localeCompare(b.name || b.line_id, undefined, { numeric: true }));
  const nodes = sorted.map((line) => {
    let li = cards.get(line.line_id);
    if (!li) {
      li = createCard(line);
      cards.set(line.line_id, li);
    }
    const own = (byLine.get(line.line_id) || []).sort((a, b) =>
      vehicleName(a).localeCompare(vehicleName(b), undefined, { numeric: true }));
    fillCard(li, line, own);
    return li;
  });
  const ids = new Set(sorted.map((l) => l.line_id));
  for (const id of [...cards.keys()]) if (!ids.has(id)) cards.delete(id);
  placeInOrder(list, nodes);
  empty.hidden = lines.length > 0;
  const pax = lines.reduce((s, l) => s + (l.passengers || 0), 0);
  totalText.textContent = lines.length ? t("buses.total", { pax: num(pax), lines: num(lines.length) }) : "";
  document.body.dataset.updates = String(Number(document.body.dataset.updates || 0) + 1);
}

function showState(connection) {
  status.dataset.state = connection;
  let newest = null;
  for (const l of lines) if (l.updated_at && (!newest || l.updated_at > newest)) newest = l.updated_at;
  stateText.textContent = connection === "offline"
    ? (lines.length ? t("state.offline", { time: clock(newest) }) : t("state.offline.never"))
    : t(`state.${connection}`);
  updatedText.textContent = newest && connection !== "offline" ? t("updated", { time: `${clock(newest)} (${ago(newest)})` }) : "";
  announcer.say(status.dataset.state, `${stateText.textContent}. ${totalText.textContent}`, lines.length > 0);
}

translatePage();
new LiveSource({
  streamUrl: "/api/v1/buses/stream",
  snapshots: { lines: "/api/v1/buses/lines", vehicles: "/api/v1/buses/vehicles" },
  events: {
    lines: (body) => { lines = rows(body); render(); },
    vehicles: (body) => { vehicles = rows(body); render(); },
  },
  onState: showState,
}).start();
