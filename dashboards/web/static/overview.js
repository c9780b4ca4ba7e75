// Overview: the stations on a map of Indonesia (no tile server), the rivers between them, a
// sortable list beside it and one card per station with active incidents on top; live through
// Server-Sent Events. A live reading is kept until the list has caught up with it.
"use strict";

(() => {
  const { t, el, api, age, levelBadge, levelName, LEVELS, rate, staleTag, config } = Siaga;
  const COLOURS = { NORMAL: "#2e7d32", WASPADA: "#f2b705", SIAGA: "#ef6c00", AWAS: "#c62828" };
  const rank = (s) => (s.level ? LEVELS.indexOf(s.level) : -1);
  let stations = [];
  let active = [];
  const markers = new Map();
  let fitted = false;
  // When the list was read (staleness grows from there) and how old its snapshot was then.
  let readAt = Date.now();
  let snapshotAge = 0;
  const staleAfter = config.stale_after_intervals || 2;

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
        L.polyline([[from.latitude, from.longitude], [to.latitude, to.longitude]], {
          color: "#1e6fb8", weight: 3, opacity: 0.75, className: "river",
        }).bindTooltip(escapeHtml(`${from.river || ""} ${from.name} → ${to.name} (${Siaga.duration(link.travel_min * 60)})`), { sticky: true })
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
    // A station in trouble is never hidden under a quiet neighbour (a rain gauge at the same post).
    for (const s of stations.filter((x) => rank(x) > 0).sort((a, b) => rank(a) - rank(b))) markers.get(s.id)?.bringToFront();
  }

  // The map opens on the stations that matter: those with active incidents, else every station.
  function fitMap() {
    if (fitted || !stations.length) return;
    const troubled = new Set(active.map(SiagaCards.stationOf));
    const shown = stations.filter((s) => troubled.has(s.id));
    const places = (shown.length ? shown : stations).map((s) => [s.latitude, s.longitude]);
    map.invalidateSize();
    map.fitBounds(L.latLngBounds(places).pad(places.length > 1 ? 0.2 : 0), { maxZoom: places.length > 1 ? 10 : 9, animate: false });
    document.getElementById("map").dataset.fitted = String(places.length);
    fitted = true;
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

  // Staleness as of now: the list's (as of its answer) plus the time since.
  function age_s(s) {
    return s.stale_s === null || s.stale_s === undefined ? null : s.stale_s + (Date.now() - (s.seenAt || readAt)) / 1000;
  }
  function isStale(s) {
    const seconds = age_s(s);
    return seconds === null || seconds > s.interval_s * staleAfter;
  }

  const previous = new Map();
  function renderTable() {
    for (const s of stations) { s.stale = isStale(s); }
    const rows = [...stations].sort(sorters[sortSelect.value] || sorters.level).map((s) => {
      const trend = s.trend_cm_h;
      const trendText = rate(trend);
      const changed = previous.has(s.id) && previous.get(s.id) !== s.ts;
      previous.set(s.id, s.ts);
      return el("tr", { "data-station": s.id, class: changed ? "flash" : null,
        onclick: () => location.assign(`/stations/${encodeURIComponent(s.id)}`) },
        el("td", {}, el("a", { class: "station-name", href: `/stations/${encodeURIComponent(s.id)}` }, s.name),
          el("div", { class: "sub" }, [s.river, s.regency].filter(Boolean).join(" · "))),
        el("td", { class: "num", "data-field": "value" }, s.value_cm === null || s.value_cm === undefined ? "–" : s.value_cm.toFixed(0)),
        el("td", {}, levelBadge(s.level, s.level_label)),
        el("td", { class: `num ${trend > 1 ? "rising" : trend < -1 ? "falling" : ""}`, "data-field": "trend" }, trendText),
        el("td", { "data-field": "stale", class: s.stale ? "is-stale" : null }, age(age_s(s)), s.stale ? [" ", staleTag()] : null));
    });
    document.getElementById("station-rows").replaceChildren(...rows);
    document.getElementById("station-count").textContent = `(${stations.length})`;
    document.getElementById("as-of").textContent = t("overview.as_of", { age: age(snapshotAge + (Date.now() - readAt) / 1000) });
  }

  // A live reading newer than what the list says is kept (the list is a shared snapshot and
  // may not have caught up yet): the row never goes back to an older reading.
  async function loadStations() {
    const body = await api("/api/v1/stations");
    const live = new Map(stations.filter((s) => s.liveTs).map((s) => [s.id, s]));
    readAt = Date.now();
    snapshotAge = body.age_s || 0;
    stations = body.data.map((s) => {
      const kept = live.get(s.id);
      if (kept && (!s.ts || Date.parse(kept.ts) > Date.parse(s.ts))) {
        return { ...s, ts: kept.ts, values: kept.values, value_cm: kept.value_cm, level: kept.level,
          level_label: kept.level_label, stale_s: kept.stale_s, seenAt: kept.seenAt, liveTs: kept.liveTs };
      }
      return s;
    });
    drawRivers();
    drawMarkers();
    renderTable();
  }

  let mayAct = false;
  async function loadIncidents() {
    const [me, body] = await Promise.all([Siaga.whoami(), api("/api/v1/incidents?active=true")]);
    mayAct = ["operator", "admin"].includes(me.role);
    active = body.data;
    const byId = new Map(stations.map((s) => [s.id, s]));
    await SiagaCards.render(document.getElementById("active-incidents"), active, {
      stations: byId, mayAct, empty: t("overview.none_active"), done: () => loadIncidents(),
    });
  }

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
      ts: event.ts, values: event.values, liveTs: event.ts, seenAt: Date.now(),
      stale_s: Math.max(0, (Date.now() - Date.parse(event.ts)) / 1000),
    });
    if (event.value_cm !== null && event.value_cm !== undefined) {
      Object.assign(station, { value_cm: event.value_cm, level: event.level, level_label: event.level_label });
    }
    redraw();
    refreshSlowly();
  }
  const refreshIncidents = Siaga.debounce(() => {
    if (SiagaCards.busy()) { refreshIncidents(); return; }  // not while someone uses a menu
    loadIncidents().catch(() => null);
  }, 300);

  window.SiagaOverview = { map, reload: loadStations };  // for the browser test and the curious
  loadOutlines().catch(() => null);
  loadStations().then(loadIncidents).then(fitMap).catch((error) => {
    if (error.status !== 401) Siaga.toast(t("error.load"));
  });
  Siaga.live({
    reading: applyReading,
    alert: () => { refreshIncidents(); refreshSlowly(); },
    incident: () => refreshIncidents(),
  });
  // Staleness grows while nobody publishes: ages move every 30 s, the list is re-read every minute.
  setInterval(() => { drawMarkers(); renderTable(); }, 30_000);
  setInterval(refreshStations, 60_000);
})();
