// Parking page: every lot's free spaces, live over server-sent events (event "lots").
import { ago, clock, num, t, translatePage } from "/static/i18n.js";
import { el, flash, placeInOrder, safeId } from "/static/dom.js";
import { Announcer, LiveSource } from "/static/live.js";
import { api } from "/static/town.js";
import { distanceM, LEVEL_COLOURS, TileMap } from "/static/map.js";

const list = document.getElementById("lots");
const empty = document.getElementById("lots-empty");
const status = document.getElementById("status");
const stateText = document.getElementById("state-text");
const updatedText = document.getElementById("updated-text");
const totalText = document.getElementById("total-text");
const cards = new Map();
let lots = [];
let lastChangeAt = null; // when the figures last changed (browser clock)
const announcer = new Announcer(document.getElementById("announce"));
const nearButton = document.getElementById("near");
const nearMessage = document.getElementById("near-message");
let here = null; // the visitor's position, only after a press on "Near me"
let map = null;

export function level(lot) {
  const known = lot.free + lot.occupied;
  if (!lot.capacity || known === 0) return "none";
  if (lot.free === 0) return "full";
  if (lot.free <= Math.max(3, Math.round(lot.capacity * 0.1))) return "few";
  return "many";
}

function createCard(lot) {
  const li = el("li", "card lot");
  li.dataset.lotId = lot.lot_id;
  const head = el("div", "card-head");
  const h = el("h2", "lot-name");
  h.id = safeId("lot", lot.lot_id);
  li.setAttribute("aria-labelledby", h.id);
  head.append(h, el("span", "badge"));
  const big = el("p", "big");
  big.append(el("strong", "free-count"), el("span", "free-of"));
  const meter = el("div", "meter");
  meter.setAttribute("aria-hidden", "true");
  meter.append(el("span", "occ"), el("span", "unk"), el("span", "free"));
  const meta = el("p", "meta");
  meta.append(el("span", "counts"), el("span", "distance"), el("span", "warn stale-text"));
  li.append(head, big, meter, meta);
  return li;
}

function fillCard(li, lot) {
  const lv = level(lot);
  const previous = li.querySelector(".free-count").textContent;
  const freeText = num(lot.free);
  li.dataset.level = lv;
  li.dataset.stale = String(Boolean(lot.stale));
  li.querySelector(".lot-name").textContent = lot.name || lot.lot_id;
  li.querySelector(".badge").textContent = t(`parking.level.${lv}`);
  li.querySelector(".free-count").textContent = freeText;
  li.querySelector(".free-of").textContent = t("parking.free_of", { capacity: num(lot.capacity) });
  const cap = Math.max(lot.capacity, 1);
  const [occ, unk, free] = li.querySelectorAll(".meter span");
  occ.style.width = `${(100 * lot.occupied) / cap}%`;
  unk.style.width = `${(100 * lot.unknown) / cap}%`;
  free.style.width = `${(100 * lot.free) / cap}%`;
  free.className = `free fill-${lv === "many" ? "ok" : lv === "few" ? "few" : "full"}`;
  const parts = [t("parking.occupied", { n: num(lot.occupied) })];
  if (lot.unknown > 0) parts.push(t("parking.unknown", { n: num(lot.unknown) }));
  parts.push(lot.updated_at ? t("updated", { time: clock(lot.updated_at) }) : t("updated.never"));
  li.querySelector(".counts").textContent = parts.join(" · ");
  const stale = li.querySelector(".stale-text");
  stale.textContent = lot.stale ? ` · ${t("stale.lot")}` : "";
  const km = distanceKm(lot);
  li.querySelector(".distance").textContent = km === null ? "" : ` · ${t("parking.distance", { km: num(km) })}`;
  if (previous && previous !== freeText) flash(li);
}

function distanceKm(lot) {
  if (!here || lot.lat === null || lot.lat === undefined || lot.lon === null || lot.lon === undefined) return null;
  return Math.round(distanceM(here, lot) / 100) / 10;
}

function byName(a, b) {
  return (a.name || a.lot_id).localeCompare(b.name || b.lot_id);
}

function byDistance(a, b) {
  const [da, db] = [distanceKm(a), distanceKm(b)];
  if (da === null || db === null) return da === null ? (db === null ? byName(a, b) : 1) : -1;
  return da - db || byName(a, b);
}

// Tapping a lot on the map shows its card: scrolled into view, marked and focused.
function showCard(lotId) {
  const li = cards.get(lotId);
  if (!li) return;
  for (const other of cards.values()) other.classList.remove("selected");
  li.classList.add("selected");
  li.tabIndex = -1;
  li.scrollIntoView({ block: "nearest" });
  li.focus({ preventScroll: true });
}

function drawMap() {
  if (!map) map = new TileMap(document.getElementById("lots-map"), {
    label: t("parking.map"), zoomIn: t("map.zoom_in"), zoomOut: t("map.zoom_out"),
  });
  const markers = lots.map((lot) => {
    const lv = level(lot);
    const [colour, textColour] = LEVEL_COLOURS[lv];
    const name = lot.name || lot.lot_id;
    const label = t("parking.marker", { name, free: num(lot.free), capacity: num(lot.capacity) });
    return {
      id: lot.lot_id, lat: lot.lat, lon: lot.lon, cls: "lot", colour, textColour, text: num(lot.free),
      title: label, label: `${label}. ${t("map.show")}`, data: { level: lv },
      onSelect: () => showCard(lot.lot_id),
    };
  });
  if (here) markers.push({ lat: here.lat, lon: here.lon, cls: "you", colour: "#1d6fd6", r: 8, title: t("map.you") });
  map.setLayers({ markers });
}

function render(data) {
  const incoming = Array.isArray(data) ? data : data.data || [];
  const before = JSON.stringify(lots.map((l) => [l.lot_id, l.free, l.occupied, l.unknown]));
  lots = [...incoming].sort(here ? byDistance : byName);
  const after = JSON.stringify(lots.map((l) => [l.lot_id, l.free, l.occupied, l.unknown]));
  if (before !== after) lastChangeAt = new Date();
  const nodes = lots.map((lot) => {
    let li = cards.get(lot.lot_id);
    if (!li) {
      li = createCard(lot);
      cards.set(lot.lot_id, li);
    }
    fillCard(li, lot);
    return li;
  });
  const ids = new Set(lots.map((l) => l.lot_id));
  for (const id of [...cards.keys()]) if (!ids.has(id)) cards.delete(id);
  placeInOrder(list, nodes);
  empty.hidden = lots.length > 0;
  const free = lots.reduce((s, l) => s + l.free, 0);
  totalText.textContent = lots.length ? t("parking.total", { free: num(free), lots: num(lots.length) }, free) : "";
  drawMap();
  document.body.dataset.updates = String(Number(document.body.dataset.updates || 0) + 1);
}

function newestUpdate() {
  let newest = null;
  for (const lot of lots) if (lot.updated_at && (!newest || lot.updated_at > newest)) newest = lot.updated_at;
  return newest;
}

function showState(connection) {
  const allStale = lots.length > 0 && lots.every((l) => l.stale);
  const state = connection === "live" && allStale ? "stale" : connection;
  status.dataset.state = state;
  const newest = newestUpdate();
  if (state === "offline") {
    stateText.textContent = lots.length ? t("state.offline", { time: clock(lastChangeAt || newest) })
      : t("state.offline.never");
  } else {
    stateText.textContent = t(`state.${state}`);
  }
  updatedText.textContent = lots.length && state !== "offline"
    ? t("updated", { time: `${clock(newest)} (${ago(newest)})` }) : "";
  announcer.say(status.dataset.state, `${stateText.textContent}. ${totalText.textContent}`, lots.length > 0);
}

// "Near me": the browser asks for the position only on this press; the position never leaves the page.
nearButton.addEventListener("click", () => {
  if (!navigator.geolocation) {
    nearMessage.textContent = t("parking.near.failed", { detail: "geolocation" });
    return;
  }
  nearMessage.textContent = t("parking.near.asking");
  navigator.geolocation.getCurrentPosition(
    (pos) => {
      here = { lat: pos.coords.latitude, lon: pos.coords.longitude };
      nearMessage.textContent = t("parking.near.done");
      render(lots);
      const nearest = lots.filter((l) => distanceKm(l) !== null).slice(0, 3);
      map.fit([here, ...nearest]);
    },
    (err) => { nearMessage.textContent = t("parking.near.failed", { detail: err.message || String(err.code) }); },
    { enableHighAccuracy: false, timeout: 15000, maximumAge: 60000 },
  );
});

translatePage();
const source = new LiveSource({
  streamUrl: api("/api/v1/parking/stream"),
  snapshots: { lots: api("/api/v1/parking/lots") },
  events: { lots: render },
  onState: showState,
});
source.start();
