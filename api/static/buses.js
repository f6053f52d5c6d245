// Buses page: how full each line's buses are now (events "lines" and "vehicles" of /api/v1/buses/stream).
import { ago, clock, num, t, translatePage } from "/static/i18n.js";
import { el, flash, placeInOrder, safeId } from "/static/dom.js";
import { Announcer, LiveSource } from "/static/live.js";
import { api } from "/static/town.js";
import { LEVEL_COLOURS, TileMap } from "/static/map.js";

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
// Line colours (Okabe–Ito, distinguishable with colour-vision deficiency); vehicles carry their occupancy colour.
const LINE_COLOURS = ["#0072B2", "#009E73", "#CC79A7", "#56B4E9", "#000000", "#E69F00"];
let stops = [];
let map = null;

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

// A vehicle's card in the list, scrolled into view and focused (a tap on its marker).
function showVehicle(vehicleId) {
  const item = list.querySelector(`li.vehicle[data-vehicle-id="${CSS.escape(vehicleId)}"]`);
  if (!item) return;
  for (const other of list.querySelectorAll(".selected")) other.classList.remove("selected");
  const card = item.closest("li.card");
  card.classList.add("selected");
  item.tabIndex = -1;
  item.scrollIntoView({ block: "nearest" });
  item.focus({ preventScroll: true });
}

function drawMap() {
  if (!map) map = new TileMap(document.getElementById("bus-map"), {
    label: t("buses.map"), zoomIn: t("map.zoom_in"), zoomOut: t("map.zoom_out"),
  });
  const lineIds = [...new Set([...lines.map((l) => l.line_id), ...stops.map((s) => s.line_id)])]
    .filter(Boolean).sort((a, b) => a.localeCompare(b, undefined, { numeric: true }));
  const colourOf = (id) => LINE_COLOURS[lineIds.indexOf(id) % LINE_COLOURS.length];
  const byStop = new Map(stops.map((s) => [s.stop_id, s]));
  const mapLines = lineIds.map((id) => ({
    points: stops.filter((s) => s.line_id === id), colour: colourOf(id), cls: "bus-line",
  }));
  const stopMarkers = stops.map((s) => ({
    id: s.stop_id, lat: s.lat, lon: s.lon, r: 4, cls: "bus-stop", colour: "#ffffff", title: s.name || s.stop_id,
  }));
  const seen = new Map(); // vehicles at one stop side by side
  const vehicleMarkers = vehicles.filter((v) => v.in_service && byStop.has(v.stop_id)).map((v) => {
    const stop = byStop.get(v.stop_id);
    const k = seen.get(v.stop_id) || 0;
    seen.set(v.stop_id, k + 1);
    const lv = level(v.occupancy_pct);
    const [colour, textColour] = LEVEL_COLOURS[lv];
    const pct = v.occupancy_pct === null ? "–" : t("buses.pct", { pct: pctText(v.occupancy_pct) });
    const where = t("buses.at_stop", { stop: stop.name || stop.stop_id });
    const label = `${t("buses.marker", { name: vehicleName(v), pct })}, ${where}`;
    return {
      id: v.vehicle_id, lat: stop.lat, lon: stop.lon, dx: 14 + 28 * k, dy: -14, cls: "vehicle", colour,
      textColour, text: v.occupancy_pct === null ? "–" : pctText(v.occupancy_pct), title: label,
      label: `${label}. ${t("map.show")}`, data: { level: lv },
      onSelect: () => showVehicle(v.vehicle_id),
    };
  });
  map.setLayers({ lines: mapLines, markers: [...stopMarkers, ...vehicleMarkers] });
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
  drawMap();
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
fetch(api("/api/v1/buses/stops"), { headers: { Accept: "application/json" } })
  .then((res) => (res.ok ? res.json() : { data: [] }))
  .then((body) => { stops = rows(body); drawMap(); map.fit(); })
  .catch(() => {});
new LiveSource({
  streamUrl: api("/api/v1/buses/stream"),
  snapshots: { lines: api("/api/v1/buses/lines"), vehicles: api("/api/v1/buses/vehicles") },
  events: {
    lines: (body) => { lines = rows(body); render(); },
    vehicles: (body) => { vehicles = rows(body); render(); },
  },
  onState: showState,
}).start();
