// A route drawn from coordinates alone: equirectangular projection around the route's centre, fitted into the
// SVG's viewBox, with a scale bar and a north arrow. No map tiles, so it works offline.
const SVG = "http://www.w3.org/2000/svg";
const PAD = 34;
let W = 640;
let H = 460;
const M_PER_DEG_LAT = 111320;

export const WASTE_COLOURS = {
  residual: "#3d4650", paper: "#1d5fbf", packaging: "#8f6400", organic: "#7a4a1f", glass: "#1f7a3d",
};
export const OTHER_COLOUR = "#5b3fa6";

function node(tag, attrs = {}, text) {
  const n = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, String(v));
  if (text !== undefined) n.textContent = text;
  return n;
}

// lat/lon -> metres east/north of the first point's meridian/parallel, then fitted to the viewBox.
export function project(points) {
  const lat0 = points.reduce((s, p) => s + p.lat, 0) / points.length;
  const k = Math.cos((lat0 * Math.PI) / 180);
  const xy = points.map((p) => [p.lon * k * M_PER_DEG_LAT, p.lat * M_PER_DEG_LAT]);
  const xs = xy.map((p) => p[0]);
  const ys = xy.map((p) => p[1]);
  const [minX, maxX, minY, maxY] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  const spanX = Math.max(maxX - minX, 1);
  const spanY = Math.max(maxY - minY, 1);
  const scale = Math.min((W - 2 * PAD) / spanX, (H - 2 * PAD) / spanY); // px per metre
  const offX = (W - spanX * scale) / 2;
  const offY = (H - spanY * scale) / 2;
  return {
    scale,
    points: xy.map(([x, y]) => [offX + (x - minX) * scale, H - offY - (y - minY) * scale]),
  };
}

function niceLength(maxMetres) {
  const steps = [50, 100, 200, 250, 500, 1000, 2000, 2500, 5000, 10000, 20000, 50000];
  return steps.filter((s) => s <= maxMetres).pop() || steps[0];
}

export function drawRoute(svg, depot, stops, { depotLabel, title, description, stopLabel }) {
  // a narrow screen gets a smaller, squarer drawing area, so markers and numbers stay readable
  [W, H] = svg.clientWidth > 0 && svg.clientWidth < 480 ? [380, 380] : [640, 460];
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.replaceChildren(node("title", { id: "map-title" }, title), node("desc", { id: "map-desc" }, description));
  const all = [depot, ...stops];
  const { scale, points } = project(all);
  const grid = node("g", { class: "grid", "aria-hidden": "true" });
  for (let x = 40; x < W; x += 80) grid.append(node("line", { x1: x, y1: 0, x2: x, y2: H }));
  for (let y = 30; y < H; y += 80) grid.append(node("line", { x1: 0, y1: y, x2: W, y2: y }));
  svg.append(grid);

  const path = points.map(([x, y], i) => `${i ? "L" : "M"}${x.toFixed(1)},${y.toFixed(1)}`).join(" ");
  svg.append(node("path", { class: "route", d: path }));
  if (stops.length) {
    const [lx, ly] = points[points.length - 1];
    const [dx, dy] = points[0];
    svg.append(node("path", { class: "route leg-back", d: `M${lx.toFixed(1)},${ly.toFixed(1)} L${dx},${dy}` }));
  }

  stops.forEach((s, i) => {
    const [x, y] = points[i + 1];
    const g = node("g", { class: "stop", "data-seq": s.seq });
    g.append(node("circle", { cx: x, cy: y, r: 10, fill: WASTE_COLOURS[s.waste_type] || OTHER_COLOUR }));
    g.append(node("text", { x, y }, s.seq));
    g.append(node("title", {}, stopLabel(s)));
    svg.append(g);
  });

  const [dx, dy] = points[0];
  const dep = node("g", { class: "depot" });
  dep.append(node("rect", { x: dx - 8, y: dy - 8, width: 16, height: 16, rx: 2 }));
  dep.append(node("text", { x: dx + 12, y: dy - 10 }, depotLabel));
  dep.append(node("title", {}, depotLabel));
  svg.append(dep);

  // scale bar (bottom left) and north arrow (top right)
  const metres = niceLength((W / 4) / scale);
  const px = metres * scale;
  const bar = node("g", { class: "depot", "aria-hidden": "true" });
  bar.append(node("rect", { x: 14, y: H - 18, width: px, height: 4 }));
  bar.append(node("text", { x: 14, y: H - 24 }, metres >= 1000 ? `${metres / 1000} km` : `${metres} m`));
  bar.append(node("path", { d: `M${W - 22},34 L${W - 14},14 L${W - 6},34 Z`, fill: "#1b2128" }));
  bar.append(node("text", { x: W - 19, y: 48 }, "N"));
  svg.append(bar);
}
