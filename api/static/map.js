// The project's own small slippy map: Web Mercator raster tiles from the configured URL template (GET /api/v1/map)
// under one SVG layer of lines and markers. Without tiles (turned off, offline, blocked by the network) the same
// layer stands on a plain background, so a page never depends on the tile server.
// Keyboard: the map takes focus; arrow keys pan, + and - zoom; markers are buttons (Enter or Space selects).
import { api } from "/static/town.js";

const SVG = "http://www.w3.org/2000/svg";
const TILE = 256;
const MIN_ZOOM = 2;
const PAD = 36;

let configPromise = null;

// The tile settings, fetched once per page. A failed fetch means no tiles (the plain background).
export function mapConfig() {
  if (!configPromise) {
    configPromise = fetch(api("/api/v1/map"), { headers: { Accept: "application/json" } })
      .then((res) => (res.ok ? res.json() : { tiles: false }))
      .catch(() => ({ tiles: false }));
  }
  return configPromise;
}

// World pixel coordinates of a point at zoom z (Web Mercator, EPSG:3857).
export function worldPx(lat, lon, z) {
  const size = TILE * 2 ** z;
  const clamped = Math.max(-85.05112878, Math.min(85.05112878, lat));
  const s = Math.sin((clamped * Math.PI) / 180);
  return [((lon + 180) / 360) * size, (0.5 - Math.log((1 + s) / (1 - s)) / (4 * Math.PI)) * size];
}

// Great-circle distance in metres (for "near me").
export function distanceM(a, b) {
  const r = 6371008.8;
  const rad = Math.PI / 180;
  const dLat = (b.lat - a.lat) * rad;
  const dLon = (b.lon - a.lon) * rad;
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(a.lat * rad) * Math.cos(b.lat * rad) * Math.sin(dLon / 2) ** 2;
  return 2 * r * Math.asin(Math.sqrt(h));
}

function svgNode(tag, attrs = {}, text) {
  const n = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) n.setAttribute(k, String(v));
  if (text !== undefined) n.textContent = text;
  return n;
}

const located = (p) => p && Number.isFinite(p.lat) && Number.isFinite(p.lon);

export class TileMap {
  // root: an empty element that becomes the map; svg: an optional existing <svg> to use as the marker layer.
  constructor(root, { label, zoomIn = "Zoom in", zoomOut = "Zoom out", svg } = {}) {
    this.root = root;
    this.root.classList.add("tile-map");
    this.root.tabIndex = 0;
    this.root.setAttribute("role", "group");
    if (label) this.root.setAttribute("aria-label", label);
    this.tiles = document.createElement("div");
    this.tiles.className = "tiles";
    this.tiles.setAttribute("aria-hidden", "true");
    this.svg = svg || svgNode("svg");
    this.svg.classList.add("overlay");
    const controls = document.createElement("div");
    controls.className = "zoom";
    this.zoomInButton = this._button("+", zoomIn, () => this.zoomBy(1));
    this.zoomOutButton = this._button("−", zoomOut, () => this.zoomBy(-1));
    controls.append(this.zoomInButton, this.zoomOutButton);
    this.attribution = document.createElement("p");
    this.attribution.className = "attribution";
    this.root.append(this.tiles, this.svg, controls, this.attribution);
    this.config = { tiles: false, max_zoom: 18 };
    this.layers = { lines: [], markers: [] };
    this.z = 13;
    this.center = null; // world pixels at zoom z
    this.images = new Map();
    this._interaction();
    new ResizeObserver(() => this.render()).observe(this.root);
    this.ready = mapConfig().then((config) => {
      this.config = { max_zoom: 18, ...config };
      this._attribution();
      this.render();
    });
  }

  _button(text, label, onClick) {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = text;
    b.title = label;
    b.setAttribute("aria-label", label);
    b.addEventListener("click", (ev) => { ev.stopPropagation(); onClick(); });
    return b;
  }

  _attribution() {
    const { tiles, attribution, attribution_url: url } = this.config;
    this.root.dataset.tiles = tiles ? "on" : "off";
    this.attribution.hidden = !tiles || !attribution;
    if (!tiles || !attribution) return;
    if (url && /^https?:\/\//.test(url)) {
      const a = document.createElement("a");
      a.href = url;
      a.rel = "noopener";
      a.target = "_blank";
      a.textContent = attribution;
      this.attribution.replaceChildren(a);
    } else {
      this.attribution.textContent = attribution;
    }
  }

  _interaction() {
    let drag = null;
    this.root.addEventListener("pointerdown", (ev) => {
      if (ev.button !== 0 || ev.target.closest("button, .marker")) return;
      drag = { x: ev.clientX, y: ev.clientY, moved: false };
      this.root.setPointerCapture(ev.pointerId);
    });
    this.root.addEventListener("pointermove", (ev) => {
      if (!drag) return;
      const dx = ev.clientX - drag.x;
      const dy = ev.clientY - drag.y;
      if (!drag.moved && Math.hypot(dx, dy) < 3) return;
      drag.moved = true;
      drag.x = ev.clientX;
      drag.y = ev.clientY;
      this.panBy(-dx, -dy);
    });
    const end = () => { drag = null; };
    this.root.addEventListener("pointerup", end);
    this.root.addEventListener("pointercancel", end);
    this.root.addEventListener("keydown", (ev) => {
      if (ev.target !== this.root) return;
      const step = 64;
      const moves = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] };
      if (moves[ev.key]) this.panBy(...moves[ev.key]);
      else if (ev.key === "+" || ev.key === "=") this.zoomBy(1);
      else if (ev.key === "-") this.zoomBy(-1);
      else return;
      ev.preventDefault();
    });
  }

  size() {
    return [this.root.clientWidth || 320, this.root.clientHeight || 240];
  }

  // lines: [{points: [{lat, lon}], cls, colour, dashed}]
  // markers: [{id, lat, lon, dx, dy, cls, colour, text, textColour, shape: "circle" | "square", r, title, label,
  //   data, onSelect}]
  setLayers({ lines = [], markers = [] }) {
    this.layers = {
      lines: lines.map((l) => ({ ...l, points: l.points.filter(located) })).filter((l) => l.points.length > 1),
      markers: markers.filter(located),
    };
    if (!this.center) this.fit();
    else this.render();
  }

  // Zoom and centre so that every point (default: every marker and line point) is in view.
  fit(points) {
    const all = (points || [...this.layers.markers, ...this.layers.lines.flatMap((l) => l.points)]).filter(located);
    if (!all.length) return;
    const [w, h] = this.size();
    let z = Math.min(this.config.max_zoom || 18, 17);
    for (; z > MIN_ZOOM; z -= 1) {
      const xy = all.map((p) => worldPx(p.lat, p.lon, z));
      const spanX = Math.max(...xy.map((p) => p[0])) - Math.min(...xy.map((p) => p[0]));
      const spanY = Math.max(...xy.map((p) => p[1])) - Math.min(...xy.map((p) => p[1]));
      if (spanX <= w - 2 * PAD && spanY <= h - 2 * PAD) break;
    }
    const xy = all.map((p) => worldPx(p.lat, p.lon, z));
    const xs = xy.map((p) => p[0]);
    const ys = xy.map((p) => p[1]);
    this.z = z;
    this.center = [(Math.min(...xs) + Math.max(...xs)) / 2, (Math.min(...ys) + Math.max(...ys)) / 2];
    this.render();
  }

  zoomBy(dz) {
    if (!this.center) return;
    const z = Math.max(MIN_ZOOM, Math.min(this.config.max_zoom || 18, this.z + dz));
    const k = 2 ** (z - this.z);
    this.center = [this.center[0] * k, this.center[1] * k];
    this.z = z;
    this.render();
  }

  panBy(dx, dy) {
    if (!this.center) return;
    this.center = [this.center[0] + dx, this.center[1] + dy];
    this.render();
  }

  // Screen position (pixels from the map's top left) of a point.
  toScreen(p) {
    const [w, h] = this.size();
    const [x, y] = worldPx(p.lat, p.lon, this.z);
    return [x - this.center[0] + w / 2, y - this.center[1] + h / 2];
  }

  render() {
    if (!this.center) return;
    const [w, h] = this.size();
    this.svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
    this.svg.setAttribute("width", w);
    this.svg.setAttribute("height", h);
    this.root.dataset.zoom = String(this.z);
    this._renderTiles(w, h);
    this._renderLayers();
  }

  _renderTiles(w, h) {
    const template = this.config.tiles ? this.config.tile_url : "";
    const wanted = new Set();
    if (template) {
      const left = this.center[0] - w / 2;
      const top = this.center[1] - h / 2;
      const n = 2 ** this.z;
      for (let ty = Math.floor(top / TILE); ty <= Math.floor((top + h) / TILE); ty += 1) {
        if (ty < 0 || ty >= n) continue;
        for (let tx = Math.floor(left / TILE); tx <= Math.floor((left + w) / TILE); tx += 1) {
          const x = ((tx % n) + n) % n;
          const url = template.replace("{z}", this.z).replace("{x}", x).replace("{y}", ty)
            .replace("{s}", "abc"[(x + ty) % 3]).replace("{r}", "");
          const key = `${this.z}/${tx}/${ty}`;
          wanted.add(key);
          let img = this.images.get(key);
          if (!img) {
            img = document.createElement("img");
            img.alt = "";
            img.decoding = "async";
            img.draggable = false;
            img.width = TILE;
            img.height = TILE;
            img.addEventListener("error", () => { img.hidden = true; });
            img.src = url;
            this.images.set(key, img);
            this.tiles.append(img);
          }
          img.style.transform = `translate(${Math.round(tx * TILE - left)}px, ${Math.round(ty * TILE - top)}px)`;
        }
      }
    }
    for (const [key, img] of this.images) {
      if (!wanted.has(key)) {
        img.remove();
        this.images.delete(key);
      }
    }
  }

  _renderLayers() {
    const keep = [...this.svg.children].filter((c) => c.tagName === "title" || c.tagName === "desc");
    const lines = this.layers.lines.map((line) => {
      const d = line.points.map((p, i) => {
        const [x, y] = this.toScreen(p);
        return `${i ? "L" : "M"}${x.toFixed(1)},${y.toFixed(1)}`;
      }).join(" ");
      return svgNode("path", {
        class: `line ${line.cls || ""}`.trim(),
        d,
        stroke: line.colour,
        "stroke-dasharray": line.dashed ? "7 6" : undefined,
      });
    });
    const markers = this.layers.markers.map((m) => this._marker(m));
    this.svg.replaceChildren(...keep, ...lines, ...markers);
  }

  _marker(m) {
    const [px, py] = this.toScreen(m);
    const [x, y] = [px + (m.dx || 0), py + (m.dy || 0)]; // dx, dy: markers sharing a place side by side
    const r = m.r || 13;
    const g = svgNode("g", { class: `marker ${m.cls || ""}`.trim(), transform: `translate(${x.toFixed(1)},${y.toFixed(1)})` });
    for (const [k, v] of Object.entries(m.data || {})) g.dataset[k] = v;
    if (m.id !== undefined) g.dataset.id = m.id;
    if (m.shape === "square") {
      g.append(svgNode("rect", { x: -r * 0.75, y: -r * 0.75, width: r * 1.5, height: r * 1.5, rx: 2, fill: m.colour }));
    } else {
      g.append(svgNode("circle", { r, fill: m.colour }));
    }
    if (m.text !== undefined && m.text !== null && m.text !== "") {
      g.append(svgNode("text", { fill: m.textColour || "#ffffff" }, m.text));
    }
    if (m.title) g.append(svgNode("title", {}, m.title));
    if (m.onSelect) {
      g.setAttribute("tabindex", "0");
      g.setAttribute("role", "button");
      g.setAttribute("aria-label", m.label || m.title || "");
      g.addEventListener("click", () => m.onSelect(m));
      g.addEventListener("keydown", (ev) => {
        if (ev.key === "Enter" || ev.key === " ") {
          ev.preventDefault();
          m.onSelect(m);
        }
      });
    } else {
      g.setAttribute("aria-hidden", "true");
    }
    return g;
  }
}

// Colours readable with colour-vision deficiency (Okabe–Ito): blue = plenty, yellow = few, vermillion = none or
// full, grey = no data. Every marker also carries its figure as text, so no information is in the colour alone.
export const LEVEL_COLOURS = {
  many: ["#0072B2", "#ffffff"],
  few: ["#F0E442", "#1b2128"],
  full: ["#D55E00", "#ffffff"],
  none: ["#8a8f96", "#ffffff"],
  idle: ["#8a8f96", "#ffffff"],
};
