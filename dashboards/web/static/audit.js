// Audit log: who changed what (incidents, silences, users, API keys, policies), when and from
// where, newest first, in pages of 100. Read-only: the API offers no way to change it.
"use strict";

(() => {
  const { t, el, api, formatTime } = Siaga;
  const list = document.getElementById("audit-list");
  const status = document.getElementById("audit-status");
  const more = document.getElementById("audit-more");
  let oldest = null;

  function say(text) { status.textContent = text; status.hidden = !text; }

  function card(entry) {
    const where = entry.regency || (entry.province ? t("scope.province", { name: entry.province }) : t("scope.deployment"));
    return el("li", { class: "card", "data-action": entry.action },
      el("div", { class: "card-head" },
        el("strong", {}, entry.actor), " ", t(`audit.${entry.action}`), " ",
        el("code", {}, entry.target)),
      el("div", { class: "muted" },
        formatTime(entry.at), " · ", where, " · ", t("audit.from", { ip: entry.client_ip })),
      entry.detail && entry.detail.comment ? el("div", {}, entry.detail.comment) : null);
  }

  async function load() {
    const params = new URLSearchParams({ limit: "100" });
    if (oldest !== null) params.set("before", String(oldest));
    try {
      const page = await api(`/api/v1/audit?${params}`);
      list.append(...page.data.map(card));
      if (page.data.length) oldest = page.data[page.data.length - 1].id;
      more.hidden = page.data.length < 100;
      say(list.children.length ? "" : t("audit.none"));
    } catch (error) {
      say(error.status === 403 ? t("audit.forbidden") : `${t("error.load")}: ${error.message}`);
    }
  }

  more.addEventListener("click", load);
  Siaga.whoami();
  load();
})();
