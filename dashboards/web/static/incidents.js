// Incidents: one card per station (active ones, or all), grouped by regency, each with its
// reasons folded inside, Akui for all of the station's incidents and the rest behind a menu.
// Changes go to the JSON API with the session's CSRF token; the list follows new alerts live.
"use strict";

(() => {
  const { t, api } = Siaga;
  let activeOnly = true;
  const stations = new Map();

  async function load() {
    const me = await Siaga.whoami();
    if (!stations.size) {
      const body = await api("/api/v1/stations");
      for (const station of body.data) stations.set(station.id, station);
    }
    const body = await api(`/api/v1/incidents?active=${activeOnly}`);
    await SiagaCards.render(document.getElementById("incident-list"), body.data, {
      stations, mayAct: ["operator", "admin"].includes(me.role), empty: t("incidents.none"), done: load,
    });
  }

  for (const button of document.querySelectorAll(".filter button")) {
    button.addEventListener("click", () => {
      activeOnly = button.dataset.active === "true";
      for (const b of document.querySelectorAll(".filter button")) b.setAttribute("aria-pressed", String(b === button));
      load();
    });
  }
  load().catch((error) => { if (error.status !== 401) Siaga.toast(t("error.load")); });
  const refresh = Siaga.debounce(() => {
    // Do not close a menu or wipe a form someone is using.
    if (SiagaCards.busy()) { refresh(); return; }
    load().catch(() => null);
  }, 500);
  Siaga.live({ alert: refresh, incident: refresh });
})();
