// Profile: link a Telegram account with a one-time code (POST /api/v1/me/telegram/link-code).
"use strict";

(async () => {
  const { t, api, toast, whoami } = Siaga;
  const me = await whoami();
  document.getElementById("profile-who").textContent = me.name ? `${me.name} (${me.role})` : "";
  document.getElementById("link-code").addEventListener("click", async () => {
    try {
      const made = await api("/api/v1/me/telegram/link-code", { method: "POST", json: {} });
      document.getElementById("link-command").textContent = made.command;
      const until = new Date(made.expires).toLocaleTimeString(Siaga.config.lang === "en" ? "en-GB" : "id-ID",
        { hour: "2-digit", minute: "2-digit" });
      document.getElementById("code-expires").textContent = t("profile.valid_until", { at: until });
      document.getElementById("code-box").hidden = false;
    } catch (error) {
      toast(error.status === 403 ? t("profile.no_key") : t("error.load"));
    }
  });
  document.getElementById("unlink").addEventListener("click", async () => {
    await api("/api/v1/me/telegram", { method: "DELETE", json: {} });
    document.getElementById("code-box").hidden = true;
    toast(t("profile.unlinked"));
  });
})();
