// The pickup route on the map (map.js): each truck's route from the depot through its numbered stops and back,
// the depot and any disposal sites marked. Stops are coloured by waste type; the number is the visit order.
import { TileMap } from "/static/map.js";

export const WASTE_COLOURS = {
  residual: "#3d4650", paper: "#1d5fbf", packaging: "#8f6400", organic: "#7a4a1f", glass: "#1f7a3d",
};
export const OTHER_COLOUR = "#5b3fa6";
const ROUTE_COLOURS = ["#0f3d63", "#CC79A7", "#009E73", "#E69F00"];

let map = null;

export function drawRoute(root, svg, plan, { depotLabel, disposalLabel, title, description, stopLabel, zoomIn, zoomOut }) {
  if (!map) map = new TileMap(root, { svg, label: title, zoomIn, zoomOut });
  svg.querySelector("title").textContent = title;
  svg.querySelector("desc").textContent = description;
  const depot = { ...plan.depot, cls: "depot", shape: "square", colour: "#1b2128", title: depotLabel, r: 11 };
  const stops = plan.data || [];
  const trucks = [...new Set(stops.map((s) => s.truck ?? 1))];
  const lines = trucks.flatMap((truck, i) => {
    const own = stops.filter((s) => (s.truck ?? 1) === truck);
    const colour = ROUTE_COLOURS[i % ROUTE_COLOURS.length];
    const last = own[own.length - 1];
    return [
      { points: [plan.depot, ...own], colour, cls: "route" },
      ...(last ? [{ points: [last, plan.depot], colour, cls: "route leg-back", dashed: true }] : []),
    ];
  });
  const markers = [
    ...(plan.disposal_sites || []).map((d) => ({
      ...d, cls: "disposal", shape: "square", colour: "#7a4a1f", title: d.name || disposalLabel, r: 10,
    })),
    depot,
    ...stops.map((s) => ({
      lat: s.lat, lon: s.lon, cls: "stop", colour: WASTE_COLOURS[s.waste_type] || OTHER_COLOUR, text: String(s.seq),
      title: stopLabel(s), data: { seq: s.seq, siteId: s.site_id },
    })),
  ];
  map.setLayers({ lines, markers });
  map.fit();
}
