// One card per station with active incidents (overview, incidents and station pages): the
// station's worst state, its reasons folded inside, one primary action (Akui: acknowledge all of
// the station's active incidents) and the rest behind a menu; a bulk acknowledgement per regency.
"use strict";

const SiagaCards = (() => {
  const { t, el, api, formatTime, levelBadge, levelName, LEVELS, duration, rate, staleTag, number } = Siaga;
  const ACTIVE = new Set(["pending", "firing"]);
  const SILENCE_MIN = [30, 60, 120, 360, 720, 1440];
  const severity = (incident) => LEVELS.indexOf(incident.level);
  const stationOf = (incident) => incident.labels?.station || incident.subject;
  const isActive = (incident) => ACTIVE.has(incident.state);
  const cm = (value) => (value === null || value === undefined ? "–" : `${number(value, 0)} cm`);

  // Incidents by station, each station's worst first; stations by their worst incident.
  function byStation(incidents) {
    const groups = new Map();
    for (const incident of incidents) {
      const id = stationOf(incident);
      if (!groups.has(id)) groups.set(id, []);
      groups.get(id).push(incident);
    }
    const rank = (list) => Math.max(...list.filter(isActive).map(severity), -1);
    for (const list of groups.values()) {
      list.sort((a, b) => Number(isActive(b)) - Number(isActive(a)) || severity(b) - severity(a));
    }
    return [...groups.entries()].sort(([, a], [, b]) => rank(b) - rank(a) || (b[0].updated > a[0].updated ? 1 : -1));
  }

  function describe(incident, station, names, zone) {
    switch (incident.kind) {
      case "level": return t("reason.level", { value: cm(incident.value) });
      case "rate": return t("reason.rate", { rate: rate(station?.trend_cm_h) });
      case "upstream": {
        const source = incident.rule.startsWith("upstream:") ? incident.rule.slice("upstream:".length) : "";
        return t("reason.upstream", { name: names(source), value: cm(incident.value) });
      }
      case "forecast": return t("reason.forecast", { level: incident.level_label || levelName(incident.level) });
      case "no_data": return t("reason.no_data", { age: duration(station?.stale_s ?? (Date.now() - Date.parse(incident.opened)) / 1000) });
      case "sensor_fault": return t("reason.sensor_fault");
      default: return t(`kind.${incident.kind}`);
    }
  }

  function reason(incident, station, names, zone) {
    const parts = [describe(incident, station, names, zone)];
    // A wave arrives; a forecast level is reached: both at their expected time.
    const when = incident.kind === "forecast" ? "reason.reaches" : "reason.arrival";
    if (incident.expected_at && isActive(incident)) parts.push(t(when, { at: formatTime(incident.expected_at, zone) }));
    parts.push(isActive(incident)
      ? t("reason.since", { at: formatTime(incident.opened, zone) })
      : `${t("incidents.state.resolved")} ${formatTime(incident.resolved || incident.updated, zone)}`);
    return el("li", { id: `incident-${incident.id}`, "data-incident": incident.id, "data-kind": incident.kind, "data-state": incident.state },
      levelBadge(incident.level, incident.level_label), " ", parts.join(" · "),
      incident.acknowledged ? el("div", { class: "acked" }, "✔ ", t("incidents.acked_by", { by: incident.acknowledged.by, at: formatTime(incident.acknowledged.at, zone) }),
        incident.acknowledged.comment ? ` · “${incident.acknowledged.comment}”` : "") : null,
      incident.assignee ? el("div", { class: "assigned" }, t("incidents.assigned_to", { who: incident.assignee })) : null);
  }

  // Sends one change; the button is busy meanwhile, the page reloads its data afterwards.
  function act(button, path, json, done) {
    return changing(button, () => api(path, { json }), done);
  }

  // Runs send(), which changes something; the button is busy meanwhile, done() follows.
  async function changing(button, send, done) {
    button.disabled = true;
    try {
      await send();
      Siaga.toast(t("incidents.done"));
      await done();
    } catch (error) {
      Siaga.toast(error.status === 403 ? t("incidents.forbidden") : `${t("error.load")}: ${error.message}`);
    } finally {
      button.disabled = false;
    }
  }

  function form(name, fields, label, submit) {
    const node = el("form", { class: `menu-form ${name}`, "data-action": name }, ...fields, el("button", { type: "submit" }, label));
    node.addEventListener("submit", (event) => { event.preventDefault(); submit(node, node.querySelector("button")); });
    return node;
  }

  function menu(stationId, active, done) {
    const uid = `${stationId}-${Math.random().toString(36).slice(2, 7)}`;
    const field = (name, text, attrs) => [el("label", { for: `${name}-${uid}` }, text), el("input", { id: `${name}-${uid}`, name, ...attrs })];
    const comment = form("comment", field("comment", t("incidents.comment"), { maxlength: "2000", required: true }), t("card.ack_comment"),
      (node, button) => act(button, "/api/v1/incidents/acknowledge", { station: stationId, comment: node.comment.value }, done));
    const assign = form("assign", field("assignee", t("incidents.assignee"), { maxlength: "200", required: true, value: active.find((i) => i.assignee)?.assignee || "", autocomplete: "off" }),
      t("incidents.assign"), (node, button) => changing(button, async () => {
        for (const incident of active) await api(`/api/v1/incidents/${incident.id}/assign`, { json: { assignee: node.assignee.value } });
      }, done));
    const choices = SILENCE_MIN.map((minutes) => el("option", { value: String(minutes), selected: minutes === 60 }, duration(minutes * 60)));
    const silence = form("silence", [
      el("label", { for: `duration-${uid}` }, t("card.silence_for")), el("select", { id: `duration-${uid}`, name: "duration_min" }, ...choices),
      ...field("why", t("incidents.silence_why"), { maxlength: "2000", required: true }),
    ], t("incidents.silence"), (node, button) => act(button, "/api/v1/silences", {
      matchers: [{ name: "station", value: stationId, op: "=" }],
      duration_min: Number(node.duration_min.value), comment: node.why.value,
    }, done));
    return el("details", { class: "menu" }, el("summary", {}, t("card.more")), el("div", { class: "menu-body" }, comment, assign, silence));
  }

  /**
   * One station's card.
   * @param {string} stationId
   * @param {object[]} incidents the station's incidents, worst active first
   * @param {{station?: object, names: (id: string) => string, zone?: object, mayAct: boolean, done: () => Promise<void>, open?: boolean}} options
   */
  function card(stationId, incidents, { station, names, zone, mayAct, done, open }) {
    const active = incidents.filter(isActive);
    const worst = active[0] || incidents[0];
    const unacked = active.filter((i) => !i.acknowledged);
    const kinds = [...new Set(incidents.map((i) => t(`kind.${i.kind}`)))].join(", ");
    const now = [];
    if (station && (station.value_cm === null || station.value_cm === undefined)) {
      now.push(t("level.unknown"));
    } else if (station) {
      now.push(cm(station.value_cm));
      if (station.trend_cm_h !== null && station.trend_cm_h !== undefined) now.push(rate(station.trend_cm_h));
      now.push(Siaga.age(station.stale_s));
    }
    const actions = [];
    if (mayAct && active.length) {
      if (unacked.length) {
        const button = el("button", { type: "button", class: "primary", "data-action": "ack" }, t("incidents.ack"));
        button.addEventListener("click", () => act(button, "/api/v1/incidents/acknowledge", { station: stationId }, done));
        actions.push(button);
      }
      actions.push(menu(stationId, active, done));
    }
    if (active.length && !unacked.length) actions.unshift(el("span", { class: "acked" }, "✔ ", t("card.acked", { by: active[0].acknowledged.by })));
    return el("li", { class: `station-card sev-${active.length ? worst.level : "none"}`, id: `station-card-${stationId}`, "data-station": stationId,
      "data-level": active.length ? worst.level : "none", "data-unacked": unacked.length },
      el("div", { class: "card-head" },
        active.length ? levelBadge(worst.level, worst.level_label) : el("span", { class: "badge level-none" }, t("incidents.state.resolved")),
        el("a", { class: "station-name", href: `/stations/${encodeURIComponent(stationId)}` }, names(stationId)),
        now.length ? el("span", { class: "now" }, now.join(" · "), station?.stale ? [" ", staleTag()] : null) : null),
      el("details", { class: "reasons", open: open || null },
        el("summary", {}, t("card.reasons", { n: incidents.length }), el("span", { class: "muted" }, ` · ${kinds}`)),
        el("ul", {}, ...incidents.map((i) => reason(i, station, names, zone)))),
      actions.length ? el("div", { class: "card-actions" }, ...actions) : null);
  }

  /**
   * Cards for every station with incidents, grouped by regency (with a bulk acknowledgement
   * when more than one station there waits for one).
   */
  async function render(list, incidents, { stations, mayAct, done, empty, grouped = true }) {
    const names = (id) => stations.get(id)?.name || id;
    const groups = byStation(incidents);
    if (!groups.length) { list.replaceChildren(el("li", { class: "muted" }, empty)); return; }
    const zones = new Map(await Promise.all(groups.map(async ([id]) => [id, stations.has(id) ? await Siaga.zoneOf(stations.get(id)) : null])));
    const hash = location.hash.startsWith("#incident-") ? Number(location.hash.slice(10)) : null;
    const cardOf = ([id, list]) => card(id, list, { station: stations.get(id), names, zone: zones.get(id), mayAct, done,
      open: list.some((i) => i.id === hash) });
    if (!grouped) { list.replaceChildren(...groups.map(cardOf)); return; }
    const regencies = new Map();
    for (const group of groups) {
      const regency = stations.get(group[0])?.regency || group[1][0].labels?.regency || "";
      if (!regencies.has(regency)) regencies.set(regency, []);
      regencies.get(regency).push(group);
    }
    const sections = [];
    for (const [regency, members] of regencies) {
      const waiting = members.filter(([, list]) => list.some((i) => isActive(i) && !i.acknowledged)).length;
      let bulk = null;
      if (mayAct && regency && waiting > 1) {
        bulk = el("button", { type: "button", class: "bulk", "data-regency": regency }, t("card.ack_regency", { regency, n: waiting }));
        bulk.addEventListener("click", () => act(bulk, "/api/v1/incidents/acknowledge", { regency }, done));
      }
      sections.push(el("li", { class: "regency", "data-regency": regency },
        el("div", { class: "regency-head" }, el("h3", {}, regency || t("card.no_regency")), bulk),
        el("ul", { class: "station-cards" }, ...members.map(cardOf))));
    }
    list.replaceChildren(...sections);
    if (hash) document.getElementById(`incident-${hash}`)?.scrollIntoView();
  }

  // Whether someone is using a card's menu or typing: a live refresh must wait.
  const busy = () => Boolean(document.activeElement?.closest("form, details.menu[open]") || document.querySelector("details.menu[open]"));

  return { render, card, byStation, busy, isActive, stationOf };
})();
