/* Fleet map: the latest position of every vehicle, coloured by state,
   clustered when zoomed out (Leaflet.markercluster when its package is
   installed), with a side list filtered by plate and fleet. Refreshed every
   30 s without reloading the page. Circle markers on one canvas keep
   thousands of vehicles smooth. */
(function () {
  "use strict";
  const E = window.etrack;
  const REFRESH_MS = 30000;
  const UNCLUSTERED_ZOOM = 16;
  const COLORS = { moving: "#1a9850", idle: "#f59e0b", off: "#64748b", stale: "#dc2626", unknown: "#a1a1aa" };

  const mapElement = document.getElementById("map");
  const map = L.map(mapElement, { preferCanvas: true, worldCopyJump: true }).setView([-15.8, -47.9], 4);
  E.baseLayer(map);
  const renderer = L.canvas({ padding: 0.5 });
  const clustered = typeof L.markerClusterGroup === "function";
  const group = clustered
    ? L.markerClusterGroup({
        chunkedLoading: true, disableClusteringAtZoom: UNCLUSTERED_ZOOM, maxClusterRadius: 50,
        showCoverageOnHover: false, spiderfyOnMaxZoom: true,
      })
    : L.layerGroup();
  group.addTo(map);

  const list = document.getElementById("vehicle-list");
  const plateFilter = document.getElementById("filter-plate");
  const fleetFilter = document.getElementById("filter-fleet");
  const entries = new Map(); /* placa -> {vehicle, marker} */
  let fitted = false;

  function stateLabel(state) { return E.t("state_" + state); }

  function popupHtml(v) {
    const parts = [
      "<strong>" + E.escapeHtml(v.placa) + "</strong>",
      v.descricao ? E.escapeHtml(v.descricao) : "",
      v.frota ? E.escapeHtml(E.t("fleet") + ": " + v.frota) : "",
      E.escapeHtml(stateLabel(v.state)),
      E.escapeHtml(E.t("last_report") + ": " + E.dateTime(v.last_report)),
      v.speed_kmh !== null ? E.escapeHtml(E.t("speed") + ": " + E.number(v.speed_kmh, 0) + " km/h") : "",
      v.address ? E.escapeHtml(v.address) : "",
      '<a href="/vehicles/' + encodeURIComponent(v.placa) + '">' + E.escapeHtml(E.t("day")) + " &rarr;</a>",
    ];
    return parts.filter(Boolean).join("<br>");
  }

  function style(v) {
    return { renderer: renderer, radius: 7, weight: 2, color: "#ffffff", fillColor: COLORS[v.state] || COLORS.unknown, fillOpacity: 0.95 };
  }

  function matches(v) {
    const needle = plateFilter.value.toUpperCase().replace(/[^A-Z0-9]/g, "");
    if (needle && v.placa.indexOf(needle) < 0) return false;
    if (fleetFilter.value && v.frota !== fleetFilter.value) return false;
    return true;
  }

  function update(vehicles) {
    const seen = new Set();
    for (const v of vehicles) {
      seen.add(v.placa);
      const entry = entries.get(v.placa) || { vehicle: v, marker: null };
      entry.vehicle = v;
      if (v.lat === null || v.lon === null) {
        entry.marker = null;
      } else if (!entry.marker) {
        entry.marker = L.circleMarker([v.lat, v.lon], style(v));
        entry.marker.bindPopup(popupHtml(v));
        entry.marker.bindTooltip(E.escapeHtml(v.placa), { direction: "top" });
      } else {
        entry.marker.setLatLng([v.lat, v.lon]);
        entry.marker.setStyle(style(v));
        entry.marker.setPopupContent(popupHtml(v));
      }
      entries.set(v.placa, entry);
    }
    for (const placa of Array.from(entries.keys())) {
      if (!seen.has(placa)) entries.delete(placa);
    }
    redraw();
    if (!fitted) fitAll();
  }

  /* Rebuild the layer and the list from the entries and the filters: a few
     thousand markers re-cluster in a few tens of milliseconds. */
  function redraw() {
    const shown = [];
    for (const entry of entries.values()) {
      if (entry.marker && matches(entry.vehicle)) shown.push(entry.marker);
    }
    group.clearLayers();
    if (group.addLayers) group.addLayers(shown); else shown.forEach(function (m) { group.addLayer(m); });
    mapElement.dataset.markers = String(shown.length);
    renderList();
  }

  function renderList() {
    const rows = [];
    let count = 0;
    for (const entry of entries.values()) {
      const v = entry.vehicle;
      if (!matches(v)) continue;
      count += 1;
      rows.push(
        '<li data-placa="' + E.escapeHtml(v.placa) + '" data-state="' + v.state + '" tabindex="0">' +
        '<span class="dot state-' + v.state + '" title="' + E.escapeHtml(stateLabel(v.state)) + '"></span>' +
        '<span class="plate">' + E.escapeHtml(v.placa) + "</span>" +
        '<span class="desc">' + E.escapeHtml(v.descricao || "") + "</span>" +
        '<span class="when">' + E.escapeHtml(E.dateTime(v.last_report)) + "</span>" +
        '<a class="day-link" href="/vehicles/' + encodeURIComponent(v.placa) + '">' + E.escapeHtml(E.t("day")) + "</a>" +
        "</li>"
      );
    }
    list.innerHTML = rows.join("");
    document.getElementById("fleet-count").textContent = E.count(count, "vehicle");
  }

  function fitAll() {
    const points = [];
    for (const entry of entries.values()) if (entry.marker) points.push(entry.marker.getLatLng());
    if (points.length) {
      map.fitBounds(L.latLngBounds(points), { padding: [30, 30], maxZoom: 15 });
      fitted = true;
    }
  }

  function focus(placa) {
    const entry = entries.get(placa);
    if (!entry || !entry.marker) return;
    /* At the zoom where clustering stops every marker is on the map itself
       (markercluster's zoomToShowLayer only knows icon markers, not circles). */
    map.setView(entry.marker.getLatLng(), Math.max(map.getZoom(), UNCLUSTERED_ZOOM), { animate: false });
    setTimeout(function () { if (map.hasLayer(entry.marker)) entry.marker.openPopup(); }, 50);
  }

  list.addEventListener("click", function (event) {
    if (event.target.closest("a")) return;
    const item = event.target.closest("li[data-placa]");
    if (item) focus(item.dataset.placa);
  });
  list.addEventListener("keydown", function (event) {
    const item = event.target.closest("li[data-placa]");
    if (item && event.key === "Enter") focus(item.dataset.placa);
  });
  plateFilter.addEventListener("input", redraw);
  fleetFilter.addEventListener("change", redraw);

  async function refresh() {
    try {
      const data = await E.getJSON("/api/vehicles");
      update(data.vehicles);
      document.getElementById("fleet-updated").textContent = E.t("updated_at") + " " + E.clock(data.generated_at);
      mapElement.dataset.loaded = "1";
    } catch (error) {
      document.getElementById("fleet-updated").textContent = String(error.message || error);
    }
  }

  refresh();
  setInterval(refresh, REFRESH_MS);
  window.etrackFleet = { map: map, entries: entries, refresh: refresh, clustered: clustered };
})();
