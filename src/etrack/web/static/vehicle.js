/* Vehicle day: the route on the map (the simplified line when zoomed out,
   every point when zoomed in), start and end markers, stops, the trips list
   linked to the map, a speed-over-time chart with the speed limit, and a
   playback slider moving a marker along the day. */
(function () {
  "use strict";
  const E = window.etrack;
  const day = JSON.parse(document.getElementById("day-data").textContent);
  const mapElement = document.getElementById("map");
  if (!day || !mapElement) return;

  const DETAIL_ZOOM = 13;
  const points = day.points; /* [t, lat, lon, speed, ignition] */
  const map = L.map(mapElement, { preferCanvas: true }).setView([-15.8, -47.9], 4);
  E.baseLayer(map);
  const renderer = L.canvas({ padding: 0.5 });

  function latLngs(geometry) {
    if (!geometry) return [];
    if (geometry.type === "Point") return [[geometry.coordinates[1], geometry.coordinates[0]]];
    return geometry.coordinates.map(function (c) { return [c[1], c[0]]; });
  }

  const lineStyle = { renderer: renderer, color: "#2563eb", weight: 4, opacity: 0.85 };
  const full = L.polyline(latLngs(day.line), lineStyle);
  const simple = L.polyline(latLngs(day.simplified || day.line), lineStyle);
  let shown = null;

  function showLineForZoom() {
    const wanted = map.getZoom() >= DETAIL_ZOOM ? full : simple;
    if (wanted === shown) return;
    if (shown) map.removeLayer(shown);
    wanted.addTo(map);
    shown = wanted;
    mapElement.dataset.line = wanted === full ? "full" : "simplified";
  }
  map.on("zoomend", showLineForZoom);

  const highlight = L.polyline([], { renderer: renderer, color: "#f97316", weight: 7, opacity: 0.9 }).addTo(map);

  if (points.length) {
    const first = points[0];
    const last = points[points.length - 1];
    L.circleMarker([first[1], first[2]], { renderer: renderer, radius: 8, color: "#fff", weight: 2, fillColor: "#16a34a", fillOpacity: 1 })
      .bindTooltip(E.escapeHtml(E.t("start") + " " + E.clock(first[0])))
      .addTo(map);
    L.circleMarker([last[1], last[2]], { renderer: renderer, radius: 8, color: "#fff", weight: 2, fillColor: "#dc2626", fillOpacity: 1 })
      .bindTooltip(E.escapeHtml(E.t("end") + " " + E.clock(last[0])))
      .addTo(map);
  }
  for (const stop of day.stops) {
    if (stop.latitude === null || stop.longitude === null) continue;
    L.circleMarker([stop.latitude, stop.longitude], { renderer: renderer, radius: 5, color: "#7c3aed", weight: 2, fillColor: "#ede9fe", fillOpacity: 1 })
      .bindTooltip(E.escapeHtml(E.t("stop") + " " + stop.seq + ": " + E.shortClock(stop.start_ts) + "–" + E.shortClock(stop.end_ts)))
      .addTo(map);
  }

  /* --------------------------------------------------------- events */
  /* Each kind's colour is the stylesheet's (--ev of .event-KIND), read once. */
  const eventColours = {};
  function eventColour(kind) {
    if (!(kind in eventColours)) {
      const probe = document.createElement("span");
      probe.className = "event-" + kind;
      document.body.appendChild(probe);
      eventColours[kind] = getComputedStyle(probe).getPropertyValue("--ev").trim() || "#dc2626";
      probe.remove();
    }
    return eventColours[kind];
  }
  /* A time on the page's day as HH:MM, on another day with its date (an
     offline since yesterday, a run past midnight). */
  function momentOnDay(t) {
    return E.dateTime(t).slice(0, 10) === E.dateTime(points.length ? points[0][0] : t).slice(0, 10) ? E.shortClock(t) : E.dateTime(t);
  }
  function eventText(e) {
    let text = E.t("event_" + e.kind) + ": " + momentOnDay(e.start) + "–" + (e.end === null ? E.t("events_open") : momentOnDay(e.end));
    if (e.value !== null) text += " · " + E.number(e.value, e.kind === "overspeed" ? 0 : 1) + (e.unit ? " " + e.unit : "");
    return text;
  }
  const events = day.events || [];
  let eventMarkers = 0;
  for (const e of events) {
    if (e.latitude === null || e.longitude === null) continue;
    L.circleMarker([e.latitude, e.longitude], { renderer: renderer, radius: 7, color: "#fff", weight: 2, fillColor: eventColour(e.kind), fillOpacity: 1 })
      .bindTooltip(E.escapeHtml(eventText(e)))
      .addTo(map);
    eventMarkers += 1;
  }
  mapElement.dataset.eventMarkers = String(eventMarkers);

  /* ---------------------------------------------------------- fences */
  /* The fences near the route, drawn lightly under it, named in a tooltip
     (circles by their radius in metres, corridors by their outline). */
  const fenceData = document.getElementById("day-fences");
  const nearFences = fenceData ? JSON.parse(fenceData.textContent) || [] : [];
  const fenceStyle = { color: "#0f766e", weight: 1, opacity: 0.7, fillColor: "#14b8a6", fillOpacity: 0.08 };
  function fenceRings(coords) { return coords.map(function (ring) { return ring.map(function (c) { return [c[1], c[0]]; }); }); }
  let fencesDrawn = 0;
  for (const f of nearFences) {
    const g = f.geometry;
    let layer;
    if (f.kind === "circle") layer = L.circle([g.coordinates[1], g.coordinates[0]], Object.assign({ radius: f.radius_m }, fenceStyle));
    else if (f.kind === "corridor") layer = L.polygon(f.outline ? fenceRings(f.outline.coordinates) : [], fenceStyle);
    else if (g.type === "MultiPolygon") layer = L.polygon(g.coordinates.map(fenceRings), fenceStyle);
    else layer = L.polygon(fenceRings(g.coordinates), fenceStyle);
    layer.bindTooltip(E.escapeHtml(f.name + (f.group ? " · " + f.group : ""))).addTo(map);
    layer.bringToBack();
    fencesDrawn += 1;
  }
  mapElement.dataset.fencesDrawn = String(fencesDrawn);

  const all = latLngs(day.line);
  if (all.length > 1) map.fitBounds(L.latLngBounds(all), { padding: [20, 20] });
  else if (all.length === 1) map.setView(all[0], 15);
  showLineForZoom();

  /* ---------------------------------------------------------- trips */
  function pointsBetween(start, end) {
    return points.filter(function (p) { return p[0] >= start && p[0] <= end; });
  }

  function selectTrip(item) {
    document.querySelectorAll("#trip-list li.active").forEach(function (li) { li.classList.remove("active"); });
    item.classList.add("active");
    const inside = pointsBetween(Number(item.dataset.start), Number(item.dataset.end));
    const path = inside.map(function (p) { return [p[1], p[2]]; });
    highlight.setLatLngs(path);
    if (path.length) {
      map.once("moveend", function () { mapElement.dataset.fittedTrip = item.dataset.seq; });
      map.fitBounds(L.latLngBounds(path), { padding: [30, 30], maxZoom: 17 });
    }
    if (inside.length) setPlayback(points.indexOf(inside[0]));
  }

  const tripList = document.getElementById("trip-list");
  if (tripList) {
    tripList.addEventListener("click", function (event) {
      const item = event.target.closest("li.trip");
      if (item) selectTrip(item);
    });
    tripList.addEventListener("keydown", function (event) {
      const item = event.target.closest("li.trip");
      if (item && event.key === "Enter") selectTrip(item);
    });
  }
  const stopList = document.getElementById("stop-list");
  if (stopList) {
    stopList.addEventListener("click", function (event) {
      const item = event.target.closest("li.stop");
      if (item && item.dataset.lat !== "None") map.setView([Number(item.dataset.lat), Number(item.dataset.lon)], 16);
    });
  }

  const eventList = document.getElementById("event-list");
  function selectEvent(item) {
    if (item.dataset.lat) map.setView([Number(item.dataset.lat), Number(item.dataset.lon)], 16);
    if (points.length) setPlayback(nearestIndex(Number(item.dataset.start)));
  }
  if (eventList) {
    eventList.addEventListener("click", function (event) {
      const item = event.target.closest("li.event");
      if (item) selectEvent(item);
    });
    eventList.addEventListener("keydown", function (event) {
      const item = event.target.closest("li.event");
      if (item && event.key === "Enter") selectEvent(item);
    });
  }

  /* ---------------------------------------------------- speed chart */
  const SVG = "http://www.w3.org/2000/svg";
  const chart = document.getElementById("speed-chart");
  const limit = day.speed_limit_kmh;
  const margin = { left: 44, right: 12, top: 10, bottom: 26 };
  let scaleX = null;
  let cursor = null;

  function svg(name, attributes, parent) {
    const node = document.createElementNS(SVG, name);
    for (const key in attributes) node.setAttribute(key, attributes[key]);
    if (parent) parent.appendChild(node);
    return node;
  }

  function drawChart() {
    chart.textContent = "";
    if (points.length < 2) return;
    const width = Math.max(chart.clientWidth, 300);
    const height = 180;
    const root = svg("svg", { width: width, height: height, viewBox: "0 0 " + width + " " + height, class: "speed-svg" }, chart);
    const t0 = points[0][0];
    const t1 = points[points.length - 1][0];
    let top = limit || 0;
    for (const p of points) if (p[3] !== null && p[3] > top) top = p[3];
    top = Math.ceil((top * 1.1) / 10) * 10 || 10;
    const innerW = width - margin.left - margin.right;
    const innerH = height - margin.top - margin.bottom;
    scaleX = function (t) { return margin.left + ((t - t0) / Math.max(t1 - t0, 1)) * innerW; };
    const y = function (v) { return margin.top + innerH - (v / top) * innerH; };

    for (let v = 0; v <= top; v += top > 100 ? 40 : 20) {
      svg("line", { x1: margin.left, x2: width - margin.right, y1: y(v), y2: y(v), class: "grid-line" }, root);
      svg("text", { x: margin.left - 6, y: y(v) + 4, class: "axis-label", "text-anchor": "end" }, root).textContent = E.number(v, 0);
    }
    const hours = Math.max(1, Math.round((t1 - t0) / 3600 / 8));
    const firstHour = Math.ceil(t0 / 3600) * 3600;
    for (let t = firstHour; t <= t1; t += hours * 3600) {
      svg("text", { x: scaleX(t), y: height - 6, class: "axis-label", "text-anchor": "middle" }, root).textContent = E.shortClock(t);
    }
    /* Events as bands over their span (a thin one at least), under the line. */
    let bands = 0;
    for (const e of events) {
      const from = Math.max(e.start, t0);
      const to = Math.min(e.end === null ? t1 : e.end, t1);
      if (to < t0 || from > t1) continue;
      const x = scaleX(from);
      const band = svg("rect", { x: x, y: margin.top, width: Math.max(scaleX(to) - x, 2), height: innerH, class: "event-band event-" + e.kind, "data-kind": e.kind }, root);
      svg("title", {}, band).textContent = eventText(e);
      svg("line", { x1: x, x2: x, y1: margin.top, y2: margin.top + 6, class: "event-tick event-" + e.kind }, root);
      bands += 1;
    }
    chart.dataset.eventBands = String(bands);
    let path = "";
    let pen = false;
    for (let i = 0; i < points.length; i += 1) {
      const p = points[i];
      if (p[3] === null) { pen = false; continue; }
      /* A silence of over 10 minutes is a gap in the line, not a slope. */
      if (i > 0 && p[0] - points[i - 1][0] > 600) pen = false;
      path += (pen ? "L" : "M") + scaleX(p[0]).toFixed(1) + " " + y(p[3]).toFixed(1);
      pen = true;
    }
    svg("path", { d: path, class: "speed-line" }, root);
    if (limit) {
      svg("line", { x1: margin.left, x2: width - margin.right, y1: y(limit), y2: y(limit), class: "limit-line" }, root);
      svg("text", { x: width - margin.right - 4, y: y(limit) - 4, class: "limit-label", "text-anchor": "end" }, root)
        .textContent = E.t("speed_limit") + " " + E.number(limit, 0) + " km/h";
    }
    svg("text", { x: 4, y: margin.top + 8, class: "axis-label" }, root).textContent = "km/h";
    cursor = svg("line", { x1: margin.left, x2: margin.left, y1: margin.top, y2: margin.top + innerH, class: "cursor-line" }, root);
    root.addEventListener("click", function (event) {
      const box = root.getBoundingClientRect();
      const t = t0 + ((event.clientX - box.left - margin.left) / innerW) * (t1 - t0);
      setPlayback(nearestIndex(t));
    });
    moveCursor();
  }

  function nearestIndex(t) {
    let lo = 0;
    let hi = points.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (points[mid][0] < t) lo = mid + 1; else hi = mid;
    }
    return lo;
  }

  /* -------------------------------------------------------- playback */
  const slider = document.getElementById("playback");
  const label = document.getElementById("playback-label");
  const playButton = document.getElementById("play");
  const vehicleMarker = L.circleMarker([0, 0], { renderer: renderer, radius: 9, color: "#111827", weight: 3, fillColor: "#facc15", fillOpacity: 1 });
  let timer = null;

  function moveCursor() {
    if (!cursor || !scaleX || !points.length) return;
    const x = scaleX(points[Number(slider.value)][0]);
    cursor.setAttribute("x1", x);
    cursor.setAttribute("x2", x);
  }

  function setPlayback(index) {
    if (!points.length) return;
    const i = Math.min(Math.max(index, 0), points.length - 1);
    slider.value = String(i);
    const p = points[i];
    vehicleMarker.setLatLng([p[1], p[2]]);
    if (!map.hasLayer(vehicleMarker)) vehicleMarker.addTo(map);
    label.textContent = E.clock(p[0]) + " · " + (p[3] === null ? "–" : E.number(p[3], 0) + " km/h");
    moveCursor();
  }

  slider.addEventListener("input", function () { setPlayback(Number(slider.value)); });
  playButton.addEventListener("click", function () {
    if (timer) {
      clearInterval(timer);
      timer = null;
      playButton.textContent = playButton.dataset.play;
      return;
    }
    playButton.textContent = playButton.dataset.pause;
    const step = Math.max(1, Math.round(points.length / 600));
    timer = setInterval(function () {
      const next = Number(slider.value) + step;
      if (next >= points.length) {
        clearInterval(timer);
        timer = null;
        playButton.textContent = playButton.dataset.play;
        return;
      }
      setPlayback(next);
      if (!map.getBounds().contains(vehicleMarker.getLatLng())) map.panTo(vehicleMarker.getLatLng());
    }, 50);
  });

  drawChart();
  if (points.length) setPlayback(0);
  window.addEventListener("resize", function () { drawChart(); });
  mapElement.dataset.loaded = "1";
  window.etrackDay = { map: map, full: full, simple: simple, highlight: highlight, points: points };
})();
