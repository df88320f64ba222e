/* Shared helpers of the etrack pages: settings from the page, number and
   time formatting in the account's time zone and the UI language, the base
   map layer, JSON fetches. No third-party code here: Leaflet is served
   from its own package. */
(function () {
  "use strict";
  const config = JSON.parse(document.getElementById("etrack-config").textContent);
  const numberFormats = new Map();

  function number(value, digits) {
    if (value === null || value === undefined || Number.isNaN(value)) return "";
    const key = String(digits);
    if (!numberFormats.has(key)) {
      numberFormats.set(key, new Intl.NumberFormat(config.lang, {
        minimumFractionDigits: digits, maximumFractionDigits: digits,
      }));
    }
    return numberFormats.get(key).format(value);
  }

  const clockFormat = new Intl.DateTimeFormat(config.lang, {
    timeZone: config.tz, hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23",
  });
  const shortClockFormat = new Intl.DateTimeFormat(config.lang, {
    timeZone: config.tz, hour: "2-digit", minute: "2-digit", hourCycle: "h23",
  });
  const dateTimeFormat = new Intl.DateTimeFormat("en-US", {
    timeZone: config.tz, day: "2-digit", month: "2-digit", year: "numeric",
    hour: "2-digit", minute: "2-digit", hourCycle: "h23",
  });

  function toDate(value) {
    if (value === null || value === undefined) return null;
    return typeof value === "number" ? new Date(value * 1000) : new Date(value);
  }

  function clock(value) { const d = toDate(value); return d ? clockFormat.format(d) : ""; }
  function shortClock(value) { const d = toDate(value); return d ? shortClockFormat.format(d) : ""; }
  /* DD/MM/YYYY HH:MM (pt-BR) or YYYY-MM-DD HH:MM (en), as the server's
     i18n.format_moment writes them: Intl's own pt-BR form puts a comma in. */
  function dateTime(value) {
    const d = toDate(value);
    if (!d) return "";
    const part = {};
    for (const p of dateTimeFormat.formatToParts(d)) part[p.type] = p.value;
    const day = config.lang === "pt-BR"
      ? part.day + "/" + part.month + "/" + part.year
      : part.year + "-" + part.month + "-" + part.day;
    return day + " " + part.hour + ":" + part.minute;
  }

  function escapeHtml(text) {
    return String(text === null || text === undefined ? "" : text)
      .replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
      .replace(/"/g, "&quot;").replace(/'/g, "&#39;");
  }

  function t(key) { return config.messages[key] || key; }

  /* "1 veículo", "0 veículos", "12 veículos": the rule of etrack.web.i18n.plural
     (Intl's pt rule would say "0 veículo"). */
  function count(n, word) {
    const form = Math.abs(n) === 1 ? "_one" : "_many";
    return number(n, 0) + " " + t(word + form);
  }

  /* The background map. Without tile access (offline, blocked) the page
     says so once and keeps drawing routes and markers on the plain background. */
  function baseLayer(map) {
    const warning = document.getElementById("tile-warning");
    if (!config.tileUrl) {
      if (warning) warning.hidden = false;
      return null;
    }
    const layer = L.tileLayer(config.tileUrl, {
      maxZoom: 19, attribution: config.tileAttribution, crossOrigin: false,
    });
    let errors = 0;
    layer.on("tileerror", function () {
      errors += 1;
      if (errors === 3 && warning) warning.hidden = false;
    });
    layer.on("tileload", function () { if (warning) warning.hidden = true; errors = 0; });
    layer.addTo(map);
    return layer;
  }

  async function getJSON(url) {
    const response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
    if (!response.ok) throw new Error(url + ": HTTP " + response.status);
    return response.json();
  }

  window.etrack = {
    config: config, t: t, count: count, number: number, clock: clock, shortClock: shortClock,
    dateTime: dateTime, escapeHtml: escapeHtml, baseLayer: baseLayer, getJSON: getJSON,
  };
})();
