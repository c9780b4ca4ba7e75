// Station page: water level against its threshold bands (uPlot), rain, battery and signal, the
// station's incidents marked on the chart, and the wave coming from upstream stations.
"use strict";

(() => {
  const { t, el, api, formatTime, levelBadge, levelName, config, rate, skew, duration, staleTag, number } = Siaga;
  const id = config.station;
  const HOUR = 3600;
  const RANGES = { "6h": 6 * HOUR, "24h": 24 * HOUR, "3d": 72 * HOUR, "7d": 168 * HOUR, "30d": 720 * HOUR, "90d": 2160 * HOUR };
  // The API window per range keeps every chart under about 1,500 points.
  const WINDOWS = { "6h": "raw", "24h": "raw", "3d": "10m", "7d": "10m", "30d": "1h", "90d": "1h" };
  const BANDS = [
    ["NORMAL", "rgba(46,125,50,0.10)"], ["WASPADA", "rgba(242,183,5,0.22)"],
    ["SIAGA", "rgba(239,108,0,0.20)"], ["AWAS", "rgba(198,40,40,0.18)"],
  ];
  const LEVEL_COLOURS = { NORMAL: "#2e7d32", WASPADA: "#c99700", SIAGA: "#ef6c00", AWAS: "#c62828" };
  const SMALL = [
    ["rain_mm", "station.rain", "#1e6fb8", true], ["battery_v", "station.battery", "#6a1b9a", false],
    ["rssi_dbm", "station.signal", "#00796b", false],
  ];
  let station = null;
  let zone = null;
  let range = new URLSearchParams(location.search).get("range") || "24h";
  if (!(range in RANGES)) range = "24h";
  const charts = {};

  const iso = (seconds) => new Date(seconds * 1000).toISOString();
  const toSeconds = (value) => Date.parse(value) / 1000;

  async function readings(stationId, metric, start, end) {
    const query = new URLSearchParams({ metric, start: iso(start), end: iso(end), window: WINDOWS[range] });
    try {
      const body = await api(`/api/v1/stations/${encodeURIComponent(stationId)}/readings?${query}`);
      return body.data;
    } catch (error) {
      if (error.status === 401) throw error;
      return [];  // a metric this station does not report
    }
  }

  function bandsPlugin(thresholds) {
    return {
      hooks: {
        drawClear: (u) => {
          if (!thresholds) return;
          const { ctx, bbox } = u;
          const edges = [-1e9, thresholds.waspada_cm, thresholds.siaga_cm, thresholds.awas_cm, 1e9];
          ctx.save();
          BANDS.forEach(([, colour], index) => {
            const top = Math.max(bbox.top, u.valToPos(edges[index + 1], "y", true));
            const bottom = Math.min(bbox.top + bbox.height, u.valToPos(edges[index], "y", true));
            if (bottom <= top) return;
            ctx.fillStyle = colour;
            ctx.fillRect(bbox.left, top, bbox.width, bottom - top);
          });
          ctx.restore();
        },
      },
    };
  }

  function marksPlugin(incidents, now) {
    return {
      hooks: {
        draw: (u) => {
          const { ctx, bbox } = u;
          ctx.save();
          ctx.lineWidth = 2 * devicePixelRatio;
          const px = devicePixelRatio;
          ctx.font = `${11 * px}px sans-serif`;
          ctx.textAlign = "left";  // uPlot leaves the axes' alignment behind
          ctx.textBaseline = "alphabetic";
          // Each label goes on the first row where it overlaps no earlier label.
          const rowEnds = [];
          const mark = (seconds, colour, text, dash) => {
            const x = u.valToPos(seconds, "x", true);
            if (x < bbox.left || x > bbox.left + bbox.width) return;
            ctx.strokeStyle = colour;
            ctx.setLineDash(dash.map((d) => d * px));
            ctx.beginPath(); ctx.moveTo(x, bbox.top); ctx.lineTo(x, bbox.top + bbox.height); ctx.stroke();
            const width = ctx.measureText(text).width;
            const left = x + 3 * px + width > bbox.left + bbox.width ? x - 3 * px - width : x + 3 * px;
            let row = rowEnds.findIndex((end) => end + 6 * px < left);
            if (row < 0) row = rowEnds.length;
            rowEnds[row] = left + width;
            ctx.fillStyle = colour;
            ctx.fillText(text, left, bbox.top + (12 + 13 * row) * px);
          };
          const sorted = [...incidents].sort((a, b) => Date.parse(a.opened) - Date.parse(b.opened));
          for (const incident of sorted) {
            const colour = LEVEL_COLOURS[incident.level] || "#555";
            mark(toSeconds(incident.opened), colour, `⚑ ${t(`kind.${incident.kind}`)}`, [6, 4]);
            if (incident.expected_at && incident.state !== "resolved") {
              mark(toSeconds(incident.expected_at), colour, `▼ ${t("station.expected")}`, [2, 2]);
            }
          }
          const xNow = u.valToPos(now, "x", true);
          if (xNow > bbox.left && xNow < bbox.left + bbox.width) {
            ctx.strokeStyle = "#12344d"; ctx.lineWidth = devicePixelRatio; ctx.setLineDash([2 * devicePixelRatio, 3 * devicePixelRatio]);
            ctx.beginPath(); ctx.moveTo(xNow, bbox.top); ctx.lineTo(xNow, bbox.top + bbox.height); ctx.stroke();
          }
          ctx.restore();
        },
      },
    };
  }

  function width(node) { return Math.max(280, node.clientWidth - 8); }
  const tzDate = (seconds) => uPlot.tzDate(new Date(seconds * 1000), zone?.iana || "Asia/Jakarta");
  const locale = config.lang === "id" ? "id-ID" : "en-GB";
  const formatters = {};
  function formatter(kind) {
    const options = {
      time: { hour: "2-digit", minute: "2-digit", hourCycle: "h23" },
      day: { day: "numeric", month: "short" },
      full: { day: "numeric", month: "short", hour: "2-digit", minute: "2-digit", hourCycle: "h23" },
    }[kind];
    formatters[kind] ??= new Intl.DateTimeFormat(locale, { ...options, timeZone: zone?.iana || "Asia/Jakarta" });
    return formatters[kind];
  }
  // Axis ticks in the station's zone, 24-hour clock: dates at midnight or when ticks are days apart.
  const timeAxis = {
    values: (u, splits, axisIdx, foundSpace, foundIncr) => splits.map((s) => {
      const date = new Date(s * 1000);
      const parts = formatter("time").format(date);
      if (foundIncr >= 86400 || parts === "00.00" || parts === "00:00") return formatter("day").format(date);
      return parts;
    }),
  };
  const timeSeries = {
    label: t("station.time"),
    value: (u, v) => (v === null || v === undefined ? "–" : `${formatter("full").format(new Date(v * 1000))} ${zone?.abbreviation || ""}`),
  };

  function drawWater(series, incidents, start, end, now) {
    const node = document.getElementById("chart-water");
    charts.water?.destroy();
    const thresholds = station.thresholds;
    const data = uPlot.join(series.map((s) => s.table));
    const hasData = series.some((s) => s.table[0].length);
    document.getElementById("chart-empty").hidden = hasData;
    node.dataset.points = String(series[0].table[0].length);
    node.dataset.bands = thresholds ? "4" : "0";
    const opts = {
      width: width(node), height: window.innerWidth < 600 ? 260 : 360, tzDate,
      legend: { live: window.innerWidth >= 600 },  // a phone has no pointer to hover with
      cursor: { sync: { key: "siaga" } },
      scales: {
        x: { time: true, range: () => [start, end] },
        // From the data up to the next threshold above it: how far the water is from the next step.
        y: { range: (u, min, max) => {
          if (min === null || max === null) {
            return thresholds ? [0, thresholds.awas_cm * 1.1] : [0, 100];
          }
          let high = max;
          if (thresholds) {
            const edges = [thresholds.waspada_cm, thresholds.siaga_cm, thresholds.awas_cm];
            high = Math.max(max, edges.find((edge) => edge > max) ?? max);
          }
          const pad = Math.max(5, (high - min) * 0.08);
          return [Math.max(0, Math.floor(min - pad)), Math.ceil(high + pad)];
        } },
      },
      axes: [timeAxis, { label: t("station.water"), size: 60 }],
      series: [timeSeries, ...series.map((s) => ({
        label: s.label, stroke: s.colour, width: s.dash ? 1.5 : 2, dash: s.dash, spanGaps: s.spanGaps || false,
        value: (u, v) => (v === null || v === undefined ? "–" : `${v.toFixed(1)} cm`),
      }))],
      bands: forecastBands(series),
      plugins: [bandsPlugin(thresholds), marksPlugin(incidents, now)],
    };
    charts.water = new uPlot(opts, data, node);
    window.SiagaCharts = charts;  // for the browser test and the curious
    window.SiagaStation = station;
  }

  function drawSmall(metric, labelKey, colour, bars, table, start, end) {
    const node = smallNode(metric);
    charts[metric]?.destroy();
    delete charts[metric];
    if (!table[0].length) return;
    charts[metric] = new uPlot({
      width: width(node), height: 150, tzDate, cursor: { sync: { key: "siaga" } },
      legend: { live: window.innerWidth >= 600 },
      scales: { x: { time: true, range: () => [start, end] } },
      axes: [timeAxis, { label: t(labelKey), size: 60 }],
      series: [timeSeries, { label: t(labelKey), stroke: colour, fill: bars ? `${colour}55` : null,
        paths: bars ? uPlot.paths.bars({ size: [0.9, 12] }) : undefined }],
    }, table, node);
  }

  const smallNode = (metric) => document.getElementById(metric === "rain_mm" ? "chart-rain" : `chart-${metric}`);
  // Ask only for the metrics this station reports (its newest reading names them).
  const reports = (metric) => !station.values || metric in station.values;
  const asTable = (rows, shift = 0) => [rows.map((r) => toSeconds(r.ts) + shift), rows.map((r) => r.mean)];

  // The chart ends now, or at the newest reading when that is older than the whole range (a
  // replay, back-dated data, a silent station): a chart opens on the data, never empty.
  function anchor(now) {
    const newest = station.ts ? toSeconds(station.ts) : null;
    const back = newest !== null && newest < now - RANGES[range];
    const note = document.getElementById("chart-note");
    note.hidden = !back;
    if (back) note.textContent = t("station.to_newest", { at: formatTime(station.ts, zone) });
    document.getElementById("chart-water").dataset.anchor = back ? "newest" : "now";
    return back ? newest : now;
  }

  async function render() {
    const now = Date.now() / 1000;
    const last = anchor(now);
    const start = last - RANGES[range];
    const upstream = station.upstream || [];
    const lead = Math.max(0, ...upstream.map((l) => l.travel_min * 60));
    const end = last + Math.min(lead, RANGES[range] / 4) + RANGES[range] * 0.02;
    const pendingForecast = loadForecast();  // the forecast band, beside the readings
    pendingForecast.catch(() => {});  // awaited below; a 401 then fails render() as the rest do
    const [water, activeBody, historyBody, ...rest] = await Promise.all([
      readings(id, "water_level_cm", start, last + 60),
      api(`/api/v1/incidents?${new URLSearchParams({ station: id, active: "true" })}`).catch(() => ({ data: [] })),
      api(`/api/v1/incidents?${new URLSearchParams({ station: id, since: iso(start) })}`).catch(() => ({ data: [] })),
      ...upstream.map((link) => readings(link.station, "water_level_cm", start - link.travel_min * 60, last + 60)),
      ...SMALL.map(([metric]) => (reports(metric) ? readings(id, metric, start, last + 60) : Promise.resolve([]))),
    ]);
    // Every active incident, however old its last event, and whatever else the range holds.
    const incidentsBody = { data: [...new Map([...activeBody.data, ...historyBody.data].map((i) => [i.id, i])).values()] };
    const upstreamRows = rest.slice(0, upstream.length);
    const smallRows = rest.slice(upstream.length);
    const series = [{ label: t("station.water"), colour: "#0b5fa5", table: asTable(water) }];
    upstream.forEach((link, index) => {
      const name = upstreamNames.get(link.station) || link.station;
      series.push({ label: `${t("station.upstream")} ${name} (+${travel(link.travel_min)})`,
        colour: "#7b1fa2", dash: [6, 4], table: asTable(upstreamRows[index], link.travel_min * 60) });
    });
    const until = addForecast(series, await pendingForecast, end);
    drawWater(series, incidentsBody.data, start, until, now);
    // Show the small charts that have data first, so that each is sized to its final cell.
    SMALL.forEach(([metric], index) => { smallNode(metric).hidden = !smallRows[index].length; });
    SMALL.forEach(([metric, key, colour, bars], index) => drawSmall(metric, key, colour, bars, asTable(smallRows[index]), start, end));
    await renderIncidents(incidentsBody.data);
  }

  // -- the forecast beyond "now": its central line and its interval as a band ----------------
  async function loadForecast() {
    try {
      return await api(`/api/v1/stations/${encodeURIComponent(id)}/forecast`);
    } catch (error) {
      if (error.status === 401) throw error;
      return null;  // no model fitted for this station
    }
  }

  // Adds the forecast's three series (central, high, low) and returns the chart's new end.
  function addForecast(series, forecast, end) {
    const note = document.getElementById("forecast-note");
    note.hidden = !forecast;
    if (!forecast) return end;
    const issued = toSeconds(forecast.issued_at);
    const times = [issued, ...forecast.points.map((p) => toSeconds(p.at))];
    const column = (key) => [forecast.now_cm, ...forecast.points.map((p) => p[key])];
    const percent = Math.round(forecast.coverage * 100);
    series.push({ label: t("station.forecast"), colour: "#ef6c00", dash: [2, 3], spanGaps: true, table: [times, column("value_cm")] });
    for (const [band, key] of [["high", "high_cm"], ["low", "low_cm"]]) {
      series.push({ label: t(`station.forecast_${band}`, { percent }), colour: "rgba(239,108,0,0.35)", spanGaps: true, band, table: [times, column(key)] });
    }
    const at = (lead) => forecast.skill.find((s) => s.lead_h === lead)?.skill;
    const shown = (value) => (value === null || value === undefined ? "–" : value.toFixed(2));
    const covers = forecast.skill.map((s) => s.coverage).filter((v) => v !== null);
    note.textContent = forecast.method === "persistence"
      ? t("station.forecast_persistence", { reason: forecast.reason })
      : t("station.forecast_note", {
        hours: forecast.points.length, at: formatTime(forecast.issued_at, zone), version: forecast.model_version,
        skill3: shown(at(3)), skill6: shown(at(6)), percent,
        covers: covers.length ? `${Math.round((100 * covers.reduce((a, b) => a + b, 0)) / covers.length)} %` : "–",
      });
    return Math.max(end, times[times.length - 1] + 600);
  }

  // uPlot fills between the band's high and low series (indices count the time column as 0).
  function forecastBands(series) {
    const high = series.findIndex((s) => s.band === "high");
    const low = series.findIndex((s) => s.band === "low");
    return high < 0 || low < 0 ? [] : [{ series: [high + 1, low + 1], fill: "rgba(239,108,0,0.15)" }];
  }

  function travel(minutes) { return duration(minutes * 60); }

  let mayAct = false;
  async function renderIncidents(incidents) {
    const names = new Map([[station.id, station], ...[...upstreamNames].map(([sid, name]) => [sid, { name }])]);
    const active = incidents.filter(SiagaCards.isActive);
    await SiagaCards.render(document.getElementById("station-now"), active, {
      stations: names, mayAct, empty: t("overview.none_active"), grouped: false, done: reload,
    });
    const past = incidents.filter((i) => !SiagaCards.isActive(i));
    const list = document.getElementById("station-incidents");
    if (!past.length) { list.replaceChildren(el("li", { class: "muted" }, t("incidents.none"))); return; }
    list.replaceChildren(...past.map((i) => el("li", { class: `sev-${i.level}`, "data-incident": i.id },
      levelBadge(i.level, i.level_label), " ", t(`kind.${i.kind}`), " · ", formatTime(i.opened, zone), " – ",
      formatTime(i.resolved || i.updated, zone), " · ", t(`incidents.state.${i.state}`))));
  }

  function renderHeader() {
    document.getElementById("station-name").textContent = station.name;
    document.title = `${station.name} · Siaga`;
    document.getElementById("station-meta").textContent =
      [station.river, station.regency, zone ? `${t("station.zone")} ${zone.abbreviation}` : null].filter(Boolean).join(" · ");
    const latest = document.getElementById("latest");
    latest.replaceChildren(station.value_cm === null || station.value_cm === undefined ? "–" : `${number(station.value_cm, 0)} cm `,
      levelBadge(station.level, station.level_label));
    document.getElementById("latest-at").replaceChildren(station.ts ? `${formatTime(station.ts, zone)} · ${Siaga.age(station.stale_s)}` : "",
      ...(station.stale ? [" ", staleTag()] : []));
    const trend = station.trend_cm_h;
    const trendBox = document.getElementById("trend");
    trendBox.textContent = rate(trend);
    trendBox.className = `big ${trend > 1 ? "rising" : trend < -1 ? "falling" : ""}`;
    renderHealth(station.health);
    const thr = station.thresholds;
    const box = document.getElementById("thresholds");
    if (!thr) { box.textContent = "–"; return; }
    const labels = thr.labels || {};
    box.replaceChildren(...[["WASPADA", thr.waspada_cm], ["SIAGA", thr.siaga_cm], ["AWAS", thr.awas_cm]].map(([level, cm]) =>
      el("div", { class: "thr" }, levelBadge(level, labels[level]), el("span", {}, `${thr.inclusive ? "≥" : ">"} ${cm} cm`))));
  }

  function renderHealth(health) {
    const box = document.getElementById("health");
    if (!health) { box.textContent = "–"; return; }
    const rows = [
      ["health.completeness", health.completeness_pct, (v) => `${number(v, 0)} % (${health.readings_24h}/${health.expected_24h})`],
      ["health.battery", health.battery_v, (v) => `${number(v, 2)} V${health.battery_pct === null ? "" : ` (${number(health.battery_pct, 0)} %)`}`],
      ["health.signal", health.rssi_dbm, (v) => `${number(v, 0)} dBm${health.snr_db === null ? "" : ` · SNR ${number(health.snr_db, 1)} dB`}`],
      ["health.skew", health.clock_skew_s, skew],
    ].filter(([, value]) => value !== null && value !== undefined);
    const items = rows.map(([key, value, show]) => el("div", { class: "thr" }, el("span", {}, t(key)), el("span", {}, show(value))));
    if (health.time_basis === "back-dated") {
      items.unshift(el("div", { class: "note", "data-time-basis": "back-dated" }, t("health.backdated")));
    }
    box.replaceChildren(...items);
  }

  const upstreamNames = new Map();
  async function renderWave() {
    const upstream = station.upstream || [];
    const box = document.getElementById("wave");
    if (!upstream.length) { box.hidden = true; return; }
    const items = await Promise.all(upstream.map(async (link) => {
      const up = await api(`/api/v1/stations/${encodeURIComponent(link.station)}`).catch(() => null);
      if (!up) return null;
      upstreamNames.set(link.station, up.name);
      if (up.ts === null || up.value_cm === null) {
        return el("li", {}, el("a", { href: `/stations/${encodeURIComponent(up.id)}` }, up.name), ` (+${travel(link.travel_min)}): ${t("level.unknown")}`);
      }
      const arrival = new Date(Date.parse(up.ts) + link.travel_min * 60000);
      return el("li", { "data-upstream": up.id, "data-level": up.level || "none" },
        el("a", { href: `/stations/${encodeURIComponent(up.id)}` }, up.name), " ", levelBadge(up.level, up.level_label), " ",
        t("station.arrival", { name: "", value: up.value_cm.toFixed(0), level: up.level_label || levelName(up.level),
          at: formatTime(up.ts, zone), arrival: formatTime(arrival, zone), travel: travel(link.travel_min) }).replace(/^: /, ""));
    }));
    document.getElementById("wave-list").replaceChildren(...items.filter(Boolean));
    box.hidden = false;
  }

  async function load() {
    const me = await Siaga.whoami();
    mayAct = ["operator", "admin"].includes(me.role);
    station = await api(`/api/v1/stations/${encodeURIComponent(id)}`);
    zone = await Siaga.zoneOf(station);
    renderHeader();
    await renderWave();
    await render();
  }

  for (const button of document.querySelectorAll(".range button")) {
    button.setAttribute("aria-pressed", String(button.dataset.range === range));
    button.addEventListener("click", () => {
      range = button.dataset.range;
      for (const b of document.querySelectorAll(".range button")) b.setAttribute("aria-pressed", String(b === button));
      const params = new URLSearchParams(location.search);
      params.set("range", range);
      history.replaceState(null, "", `?${params}`);
      render();
    });
  }
  window.addEventListener("resize", Siaga.debounce(() => {
    for (const chart of Object.values(charts)) chart?.setSize({ width: width(chart.root.parentNode), height: chart.height });
  }, 200));

  load().catch((error) => {
    if (error.status === 404) document.getElementById("station-name").textContent = t("station.not_found");
    else if (error.status !== 401) Siaga.toast(t("error.load"));
  });
  const reload = Siaga.debounce(async () => {
    if (SiagaCards.busy()) { reload(); return; }  // not while someone uses the card's menu
    station = await api(`/api/v1/stations/${encodeURIComponent(id)}`);
    renderHeader();
    await renderWave();
    await render();
  }, 300);
  Siaga.live({
    reading: (event) => {
      const subject = event.station || event.station_id;
      if (!subject || subject === id || (station?.upstream || []).some((l) => l.station === subject)) reload();
    },
    alert: (event) => { if (!event.station || event.station === id || event.subject === id) reload(); },
  });
})();
