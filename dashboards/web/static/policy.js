// Notification policy of a regency: load the version in force as JSON, edit, save a new version.
// The API validates it as the policy file is; a refusal shows its reason and nothing changes.
"use strict";

(() => {
  const { t, el, api } = Siaga;
  const form = document.getElementById("policy-form");
  const regency = document.getElementById("policy-regency");
  const documentBox = document.getElementById("policy-document");
  const version = document.getElementById("policy-version");
  const error = document.getElementById("policy-error");
  const EMPTY = { recipients: [], groups: [], routes: [], default_groups: [], escalations: {} };

  function fail(text) { error.textContent = text; error.hidden = !text; }
  const path = () => `/api/v1/policies/${encodeURIComponent(regency.value.trim())}`;

  async function load() {
    fail("");
    try {
      const current = await api(path());
      documentBox.value = JSON.stringify(current.policy || EMPTY, null, 2);
      version.textContent = current.version
        ? t("policy.version", { n: current.version, by: current.created_by })
        : t("policy.file_default");
    } catch (e) {
      fail(e.status === 404 ? t("policy.not_yours") : e.message);
    }
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    fail("");
    let body;
    try { body = JSON.parse(documentBox.value); } catch (e) { fail(`JSON: ${e.message}`); return; }
    try {
      const saved = await api(path(), { method: "PUT", json: body });
      version.textContent = t("policy.version", { n: saved.version, by: saved.created_by });
      Siaga.toast(t("policy.saved"));
    } catch (e) {
      fail(e.status === 404 ? t("policy.not_yours") : e.message);
    }
  });
  document.getElementById("policy-load").addEventListener("click", load);

  (async () => {
    const me = await Siaga.whoami();
    let names = me.regencies || [];
    if (!names.length) {
      const stations = await api("/api/v1/stations").catch(() => ({ data: [] }));
      names = [...new Set(stations.data.map((s) => s.regency))].sort();
    }
    document.getElementById("policy-regencies").replaceChildren(...names.map((n) => el("option", { value: n })));
    if (names.length) { regency.value = names[0]; await load(); }
  })();
})();
