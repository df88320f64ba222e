/* Geofences page: every fence on the map (circles as L.circle of their
   radius in metres, polygons, corridors as their buffered outline computed
   by the server with the centre line dashed), and drawing in plain Leaflet:
   - "Desenhar círculo": press on the centre, then drag, or release and click
     again, for the radius (shown in metres as it changes);
   - "Desenhar polígono": click the corners, double-click or "Concluir" to close.
   The drawn shape goes into the form's hidden field as a GeoJSON Feature;
   picking a fence in the table puts it (and its name, group, limit) there
   to be edited and saved under the same name. */
(function () {
  "use strict";
  const E = window.etrack;
  const mapElement = document.getElementById("fence-map");
  if (!mapElement) return;
  const fences = JSON.parse(document.getElementById("fences-data").textContent) || [];

  const map = L.map(mapElement).setView([-15.8, -47.9], 4);
  E.baseLayer(map);
  const stored = L.featureGroup().addTo(map);
  const byName = {};

  function lonLatToLatLng(c) { return [c[1], c[0]]; }
  function rings(polygonCoords) { return polygonCoords.map(function (ring) { return ring.map(lonLatToLatLng); }); }

  const STYLE = { color: "#0f766e", weight: 2, fillColor: "#14b8a6", fillOpacity: 0.15 };

  function fenceLayer(f, style) {
    const g = f.geometry;
    if (f.kind === "circle") return L.circle(lonLatToLatLng(g.coordinates), Object.assign({ radius: f.radius_m }, style));
    if (f.kind === "corridor") {
      const group = L.featureGroup();
      if (f.outline) L.polygon(rings(f.outline.coordinates), style).addTo(group);
      L.polyline(g.coordinates.map(lonLatToLatLng), { color: style.color, weight: 1, dashArray: "4 4" }).addTo(group);
      return group;
    }
    if (g.type === "MultiPolygon") return L.polygon(g.coordinates.map(rings), style);
    return L.polygon(rings(g.coordinates), style);
  }

  function label(f) {
    let text = f.name;
    if (f.group) text += " · " + f.group;
    if (f.radius_m) text += " · " + E.number(f.radius_m, 0) + " m";
    return E.escapeHtml(text);
  }

  let layers = 0;
  for (const f of fences) {
    const layer = fenceLayer(f, STYLE).bindTooltip(label(f)).addTo(stored);
    byName[f.name] = layer;
    layers += 1;
  }
  mapElement.dataset.fenceLayers = String(layers);
  if (layers) map.fitBounds(stored.getBounds(), { padding: [20, 20], maxZoom: 16 });

  /* ------------------------------------------------------------ drawing */
  const form = document.getElementById("fence-form");
  const featureInput = document.getElementById("fence-feature");
  const shapeLabel = document.getElementById("fence-shape");
  const hint = document.getElementById("draw-hint");
  const radiusLabel = document.getElementById("draw-radius");
  const circleButton = document.getElementById("draw-circle");
  const polygonButton = document.getElementById("draw-polygon");
  const finishButton = document.getElementById("draw-finish");
  const cancelButton = document.getElementById("draw-cancel");
  if (!form) { window.etrackFences = { map: map, stored: stored }; return; }

  const DRAW = { color: "#f97316", weight: 2, fillColor: "#fdba74", fillOpacity: 0.25 };
  let mode = "idle";
  let sketch = null;      /* the shape being drawn or the one drawn */
  let centre = null;      /* circle: the centre LatLng */
  let downPoint = null;   /* circle: where the press was, in pixels */
  let ups = 0;            /* circle: releases since the centre was placed */
  let corners = [];       /* polygon: LatLngs */

  function round(value, digits) { const k = Math.pow(10, digits); return Math.round(value * k) / k; }

  const nameInput = document.getElementById("fence-name");
  function setMode(next) {
    mode = next;
    mapElement.dataset.mode = next;
    hint.textContent = hint.dataset[next === "done" ? "done" : next] || hint.dataset.idle;
    const drawing = next === "circle" || next === "polygon";
    /* A new shape is a new fence: its name is free again. */
    if (drawing && nameInput.readOnly) { nameInput.readOnly = false; nameInput.value = ""; }
    finishButton.disabled = next !== "polygon";
    cancelButton.disabled = !drawing && next !== "done";
    if (drawing) { map.dragging.disable(); map.doubleClickZoom.disable(); }
    else { map.dragging.enable(); map.doubleClickZoom.enable(); }
    mapElement.classList.toggle("drawing", drawing);
  }

  function clearSketch() {
    if (sketch) map.removeLayer(sketch);
    sketch = null;
    centre = null;
    downPoint = null;
    ups = 0;
    corners = [];
    radiusLabel.textContent = "";
    delete mapElement.dataset.drawn;
  }

  function setFeature(feature, text) {
    featureInput.value = feature ? JSON.stringify(feature) : "";
    shapeLabel.textContent = text;
  }

  function start(next) {
    clearSketch();
    setFeature(null, E.t("fence_shape_none"));
    setMode(next);
  }

  function showRadius(metres) {
    radiusLabel.textContent = E.t("fence_radius") + ": " + E.number(metres, 0) + " m";
    mapElement.dataset.radius = String(Math.round(metres));
  }

  function finishCircle(latlng) {
    const radius = Math.max(1, Math.round(map.distance(centre, latlng)));
    sketch.setRadius(radius);
    showRadius(radius);
    setFeature({
      type: "Feature",
      geometry: { type: "Point", coordinates: [round(centre.lng, 6), round(centre.lat, 6)] },
      properties: { radius_m: radius },
    }, E.t("fence_kind_circle") + " · " + E.number(radius, 0) + " m");
    mapElement.dataset.drawn = "circle";
    setMode("done");
  }

  function finishPolygon() {
    /* A double-click's two clicks put the last corner in twice. */
    const kept = [];
    for (const c of corners) {
      const last = kept[kept.length - 1];
      if (!last || map.latLngToContainerPoint(last).distanceTo(map.latLngToContainerPoint(c)) > 3) kept.push(c);
    }
    if (kept.length < 3) { hint.textContent = E.t("fence_hint_polygon"); return; }
    corners = kept;
    sketch.setLatLngs(kept);
    const ring = kept.map(function (c) { return [round(c.lng, 6), round(c.lat, 6)]; });
    ring.push(ring[0]);
    setFeature({ type: "Feature", geometry: { type: "Polygon", coordinates: [ring] }, properties: {} },
      E.t("fence_kind_polygon") + " · " + kept.length + " " + E.t("fence_corners"));
    mapElement.dataset.drawn = "polygon";
    setMode("done");
  }

  map.on("mousedown", function (event) {
    if (mode !== "circle") return;
    if (!centre) {
      centre = event.latlng;
      downPoint = event.containerPoint;
      ups = 0;
      sketch = L.circle(centre, Object.assign({ radius: 1 }, DRAW)).addTo(map);
      showRadius(0);
    }
  });
  map.on("mousemove", function (event) {
    if (mode === "circle" && centre) {
      const radius = map.distance(centre, event.latlng);
      sketch.setRadius(Math.max(radius, 1));
      showRadius(radius);
    } else if (mode === "polygon" && sketch && corners.length) {
      sketch.setLatLngs(corners.concat([event.latlng]));
    }
  });
  map.on("mouseup", function (event) {
    if (mode !== "circle" || !centre) return;
    ups += 1;
    const dragged = downPoint && downPoint.distanceTo(event.containerPoint) > 5;
    /* A drag sets the radius on release; a click waits for a second one. */
    if (dragged || ups > 1) finishCircle(event.latlng);
  });
  map.on("click", function (event) {
    if (mode !== "polygon") return;
    corners.push(event.latlng);
    if (!sketch) sketch = L.polygon(corners, DRAW).addTo(map);
    else sketch.setLatLngs(corners);
    mapElement.dataset.corners = String(corners.length);
  });
  map.on("dblclick", function () { if (mode === "polygon") finishPolygon(); });

  circleButton.addEventListener("click", function () { start("circle"); });
  polygonButton.addEventListener("click", function () { start("polygon"); });
  finishButton.addEventListener("click", function () { if (mode === "polygon") finishPolygon(); });
  cancelButton.addEventListener("click", function () {
    clearSketch();
    setFeature(null, E.t("fence_shape_none"));
    setMode("idle");
  });
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && (mode === "circle" || mode === "polygon")) cancelButton.click();
  });

  /* --------------------------------------------------------------- edit */
  const table = document.getElementById("fences-table");
  function edit(row) {
    const name = row.dataset.fence;
    const f = fences.find(function (x) { return x.name === name; });
    if (!f) return;
    clearSketch();
    setMode("idle");
    /* The name is the fence's key: saving under another one would make a
       copy, so it is fixed while editing (rename = delete and save anew). */
    nameInput.value = f.name;
    nameInput.readOnly = true;
    document.getElementById("fence-group").value = f.group || "";
    const limit = f.speed_limit_kmh === null ? "" : String(f.speed_limit_kmh);
    document.getElementById("fence-speed-limit").value = E.config.lang === "pt-BR" ? limit.replace(".", ",") : limit;
    const feature = JSON.parse(row.dataset.feature);
    setFeature(feature, E.t("fence_editing") + " " + f.name);
    sketch = fenceLayer(f, DRAW).addTo(map);
    mapElement.dataset.drawn = "edit";
    table.querySelectorAll("tr.active").forEach(function (tr) { tr.classList.remove("active"); });
    row.classList.add("active");
    const layer = byName[name];
    if (layer) map.fitBounds(layer.getBounds(), { padding: [30, 30], maxZoom: 17 });
    document.getElementById("fence-name").focus();
  }
  if (table) {
    table.addEventListener("click", function (event) {
      if (event.target.closest("form, a")) return;
      const row = event.target.closest("tr.fence-row");
      if (row) edit(row);
    });
    table.addEventListener("keydown", function (event) {
      const row = event.target.closest("tr.fence-row");
      if (row && event.key === "Enter" && event.target === row) edit(row);
    });
  }

  form.addEventListener("submit", function (event) {
    if (!featureInput.value) {
      event.preventDefault();
      hint.textContent = E.t("fence_shape_none");
    }
  });

  /* After a refusal the page comes back with the shape sent: draw it again. */
  if (featureInput.value) {
    try {
      const kept = JSON.parse(featureInput.value);
      const g = kept.geometry || {};
      const props = kept.properties || {};
      const kind = g.type === "Point" ? "circle" : g.type === "LineString" ? "corridor" : "polygon";
      sketch = fenceLayer({ kind: kind, geometry: g, radius_m: props.radius_m || props.buffer_m || 1 }, DRAW).addTo(map);
      map.fitBounds(sketch.getBounds(), { padding: [30, 30], maxZoom: 17 });
      mapElement.dataset.drawn = "kept";
    } catch (e) {
      setFeature(null, E.t("fence_shape_none"));
    }
  }
  setMode(mode);
  window.etrackFences = { map: map, stored: stored };
})();
