/* The launch-point planner panel: "Gợi ý điểm phát động / Suggest launch points".
 *
 * Planners and admins: scope, p, radius, weight sliders and candidates → POST /planner/suggest
 * (a province or hexagons come back as a job: /jobs/{id} is polled); numbered sites with their
 * coverage circles, uncovered villages in red, before/after figures; a site dragged by hand is
 * re-evaluated (POST /planner/evaluate) and the figures follow; candidate, exclusion and scope
 * areas are drawn with the vendored Leaflet.draw; save, compare and accept scenarios.
 * Every other role sees the accepted plans only (the server enforces both). */

const I18N = {
  vi: {
    title: "Gợi ý điểm phát động", plans: "Kế hoạch đã duyệt", scope: "Phạm vi",
    sc_commune: "Xã (mã)", sc_province: "Tỉnh đang xem", sc_polygon: "Vùng đã vẽ", problem: "Bài toán",
    mclp: "Phủ tối đa với p điểm (MCLP)", lscp: "Ít điểm nhất để phủ (LSCP)", p: "Số điểm p",
    share: "Tỷ lệ trọng số cần phủ (%)", radius: "Bán kính (m)", demand: "Nhu cầu",
    d_villages: "Thôn", d_hexagons: "Lục giác 250 m", weights: "Trọng số",
    w_population: "Dân số", w_incidents: "Vụ việc (12 tháng)", w_institutions_unsafe: "Cơ sở chưa đạt ANTT",
    w_no_model: "Thôn chưa có mô hình", candidates: "Địa điểm ứng viên", k_villages: "Trung tâm thôn",
    k_institutions: "Cơ quan, trường học", k_launch_points: "Điểm phát động dự kiến", k_drawn: "Điểm/vùng đã vẽ",
    draw_candidates: "Vẽ vùng ứng viên", draw_exclusions: "Vẽ vùng loại trừ", draw_scope: "Vẽ phạm vi",
    draw_point: "Đặt điểm ứng viên", clear: "Xóa hình vẽ", run: "Chạy gợi ý", running: "Đang tính…",
    before: "Trước", after: "Sau", change: "Thay đổi", f_villages_within_r: "Thôn trong bán kính",
    f_population_within_r: "Dân số trong bán kính", f_villages_hosting_model: "Thôn có mô hình",
    f_incidents_in_villages_within_r: "Vụ việc ở thôn được phủ", f_institutions_within_r: "Cơ sở được phủ",
    f_demand_weight_covered: "Trọng số được phủ", sites: "Điểm gợi ý", gain: "thêm",
    drag_hint: "Kéo điểm để điều chỉnh; số liệu tự cập nhật.", name: "Tên kịch bản", save: "Lưu kịch bản",
    saved: "Đã lưu kịch bản", scenarios: "Kịch bản", accept: "Duyệt", compare: "So sánh 2 kịch bản đã chọn",
    accepted: "Đã duyệt: tạo điểm phát động dự kiến", status_draft: "nháp", status_accepted: "đã duyệt",
    status_archived: "lưu trữ", uncovered: "thôn chưa được phủ", formula: "Công thức", solver: "Bộ giải",
    none: "Không có", show: "Xem", b_minus_a: "B − A",
  },
  en: {
    title: "Suggest launch points", plans: "Accepted plans", scope: "Scope",
    sc_commune: "Commune (code)", sc_province: "Province in view", sc_polygon: "Drawn area", problem: "Problem",
    mclp: "Maximal coverage with p sites (MCLP)", lscp: "Fewest sites to cover (LSCP)", p: "Sites p",
    share: "Share of weight to cover (%)", radius: "Radius (m)", demand: "Demand",
    d_villages: "Villages", d_hexagons: "250 m hexagons", weights: "Weights",
    w_population: "Population", w_incidents: "Incidents (12 months)", w_institutions_unsafe: "Institutions not safe",
    w_no_model: "Villages without a model", candidates: "Candidate sites", k_villages: "Village centres",
    k_institutions: "Agencies, schools", k_launch_points: "Planned launch points", k_drawn: "Drawn points/areas",
    draw_candidates: "Draw candidate area", draw_exclusions: "Draw exclusion area", draw_scope: "Draw scope",
    draw_point: "Place candidate point", clear: "Clear drawings", run: "Run", running: "Computing…",
    before: "Before", after: "After", change: "Change", f_villages_within_r: "Villages within R",
    f_population_within_r: "Population within R", f_villages_hosting_model: "Villages with a model",
    f_incidents_in_villages_within_r: "Incidents in covered villages", f_institutions_within_r: "Institutions covered",
    f_demand_weight_covered: "Weight covered", sites: "Suggested sites", gain: "adds",
    drag_hint: "Drag a site to adjust it; the figures follow.", name: "Scenario name", save: "Save scenario",
    saved: "Scenario saved", scenarios: "Scenarios", accept: "Accept", compare: "Compare the 2 selected",
    accepted: "Accepted: planned launch points created", status_draft: "draft", status_accepted: "accepted",
    status_archived: "archived", uncovered: "villages not covered", formula: "Formula", solver: "Solver",
    none: "None", show: "Show", b_minus_a: "B − A",
  },
};
const FIGURES = ["villages_within_r", "population_within_r", "villages_hosting_model",
                 "incidents_in_villages_within_r", "institutions_within_r", "demand_weight_covered"];
const WEIGHTS = [["population", 1, 0, 5, 0.1], ["incidents", 0, 0, 500, 10], ["institutions_unsafe", 0, 0, 5000, 100],
                 ["no_model", 0, 0, 20000, 500]];

const app = () => window.anttMap;
const lang = () => (app() && app().state.lang) || "vi";
const t = (k) => (I18N[lang()] && I18N[lang()][k]) || I18N.vi[k] || k;
const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
const num = (x, d = 0) => (x === null || x === undefined ? "–" : Number(x).toLocaleString(lang() === "vi" ? "vi-VN" : "en-US", { maximumFractionDigits: d }));

let config = null;
let options = null;
let layer = null;          // results: sites, circles, uncovered villages
let drawnItems = null;     // what the planner drew
const drawings = { candidates: [], exclusions: [], scope: null, points: [] };
let lastRequest = null;    // the body of the last run
let lastResult = null;
let moved = false;
let evaluating = null;
let scenarios = [];

async function api(path, opts = {}) {
  const res = await fetch(path, { credentials: "same-origin", headers: { "Content-Type": "application/json" }, ...opts });
  const type = res.headers.get("content-type") || "";
  const body = type.includes("json") ? await res.json() : null;
  if (!res.ok) {
    const err = new Error((body && (lang() === "en" ? body.detail_en : body.detail_vi)) || `HTTP ${res.status}`);
    err.status = res.status; err.body = body;
    throw err;
  }
  return { body, status: res.status };
}

const card = () => document.getElementById("suggest-card");
const $ = (sel) => card().querySelector(sel);

function tool() { return options && options.tool; }

function render() {
  const el = card();
  if (!config || !config.user || !options) { el.hidden = true; return; }
  el.hidden = false;
  if (!tool()) {
    el.innerHTML = `<h2>${t("plans")}</h2><div class="pl-scenarios"></div>`;
    renderScenarios();
    return;
  }
  const kinds = ["villages", "institutions", "launch_points", "drawn"];
  el.innerHTML = `
    <h2>${t("title")}</h2>
    <label>${t("scope")}
      <select class="pl-scope">
        <option value="commune">${t("sc_commune")}</option>
        <option value="province">${t("sc_province")}</option>
        <option value="polygon">${t("sc_polygon")}</option>
      </select></label>
    <input class="pl-commune" placeholder="11914" maxlength="20" aria-label="commune code">
    <label>${t("problem")}
      <select class="pl-problem"><option value="mclp">${t("mclp")}</option><option value="lscp">${t("lscp")}</option></select></label>
    <div class="row2">
      <label>${t("p")}<input class="pl-p" type="number" min="1" max="2000" value="5"></label>
      <label>${t("radius")}<input class="pl-radius" type="number" min="50" max="20000" step="50"
             value="${options.default_radius_m}"></label>
    </div>
    <label class="pl-share-row" hidden>${t("share")}<input class="pl-share" type="number" min="1" max="100" value="90"></label>
    <label>${t("demand")}
      <select class="pl-demand"><option value="villages">${t("d_villages")}</option>
        <option value="hexagons">${t("d_hexagons")}</option></select></label>
    <fieldset><legend>${t("weights")}</legend>
      ${WEIGHTS.map(([k, v, lo, hi, step]) => `
        <label class="slider">${t("w_" + k)}: <b class="pl-wv-${k}">${v}</b>
          <input class="pl-w" data-k="${k}" type="range" min="${lo}" max="${hi}" step="${step}" value="${v}"></label>`).join("")}
    </fieldset>
    <fieldset><legend>${t("candidates")}</legend>
      ${kinds.map((k) => `<label class="check"><input type="checkbox" class="pl-kind" value="${k}"
        ${k === "villages" || k === "drawn" ? "checked" : ""}> ${t("k_" + k)}</label>`).join("")}
      <div class="pl-draw">
        <button type="button" class="btn ghost pl-draw-cand">${t("draw_candidates")}</button>
        <button type="button" class="btn ghost pl-draw-point">${t("draw_point")}</button>
        <button type="button" class="btn ghost pl-draw-excl">${t("draw_exclusions")}</button>
        <button type="button" class="btn ghost pl-draw-scope">${t("draw_scope")}</button>
        <button type="button" class="btn ghost pl-clear">${t("clear")}</button>
      </div>
    </fieldset>
    <button type="button" class="btn primary pl-run">${t("run")}</button>
    <div class="pl-progress" hidden><div class="pl-bar"></div><span class="pl-msg"></span></div>
    <p class="pl-error error" hidden></p>
    <div class="pl-result" hidden>
      <p class="pl-solver"></p>
      <table class="pl-figures"></table>
      <p class="hint">${t("drag_hint")}</p>
      <ol class="pl-sites"></ol>
      <p class="pl-uncovered"></p>
      <p class="pl-formula hint"></p>
      <div class="row2"><input class="pl-name" maxlength="200" placeholder="${t("name")}" aria-label="${t("name")}">
        <button type="button" class="btn pl-save">${t("save")}</button></div>
    </div>
    <h3>${t("scenarios")}</h3>
    <div class="pl-scenarios"></div>
    <button type="button" class="btn ghost pl-compare">${t("compare")}</button>
    <div class="pl-compare-box"></div>`;
  const sel = app().selected && app().selected();
  const scopeCode = config.user.scope_level === "commune" ? config.user.scope_code : null;
  $(".pl-commune").value = (sel && sel.level === "commune" && sel.code) || scopeCode || "";
  $(".pl-problem").addEventListener("change", () => { $(".pl-share-row").hidden = $(".pl-problem").value !== "lscp"; });
  for (const input of card().querySelectorAll(".pl-w")) {
    input.addEventListener("input", () => { $(`.pl-wv-${input.dataset.k}`).textContent = input.value; });
  }
  $(".pl-run").addEventListener("click", () => run().catch(showError));
  $(".pl-save").addEventListener("click", () => save().catch(showError));
  $(".pl-compare").addEventListener("click", () => compare().catch(showError));
  $(".pl-draw-cand").addEventListener("click", () => draw("candidates"));
  $(".pl-draw-excl").addEventListener("click", () => draw("exclusions"));
  $(".pl-draw-scope").addEventListener("click", () => draw("scope"));
  $(".pl-draw-point").addEventListener("click", () => draw("points"));
  $(".pl-clear").addEventListener("click", clearDrawings);
  if (lastResult) showResult(lastResult);
  renderScenarios();
}

function showError(err) {
  const p = card().querySelector(".pl-error");
  if (!p) { app().toast(err.message, true); return; }
  let msg = err.message;
  const body = err.body || {};
  if (body.unreachable_villages && body.unreachable_villages.length) {
    msg += ": " + body.unreachable_villages.map((v) => v.name).join(", ");
  }
  p.textContent = msg; p.hidden = false;
  setBusy(false);
}

function setBusy(busy, fraction = 0, message = "") {
  const run = card().querySelector(".pl-run");
  if (run) { run.disabled = busy; run.textContent = busy ? t("running") : t("run"); }
  const prog = card().querySelector(".pl-progress");
  if (prog) {
    prog.hidden = !busy;
    prog.querySelector(".pl-bar").style.width = `${Math.round(fraction * 100)}%`;
    prog.querySelector(".pl-msg").textContent = message || "";
  }
}

function polygonOf(l) { return l.toGeoJSON().geometry; }

function requestBody() {
  const scope = $(".pl-scope").value;
  const body = { p: Number($(".pl-p").value), radius_m: Number($(".pl-radius").value), problem: $(".pl-problem").value,
                 demand: $(".pl-demand").value, weights: {}, candidates: { kinds: [] } };
  if (body.problem === "lscp") body.share = Number($(".pl-share").value) / 100;
  if (scope === "commune") body.scope = $(".pl-commune").value.trim() ? { commune: $(".pl-commune").value.trim() } : {};
  else if (scope === "province") body.scope = app().currentProvince() ? { province: app().currentProvince() } : {};
  else body.scope = drawings.scope ? { polygon: polygonOf(drawings.scope) } : {};
  for (const input of card().querySelectorAll(".pl-w")) body.weights[input.dataset.k] = Number(input.value);
  for (const box of card().querySelectorAll(".pl-kind")) if (box.checked) body.candidates.kinds.push(box.value);
  const drawnOnes = drawings.candidates.length || drawings.points.length;
  if (!drawnOnes) body.candidates.kinds = body.candidates.kinds.filter((k) => k !== "drawn");
  if (!body.candidates.kinds.length) body.candidates.kinds = ["villages"];
  body.candidates.polygons = drawings.candidates.map(polygonOf);
  body.candidates.exclusions = drawings.exclusions.map(polygonOf);
  body.candidates.points = drawings.points.map((m) => ({ lon: m.getLatLng().lng, lat: m.getLatLng().lat }));
  return body;
}

async function run() {
  card().querySelector(".pl-error").hidden = true;
  const body = requestBody();
  setBusy(true, 0);
  let { body: out, status } = await api("/planner/suggest", { method: "POST", body: JSON.stringify(body) });
  if (status === 202) out = await pollJob(out.id);
  lastRequest = body; moved = false;
  setBusy(false);
  showResult(out);
  fitResult();
}

function fitResult() {
  if (!layer || !layer.sites || !layer.sites.length) return;
  const bounds = L.latLngBounds([]);
  for (const m of layer.sites) bounds.extend(m.circle.getBounds());
  app().map.fitBounds(bounds.pad(0.3), { maxZoom: 15 });
}

async function pollJob(id) {
  for (;;) {
    await new Promise((r) => setTimeout(r, 400));
    const { body: st } = await api(`/jobs/${id}`);
    setBusy(true, st.progress || 0, st.message || "");
    if (st.status === "done") return (await api(`/jobs/${id}/result`)).body;
    if (st.status === "failed" || st.status === "cancelled") {
      const err = new Error((st.error && (lang() === "en" ? st.error.en : st.error.vi)) || st.status);
      err.body = st.error || {};
      throw err;
    }
  }
}

function siteIcon(rank) {
  return L.divIcon({ className: "pl-site", html: `<span>${rank}</span>`, iconSize: [26, 26], iconAnchor: [13, 13] });
}

function showResult(out) {
  lastResult = out;
  const map = app().map;
  if (layer) map.removeLayer(layer);
  layer = L.layerGroup().addTo(map);
  const r = out.radius_m;
  for (const v of out.uncovered_villages || []) {
    if (v.lat === null || v.lon === null || v.lat === undefined) continue;
    L.circleMarker([v.lat, v.lon], { radius: 5, color: "#b91c1c", fillColor: "#ef4444", fillOpacity: 0.8, weight: 1,
                                     className: "pl-uncovered-village" })
      .bindTooltip(esc(v.name)).addTo(layer);
  }
  const markers = [];
  for (const f of out.features) {
    const [lon, lat] = f.geometry.coordinates;
    const circle = L.circle([lat, lon], { radius: r, color: "#1d4ed8", weight: 1, fillOpacity: 0.08, interactive: false })
      .addTo(layer);
    const m = L.marker([lat, lon], { icon: siteIcon(f.properties.rank), draggable: tool(), title: f.properties.name,
                                     zIndexOffset: 1000 }).addTo(layer);
    m.circle = circle;
    m.on("drag", () => circle.setLatLng(m.getLatLng()));
    m.on("dragend", () => { moved = true; reevaluate().catch(showError); });
    markers.push(m);
  }
  layer.sites = markers;
  const res = card().querySelector(".pl-result");
  if (!res) return;
  res.hidden = false;
  const s = out.solver;
  $(".pl-solver").textContent = s
    ? `${t("solver")}: ${s.solver} · ${s.status} · gap ${(100 * s.gap).toFixed(2)} % · ${s.time_s.toFixed(2)} s`
    : `${t("solver")}: —`;
  const fig = out.figures;
  $(".pl-figures").innerHTML = `<tr><th></th><th>${t("before")}</th><th>${t("after")}</th><th>${t("change")}</th></tr>` +
    FIGURES.filter((k) => k in fig.after).map((k) => `<tr><td>${t("f_" + k)}</td><td>${num(fig.before[k])}</td>
      <td class="pl-after-${k}">${num(fig.after[k])}</td><td>${num(fig.change[k])}</td></tr>`).join("");
  $(".pl-sites").innerHTML = out.features.map((f) => {
    const p = f.properties;
    const names = (p.villages || []).map((v) => v.name).join(", ");
    return `<li><b>${esc(p.name)}</b> — ${t("gain")} ${num(p.gain)}${names ? ` <span class="hint">(${esc(names)})</span>` : ""}</li>`;
  }).join("");
  $(".pl-uncovered").textContent = `${(out.uncovered_villages || []).length} ${t("uncovered")}`;
  const formula = out.demand && out.demand.formula;
  $(".pl-formula").textContent = formula ? `${t("formula")}: ${lang() === "en" ? formula.en : formula.vi}` : "";
}

async function reevaluate() {
  if (!lastRequest || !layer || !layer.sites) return;
  const sites = layer.sites.map((m) => ({ lon: m.getLatLng().lng, lat: m.getLatLng().lat, name: m.options.title }));
  const ticket = {};
  evaluating = ticket;
  const { body } = await api("/planner/evaluate", { method: "POST", body: JSON.stringify({ ...lastRequest, sites }) });
  if (evaluating !== ticket) return;  // a newer drag is on its way
  const solver = lastResult && lastResult.solver;
  showResult({ ...body, solver: solver ? { ...solver, status: "moved by hand" } : null });
  document.body.dataset.plannerEvaluated = String(Number(document.body.dataset.plannerEvaluated || 0) + 1);
}

async function save() {
  if (!lastRequest) return;
  const name = $(".pl-name").value.trim() || `${t("title")} ${new Date().toLocaleString()}`;
  const payload = { name, request: lastRequest };
  if (moved && layer && layer.sites) {
    payload.sites = layer.sites.map((m) => ({ lon: m.getLatLng().lng, lat: m.getLatLng().lat, name: m.options.title }));
  }
  await api("/planner/scenarios", { method: "POST", body: JSON.stringify(payload) });
  app().toast(t("saved"));
  await loadScenarios();
}

async function loadScenarios() {
  const { body } = await api("/planner/scenarios");
  scenarios = body.scenarios;
  renderScenarios();
}

function renderScenarios() {
  const box = card().querySelector(".pl-scenarios");
  if (!box) return;
  if (!scenarios.length) { box.innerHTML = `<p class="hint">${t("none")}</p>`; return; }
  box.innerHTML = `<ul class="pl-scenario-list">${scenarios.map((s) => `
    <li data-id="${s.id}">
      ${tool() ? `<input type="checkbox" class="pl-pick" value="${s.id}" aria-label="pick">` : ""}
      <b>${esc(s.name)}</b> <span class="tag tag-${s.status}">${t("status_" + s.status)}</span>
      <span class="hint">${num(s.figures.after.villages_within_r)} ${t("f_villages_within_r").toLowerCase()}</span>
      <button type="button" class="btn ghost pl-show" data-id="${s.id}">${t("show")}</button>
      ${tool() && s.status === "draft" ? `<button type="button" class="btn pl-accept" data-id="${s.id}">${t("accept")}</button>` : ""}
    </li>`).join("")}</ul>`;
  box.querySelectorAll(".pl-show").forEach((b) => b.addEventListener("click", () => showScenario(b.dataset.id).catch(showError)));
  box.querySelectorAll(".pl-accept").forEach((b) => b.addEventListener("click", () => accept(b.dataset.id).catch(showError)));
}

async function showScenario(id) {
  const { body } = await api(`/planner/scenarios/${id}`);
  const radius = (body.parameters && body.parameters.radius_m_used) || options.default_radius_m;
  showResult({ ...body, radius_m: radius, uncovered_villages: [], features: body.features,
               figures: { ...body.figures, change: body.figures.change || {} } });
  fitResult();
}

async function accept(id) {
  const { body } = await api(`/planner/scenarios/${id}/accept`, { method: "POST",
    body: JSON.stringify({ as: "launch_points" }) });
  app().toast(`${t("accepted")} (${body.created.items.length})`);
  await loadScenarios();
  await app().reloadLayer("launch_points");
}

async function compare() {
  const picked = [...card().querySelectorAll(".pl-pick:checked")].map((b) => b.value);
  if (picked.length !== 2) return;
  const { body } = await api(`/planner/scenarios/compare?a=${picked[0]}&b=${picked[1]}`);
  const row = (k) => `<tr><td>${t("f_" + k)}</td><td>${num(body.a.figures.after[k])}</td><td>${num(body.b.figures.after[k])}</td>
    <td>${num(body.after_b_minus_a[k])}</td></tr>`;
  $(".pl-compare-box").innerHTML = `<table class="pl-figures"><tr><th></th><th>A: ${esc(body.a.name)}</th>
    <th>B: ${esc(body.b.name)}</th><th>${t("b_minus_a")}</th></tr>${FIGURES.filter((k) => k in body.a.figures.after).map(row).join("")}</table>`;
}

// ------------------------------------------------------------------ drawing (Leaflet.draw)
function draw(kind) {
  const map = app().map;
  if (!drawnItems) drawnItems = L.featureGroup().addTo(map);
  const colors = { candidates: "#16a34a", exclusions: "#6b7280", scope: "#7c3aed" };
  const handler = kind === "points"
    ? new L.Draw.Marker(map, { icon: L.divIcon({ className: "pl-cand-point", iconSize: [12, 12] }) })
    : new L.Draw.Polygon(map, { allowIntersection: false, showArea: false,
                                shapeOptions: { color: colors[kind], weight: 2, fillOpacity: 0.1 } });
  map.once(L.Draw.Event.CREATED, (e) => {
    drawnItems.addLayer(e.layer);
    if (kind === "points") drawings.points.push(e.layer);
    else if (kind === "scope") {
      if (drawings.scope) drawnItems.removeLayer(drawings.scope);
      drawings.scope = e.layer;
      $(".pl-scope").value = "polygon";
    } else drawings[kind].push(e.layer);
    if (kind === "candidates" || kind === "points") {
      const box = card().querySelector('.pl-kind[value="drawn"]');
      if (box) box.checked = true;
    }
  });
  handler.enable();
}

function clearDrawings() {
  if (drawnItems) drawnItems.clearLayers();
  drawings.candidates = []; drawings.exclusions = []; drawings.points = []; drawings.scope = null;
}

// ------------------------------------------------------------------ wiring
async function onStarted(e) {
  config = e.detail;
  options = null;
  if (config && config.user) {
    try { options = (await api("/planner/options")).body; } catch (err) { options = null; }
  }
  render();
  if (options) loadScenarios().catch(() => {});
}

document.addEventListener("antt:started", (e) => { onStarted(e).catch(() => {}); });
document.addEventListener("antt:lang", () => render());
window.anttPlanner = { state: () => ({ lastResult, lastRequest, moved, scenarios }), run, requestBody };
