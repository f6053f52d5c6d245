// Operator page: the pickup plan of a service day as a list in route order, a route drawing and a CSV download.
// The operator key stays in sessionStorage (this tab only) and goes out as the X-API-Key header.
import { clock, num, t, translatePage } from "/static/i18n.js";
import { el } from "/static/dom.js";
import { apiFetch, problemDetail } from "/static/live.js";
import { keyForm, say, storedKey } from "/static/operator-key.js";
import { drawRoute, OTHER_COLOUR, WASTE_COLOURS } from "/static/route-map.js";
import { api } from "/static/town.js";

const planForm = document.getElementById("plan-form");
const dateInput = document.getElementById("date");
const csvButton = document.getElementById("csv");
const planMessage = document.getElementById("plan-message");
const planBox = document.getElementById("plan");
const stopsList = document.getElementById("stops");
const summary = document.getElementById("summary");
const mapRoot = document.getElementById("route-map");
const svg = document.getElementById("map");
const legend = document.getElementById("map-legend");

const waste = (type) => (type ? t(`waste.${type}`) : "–");
const pct = (v) => num(Math.round(v));

function localDate(d = new Date()) {
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

// The operator's corrections, sent with every request so that the plan, the drawing and the CSV agree.
const pins = new Set();
const skips = new Set();

function planUrl(format) {
  const q = new URLSearchParams({ date: dateInput.value, format });
  for (const id of pins) q.append("pin", id);
  for (const id of skips) q.append("skip", id);
  return api(`/api/v1/waste/pickups?${q}`);
}

function correct(siteId, add, remove) {
  remove.delete(siteId);
  if (add.has(siteId)) add.delete(siteId); else add.add(siteId);
  loadPlan();
}

async function authFailed(res) {
  if (res.status !== 401 && res.status !== 403) return false;
  say(planMessage, "");
  keyPanel.refused(await problemDetail(res));
  return true;
}

function stopLabel(s) {
  return `${s.seq}. ${s.name || s.site_id} (${waste(s.waste_type)}): ${t("pickups.fill", { pct: pct(s.expected_fill_pct) })}`;
}

function renderPlan(plan) {
  const stops = plan.data || [];
  summary.replaceChildren(
    el("li", "", t("pickups.bins", { n: num(stops.length) }, stops.length)),
    el("li", "", t("pickups.distance", { km: num(Math.round(plan.distance_km * 10) / 10) })),
    el("li", "", t("pickups.start", { time: clock(plan.start) })),
    el("li", "", t("pickups.hours", { h: num(Math.round(plan.crew_hours * 10) / 10) })),
    ...(pins.size ? [el("li", "", t("pickups.pinned", { n: [...pins].join(", ") }))] : []),
    ...(skips.size || (plan.skipped || []).length
      ? [el("li", "", t("pickups.skipped", { n: [...new Set([...skips, ...(plan.skipped || [])])].join(", ") }))] : []),
  );
  if (pins.size || skips.size) {
    const reset = el("button", "reset", t("pickups.reset"));
    reset.type = "button";
    reset.addEventListener("click", () => { pins.clear(); skips.clear(); loadPlan(); });
    summary.append(el("li"));
    summary.lastChild.append(reset);
  }
  stopsList.replaceChildren(...stops.map((s) => {
    const li = el("li");
    li.dataset.siteId = s.site_id;
    const seq = el("span", "seq", String(s.seq));
    seq.setAttribute("aria-hidden", "true");
    const name = el("span", "name", s.name || s.site_id);
    const fill = el("span", "fill", t("pickups.fill", { pct: pct(s.expected_fill_pct) }));
    const reason = s.note || (s.reason === "over_threshold" ? t("pickups.over")
      : t("pickups.predicted", { time: clock(s.predicted_full_at) }));
    const sub = el("span", "sub", [
      t("pickups.truck", { truck: s.truck }),
      waste(s.waste_type),
      t("pickups.fill_now", { now: pct(s.fill_pct), visit: pct(s.expected_fill_pct) }),
      clock(s.arrival), reason, `${num(Math.round(s.leg_km * 10) / 10)} km`,
    ].join(" · "));
    const pin = el("button", pins.has(s.site_id) ? "pin-bin on" : "pin-bin", t("pickups.pin"));
    pin.type = "button";
    pin.setAttribute("aria-pressed", String(pins.has(s.site_id)));
    pin.addEventListener("click", () => correct(s.site_id, pins, skips));
    const skip = el("button", "skip-bin", t("pickups.skip"));
    skip.type = "button";
    skip.addEventListener("click", () => correct(s.site_id, skips, pins));
    const actions = el("span", "actions");
    actions.append(pin, skip);
    li.append(seq, name, fill, sub, actions);
    return li;
  }));
  if (!stops.length) stopsList.replaceChildren(el("li", "empty", t("pickups.empty")));
  planBox.hidden = false; // visible first: the drawing adapts to its width
  drawRoute(mapRoot, svg, plan, {
    depotLabel: t("pickups.depot"),
    disposalLabel: t("pickups.disposal"),
    title: `${t("pickups.map")} ${plan.date}`,
    description: t("pickups.map.desc", { n: stops.length }),
    stopLabel,
    zoomIn: t("map.zoom_in"),
    zoomOut: t("map.zoom_out"),
  });
  const types = [...new Set(stops.map((s) => s.waste_type))];
  legend.replaceChildren(...types.map((type) => {
    const item = el("li");
    const sw = el("i");
    sw.style.background = WASTE_COLOURS[type] || OTHER_COLOUR;
    item.append(sw, document.createTextNode(waste(type)));
    return item;
  }));
}

async function loadPlan() {
  const key = storedKey();
  if (!key) {
    say(planMessage, t("pickups.key.missing"), "error");
    keyPanel.focus();
    return;
  }
  say(planMessage, t("pickups.loading"));
  let res;
  try {
    res = await apiFetch(planUrl("json"), key);
  } catch (err) {
    say(planMessage, t("pickups.error", { detail: String(err) }), "error");
    return;
  }
  if (await authFailed(res)) return;
  if (!res.ok) {
    say(planMessage, t("pickups.error", { detail: await problemDetail(res) }), "error");
    return;
  }
  const plan = await res.json();
  say(planMessage, plan.count ? `${t("pickups.bins", { n: num(plan.count) }, plan.count)}, ${plan.date}` : t("pickups.empty"));
  renderPlan(plan);
}

async function downloadCsv() {
  const key = storedKey();
  if (!key) { say(planMessage, t("pickups.key.missing"), "error"); return; }
  const res = await apiFetch(planUrl("csv"), key, "text/csv");
  if (await authFailed(res)) return;
  if (!res.ok) { say(planMessage, t("pickups.error", { detail: await problemDetail(res) }), "error"); return; }
  const url = URL.createObjectURL(await res.blob());
  const a = el("a");
  a.href = url;
  a.download = `pickups-${dateInput.value}.csv`;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
  say(planMessage, t("pickups.downloaded"));
}

translatePage();
const keyPanel = keyForm({
  missing: t("pickups.key.missing"),
  onKey: loadPlan,
  onForget: () => { planBox.hidden = true; },
});
const pinInput = document.getElementById("pin-id");
planForm.addEventListener("submit", (ev) => {
  ev.preventDefault();
  const id = pinInput.value.trim();
  if (id) { skips.delete(id); pins.add(id); pinInput.value = ""; }
  loadPlan();
});
csvButton.addEventListener("click", downloadCsv);

dateInput.value = new URLSearchParams(location.search).get("date") || localDate();
if (storedKey()) loadPlan();
else say(planMessage, t("pickups.key.missing"));
