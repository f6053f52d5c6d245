// Parking page: every lot's free spaces, live over server-sent events (event "lots").
import { ago, clock, num, t, translatePage } from "/static/i18n.js";
import { el, flash, placeInOrder, safeId } from "/static/dom.js";
import { Announcer, LiveSource } from "/static/live.js";

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
  meta.append(el("span", "counts"), el("span", "warn stale-text"));
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
  if (previous && previous !== freeText) flash(li);
}

function render(data) {
  const incoming = Array.isArray(data) ? data : data.data || [];
  const before = JSON.stringify(lots.map((l) => [l.lot_id, l.free, l.occupied, l.unknown]));
  lots = [...incoming].sort((a, b) => (a.name || a.lot_id).localeCompare(b.name || b.lot_id));
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

translatePage();
const source = new LiveSource({
  streamUrl: "/api/v1/parking/stream",
  snapshots: { lots: "/api/v1/parking/lots" },
  events: { lots: render },
  onState: showState,
});
source.start();
