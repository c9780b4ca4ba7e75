// Incidents: active ones (or all), each with acknowledge, assign and silence forms. Changes go
// to the JSON API with the session's CSRF token; the list follows new alerts live.
"use strict";

(() => {
  const { t, el, api, formatTime, levelBadge } = Siaga;
  let activeOnly = true;
  const stations = new Map();
  const zones = new Map();

  async function zoneFor(subject) {
    const station = stations.get(subject);
    if (!station) return null;
    if (!zones.has(subject)) zones.set(subject, await Siaga.zoneOf(station));
    return zones.get(subject);
  }

  async function act(incident, path, json, form) {
    const button = form.querySelector("button");
    button.disabled = true;
    try {
      await api(path, { json });
      Siaga.toast(t("incidents.done"));
      await load();
    } catch (error) {
      Siaga.toast(error.status === 403 ? t("incidents.forbidden") : `${t("error.load")}: ${error.message}`);
    } finally {
      button.disabled = false;
    }
  }

  function forms(incident) {
    const ack = el("form", { class: "ack", "data-action": "ack" },
      el("input", { name: "comment", placeholder: t("incidents.comment"), "aria-label": t("incidents.comment"), maxlength: "2000" }),
      el("button", { type: "submit", class: "primary" }, t("incidents.ack")));
    ack.addEventListener("submit", (e) => {
      e.preventDefault();
      act(incident, `/api/v1/incidents/${incident.id}/ack`, { comment: ack.comment.value }, ack);
    });
    const assign = el("form", { class: "assign", "data-action": "assign" },
      el("input", { name: "assignee", placeholder: t("incidents.assignee"), "aria-label": t("incidents.assignee"), required: true, maxlength: "200", value: incident.assignee || "" }),
      el("button", { type: "submit" }, t("incidents.assign")));
    assign.addEventListener("submit", (e) => {
      e.preventDefault();
      act(incident, `/api/v1/incidents/${incident.id}/assign`, { assignee: assign.assignee.value }, assign);
    });
    const silence = el("form", { class: "silence", "data-action": "silence" },
      el("input", { name: "duration_min", type: "number", min: "1", max: "43200", value: "60", "aria-label": t("incidents.silence_min"), title: t("incidents.silence_min") }),
      el("input", { name: "comment", placeholder: t("incidents.silence_why"), "aria-label": t("incidents.silence_why"), maxlength: "2000", required: true }),
      el("button", { type: "submit" }, t("incidents.silence")));
    silence.addEventListener("submit", (e) => {
      e.preventDefault();
      const matchers = [
        { name: "station", value: incident.labels?.station || incident.subject, op: "=" },
        { name: "rule", value: incident.rule, op: "=" },
      ];
      act(incident, "/api/v1/silences", { matchers, duration_min: Number(silence.duration_min.value), comment: silence.comment.value }, silence);
    });
    return el("div", { class: "actions" }, incident.acknowledged ? null : ack, assign, silence);
  }

  async function card(incident) {
    const zone = await zoneFor(incident.subject);
    const name = stations.get(incident.subject)?.name || incident.subject;
    return el("li", { class: `incident-card sev-${incident.level}`, id: `incident-${incident.id}`, "data-incident": incident.id, "data-state": incident.state },
      el("header", {},
        levelBadge(incident.level, incident.level_label),
        el("a", { class: "station-name", href: `/stations/${encodeURIComponent(incident.subject)}` }, name),
        el("span", {}, t(`kind.${incident.kind}`)),
        el("span", { class: "muted" }, `${t("incidents.state." + incident.state)} · ${t("incidents.opened")} ${formatTime(incident.opened, zone)}`),
        incident.resolved ? el("span", { class: "muted" }, `${t("incidents.resolved")} ${formatTime(incident.resolved, zone)}`) : null),
      el("div", {}, incident.detail || ""),
      incident.expected_at ? el("div", {}, t("incidents.expected", { at: formatTime(incident.expected_at, zone) })) : null,
      incident.acknowledged ? el("div", { class: "acked" }, "✔ ", t("incidents.acked_by", { by: incident.acknowledged.by, at: formatTime(incident.acknowledged.at, zone) }),
        incident.acknowledged.comment ? ` — “${incident.acknowledged.comment}”` : "") : null,
      incident.assignee ? el("div", { class: "assigned" }, t("incidents.assigned_to", { who: incident.assignee })) : null,
      incident.state === "resolved" || !mayAct ? null : forms(incident));
  }

  let mayAct = false;
  async function load() {
    mayAct = ["operator", "admin"].includes((await Siaga.whoami()).role);
    if (!stations.size) {
      const body = await api("/api/v1/stations");
      for (const station of body.data) stations.set(station.id, station);
    }
    const body = await api(`/api/v1/incidents?active=${activeOnly}`);
    const list = document.getElementById("incident-list");
    if (!body.data.length) { list.replaceChildren(el("li", { class: "muted" }, t("incidents.none"))); return; }
    list.replaceChildren(...await Promise.all(body.data.map(card)));
    if (location.hash) document.querySelector(location.hash)?.scrollIntoView();
  }

  for (const button of document.querySelectorAll(".filter button")) {
    button.addEventListener("click", () => {
      activeOnly = button.dataset.active === "true";
      for (const b of document.querySelectorAll(".filter button")) b.setAttribute("aria-pressed", String(b === button));
      load();
    });
  }
  Siaga.whoami();
  load().catch((error) => { if (error.status !== 401) Siaga.toast(t("error.load")); });
  const refresh = Siaga.debounce(() => {
    // Do not wipe a form someone is typing in.
    if (document.activeElement?.closest("form")) return;
    load().catch(() => null);
  }, 500);
  Siaga.live({ alert: refresh, incident: refresh });
})();
