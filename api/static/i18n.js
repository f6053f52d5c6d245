// Texts of the pages in German and English, chosen from the browser's languages (navigator.languages).
const TEXTS = {
  en: {
    "skip": "Skip to content",
    "nav.label": "Main",
    "nav.parking": "Parking",
    "nav.buses": "Buses",
    "nav.pickups": "Waste pickups",
    "footer.text": "Live data from the city's sensors, served by stadtpuls.",
    "footer.api": "API documentation",
    "footer.opendata": "Open data:",
    "parking.title": "Free parking spaces",
    "parking.lead": "Every car park and parking area with its free spaces right now, updated live.",
    "parking.list": "Car parks",
    "parking.free_of": "free of {capacity}",
    "parking.occupied": "{n} occupied",
    "parking.unknown": "{n} without signal",
    "parking.level.many": "Spaces free",
    "parking.level.few": "Few spaces",
    "parking.level.full": "Full",
    "parking.level.none": "No data",
    "parking.total": "{free} free spaces in {lots} car parks",
    "parking.total.one": "{free} free space in {lots} car parks",
    "parking.none": "No car parks are registered yet.",
    "parking.legend": "Bar",
    "legend.occupied": "occupied",
    "legend.unknown": "no signal",
    "legend.free": "free",
    "stale.lot": "Sensors not reporting: figures may be out of date",
    "updated": "updated {time}",
    "updated.never": "no data yet",
    "state.connecting": "Connecting…",
    "state.live": "Live",
    "state.stale": "Data may be out of date",
    "state.offline": "No live connection: showing data from {time}",
    "state.offline.never": "No connection to the server",
    "state.live.since": "Live, last update {time}",
    "ago.now": "just now",
    "ago.s": "{n} s ago",
    "ago.min": "{n} min ago",
    "ago.h": "{n} h ago",
    "buses.title": "How full are the buses?",
    "buses.lead": "Passengers on board per line and bus right now, from the door counters.",
    "buses.list": "Bus lines",
    "buses.line": "Line {name}",
    "buses.pax": "{n} passengers",
    "buses.pax.one": "{n} passenger",
    "buses.pct": "{pct} % full",
    "buses.pct.label": "% full",
    "buses.level.many": "Seats free",
    "buses.level.few": "Filling up",
    "buses.level.full": "Very full",
    "buses.level.none": "No data",
    "buses.level.idle": "Not in service",
    "buses.idle.text": "no bus of this line is counting passengers right now",
    "buses.vehicles": "Buses on this line",
    "buses.vehicle": "Bus {name}",
    "buses.at_stop": "at {stop}",
    "buses.none": "No bus lines are registered yet.",
    "buses.total": "{pax} passengers on {lines} lines",
    "pickups.title": "Pickup plan",
    "pickups.lead": "Bins to empty on the chosen day, in driving order from the depot.",
    "pickups.key": "Operator key",
    "pickups.key.save": "Use key",
    "pickups.key.forget": "Forget key",
    "pickups.key.saved": "Operator key in use (kept for this browser tab only).",
    "pickups.key.missing": "Enter the operator key to see the plan.",
    "pickups.key.bad": "The key was not accepted ({detail}).",
    "pickups.date": "Service day",
    "pickups.show": "Show plan",
    "pickups.csv": "Download CSV",
    "pickups.loading": "Loading the plan…",
    "pickups.error": "The plan could not be loaded: {detail}",
    "pickups.empty": "No bin needs emptying on this day.",
    "pickups.list": "Stops in route order",
    "pickups.map": "Route map",
    "pickups.map.desc": "Route from the depot through {n} bins and back, on the map.",
    "map.label": "Map",
    "map.zoom_in": "Zoom in",
    "map.zoom_out": "Zoom out",
    "map.you": "You are here",
    "map.show": "Show on the list",
    "parking.map": "Car parks on the map",
    "parking.marker": "{name}: {free} free of {capacity}",
    "parking.near": "Near me",
    "parking.near.asking": "Finding your position…",
    "parking.near.failed": "Your position is not available ({detail}).",
    "parking.near.done": "Sorted by distance from you.",
    "parking.distance": "{km} km away",
    "buses.map": "Buses and lines on the map",
    "buses.marker": "{name}: {pct}",
    "pickups.map.truck": "Truck {n}",
    "pickups.disposal": "Disposal site",
    "pickups.depot": "Depot",
    "pickups.start": "start at the depot {time}",
    "pickups.bins": "{n} bins",
    "pickups.bins.one": "{n} bin",
    "pickups.distance": "{km} km",
    "pickups.duration": "about {h} h",
    "pickups.fill": "{pct} %",
    "pickups.fill_now": "now {now} %, expected {visit} % at the visit",
    "pickups.over": "over threshold",
    "pickups.predicted": "predicted full {time}",
    "pickups.truck": "truck {truck}",
    "pickups.pin": "Pin",
    "pickups.pin_id": "Pin a bin (site id)",
    "pickups.skip": "Skip",
    "pickups.pinned": "pinned: {n}",
    "pickups.skipped": "skipped: {n}",
    "pickups.reset": "Clear pins and skips",
    "pickups.hours": "{h} crew hours",
    "pickups.downloaded": "CSV saved.",
    "waste.residual": "residual", "waste.paper": "paper", "waste.packaging": "packaging",
    "waste.organic": "organic", "waste.glass": "glass",
  },
  de: {
    "skip": "Zum Inhalt springen",
    "nav.label": "Hauptnavigation",
    "nav.parking": "Parken",
    "nav.buses": "Busse",
    "nav.pickups": "Abfuhr",
    "footer.text": "Live-Daten der Sensoren der Stadt, bereitgestellt von stadtpuls.",
    "footer.api": "API-Dokumentation",
    "footer.opendata": "Offene Daten:",
    "parking.title": "Freie Parkplätze",
    "parking.lead": "Alle Parkhäuser und Parkplätze mit ihren freien Plätzen – jetzt, live aktualisiert.",
    "parking.list": "Parkhäuser",
    "parking.free_of": "frei von {capacity}",
    "parking.occupied": "{n} belegt",
    "parking.unknown": "{n} ohne Signal",
    "parking.level.many": "Plätze frei",
    "parking.level.few": "Wenige frei",
    "parking.level.full": "Besetzt",
    "parking.level.none": "Keine Daten",
    "parking.total": "{free} freie Plätze in {lots} Parkhäusern",
    "parking.total.one": "{free} freier Platz in {lots} Parkhäusern",
    "parking.none": "Noch keine Parkhäuser erfasst.",
    "parking.legend": "Balken",
    "legend.occupied": "belegt",
    "legend.unknown": "ohne Signal",
    "legend.free": "frei",
    "stale.lot": "Sensoren melden sich nicht: Zahlen evtl. veraltet",
    "updated": "Stand {time}",
    "updated.never": "noch keine Daten",
    "state.connecting": "Verbinde…",
    "state.live": "Live",
    "state.stale": "Daten möglicherweise veraltet",
    "state.offline": "Keine Live-Verbindung: Stand {time}",
    "state.offline.never": "Keine Verbindung zum Server",
    "state.live.since": "Live, letzte Änderung {time}",
    "ago.now": "gerade eben",
    "ago.s": "vor {n} s",
    "ago.min": "vor {n} min",
    "ago.h": "vor {n} h",
    "buses.title": "Wie voll sind die Busse?",
    "buses.lead": "Fahrgäste an Bord je Linie und Bus – jetzt, aus den Türzählern.",
    "buses.list": "Buslinien",
    "buses.line": "Linie {name}",
    "buses.pax": "{n} Fahrgäste",
    "buses.pax.one": "{n} Fahrgast",
    "buses.pct": "{pct} % belegt",
    "buses.pct.label": "% belegt",
    "buses.level.many": "Plätze frei",
    "buses.level.few": "Gut gefüllt",
    "buses.level.full": "Sehr voll",
    "buses.level.none": "Keine Daten",
    "buses.level.idle": "Nicht im Einsatz",
    "buses.idle.text": "gerade zählt kein Bus dieser Linie Fahrgäste",
    "buses.vehicles": "Busse dieser Linie",
    "buses.vehicle": "Bus {name}",
    "buses.at_stop": "an {stop}",
    "buses.none": "Noch keine Buslinien erfasst.",
    "buses.total": "{pax} Fahrgäste auf {lines} Linien",
    "pickups.title": "Abfuhrplan",
    "pickups.lead": "Behälter, die am gewählten Tag geleert werden, in Fahrtreihenfolge ab dem Betriebshof.",
    "pickups.key": "Betreiber-Schlüssel",
    "pickups.key.save": "Schlüssel verwenden",
    "pickups.key.forget": "Schlüssel vergessen",
    "pickups.key.saved": "Betreiber-Schlüssel aktiv (nur in diesem Browser-Tab gespeichert).",
    "pickups.key.missing": "Bitte den Betreiber-Schlüssel eingeben, um den Plan zu sehen.",
    "pickups.key.bad": "Der Schlüssel wurde nicht akzeptiert ({detail}).",
    "pickups.date": "Abfuhrtag",
    "pickups.show": "Plan anzeigen",
    "pickups.csv": "CSV herunterladen",
    "pickups.loading": "Plan wird geladen…",
    "pickups.error": "Der Plan konnte nicht geladen werden: {detail}",
    "pickups.empty": "An diesem Tag muss kein Behälter geleert werden.",
    "pickups.list": "Haltepunkte in Fahrtreihenfolge",
    "pickups.map": "Routenkarte",
    "pickups.map.desc": "Route vom Betriebshof über {n} Behälter und zurück, auf der Karte.",
    "map.label": "Karte",
    "map.zoom_in": "Vergrößern",
    "map.zoom_out": "Verkleinern",
    "map.you": "Ihr Standort",
    "map.show": "In der Liste zeigen",
    "parking.map": "Parkhäuser auf der Karte",
    "parking.marker": "{name}: {free} frei von {capacity}",
    "parking.near": "In meiner Nähe",
    "parking.near.asking": "Standort wird ermittelt …",
    "parking.near.failed": "Ihr Standort ist nicht verfügbar ({detail}).",
    "parking.near.done": "Nach Entfernung von Ihnen sortiert.",
    "parking.distance": "{km} km entfernt",
    "buses.map": "Busse und Linien auf der Karte",
    "buses.marker": "{name}: {pct}",
    "pickups.map.truck": "Fahrzeug {n}",
    "pickups.disposal": "Entsorgungsanlage",
    "pickups.depot": "Betriebshof",
    "pickups.start": "Start am Betriebshof {time}",
    "pickups.bins": "{n} Behälter",
    "pickups.distance": "{km} km",
    "pickups.duration": "ca. {h} h",
    "pickups.fill": "{pct} %",
    "pickups.fill_now": "jetzt {now} %, beim Halt erwartet {visit} %",
    "pickups.over": "über Schwelle",
    "pickups.predicted": "voll erwartet {time}",
    "pickups.truck": "Fahrzeug {truck}",
    "pickups.pin": "Festhalten",
    "pickups.pin_id": "Behälter festhalten (Standort-ID)",
    "pickups.skip": "Auslassen",
    "pickups.pinned": "festgehalten: {n}",
    "pickups.skipped": "ausgelassen: {n}",
    "pickups.reset": "Festhalten und Auslassen zurücksetzen",
    "pickups.hours": "{h} Personalstunden",
    "pickups.downloaded": "CSV gespeichert.",
    "waste.residual": "Restmüll", "waste.paper": "Papier", "waste.packaging": "Verpackung",
    "waste.organic": "Bio", "waste.glass": "Glas",
  },
};

export function chooseLanguage(languages) {
  for (const tag of languages || []) {
    const base = String(tag).toLowerCase().split("-")[0];
    if (base in TEXTS) return base;
  }
  return "en";
}

const preferred = navigator.languages && navigator.languages.length ? navigator.languages : [navigator.language];
export const lang = chooseLanguage(preferred);
// numbers and times in the user's own regional variant of the chosen language (en-GB: 24-hour clock)
const locale = preferred.find((tag) => String(tag).toLowerCase().split("-")[0] === lang) || lang;

const plural = new Intl.PluralRules(lang);

// t("buses.pax", {n: 1}, 1) uses "buses.pax.one" where the language has it.
export function t(key, vars = {}, count = undefined) {
  const form = count === undefined ? null : `${key}.${plural.select(count)}`;
  const text = (form && TEXTS[lang][form]) ?? TEXTS[lang][key] ?? TEXTS.en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => (name in vars ? String(vars[name]) : `{${name}}`));
}

const numberFormat = new Intl.NumberFormat(locale);
export const num = (n) => numberFormat.format(n);

const timeFormat = new Intl.DateTimeFormat(locale, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
const dateTimeFormat = new Intl.DateTimeFormat(locale, {
  weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit",
});
export function clock(date) {
  if (!date) return "–";
  const d = date instanceof Date ? date : new Date(date);
  return Math.abs(Date.now() - d.getTime()) < 20 * 3600 * 1000 ? timeFormat.format(d) : dateTimeFormat.format(d);
}

export function ago(date) {
  if (!date) return t("updated.never");
  const s = Math.max(0, Math.round((Date.now() - new Date(date).getTime()) / 1000));
  if (s < 10) return t("ago.now");
  if (s < 90) return t("ago.s", { n: s });
  if (s < 90 * 60) return t("ago.min", { n: Math.round(s / 60) });
  return t("ago.h", { n: Math.round(s / 3600) });
}

// Fill every element carrying data-i18n (text) or data-i18n-attr="attr:key" from the chosen language.
export function translatePage(root = document) {
  document.documentElement.lang = lang;
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll("[data-i18n-attr]")) {
    for (const pair of el.dataset.i18nAttr.split(";")) {
      const [attr, key] = pair.split(":");
      el.setAttribute(attr.trim(), t(key.trim()));
    }
  }
  const title = document.querySelector("h1[data-i18n]");
  if (title) document.title = `${title.textContent} · stadtpuls`;
}
