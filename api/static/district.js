// District page: every town with its live figures (GET /api/v1/district), refreshed every 30 s.
import { clock, num, t, translatePage } from "/static/i18n.js";
import { el, placeInOrder, safeId } from "/static/dom.js";

const list = document.getElementById("towns");
const message = document.getElementById("district-message");
const cards = new Map();
const REFRESH_MS = 30000;

function figure(label, value) {
  const p = el("p", "meta");
  p.append(el("strong", null, value), document.createTextNode(` ${label}`));
  return p;
}

function card(town) {
  const li = cards.get(town.slug) || el("li", "card town");
  cards.set(town.slug, li);
  li.dataset.town = town.slug;
  li.replaceChildren();
  const head = el("div", "card-head");
  const h = el("h2", "town-name");
  h.id = safeId("town", town.slug);
  li.setAttribute("aria-labelledby", h.id);
  const link = el("a", null, town.title); // textContent: a town's name is its operator's text
  link.href = town.links.parking;
  h.append(link);
  head.append(h);
  const p = town.parking;
  const b = town.buses;
  const w = town.waste;
  li.append(
    head,
    figure(t("district.free", { capacity: num(p.capacity) }), num(p.free)),
    figure(t("district.buses", { lines: num(b.lines) }), num(b.vehicles_in_service)),
    figure(t("district.load"), b.occupancy_pct === null ? "–" : `${num(b.occupancy_pct)} %`),
    figure(t("district.bins", { bins: num(w.bins) }), num(w.over_threshold)),
  );
  const links = el("p", "meta");
  const parking = el("a", null, t("nav.parking"));
  parking.href = town.links.parking;
  const buses = el("a", null, t("nav.buses"));
  buses.href = town.links.buses;
  links.append(parking, document.createTextNode(" · "), buses);
  if (p.updated_at) links.append(document.createTextNode(` · ${t("updated", { time: clock(p.updated_at) })}`));
  li.append(links);
  return li;
}

async function load() {
  try {
    const res = await fetch("/api/v1/district", { headers: { Accept: "application/json" }, cache: "no-store" });
    if (!res.ok) throw new Error(String(res.status));
    const body = await res.json();
    placeInOrder(list, body.data.map(card));
    message.textContent = body.data.length ? "" : t("district.none");
  } catch (e) {
    message.textContent = t("district.error", { detail: String(e.message || e) });
  }
}

translatePage();
load();
setInterval(load, REFRESH_MS);
