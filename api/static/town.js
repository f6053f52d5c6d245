// The town a page belongs to, read from its own path (/t/{slug}/parking), and where that town's API lives.
// Every page calls the API through `api()`, so a town's page shows the town's data and the hub's page the hub's.
const match = /^\/t\/([a-z0-9][a-z0-9-]{0,39})(?=\/|$)/.exec(location.pathname);

export const town = match ? match[1] : null;

// "/api/v1/parking/lots" -> "/api/v1/t/{slug}/parking/lots" on a town's page; unchanged on the hub's.
export function api(path) {
  return town && path.startsWith("/api/v1/") ? `/api/v1/t/${town}/${path.slice("/api/v1/".length)}` : path;
}

// A page of the same town: "/buses" -> "/t/{slug}/buses".
export function page(path) {
  return town ? `/t/${town}${path}` : path;
}
