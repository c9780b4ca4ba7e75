// Overview: the stations on a map of Indonesia (no tile server), the rivers between them, a
// sortable list beside it and the active incidents on top; live through Server-Sent Events.
"use strict";

(() => {
  const { t, el, api, age, levelBadge, levelName, LEVELS } = Siaga;
  const COLOURS = { NORMAL: "#2e7d32", WASPADA: "#f2b705", SIAGA: "#ef6c00", AWAS: "#c62828" };
  const rank = (s) => (s.level ? LEVELS.indexOf(s.level) : -1);
  let stations = [];
  const markers = new Map();
  let fitted = false;

  const map = L.map("map", { zoomSnap: 0.25, attributionControl: true, worldCopyJump: false });
  map.attributionControl.setPrefix(false);
  map.attributionControl.addAttribution("Natural Earth · Leaflet");
  map.setView([-2.5, 118], 5);
  const rivers = L.layerGroup().addTo(map);
  const points = L.layerGroup().addTo(map);

  async function loadOutlines() {
    const [countries, provinces] = await Promise.all([
      fetch("/static/vendor/naturalearth/countries.geojson").then((r) => r.json()),
      fetch("/static/vendor/naturalearth/provinces.geojson").then((r) => r.json()),
    ]);
    L.geoJSON(countries, {
      interactive: false,
      style: (f) => ({ color: "#8a9ba8", weight: 1, fillColor: f.properties.indonesia ? "#fbfaf4" : "#e4e6e1", fillOpacity: 1 }),
    }).addTo(map).bringToBack();
    L.geoJSON(provinces, {
      style: { color: "#9fb0bb", weight: 0.8, fill: false, dashArray: "3 3", className: "province" },
      onEachFeature: (f, layer) => layer.bindTooltip(f.properties.name, { sticky: true }),
    }).addTo(map);
    rivers.eachLayer((l) => l.bringToFront());
    points.eachLayer((l) => l.bringToFront());
  }

  function drawRivers() {
    rivers.clearLayers();
    const byId = new Map(stations.map((s) => [s.id, s]));
    for (const from of stations) {
      for (const link of from.downstream || []) {
        const to = byId.get(link.station);
        if (!to) continue;
        const hours = (link.travel_min / 60).toFixed(link.travel_min % 60 ? 1 : 0);
        L.polyline([[from.latitude, from.longitude], [to.latitude, to.longitude]], {
          color: "#1e6fb8", weight: 3, opacity: 0.75, className: "river",
        }).bindTooltip(escapeHtml(`${from.river || ""} ${from.name} → ${to.name} (${hours} h)`), { sticky: true })
          .addTo(rivers);
      }
    }
  }

  function drawMarkers() {
    const seen = new Set();
    for (const s of stations) {
      seen.add(s.id);
      const style = {
        radius: s.level && s.level !== "NORMAL" ? 9 : 7, color: s.stale ? "#555" : "#fff",
        weight: s.stale ? 2 : 1.5, dashArray: s.stale ? "2 2" : null,
        fillColor: COLOURS[s.level] || "#9e9e9e", fillOpacity: 0.95,
      };
      const value = s.value_cm === null || s.value_cm === undefined ? "–" : `${s.value_cm.toFixed(0)} cm`;
      const tip = `<b>${escapeHtml(s.name)}</b><br>${value} · ${escapeHtml(s.level_label || levelName(s.level))}`;
      let marker = markers.get(s.id);
      if (!marker) {
        marker = L.circleMarker([s.latitude, s.longitude], { ...style, className: "station-marker" }).addTo(points);
        marker.on("click", () => location.assign(`/stations/${encodeURIComponent(s.id)}`));
        markers.set(s.id, marker);
      } else {
        marker.setStyle(style);
      }
      marker.bindTooltip(tip);
      marker.getElement()?.setAttribute("data-station", s.id);
      marker.getElement()?.setAttribute("data-level", s.level || "none");
    }
    for (const [id, marker] of markers) if (!seen.has(id)) { points.removeLayer(marker); markers.delete(id); }
    if (!fitted && stations.length) {
      map.invalidateSize();
      map.fitBounds(L.latLngBounds(stations.map((s) => [s.latitude, s.longitude])).pad(0.15), { maxZoom: 9, animate: false });
      fitted = true;
    }
  }

  function escapeHtml(text) {
    return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
  }

  const sorters = {
    level: (a, b) => rank(b) - rank(a) || (b.value_cm ?? -1e9) - (a.value_cm ?? -1e9),
    trend: (a, b) => (b.trend_cm_h ?? -1e9) - (a.trend_cm_h ?? -1e9),
    stale: (a, b) => (b.stale_s ?? 1e12) - (a.stale_s ?? 1e12),
    name: (a, b) => a.name.localeCompare(b.name),
  };
  const sortSelect = document.getElementById("sort");
  sortSelect.value = new URLSearchParams(location.search).get("sort") || "level";
  sortSelect.addEventListener("change", () => { renderTable(); });

  const previous = new Map();
  function renderTable() {
    const rows = [...stations].sort(sorters[sortSelect.value] || sorters.level).map((s) => {
      const trend = s.trend_cm_h;
      const trendText = trend === null || trend === undefined ? "–" : `${trend > 0 ? "+" : ""}${trend.toFixed(1)}`;
      const changed = previous.has(s.id) && previous.get(s.id) !== s.ts;
      previous.set(s.id, s.ts);
      return el("tr", { "data-station": s.id, class: changed ? "flash" : null,
        onclick: () => location.assign(`/stations/${encodeURIComponent(s.id)}`) },
        el("td", {}, el("a", { class: "station-name", href: `/stations/${encodeURIComponent(s.id)}` }, s.name),
          el("div", { class: "sub" }, [s.river, s.regency].filter(Boolean).join(" · "))),
        el("td", { class: "num", "data-field": "value" }, s.value_cm === null || s.value_cm === undefined ? "–" : s.value_cm.toFixed(0)),
        el("td", {}, levelBadge(s.level, s.level_label)),
        el("td", { class: `num ${trend > 1 ? "rising" : trend < -1 ? "falling" : ""}`, "data-field": "trend" }, trendText),
        el("td", { "data-field": "stale" }, age(s.stale_s), s.stale ? el("div", { class: "stale-tag" }, t("stale")) : null));
    });
    document.getElementById("station-rows").replaceChildren(...rows);
    document.getElementById("station-count").textContent = `(${stations.length})`;
  }

  async function loadStations() {
    const body = await api("/api/v1/stations");
    stations = body.data;
    drawRivers();
    drawMarkers();
    renderTable();
  }

  async function loadIncidents() {
    const body = await api("/api/v1/incidents?active=true");
    const list = document.getElementById("active-incidents");
    if (!body.data.length) { list.replaceChildren(el("li", { class: "muted" }, t("overview.none_active"))); return; }
    const order = (i) => LEVELS.indexOf(i.level);
    list.replaceChildren(...[...body.data].sort((a, b) => order(b) - order(a)).map((i) =>
      el("li", { class: `sev-${i.level}`, "data-incident": i.id },
        levelBadge(i.level, i.level_label), " ",
        el("a", { href: `/stations/${encodeURIComponent(i.subject)}` }, nameOf(i.subject)), " · ",
        t(`kind.${i.kind}`), " · ", el("span", { class: "muted" }, i.detail || ""), " ",
        el("a", { href: `/incidents#incident-${i.id}` }, "→"))));
  }

  function nameOf(id) { return stations.find((s) => s.id === id)?.name || id; }

  const refreshStations = Siaga.debounce(() => loadStations().catch(() => null), 150);
  // A reading event carries the new level: apply it at once; trends and health come with a full
  // re-read, at most every 10 s, so that a thousand reporting stations do not mean a thousand reads.
  const refreshSlowly = Siaga.throttle(refreshStations, 10_000);
  const redraw = Siaga.debounce(() => { drawMarkers(); renderTable(); }, 50);
  function applyReading(event) {
    const station = stations.find((s) => s.id === event.station);
    if (!station) { refreshStations(); return; }
    if (station.ts && Date.parse(event.ts) <= Date.parse(station.ts)) return;
    Object.assign(station, {
      ts: event.ts, values: event.values, stale: false,
      stale_s: Math.max(0, (Date.now() - Date.parse(event.ts)) / 1000),
    });
    if (event.value_cm !== null && event.value_cm !== undefined) {
      Object.assign(station, { value_cm: event.value_cm, level: event.level, level_label: event.level_label });
    }
    redraw();
    refreshSlowly();
  }
  const refreshIncidents = Siaga.debounce(() => loadIncidents().catch(() => null), 300);

  loadOutlines().catch(() => null);
  Siaga.whoami();
  loadStations().then(loadIncidents).catch((error) => {
    if (error.status !== 401) Siaga.toast(t("error.load"));
  });
  Siaga.live({
    reading: applyReading,
    alert: () => { refreshIncidents(); refreshStations(); },
    incident: () => refreshIncidents(),
  });
  // Staleness grows while nobody publishes: re-read the list every minute.
  setInterval(refreshStations, 60_000);
})();
