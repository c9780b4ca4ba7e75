// Siaga web UI: what every page shares (strings, API calls, times, live events).
"use strict";

const Siaga = (() => {
  const config = JSON.parse(document.getElementById("siaga-config").textContent);
  const LEVELS = ["NORMAL", "WASPADA", "SIAGA", "AWAS"];
  let session = null;

  function t(key, vars) {
    let text = config.t[key] ?? key;
    for (const [name, value] of Object.entries(vars || {})) text = text.replaceAll(`{${name}}`, value);
    return text;
  }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "class") node.className = value;
      else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value === true ? "" : value);
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  class ApiError extends Error {
    constructor(status, detail) { super(detail || `HTTP ${status}`); this.status = status; }
  }

  function toLogin() {
    const next = location.pathname + location.search;
    location.assign(`/login?next=${encodeURIComponent(next)}`);
  }

  async function api(path, options = {}) {
    const init = { credentials: "same-origin", headers: { Accept: "application/json" }, ...options };
    if (options.json !== undefined) {
      init.method = init.method || "POST";
      init.body = JSON.stringify(options.json);
      init.headers["Content-Type"] = "application/json";
      const me = await whoami();
      if (me && me.csrf_token) init.headers["X-CSRF-Token"] = me.csrf_token;
    }
    delete init.json;
    const response = await fetch(path, init);
    if (response.status === 401 && config.page !== "login") { toLogin(); throw new ApiError(401); }
    const body = response.headers.get("content-type")?.includes("json") ? await response.json() : null;
    if (!response.ok) {
      const detail = body && (typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail));
      throw new ApiError(response.status, detail);
    }
    return body;
  }

  async function whoami() {
    if (session === null) {
      session = await api("/api/v1/me").catch(() => ({}));
      const who = document.getElementById("who");
      if (who && session.name) {
        who.textContent = `${session.name} (${session.role} · ${scopeText(session)})`;
        who.hidden = false;
      }
      for (const id of ["nav-audit", "nav-policy"]) {
        const link = document.getElementById(id);
        if (link && session.role === "admin") link.hidden = false;
      }
      const logout = document.getElementById("logout");
      if (logout && session.name) logout.hidden = false;
    }
    return session;
  }

  // The caller's scope in words: "Jember, Rembang", "provinsi Lampung", "seluruh deployment".
  function scopeText(me) {
    if (me.province) return t("scope.province", { name: me.province });
    if (me.regencies && me.regencies.length) return me.regencies.join(", ");
    return t("scope.deployment");
  }

  // Times are shown in the station's own zone (WIB, WITA or WIT), named after the clock.
  function formatTime(value, zone, withDate = true) {
    if (value === null || value === undefined) return "–";
    const date = value instanceof Date ? value : new Date(value);
    const options = { hour: "2-digit", minute: "2-digit", hourCycle: "h23", timeZone: zone?.iana || "Asia/Jakarta" };
    if (withDate) Object.assign(options, { day: "numeric", month: "short" });
    const text = new Intl.DateTimeFormat(config.lang === "id" ? "id-ID" : "en-GB", options).format(date);
    return `${text} ${zone?.abbreviation || "WIB"}`;
  }

  function age(seconds) {
    if (seconds === null || seconds === undefined) return "–";
    const s = Math.max(0, Math.round(seconds));
    if (s < 10) return t("age.now");
    if (s < 90) return t("age.s", { n: s });
    if (s < 5400) return t("age.min", { n: Math.round(s / 60) });
    if (s < 172800) return t("age.h", { n: Math.round(s / 3600) });
    return t("age.d", { n: Math.round(s / 86400) });
  }

  const locale = config.lang === "id" ? "id-ID" : "en-GB";
  const numbers = new Map();
  // A number for people: the language's decimal mark, at most ``digits`` decimals.
  function number(value, digits = 1, sign = false) {
    const key = `${digits}${sign}`;
    if (!numbers.has(key)) {
      numbers.set(key, new Intl.NumberFormat(locale, { maximumFractionDigits: digits, signDisplay: sign ? "exceptZero" : "auto" }));
    }
    return numbers.get(key).format(value);
  }

  // A duration in the largest unit that keeps it readable: "40 detik", "25 menit", "6 hari".
  function duration(seconds) {
    if (seconds === null || seconds === undefined) return "–";
    const s = Math.abs(seconds);
    if (s < 90) return t("unit.s", { n: Math.round(s) });
    if (s < 3570) return t("unit.min", { n: Math.round(s / 60) });
    if (s < 172800) return t("unit.h", { n: number(s / 3600, s < 36000 ? 1 : 0) });
    return t("unit.d", { n: number(s / 86400, s < 864000 ? 1 : 0) });
  }

  // A rate of rise: "+3 cm/jam", "−1,5 cm/jam".
  function rate(cmPerHour) {
    if (cmPerHour === null || cmPerHour === undefined) return "–";
    return t("unit.rate", { n: number(cmPerHour, Math.abs(cmPerHour) < 10 ? 1 : 0, true) });
  }

  // Arrival minus reading time: positive when readings come late.
  function skew(seconds) {
    if (seconds === null || seconds === undefined) return "–";
    if (Math.abs(seconds) < 2) return t("skew.none");
    return t(seconds > 0 ? "skew.late" : "skew.ahead", { d: duration(seconds) });
  }

  function staleTag() {
    return el("span", { class: "stale-tag", title: t("stale.title") }, t("stale"));
  }

  function levelName(level) { return level ? t(`level.${level}`) : t("level.unknown"); }

  // The region's own label (e.g. "Siaga 3" at the Jakarta gates) with the national step beside it.
  function levelBadge(level, label) {
    const national = levelName(level);
    const text = label && label !== national ? `${label} · ${national}` : national;
    return el("span", { class: `badge level-${level || "none"}`, "data-level": level || "none" }, text);
  }

  const zones = new Map();
  async function zoneOf(station) {
    const key = `${station.latitude.toFixed(3)},${station.longitude.toFixed(3)}`;
    if (!zones.has(key)) {
      zones.set(key, fetch(`/ui/zone?lat=${station.latitude}&lon=${station.longitude}`)
        .then((r) => r.json()).catch(() => null));
    }
    return zones.get(key);
  }

  // One EventSource per page; the browser reconnects by itself, the dot shows the state.
  function live(handlers) {
    const dot = document.getElementById("live");
    const source = new EventSource("/api/v1/events", { withCredentials: true });
    const mark = (on) => {
      if (!dot) return;
      dot.className = `live ${on ? "on" : "off"}`;
      dot.title = t(on ? "live.connected" : "live.disconnected");
      dot.setAttribute("aria-label", dot.title);
      dot.dataset.state = on ? "on" : "off";
    };
    source.addEventListener("open", () => mark(true));
    source.addEventListener("error", () => mark(false));
    for (const [name, handler] of Object.entries(handlers)) {
      source.addEventListener(name, (event) => {
        let data = null;
        try { data = JSON.parse(event.data); } catch { return; }
        handler(data);
      });
    }
    return source;
  }

  function toast(text) {
    const box = document.getElementById("toast");
    box.textContent = text;
    box.hidden = false;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => { box.hidden = true; }, 4000);
  }

  function debounce(fn, ms) {
    let timer = null;
    return (...args) => { clearTimeout(timer); timer = setTimeout(() => fn(...args), ms); };
  }

  // At most one call per ``ms``; a call inside the pause runs once at its end.
  function throttle(fn, ms) {
    let last = 0;
    let timer = null;
    return (...args) => {
      const wait = last + ms - Date.now();
      if (wait <= 0) { last = Date.now(); fn(...args); return; }
      if (timer === null) timer = setTimeout(() => { timer = null; last = Date.now(); fn(...args); }, wait);
    };
  }

  document.getElementById("logout")?.addEventListener("click", async () => {
    await api("/api/v1/logout", { json: {} }).catch(() => null);
    location.assign("/login");
  });
  // Keep the language switch on the same page (and its query) when there is one.
  const switcher = document.getElementById("lang-switch");
  if (switcher) {
    const params = new URLSearchParams(location.search);
    params.set("lang", switcher.getAttribute("hreflang"));
    switcher.href = `${location.pathname}?${params}`;
  }

  return { config, LEVELS, t, el, api, ApiError, whoami, formatTime, age, levelName, levelBadge,
    zoneOf, live, toast, debounce, throttle, number, duration, rate, skew, staleTag };
})();
