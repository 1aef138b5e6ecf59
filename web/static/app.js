/* antt-map page: Leaflet over the administrative boundaries, fully served by this server.
 *
 * The server decides what each role sees (/layers is already filtered, aggregates replace points
 * for non-police roles); this page only draws what it is given. Map state lives in the URL hash
 * so a view can be shared. */
(function () {
  "use strict";

  const I18N = window.ANTT_I18N;
  const ESRI_GI_COLORS = {  // Esri hot spot analysis palette, bins -3..+3
    "-3": "#4575b5", "-2": "#849eba", "-1": "#c0ccbe", "0": "#ffffbf",
    "1": "#fab984", "2": "#ed7551", "3": "#d62f27",
  };
  const COVERAGE_RAMP = [[0, "#f7fcf5"], [0.25, "#c7e9c0"], [0.5, "#74c476"], [0.75, "#31a354"], [1, "#006d2c"]];
  const NO_DATA = "#d9d9d9";
  const UNCOVERED = "#e31a1c";
  const CLUSTER_COLORS = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d"];
  // Incident hexagons (SQL grid cells) are the default heat layer: fast for every role. The KDE
  // heatmap and the coverage choropleth are heavier analyses, switched on by the user.
  const DEFAULT_ON = ["provinces", "communes", "villages", "models", "launch_points", "incident_hexagons"];
  const VECTOR_TILE_LAYERS = new Set(["villages", "incidents"]);
  // Analysis overlays come from /analytics, not /layers; all are aggregates.
  const ANALYSIS = [
    { id: "coverage", key: "coverage" },
    { id: "uncovered", key: "uncovered" },
    { id: "heatmap", key: "heatmap" },
    { id: "hotspots", key: "hotspots" },
    { id: "clusters", key: "clusters" },
  ];

  // VectorGrid 1.3 calls L.DomEvent.fakeStop, which Leaflet 1.8+ removed.
  if (!L.DomEvent.fakeStop) { L.DomEvent.fakeStop = L.DomEvent.stopPropagation; }

  const $ = (sel) => document.querySelector(sel);
  const state = {
    lang: "vi", center: [20.86, 106.62], zoom: 10,
    on: new Set(DEFAULT_ON), start: null, end: null, month: null,
    category: "", youth: "", compare: false,
  };
  let config = { user: null, basemap_url: null, suppress_below: 3 };
  let catalogue = [];
  const drawn = {};          // id -> Leaflet layer on the map
  const legendOf = {};       // id -> legend entries
  let coverageByCode = {};   // commune code -> coverage row
  let uncoveredVillages = new Set();
  let addingLaunch = null;   // pending click handler while placing a launch point
  let pending = 0;
  let firstLoadDone = false;

  // ---------------------------------------------------------------- i18n
  const t = (key) => (I18N[state.lang] && I18N[state.lang][key]) || I18N.vi[key] || key;
  const tr = (obj) => (obj && typeof obj === "object" ? (obj[state.lang] || obj.vi || "") : (obj || ""));

  function applyI18n() {
    document.documentElement.lang = state.lang;
    document.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(el.dataset.i18n); });
    document.querySelectorAll("[data-i18n-placeholder]").forEach((el) => {
      el.placeholder = t(el.dataset.i18nPlaceholder);
    });
    $("#lang-toggle").textContent = state.lang === "vi" ? "EN" : "VI";
    document.title = t("title");
  }

  // ---------------------------------------------------------------- URL hash state
  function readHash() {
    const p = new URLSearchParams(location.hash.replace(/^#/, ""));
    if (p.get("c")) {
      const [lat, lon] = p.get("c").split(",").map(Number);
      if (isFinite(lat) && isFinite(lon)) state.center = [lat, lon];
    }
    if (p.get("z") && isFinite(+p.get("z"))) state.zoom = +p.get("z");
    if (p.has("l")) state.on = new Set(p.get("l").split(",").filter(Boolean));
    state.start = p.get("from") || null;
    state.end = p.get("to") || null;
    state.month = p.get("m") || null;
    state.category = p.get("cat") || "";
    state.youth = p.get("youth") || "";
    state.compare = p.get("cmp") === "1";
    state.lang = p.get("lang") === "en" ? "en" : "vi";
  }

  function writeHash() {
    const p = new URLSearchParams();
    const c = map.getCenter();
    p.set("c", `${c.lat.toFixed(5)},${c.lng.toFixed(5)}`);
    p.set("z", String(map.getZoom()));
    p.set("l", [...state.on].join(","));
    if (state.start) p.set("from", state.start);
    if (state.end) p.set("to", state.end);
    if (state.month) p.set("m", state.month);
    if (state.category) p.set("cat", state.category);
    if (state.youth) p.set("youth", state.youth);
    if (state.compare) p.set("cmp", "1");
    if (state.lang !== "vi") p.set("lang", state.lang);
    history.replaceState(null, "", "#" + p.toString());
  }

  // ---------------------------------------------------------------- HTTP
  class ApiError extends Error {
    constructor(status, body) {
      const msg = body && (state.lang === "en" ? body.detail_en : body.detail_vi);
      super(msg || (body && body.detail) || `HTTP ${status}`);
      this.status = status; this.body = body;
    }
  }

  async function api(path, opts = {}) {
    const res = await fetch(path, { credentials: "same-origin", ...opts });
    const type = res.headers.get("content-type") || "";
    const body = type.includes("json") ? await res.json() : null;
    if (!res.ok) throw new ApiError(res.status, body);
    return { body, res };
  }

  async function tracked(promise) {
    pending += 1;
    try { return await promise; } finally {
      pending -= 1;
      if (pending === 0) onIdle();
    }
  }

  function onIdle() {
    if (!firstLoadDone && catalogue.length) {
      firstLoadDone = true;
      performance.mark("antt-layers-loaded");
      window.__anttReady = performance.now();
      document.body.dataset.ready = "1";
    }
  }

  function toast(msg, isError) {
    const el = $("#toast");
    el.textContent = msg; el.hidden = false; el.className = isError ? "error" : "";
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => { el.hidden = true; }, 4000);
  }

  // ---------------------------------------------------------------- filters
  function isoDate(d) { return d.toISOString().slice(0, 10); }

  function period(lastYear) {
    let start = state.start, end = state.end;
    if (state.month) {
      const [y, m] = state.month.split("-").map(Number);
      start = isoDate(new Date(Date.UTC(y, m - 1, 1)));
      end = isoDate(new Date(Date.UTC(y, m, 0)));
    }
    if (lastYear && start && end) {
      const shift = (s) => `${+s.slice(0, 4) - 1}${s.slice(4)}`.replace("-02-29", "-02-28");
      start = shift(start); end = shift(end);
    }
    return { start, end };
  }

  // The province (or commune) analyses run over: the account's scope, else the province under
  // the map centre (from the provinces layer).
  function areaParams(p) {
    const u = config.user || {};
    if (u.scope_level === "commune") p.set("commune", u.scope_code);
    else if (u.scope_level === "province") p.set("province", u.scope_code);
    else if (currentProvince()) p.set("province", currentProvince());
    return p;
  }

  function currentProvince() {
    const layer = drawn.provinces || drawn.communes;
    if (!layer || !layer.eachLayer) return null;
    const c = map.getCenter();
    let code = null, first = null;
    layer.eachLayer((l) => {
      const p = l.feature && l.feature.properties;
      if (!p) return;
      const prov = layer === drawn.provinces ? p.code : p.province_code;
      first = first || prov;
      if (!code && l.getBounds().contains(c)) code = prov;
    });
    return code || first;
  }

  function incidentParams(lastYear) {
    const p = new URLSearchParams();
    const { start, end } = period(lastYear);
    if (start) p.set("start", start);
    if (end) p.set("end", end);
    if (state.category) p.set("category", state.category);
    if (state.youth) p.set("youth", state.youth);
    return p;
  }

  function itemParams(layer) {
    const p = new URLSearchParams({ limit: "10000" });
    // Polygons are simplified on the server to half a pixel at this zoom (smaller transfer).
    if (layer.geometry_type !== "Point") p.set("zoom", String(Math.max(8, Math.round(map.getZoom()))));
    if (layer.id === "incident_hexagons") {
      // Hexagon side follows the zoom (never under the 250 m floor the server enforces).
      const z = Math.round(map.getZoom());
      p.set("cell", String(hexCell(z)));
    }
    if (layer.time_field && layer.id.startsWith("incident")) {
      const { start, end } = period(state.compare);
      if (start || end) p.set("datetime", `${start || ".."}/${end || ".."}`);
      if (state.category) p.set("category", state.category);
      if (state.youth) p.set("youth", state.youth);
    }
    return p;
  }

  // ---------------------------------------------------------------- map
  const map = L.map("map", { zoomControl: true, preferCanvas: false, minZoom: 5, maxZoom: 19,
                             attributionControl: true });
  map.attributionControl.setPrefix(false);
  L.control.scale({ imperial: false }).addTo(map);
  map.createPane("choropleth").style.zIndex = 390;
  map.createPane("analysis").style.zIndex = 420;
  map.createPane("outlines").style.zIndex = 430;

  function rampColor(ramp, value) {
    let c = ramp[0][1];
    for (const [threshold, color] of ramp) if (value >= threshold) c = color;
    return c;
  }

  function countColor(ramp, count, max) {
    if (count === null || count === undefined) return NO_DATA;
    const i = Math.min(ramp.length - 1, Math.floor((count / Math.max(max, 1)) * ramp.length));
    return ramp[i];
  }

  async function fetchAllItems(layer) {
    let url = `${layer.items_url}?${itemParams(layer)}`;
    const features = [];
    while (url) {  // follow next links: never silently truncate
      const { body } = await api(url, { headers: { Accept: "application/geo+json" } });
      features.push(...(body.features || []));
      const next = (body.links || []).find((l) => l.rel === "next");
      url = next ? next.href : null;
    }
    return { type: "FeatureCollection", features };
  }

  function popupTable(props, layer) {
    const rows = (layer.properties || [])
      .filter((p) => props[p.name] !== null && props[p.name] !== undefined && props[p.name] !== "")
      .slice(0, 10)
      .map((p) => `<tr><th>${escapeHtml(tr(p.title))}</th><td>${escapeHtml(String(props[p.name]))}</td></tr>`);
    return `<h3>${escapeHtml(tr(layer.title))}</h3><table class="props">${rows.join("")}</table>`;
  }

  function escapeHtml(s) {
    return String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
  }

  function pointIcon(color, letter, shape) {
    const cls = shape === "flag" ? "pin flag" : "pin";
    return L.divIcon({
      className: "antt-icon",
      html: `<span class="${cls}" style="background:${color}">${escapeHtml(letter || "")}</span>`,
      iconSize: [22, 22], iconAnchor: [11, 11], popupAnchor: [0, -10],
    });
  }

  const TYPE_LETTERS = {
    to_tu_quan: "T", dong_ho_tu_quan: "D", camera_antt: "C", tai_hoa_nhap: "H",
    an_toan_giao_thong: "G", thanh_thieu_nien: "N", truong_hoc_an_toan: "S",
    doanh_nghiep_an_toan: "E", pccc_lien_gia: "P",
  };

  function buildLayer(layer, data) {
    const style = layer.style || {};
    const id = layer.id;
    if (id === "communes") {
      return L.geoJSON(data, {
        pane: "choropleth",
        style: (f) => communeStyle(f.properties, style),
        onEachFeature: (f, l) => {
          l.bindTooltip(escapeHtml(f.properties.name || f.properties.code), { sticky: true });
          l.on("click", () => { if (!addingLaunch) openPanel("commune", f.properties.code); });
        },
      });
    }
    if (layer.geometry_type !== "Point") {
      const counts = data.features.map((f) => f.properties.count).filter((c) => c !== null && c !== undefined);
      const max = counts.length ? Math.max(...counts) : 0;
      return L.geoJSON(data, {
        pane: id === "provinces" ? "outlines" : "overlayPane",
        style: (f) => {
          if (style.color_by === "count") {
            const p = f.properties;
            return { color: "#8c6d31", weight: 0.5, fillOpacity: style.fill_opacity || 0.6,
                     fillColor: p.suppressed ? NO_DATA : countColor(style.ramp || [], p.count, max) };
          }
          if (style.color_by && style.ramp && style.max_by) {  // e.g. targets met out of targets
            const p = f.properties;
            return { color: "#555", weight: 0.6, fillOpacity: style.fill_opacity || 0.6,
                     fillColor: countColor(style.ramp, p[style.color_by], p[style.max_by] || 1) };
          }
          return { color: style.stroke || "#555", weight: style.weight || 1, fill: style.fill !== false && !!style.fill,
                   fillColor: style.fill || "#ccc", fillOpacity: style.fill_opacity || 0.1,
                   dashArray: style.dash || null, interactive: id !== "provinces" };
        },
        onEachFeature: (f, l) => {
          const p = f.properties;
          if (style.color_by === "count") {
            l.bindTooltip(`${escapeHtml(p.name || "")} ${p.suppressed ? t("hidden_count") : (p.count ?? 0) + " " + t("incidents")}`);
          } else if (id !== "provinces") {
            l.bindPopup(popupTable(p, layer));
          }
        },
      });
    }
    // Points
    const colors = style.colors || {};
    const colorOf = (p) => {
      if (style.color_by === "category_root") return colors[String(p.category_code || "").split("/")[0]] || "#555";
      if (style.color_by) return colors[p[style.color_by] === null || p[style.color_by] === undefined ? "" : String(p[style.color_by])] || "#777";
      return style.color || "#444";
    };
    const group = id === "models" ? L.markerClusterGroup({ maxClusterRadius: 45, chunkedLoading: true }) : L.featureGroup();
    for (const f of data.features) {
      if (!f.geometry) continue;
      const [lon, lat] = f.geometry.coordinates;
      const p = f.properties;
      let marker;
      if (id === "models") {
        marker = L.marker([lat, lon], { icon: pointIcon(colorOf(p), TYPE_LETTERS[p.type_code] || "•") });
      } else if (id === "launch_points") {
        marker = L.marker([lat, lon], { icon: pointIcon(colorOf(p), "⚑", "flag"), zIndexOffset: 500 });
      } else {
        marker = L.circleMarker([lat, lon], { radius: style.radius || 5, color: "#fff", weight: 1,
                                               fillColor: colorOf(p), fillOpacity: 0.9 });
      }
      marker.feature = f;
      marker.bindPopup(() => pointPopup(layer, f));
      group.addLayer(marker);
    }
    return group;
  }

  function communeStyle(props, style) {
    const cov = coverageByCode[props.code];
    const coverageOn = state.on.has("coverage");
    const uncoveredOn = state.on.has("uncovered");
    const share = cov ? (cov.covered_share ?? cov.coverage ?? null) : null;
    const isUncovered = uncoveredOn && cov && cov.covered === false;
    return {
      color: isUncovered ? UNCOVERED : (style.stroke || "#6a51a3"),
      weight: isUncovered ? 2.2 : (style.weight || 1.2),
      fillColor: coverageOn ? (share === null ? NO_DATA : rampColor(COVERAGE_RAMP, share)) : (style.fill || "#bcbddc"),
      fillOpacity: coverageOn ? 0.7 : (style.fill_opacity || 0.15),
    };
  }

  function pointPopup(layer, f) {
    const div = document.createElement("div");
    div.innerHTML = popupTable(f.properties, layer);
    if (layer.id === "launch_points" && canEdit("launch_points")) {
      const b = document.createElement("button");
      b.className = "btn small"; b.textContent = t("edit");
      b.addEventListener("click", () => editLaunchPoint(layer, f.id));
      div.appendChild(b);
    }
    return div;
  }

  function vectorTileLayer(layer) {
    const style = layer.style || {};
    const styleFn = layer.id === "villages"
      ? (p) => {
        const unc = state.on.has("uncovered") && uncoveredVillages.has(p.code);
        return { weight: unc ? 1.8 : (style.weight || 0.8), color: unc ? UNCOVERED : (style.stroke || "#9e9ac8"),
                 dashArray: unc ? null : (style.dash || "3 3"), fill: unc, fillColor: UNCOVERED,
                 fillOpacity: unc ? 0.25 : 0 };
      }
      : (p) => ({ radius: style.radius || 4, weight: 1, color: "#fff", fill: true, fillOpacity: 0.9,
                  fillColor: (style.colors || {})[String(p.category_code || "").split("/")[0]] || "#e31a1c" });
    const tiles = L.vectorGrid.protobuf(layer.tiles_url.replace(/^https?:\/\/[^/]+/, ""), {
      vectorTileLayerStyles: { [layer.id]: styleFn },
      interactive: true, maxNativeZoom: 18, minZoom: layer.min_zoom || 0, maxZoom: 19,
      getFeatureId: (f) => f.properties.code || f.properties.fid || f.id,
      fetchOptions: { credentials: "same-origin" },
      rendererFactory: L.svg.tile,
    });
    tiles.on("click", (e) => {
      // Interactive tiles stop the click reaching the map: forward it while placing a point.
      if (addingLaunch) { addingLaunch({ latlng: e.latlng || map.mouseEventToLatLng(e.originalEvent) }); return; }
      const p = e.layer.properties || {};
      if (layer.id === "villages" && p.code) openPanel("village", p.code);
    });
    tiles.on("loading", () => { pending += 1; });
    tiles.on("load", () => { pending = Math.max(0, pending - 1); if (pending === 0) onIdle(); });
    return tiles;
  }

  async function drawCatalogueLayer(layer) {
    if (!state.on.has(layer.id)) { remove(layer.id); return; }
    if (VECTOR_TILE_LAYERS.has(layer.id)) {
      remove(layer.id);
      drawn[layer.id] = vectorTileLayer(layer).addTo(map);
      return;
    }
    // GeoJSON layers keep showing the previous data until the new data has arrived.
    const zoom = Math.round(map.getZoom());
    const data = await tracked(fetchAllItems(layer));
    if (!state.on.has(layer.id)) return;
    remove(layer.id);
    drawn[layer.id] = buildLayer(layer, data).addTo(map);
    drawn[layer.id].loadedZoom = zoom;
    if (layer.id === "communes") highlightSelected();
  }

  function remove(id) {
    if (drawn[id]) { map.removeLayer(drawn[id]); delete drawn[id]; }
  }

  // ---------------------------------------------------------------- analysis overlays
  async function drawAnalysis(id) {
    remove(id);
    if (!state.on.has(id)) return;
    const q = areaParams(incidentParams(state.compare));
    try {
      if (id === "coverage" || id === "uncovered") {
        await loadCoverage();
        restyleUnits();
        return;
      }
      if (id === "heatmap") {
        const b = map.getBounds();
        q.set("bbox", [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()].map((v) => v.toFixed(5)).join(","));
        const { body } = await tracked(api(`/analytics/heatmap.json?${q}`));
        const [minx, miny, maxx, maxy] = body.bounds;
        if (!state.on.has(id)) return;
        remove(id);
        drawn[id] = L.imageOverlay(body.png_url, [[miny, minx], [maxy, maxx]], { opacity: 0.75, pane: "analysis" }).addTo(map);
        legendOf.heatmap = [{ color: "linear-gradient(90deg,#ffffb2,#fd8d3c,#bd0026)", label: t("heatmap") }];
      } else if (id === "hotspots") {
        q.set("unit", "hex"); q.set("cell", "500");
        const { body } = await tracked(api(`/analytics/hotspots?${q}`));
        if (!state.on.has(id)) return;
        remove(id);
        drawn[id] = L.geoJSON(body, {
          pane: "analysis",
          style: (f) => (f.properties.bin === 0
            ? { stroke: false, fillOpacity: 0 }  // not significant: drawn as nothing
            : { color: "#fff", weight: 0.4, fillOpacity: 0.75, fillColor: ESRI_GI_COLORS[String(f.properties.bin)] }),
          onEachFeature: (f, l) => l.bindTooltip(`Gi* z=${(+f.properties.z).toFixed(2)}, p=${(+f.properties.p).toFixed(3)}`),
        }).addTo(map);
        legendOf.hotspots = [3, 2, 1, 0, -1, -2, -3].map((b) => ({ color: ESRI_GI_COLORS[b], label: giLabel(b) }));
      } else if (id === "clusters") {
        const { body } = await tracked(api(`/analytics/clusters?${q}`));
        if (!state.on.has(id)) return;
        remove(id);
        drawn[id] = L.geoJSON(body, {
          pane: "analysis",
          style: (f) => ({ color: CLUSTER_COLORS[(f.properties.cluster_id || 0) % CLUSTER_COLORS.length], weight: 2, fillOpacity: 0.25 }),
          pointToLayer: (f, ll) => L.circleMarker(ll, { radius: 4 }),
        }).addTo(map);
      }
    } catch (err) {
      showLayerError(id, err);
    }
    renderLegend();
  }

  function giLabel(bin) {
    const conf = { 3: "99%", 2: "95%", 1: "90%" }[Math.abs(bin)];
    if (bin === 0) return state.lang === "en" ? "Not significant" : "Không có ý nghĩa thống kê";
    if (bin > 0) return (state.lang === "en" ? "Hot spot " : "Điểm nóng ") + conf;
    return (state.lang === "en" ? "Cold spot " : "Điểm lạnh ") + conf;
  }

  function rowsOf(body) {
    if (Array.isArray(body)) return body;
    if (body && Array.isArray(body.features)) return body.features.map((f) => f.properties);
    if (body && Array.isArray(body.items)) return body.items;
    if (body && Array.isArray(body.rows)) return body.rows;
    return [];
  }

  // Half a screen pixel in metres at a zoom (api/features.py's rule for `zoom`), at most the
  // API's 5,000 m: the national view would otherwise pull every commune at 20 m (22 MB).
  function simplifyAt(zoom) {
    return Math.min(5000, Math.round((156543.03 * 0.96) / 2 ** zoom / 2 * 10) / 10);
  }

  async function loadCoverage() {
    const date = period(false).end || isoDate(new Date());
    const simplify = String(simplifyAt(Math.round(map.getZoom())));
    if (state.on.has("coverage") || state.on.has("uncovered")) {
      const { body } = await tracked(api(`/analytics/coverage/communes?${areaParams(new URLSearchParams({ date, simplify }))}`));
      coverageByCode = {};
      for (const r of rowsOf(body)) coverageByCode[r.code || r.commune_code] = r;
      legendOf.coverage = COVERAGE_RAMP.map(([v, c]) => ({ color: c, label: `≥ ${Math.round(v * 100)}%` }))
        .concat([{ color: NO_DATA, label: t("not_available") }]);
    }
    if (state.on.has("uncovered")) {
      const { body } = await tracked(api(`/analytics/coverage/uncovered?${areaParams(new URLSearchParams({ level: "village", date, simplify }))}`));
      uncoveredVillages = new Set(rowsOf(body).map((r) => r.code));
      legendOf.uncovered = [{ color: "#fff", border: UNCOVERED, label: t("uncovered") }];
    }
  }

  function restyleUnits() {
    const communes = catalogue.find((l) => l.id === "communes");
    if (drawn.communes && communes) highlightSelected();
    const key = state.on.has("uncovered") ? [...uncoveredVillages].sort().join(",") : "";
    if (drawn.villages && drawn.villages.redraw && key !== restyleUnits.last) drawn.villages.redraw();
    restyleUnits.last = key;
    renderLegend();
  }

  function showLayerError(id, err) {
    const box = document.querySelector(`[data-layer="${id}"] .layer-error`);
    if (box) { box.textContent = err.message; box.hidden = false; }
    console.warn(`layer ${id}:`, err.message);
  }

  // ---------------------------------------------------------------- sidebar
  function renderLayerList() {
    const list = $("#layer-list");
    list.innerHTML = "";
    for (const layer of catalogue) {
      list.appendChild(layerRow(layer.id, tr(layer.title), (layer.legend || [])[0]));
    }
    const alist = $("#analysis-list");
    alist.innerHTML = "";
    for (const a of ANALYSIS) {
      alist.appendChild(layerRow(a.id, t(a.key)));
    }
    $("#analysis-card").hidden = !config.user;
  }

  function layerRow(id, title, legendEntry) {
    const row = document.createElement("label");
    row.className = "layer-row"; row.dataset.layer = id;
    const swatch = legendEntry ? `<i class="sw" style="background:${legendEntry.color || (legendEntry.colors || [])[2] || "#ccc"}"></i>` : `<i class="sw"></i>`;
    row.innerHTML = `<input type="checkbox" ${state.on.has(id) ? "checked" : ""}> ${swatch}<span>${escapeHtml(title)}</span><small class="layer-error" hidden></small>`;
    row.querySelector("input").addEventListener("change", (e) => toggle(id, e.target.checked));
    return row;
  }

  function toggle(id, on) {
    if (on) state.on.add(id); else state.on.delete(id);
    writeHash();
    const layer = catalogue.find((l) => l.id === id);
    if (layer) drawCatalogueLayer(layer).catch((e) => showLayerError(id, e));
    else drawAnalysis(id);
    if (id === "coverage" || id === "uncovered") restyleUnits();
    renderLegend();
  }

  function renderLegend() {
    const box = $("#legend");
    const parts = [];
    for (const layer of catalogue) {
      if (!state.on.has(layer.id) || !(layer.legend || []).length) continue;
      const items = layer.legend.map((e) => {
        const color = e.colors ? `linear-gradient(90deg,${e.colors.join(",")})` : e.color;
        return `<li><i class="sw" style="background:${color}"></i>${escapeHtml(tr(e.label))}</li>`;
      });
      parts.push(`<h4>${escapeHtml(tr(layer.title))}</h4><ul>${items.join("")}</ul>`);
    }
    for (const a of ANALYSIS) {
      if (!state.on.has(a.id) || !legendOf[a.id]) continue;
      const items = legendOf[a.id].map((e) => `<li><i class="sw" style="background:${e.color};${e.border ? `border:2px solid ${e.border}` : ""}"></i>${escapeHtml(e.label)}</li>`);
      parts.push(`<h4>${escapeHtml(t(a.key))}</h4><ul>${items.join("")}</ul>`);
    }
    box.innerHTML = parts.join("") || `<p class="hint">—</p>`;
  }

  function monthsBack(n) {
    const now = new Date();
    const d = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - n, 1));
    return `${d.getUTCFullYear()}-${String(d.getUTCMonth() + 1).padStart(2, "0")}`;
  }

  async function setupFilters() {
    $("#filters-card").hidden = !config.user;
    $("#f-start").value = state.start || "";
    $("#f-end").value = state.end || "";
    const slider = $("#f-month");
    const idx = state.month ? 23 - monthOffset(state.month) : 24;
    slider.value = String(Math.max(0, Math.min(24, idx)));
    updateMonthLabel();
    const sel = $("#f-category");
    sel.innerHTML = `<option value="">${escapeHtml(t("all"))}</option>`;
    for (const [code, vi, en] of CATEGORIES) {
      const depth = code.split("/").length - 1;
      sel.insertAdjacentHTML("beforeend", `<option value="${code}">${"  ".repeat(depth)}${escapeHtml(state.lang === "en" ? en : vi)}</option>`);
    }
    sel.value = state.category;
    $("#f-youth").value = state.youth;
    $("#f-compare").checked = state.compare;
  }

  function monthOffset(ym) {
    const now = new Date();
    const [y, m] = ym.split("-").map(Number);
    return (now.getUTCFullYear() - y) * 12 + (now.getUTCMonth() + 1 - m);
  }

  function updateMonthLabel() {
    const v = +$("#f-month").value;
    $("#f-month-label").textContent = v >= 24 ? t("all_period") : monthsBack(23 - v);
  }

  const CATEGORIES = [
    ["crime", "Tội phạm", "Crime"], ["crime/murder", "Giết người", "Murder"],
    ["crime/injury", "Cố ý gây thương tích", "Intentional injury"],
    ["crime/disorder", "Gây rối trật tự công cộng", "Public disorder"],
    ["crime/theft", "Trộm cắp tài sản", "Theft"], ["crime/robbery", "Cướp, cướp giật", "Robbery"],
    ["crime/fraud", "Lừa đảo", "Fraud"], ["crime/fraud/online", "Lừa đảo qua mạng", "Online scams"],
    ["crime/drugs", "Ma túy", "Drugs"], ["crime/gambling", "Đánh bạc", "Gambling"],
    ["crime/weapons", "Vũ khí, vật liệu nổ, pháo", "Weapons, explosives"],
    ["violation", "Vi phạm pháp luật khác", "Other violations"],
    ["fire", "Cháy, nổ", "Fire and explosion"], ["traffic", "Tai nạn giao thông", "Traffic accident"],
  ];

  function onFilterChange() {
    state.start = $("#f-start").value || null;
    state.end = $("#f-end").value || null;
    const v = +$("#f-month").value;
    state.month = v >= 24 ? null : monthsBack(23 - v);
    state.category = $("#f-category").value;
    state.youth = $("#f-youth").value;
    state.compare = $("#f-compare").checked;
    updateMonthLabel();
    writeHash();
    refreshIncidentLayers();
  }

  function refreshIncidentLayers() {
    for (const layer of catalogue) {
      if (layer.id.startsWith("incident") && state.on.has(layer.id)) drawCatalogueLayer(layer).catch((e) => showLayerError(layer.id, e));
    }
    for (const id of ["heatmap", "hotspots", "clusters"]) if (state.on.has(id)) drawAnalysis(id);
    updateCompare();
  }

  async function updateCompare() {
    const box = $("#compare-box");
    if (!state.compare || !config.user) { box.hidden = true; return; }
    try {
      const q = areaParams(incidentParams(false));
      q.set("level", "province");
      const { body } = await tracked(api(`/analytics/same-period?${q}`));
      const fmt = (v) => (v === null || v === undefined ? "—" : Math.round(v).toLocaleString(state.lang));
      const change = body.change_pct === null || body.change_pct === undefined ? "—"
        : `${body.change_pct > 0 ? "+" : ""}${body.change_pct.toFixed(0)}%`;
      box.innerHTML = `<div><span>${t("this_period")}</span><b>${fmt(body.this_period)}</b></div><div><span>${t("last_year")}</span><b>${fmt(body.last_year)}</b></div><div><span>${t("change")}</span><b>${change}</b></div>`;
      box.hidden = false;
    } catch (err) {
      box.textContent = err.message; box.hidden = false;
    }
  }

  // ---------------------------------------------------------------- search
  let searchTimer = null;
  function setupSearch() {
    const input = $("#search"), list = $("#search-results");
    input.addEventListener("input", () => {
      clearTimeout(searchTimer);
      const q = input.value.trim();
      if (q.length < 2 || !config.user) { list.hidden = true; return; }
      searchTimer = setTimeout(async () => {
        try {
          const { body } = await api(`/search?${new URLSearchParams({ q, limit: "10" })}`);
          list.innerHTML = "";
          for (const r of body) {
            const li = document.createElement("li");
            li.setAttribute("role", "option");
            li.innerHTML = `<b>${escapeHtml(r.full_name || r.name)}</b><small>${escapeHtml([r.kind, r.parent_name, r.code].filter(Boolean).join(" · "))}</small>`;
            li.addEventListener("click", () => {
              list.hidden = true; input.value = r.full_name || r.name;
              if (r.bbox) map.fitBounds([[r.bbox[1], r.bbox[0]], [r.bbox[3], r.bbox[2]]], { maxZoom: 15 });
              if (r.level === "commune" || r.level === "village") openPanel(r.level, r.code);
            });
            list.appendChild(li);
          }
          if (!body.length) list.innerHTML = `<li class="empty">${t("none")}</li>`;
          list.hidden = false;
        } catch (err) { toast(err.message, true); }
      }, 200);
    });
    input.addEventListener("keydown", (e) => {
      if (e.key === "Enter") { const first = list.querySelector("li:not(.empty)"); if (first) first.click(); }
      if (e.key === "Escape") list.hidden = true;
    });
  }

  // ---------------------------------------------------------------- unit panel
  async function openPanel(level, code) {
    const panel = $("#panel"), body = $("#panel-body");
    panel.hidden = false;
    selected = { level, code };
    highlightSelected();
    body.innerHTML = `<p class="hint">${t("loading")}</p>`;
    try {
      const date = period(false).end || isoDate(new Date());
      const { body: s } = await api(`/units/${level}/${encodeURIComponent(code)}/summary?date=${date}`);
      body.innerHTML = panelHtml(level, code, s);
    } catch (err) {
      body.innerHTML = `<p class="error">${escapeHtml(err.message)}</p>`;
    }
  }

  function pct(v) { return v === null || v === undefined ? "—" : `${Math.round(v * 100)}%`; }

  // The panel shows these coverage figures, in this order (shares as percentages).
  const COVERAGE_FIELDS = [
    ["villages", "Số thôn", "Villages"], ["villages_covered", "Thôn có mô hình", "Villages covered"],
    ["covered_share", "Tỷ lệ thôn có mô hình", "Share of villages covered", true],
    ["models_active", "Mô hình đang hoạt động", "Active models"],
    ["models_qualifying", "Mô hình đạt yêu cầu", "Qualifying models"],
    ["area_within_r_share", "Diện tích trong bán kính phục vụ", "Area within the service radius", true],
    ["population_within_r_share", "Dân số trong bán kính phục vụ", "Population within the service radius", true],
    ["fire_groups", "Tổ liên gia PCCC", "Fire-safety groups"],
    ["fire_household_share", "Hộ tham gia tổ liên gia", "Households in fire groups", true],
    ["institutions", "Cơ quan, doanh nghiệp, trường học", "Institutions"],
    ["institutions_safe_share", "Đạt chuẩn An toàn về ANTT", "Certified safe", true],
  ];
  const RATING_LABELS = { tot: ["Tốt", "Good"], kha: ["Khá", "Fair"], trung_binh: ["Trung bình", "Average"],
                          yeu: ["Yếu", "Poor"] };
  const ratingLabel = (r) => (RATING_LABELS[r] ? RATING_LABELS[r][state.lang === "en" ? 1 : 0] : "—");

  function panelHtml(level, code, s) {
    const u = s.unit || {};
    const cov = s.coverage || {};
    const models = s.models || [];
    const targets = s.targets || [];
    const covRows = COVERAGE_FIELDS.filter(([k]) => k in cov).map(([k, vi, en, share]) => {
      const v = cov[k];
      const shown = v === null || v === undefined ? "—" : share ? pct(v) : String(v);
      return `<tr><th>${escapeHtml(state.lang === "en" ? en : vi)}</th><td>${escapeHtml(shown)}</td></tr>`;
    });
    if ("covered" in cov) {
      covRows.push(`<tr><th>${escapeHtml(t("covered"))}</th><td><span class="rating ${cov.covered ? "r-tot" : "r-yeu"}">${cov.covered ? t("met") : t("not_met")}</span></td></tr>`);
    }
    const modelRows = models.map((m) => `<tr><td>${escapeHtml(m.name)}</td><td>${escapeHtml(m.type_name || m.type || "")}</td><td><span class="rating r-${escapeHtml(m.rating || "none")}">${escapeHtml(ratingLabel(m.rating))}</span></td></tr>`);
    const targetRows = targets.map((g) => {
      const asShare = g.target !== null && g.target <= 1 && !/new|count/.test(g.key);
      const show = (v) => (v === null || v === undefined ? "—" : asShare ? pct(v) : String(v));
      const ratio = g.target && g.value !== null ? Math.min(1, (+g.value || 0) / +g.target) : 0;
      const status = g.met === null || g.met === undefined ? `<span class="na">${t("not_available")}</span>`
        : `<span class="${g.met ? "ok" : "no"}">${g.met ? t("met") : t("not_met")}</span>`;
      return `<li><div class="t-label">${escapeHtml(tr(g.label))}${status}</div>
        <div class="bar"><i style="width:${Math.round(ratio * 100)}%"></i></div><small>${escapeHtml(show(g.value))} / ${escapeHtml(show(g.target))}</small></li>`;
    });
    const exportLink = level === "commune" ? `<a class="btn small" href="/exports/map?commune=${encodeURIComponent(code)}" target="_blank" rel="noopener">${t("export")}</a>` : "";
    return `<h2>${escapeHtml(u.full_name || u.name || code)}</h2>
      <p class="hint">${escapeHtml([u.kind, u.parent_name, code].filter(Boolean).join(" · "))}</p>
      <h3>${t("panel_coverage")}</h3><table class="props">${covRows.join("")}</table>
      <h3>${t("panel_targets")}</h3><ul class="targets">${targetRows.join("") || `<li class="hint">—</li>`}</ul>
      <h3>${t("panel_trend")}</h3>${sparkline(s.trend)}
      <h3>${t("panel_models")} (${models.length})</h3>
      ${models.length ? `<table class="props models"><tr><th>${t("lp_name")}</th><th>${t("type")}</th><th>${t("rating")}</th></tr>${modelRows.join("")}</table>` : `<p class="hint">${t("no_models")}</p>`}
      ${exportLink}`;
  }

  function sparkline(trend) {
    if (!trend || !trend.months || !trend.months.length) return `<p class="hint">—</p>`;
    const a = (trend.this_year || []).map((v) => (v === null ? null : +v));
    const b = (trend.last_year || []).map((v) => (v === null ? null : +v));
    const max = Math.max(1, ...a.filter((v) => v !== null), ...b.filter((v) => v !== null));
    const w = 260, h = 60, n = trend.months.length;
    const pts = (vals) => vals.map((v, i) => v === null ? null : `${((i / Math.max(1, n - 1)) * w).toFixed(1)},${(h - (v / max) * (h - 4) - 2).toFixed(1)}`)
      .filter(Boolean).join(" ");
    const hidden = trend.suppressed ? `<p class="hint">${t("trend_hidden")}</p>` : "";
    return `<svg class="spark" viewBox="0 0 ${w} ${h}" width="100%" height="${h}" role="img">
      <line x1="0" y1="${h - 2}" x2="${w}" y2="${h - 2}" stroke="#e2e6ea"/>
      <polyline points="${pts(b)}" fill="none" stroke="#9e9e9e" stroke-width="1.5" stroke-dasharray="4 3"/>
      <polyline points="${pts(a)}" fill="none" stroke="#b71c1c" stroke-width="2"/></svg>
      <p class="spark-legend"><i style="background:#b71c1c"></i>${t("this_period")} <i style="background:#9e9e9e"></i>${t("last_year")} · ${escapeHtml(trend.months[0])}–${escapeHtml(trend.months[n - 1])} · max ${max}</p>${hidden}`;
  }

  // ---------------------------------------------------------------- launch points
  function canEdit(collection) {
    const role = config.user && config.user.role;
    if (role === "admin") return true;
    return role === "planner" && ["launch_points", "models", "fire_groups", "institutions"].includes(collection);
  }

  function openLaunchDialog(title, values, onSubmit) {
    const dlg = $("#launch-dialog"), form = $("#launch-form");
    $("#launch-title").textContent = t(title);
    form.reset();
    for (const [k, v] of Object.entries(values)) if (form.elements[k] && v !== null && v !== undefined) form.elements[k].value = v;
    $("#launch-error").hidden = true;
    form.onsubmit = async (e) => {
      e.preventDefault();
      const data = Object.fromEntries(new FormData(form).entries());
      if (!data.notes) delete data.notes;
      try {
        await onSubmit(data);
        dlg.close();
      } catch (err) {
        const fields = (err.body && err.body.errors || []).map((x) => x.field).filter(Boolean);
        $("#launch-error").textContent = err.message + (fields.length ? ` (${fields.join(", ")})` : "");
        $("#launch-error").hidden = false;
      }
    };
    dlg.showModal();
  }

  function startAddLaunch() {
    toast(t("click_map"));
    map.getContainer().classList.add("placing");
    if (addingLaunch) map.off("click", addingLaunch);
    addingLaunch = (e) => {
      map.off("click", addingLaunch); addingLaunch = null;
      map.getContainer().classList.remove("placing");
      const { lat, lng } = e.latlng;
      $("#launch-coords").textContent = `${lat.toFixed(5)}, ${lng.toFixed(5)}`;
      openLaunchDialog("new_launch", { launch_date: isoDate(new Date()), status: "planned" }, async (props) => {
        const feature = { type: "Feature", geometry: { type: "Point", coordinates: [lng, lat] }, properties: props };
        const { body } = await api("/collections/launch_points/items", {
          method: "POST", headers: { "Content-Type": "application/geo+json" }, body: JSON.stringify(feature),
        });
        toast(t("saved"));
        reloadLayer("launch_points");
        showNearbyUncovered(body && body.id);
        return body;
      });
    };
    map.on("click", addingLaunch);
  }

  async function editLaunchPoint(layer, fid) {
    map.closePopup();
    const { body: f, res } = await api(`${layer.items_url}/${fid}`);
    const etag = res.headers.get("ETag");
    const [lng, lat] = f.geometry.coordinates;
    $("#launch-coords").textContent = `${lat.toFixed(5)}, ${lng.toFixed(5)}`;
    const p = f.properties;
    openLaunchDialog("edit_launch", { name: p.name, theme: p.theme, launch_date: p.launch_date, status: p.status, notes: p.notes }, async (props) => {
      try {
        await api(`${layer.items_url}/${fid}`, {
          method: "PATCH", headers: { "Content-Type": "application/json", "If-Match": etag },
          body: JSON.stringify({ type: "Feature", properties: props }),
        });
      } catch (err) {
        if (err.status === 412) { toast(t("stale"), true); reloadLayer("launch_points"); }
        throw err;
      }
      toast(t("saved"));
      reloadLayer("launch_points");
      showNearbyUncovered(fid);
    });
  }

  // Uncovered villages within NEARBY_RADIUS_M metres of the saved launch point, nearest first
  // (the server measures in EPSG:3405 and ranks with the coverage rule).
  const NEARBY_RADIUS_M = 2000;
  async function showNearbyUncovered(fid) {
    const box = $("#nearby-box");
    box.hidden = false;
    if (!fid) { box.innerHTML = `<p class="hint">${t("none")}</p>`; return; }
    box.innerHTML = `<p class="hint">${t("loading")}</p>`;
    try {
      const q = new URLSearchParams({ radius: String(NEARBY_RADIUS_M) });
      const { body } = await api(`/collections/launch_points/items/${encodeURIComponent(fid)}/nearby-uncovered?${q}`);
      const rows = rowsOf(body);
      uncoveredVillages = new Set([...uncoveredVillages, ...rows.map((r) => r.code)]);
      state.on.add("uncovered"); restyleUnits(); renderLayerList();
      box.innerHTML = `<h4>${t("nearby_uncovered")} · ${NEARBY_RADIUS_M / 1000} km (${rows.length})</h4>` + (rows.length
        ? `<ol>${rows.slice(0, 12).map((r) => `<li>${escapeHtml(r.name)} <small>${escapeHtml(r.commune_name || "")} · ${Math.round(r.distance_m)} m</small></li>`).join("")}</ol>`
        : `<p class="hint">${t("none")}</p>`);
    } catch (err) {
      box.innerHTML = `<p class="error">${escapeHtml(err.message)}</p>`;
    }
  }

  function reloadLayer(id) {
    const layer = catalogue.find((l) => l.id === id);
    if (layer) { state.on.add(id); drawCatalogueLayer(layer).catch((e) => showLayerError(id, e)); }
  }

  // ---------------------------------------------------------------- auth
  function renderUser() {
    const u = config.user;
    $("#login-btn").hidden = !!u;
    $("#logout-btn").hidden = !u;
    $("#welcome").hidden = !!u;
    $("#layer-list").closest(".card").hidden = !u;
    $("#legend").closest(".card").hidden = !u;
    const badge = $("#user-badge");
    badge.hidden = !u;
    if (u) badge.innerHTML = `<b>${escapeHtml(u.username)}</b> · ${escapeHtml(t("role_" + u.role))}`;
    $("#planner-card").hidden = !canEdit("launch_points");
    document.dispatchEvent(new CustomEvent("antt:user", { detail: u || null }));  // for panels (targets.js)
  }

  function setupAuth() {
    const dlg = $("#login-dialog");
    $("#login-btn").addEventListener("click", () => { $("#login-error").hidden = true; dlg.showModal(); });
    $("#login-cancel").addEventListener("click", () => dlg.close());
    $("#login-form").addEventListener("submit", async (e) => {
      e.preventDefault();
      const form = new URLSearchParams(new FormData(e.target));
      try {
        await api("/auth/token", { method: "POST", body: form,
                                    headers: { "Content-Type": "application/x-www-form-urlencoded" } });
        dlg.close();
        await start();
      } catch (err) {
        $("#login-error").textContent = err.message; $("#login-error").hidden = false;
      }
    });
    $("#logout-btn").addEventListener("click", async () => {
      try { await api("/auth/logout", { method: "POST" }); } finally { location.reload(); }
    });
  }

  // ---------------------------------------------------------------- start
  async function start() {
    const { body } = await tracked(api("/config.json"));
    config = body;
    for (const id of Object.keys(drawn)) remove(id);
    catalogue = [];
    renderUser();
    if (config.basemap_url) {  // optional site tile server (settings.basemap_url)
      drawn._basemap = L.tileLayer(config.basemap_url, { maxZoom: 19, opacity: 0.9 }).addTo(map);
    }
    if (config.user) {
      const { body: layers } = await tracked(api("/layers"));
      catalogue = layers;
    }
    renderLayerList();
    await setupFilters();
    renderLegend();
    // Layers first (the provinces layer tells the analyses which province is in view).
    pending += 1;  // hold "ready" until the analyses below have started too
    await Promise.all(catalogue.map((layer) => drawCatalogueLayer(layer).catch((e) => showLayerError(layer.id, e))));
    const jobs = [];
    if (config.user && (state.on.has("coverage") || state.on.has("uncovered"))) {
      jobs.push(loadCoverage().catch((e) => showLayerError("coverage", e)));
    }
    if (config.user) {
      for (const a of ANALYSIS) if (state.on.has(a.id) && !["coverage", "uncovered"].includes(a.id)) jobs.push(drawAnalysis(a.id));
    }
    pending -= 1;
    if (pending === 0) onIdle();
    await Promise.all(jobs);
    restyleUnits();
    updateCompare();
    if (!config.user) onIdle();
    document.dispatchEvent(new CustomEvent("antt:started", { detail: config }));  // panels (planner.js)
  }

  // Zoom-dependent requests: hexagon size follows the zoom bucket; polygons simplified for a
  // lower zoom are fetched again when the user zooms in two levels or more.
  function hexCell(z) { return z <= 10 ? 2000 : z === 11 ? 1000 : z === 12 ? 500 : 250; }
  function onZoomEnd() {
    const z = Math.round(map.getZoom());
    for (const layer of catalogue) {
      const d = drawn[layer.id];
      if (!d || d.loadedZoom === undefined) continue;
      const stale = layer.id === "incident_hexagons" ? hexCell(z) !== hexCell(d.loadedZoom)
        : layer.geometry_type !== "Point" && z >= d.loadedZoom + 2;
      if (stale) drawCatalogueLayer(layer).catch((e) => showLayerError(layer.id, e));
    }
  }

  let selected = null;  // {level, code} of the unit shown in the panel
  function highlightSelected() {
    if (!drawn.communes || !drawn.communes.eachLayer) return;
    const communes = catalogue.find((l) => l.id === "communes");
    drawn.communes.eachLayer((l) => {
      const p = l.feature.properties;
      if (selected && selected.level === "commune" && p.code === selected.code) {
        l.setStyle({ color: "#111827", weight: 4, dashArray: null }); l.bringToFront();
      } else {
        l.setStyle(communeStyle(p, (communes && communes.style) || {}));
      }
    });
  }

  function init() {
    readHash();
    applyI18n();
    map.setView(state.center, state.zoom);
    map.on("moveend", writeHash);
    let zoomTimer = null;
    map.on("zoomend", () => { clearTimeout(zoomTimer); zoomTimer = setTimeout(onZoomEnd, 250); });
    $("#lang-toggle").addEventListener("click", () => {
      state.lang = state.lang === "vi" ? "en" : "vi";
      applyI18n(); renderUser(); renderLayerList(); setupFilters(); renderLegend(); writeHash();
      document.dispatchEvent(new CustomEvent("antt:lang", { detail: state.lang }));
    });
    $("#panel-close").addEventListener("click", () => { $("#panel").hidden = true; selected = null; highlightSelected(); });
    for (const id of ["#f-start", "#f-end", "#f-month", "#f-category", "#f-youth", "#f-compare"]) {
      $(id).addEventListener("change", onFilterChange);
    }
    $("#f-month").addEventListener("input", updateMonthLabel);
    $("#add-launch").addEventListener("click", startAddLaunch);
    $("#launch-cancel").addEventListener("click", () => $("#launch-dialog").close());
    setupSearch();
    setupAuth();
    start().catch((err) => toast(err.message, true));
  }

  // for tests, the console and the panels in their own modules (planner.js)
  window.anttMap = { map, state, drawn, openPanel, currentProvince, pending: () => pending, toast, reloadLayer,
                     selected: () => selected };
  init();
})();
