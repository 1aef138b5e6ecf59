/* "Chỉ tiêu & Báo cáo / Targets & reports": the year's plan for committees.
 *
 * An ES module on its own (no bundler): KPI progress bars per commune and village, the map coloured
 * by targets met (the catalogue's kpi_communes layer: its style comes from /layers, defined once
 * in layers/catalogue.py), the review of models to confirm, events, the Excel template (download,
 * upload with the server's named errors), and the reports (DOCX, XLSX, print view).
 * Every figure and every rule is the server's; this page only shows and sends. */

const TXT = {
  vi: {
    button: "Chỉ tiêu & Báo cáo", title: "Chỉ tiêu & Báo cáo", kpis: "Chỉ tiêu", reviews: "Xét mô hình",
    events: "Sự kiện", excel: "Mẫu Excel", reports: "Báo cáo", commune: "Xã, phường", year: "Năm",
    date: "Tính đến ngày", colour: "Tô màu bản đồ theo số chỉ tiêu đạt", met: "Đạt", on_track: "Đúng tiến độ",
    at_risk: "Có nguy cơ", missed: "Không đạt", no_data: "Chưa có số liệu", name: "Tên", rank: "Hạng",
    villages: "Thôn, tổ dân phố", target: "Kế hoạch", actual: "Thực hiện", expected: "Tiến độ cần đạt",
    open_review: "Mở đợt xét", kind_tong_ket: "Tổng kết năm", kind_so_ket: "Sơ kết 6 tháng",
    proposal: "Đề xuất", decision: "Quyết định", reason: "Lý do (khi thay đổi)", confirm: "Xác nhận",
    confirm_all: "Xác nhận tất cả đề xuất", decided: "Đã quyết định", no_reviews: "Chưa có đợt xét nào.",
    add_event: "Thêm sự kiện", e_kind: "Loại", e_title: "Tên sự kiện", e_date: "Ngày", e_village: "Thôn",
    e_place: "Địa điểm", e_people: "Số người", e_files: "Tệp đính kèm (cách nhau bởi ;)", save: "Lưu",
    download_template: "Tải mẫu Excel", upload: "Tải lên", dry_run: "Chỉ kiểm tra, không ghi",
    changed: "Số thay đổi", errors: "Lỗi trong tệp — chưa ghi dữ liệu nào", sheet: "Trang", row: "Dòng",
    column: "Cột", message: "Nội dung", kind_h1: "6 tháng (trước 7/5)", kind_year: "Năm (trước 5/11)",
    docx: "Tải DOCX", xlsx: "Tải XLSX", print: "Xem bản in", annex: "Kèm phụ lục vụ việc (Công an)",
    level_commune: "Báo cáo của xã", level_province: "Báo cáo tổng hợp của tỉnh", none: "—", loading: "Đang tải…",
    targets_met: "chỉ tiêu đạt", saved: "Đã lưu",
    edit_event: "Sửa sự kiện", edit: "Sửa", del: "Xóa", cancel: "Hủy", e_notes: "Ghi chú", actions: "Thao tác",
    del_confirm: "Xóa sự kiện này? / Delete this event?", build: "Tạo báo cáo tổng hợp", building: "Đang tạo báo cáo…",
    job_done: "Báo cáo đã sẵn sàng", job_failed: "Không tạo được báo cáo", e_files_short: "Tệp",
  },
  en: {
    button: "Targets & reports", title: "Targets & reports", kpis: "Targets", reviews: "Model review",
    events: "Events", excel: "Excel template", reports: "Reports", commune: "Commune", year: "Year",
    date: "As of", colour: "Colour the map by targets met", met: "Met", on_track: "On track",
    at_risk: "At risk", missed: "Missed", no_data: "No data", name: "Name", rank: "Rank",
    villages: "Villages", target: "Target", actual: "Actual", expected: "Expected by now",
    open_review: "Open a review", kind_tong_ket: "Yearly review", kind_so_ket: "6-month review",
    proposal: "Proposal", decision: "Decision", reason: "Reason (when changed)", confirm: "Confirm",
    confirm_all: "Confirm every proposal", decided: "Decided", no_reviews: "No review yet.",
    add_event: "Add an event", e_kind: "Kind", e_title: "Title", e_date: "Date", e_village: "Village",
    e_place: "Place", e_people: "Participants", e_files: "Attachments (separated by ;)", save: "Save",
    download_template: "Download the Excel template", upload: "Upload", dry_run: "Check only, write nothing",
    changed: "Changes", errors: "Errors in the file — nothing was written", sheet: "Sheet", row: "Row",
    column: "Column", message: "Message", kind_h1: "6 months (before 7 May)", kind_year: "Year (before 5 Nov)",
    docx: "Download DOCX", xlsx: "Download XLSX", print: "Print view", annex: "Add the incident annex (police)",
    level_commune: "Commune report", level_province: "Province roll-up", none: "—", loading: "Loading…",
    targets_met: "targets met", saved: "Saved",
    edit_event: "Edit the event", edit: "Edit", del: "Delete", cancel: "Cancel", e_notes: "Notes", actions: "Actions",
    del_confirm: "Xóa sự kiện này? / Delete this event?", build: "Build the province roll-up", building: "Building the report…",
    job_done: "The report is ready", job_failed: "The report could not be built", e_files_short: "Files",
  },
};
// A stale write (412) is shown in both languages whatever the page's language: the person who
// sees it must understand that someone else changed the record meanwhile.
const STALE_VI = "Sự kiện đã được người khác sửa hoặc xóa sau khi bạn mở. Bản mới nhất đã được tải lại; hãy xem lại rồi lưu lần nữa.";
const STALE_EN = "Someone else changed or deleted this event after you opened it. The latest version has been loaded; check it and save again.";
const STATUS_COLORS = { met: "#1a9850", on_track: "#91cf60", at_risk: "#fdae61", missed: "#d73027", no_data: "#bdbdbd" };
const PLAN_ROLES = ["admin", "committee", "planner"];
const DECIDE_ROLES = ["admin", "committee"];
const EVENT_KINDS = ["festival", "forum", "launch", "review", "other"];

const app = () => window.anttMap;
const lang = () => (app() && app().state.lang === "en" ? "en" : "vi");
const t = (k) => TXT[lang()][k] || TXT.vi[k] || k;
const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
const tr = (o) => (o && typeof o === "object" ? o[lang()] || o.vi : o ?? "");
const today = () => new Date(Date.now() + 7 * 3600 * 1000).toISOString().slice(0, 10);  // Vietnam's day

class ApiError extends Error {
  constructor(status, body) {
    super((body && (lang() === "en" ? body.detail_en : body.detail_vi)) || `HTTP ${status}`);
    this.status = status; this.body = body;
  }
}

async function api(path, opts = {}) {
  const res = await fetch(path, { credentials: "same-origin", ...opts });
  const type = res.headers.get("content-type") || "";
  const body = type.includes("json") ? await res.json() : null;
  if (!res.ok) throw new ApiError(res.status, body);
  return body;
}

async function apiWithHeaders(path, opts = {}) {
  const res = await fetch(path, { credentials: "same-origin", ...opts });
  const type = res.headers.get("content-type") || "";
  const body = type.includes("json") ? await res.json() : null;
  if (!res.ok) throw new ApiError(res.status, body);
  return { body, headers: res.headers };
}

const S = {
  user: null, tab: "kpis", commune: null, communes: [], year: Number(today().slice(0, 4)), date: today(),
  sort: "rank", order: "asc", layer: null, layerStyle: null, review: null,
  editing: null,  // the event being edited: { id, etag, event }
  staleNotice: false,  // show the bilingual "changed by someone else" note once
  reportJob: null,  // the province report job being followed: { id, timer }
};

function el(html) {
  const d = document.createElement("div");
  d.innerHTML = html.trim();
  return d.firstElementChild;
}

function canPlan() { return S.user && PLAN_ROLES.includes(S.user.role); }
function canDecide() { return S.user && DECIDE_ROLES.includes(S.user.role); }

// ------------------------------------------------------------------ shell
function mount() {
  const btn = el(`<button id="targets-btn" class="btn ghost" type="button" hidden>${esc(t("button"))}</button>`);
  document.querySelector(".top-actions").prepend(btn);
  const panel = el(`<aside id="targets-panel" hidden aria-label="targets">
    <button class="close" type="button" aria-label="close">×</button>
    <h2 id="tp-title"></h2>
    <div class="tp-controls">
      <label>${esc(t("commune"))}<select id="tp-commune"></select></label>
      <label>${esc(t("year"))}<input id="tp-year" type="number" min="2000" max="2100"></label>
      <label>${esc(t("date"))}<input id="tp-date" type="date"></label>
    </div>
    <nav class="tp-tabs" role="tablist"></nav>
    <div id="tp-body"></div>
  </aside>`);
  document.querySelector("main").appendChild(panel);
  btn.addEventListener("click", () => { panel.hidden = !panel.hidden; if (!panel.hidden) render(); });
  panel.querySelector(".close").addEventListener("click", () => { panel.hidden = true; });
  panel.querySelector("#tp-commune").addEventListener("change", (e) => { S.commune = e.target.value || null; S.review = null; S.editing = null; render(); });
  panel.querySelector("#tp-year").addEventListener("change", (e) => { S.year = Number(e.target.value); S.review = null; render(); });
  panel.querySelector("#tp-date").addEventListener("change", (e) => { S.date = e.target.value || today(); render(); if (S.layer) colourMap(true); });
}

async function refreshUser() {
  const cfg = await api("/config.json");
  S.user = cfg.user;
  document.querySelector("#targets-btn").hidden = !S.user;
  if (!S.user) { document.querySelector("#targets-panel").hidden = true; return; }
  if (S.user.scope_level === "commune") S.commune = S.user.scope_code;
}

function tabs() {
  const nav = document.querySelector(".tp-tabs");
  nav.innerHTML = ["kpis", "reviews", "events", "excel", "reports"].map((k) =>
    `<button type="button" role="tab" data-tab="${k}" class="${S.tab === k ? "on" : ""}">${esc(t(k))}</button>`).join("");
  nav.querySelectorAll("button").forEach((b) => b.addEventListener("click", () => { S.tab = b.dataset.tab; render(); }));
}

async function loadCommunes() {
  const body = await api(`/kpis?date=${S.date}&year=${S.year}&sort=${S.sort}&order=${S.order}`);
  S.communes = body.units;
  const sel = document.querySelector("#tp-commune");
  const fixed = S.user.scope_level === "commune";
  sel.innerHTML = (fixed ? "" : `<option value="">— ${esc(t("commune"))} —</option>`) +
    body.units.slice().sort((a, b) => String(a.name).localeCompare(String(b.name), "vi"))
      .map((u) => `<option value="${esc(u.code)}">${esc(u.name)} (${esc(u.code)})</option>`).join("");
  sel.disabled = fixed;
  if (S.commune) sel.value = S.commune;
  return body;
}

async function render() {
  const panel = document.querySelector("#targets-panel");
  if (panel.hidden || !S.user) return;
  document.querySelector("#tp-title").textContent = t("title");
  document.querySelector("#tp-year").value = S.year;
  document.querySelector("#tp-date").value = S.date;
  tabs();
  const body = document.querySelector("#tp-body");
  body.innerHTML = `<p class="hint">${esc(t("loading"))}</p>`;
  try {
    const table = await loadCommunes();
    const view = { kpis: renderKpis, reviews: renderReviews, events: renderEvents, excel: renderExcel,
                   reports: renderReports }[S.tab];
    await view(body, table);
  } catch (err) {
    body.innerHTML = `<p class="error">${esc(err.message)}</p>`;
  }
}

// ------------------------------------------------------------------ KPIs
function bar(k) {
  const status = k.status;
  const thr = Number(k.threshold) || 0;
  const up = ["ge", "gt"].includes(k.direction);
  const ratio = k.actual === null ? 0 : thr ? Math.min(1, up ? k.actual / thr : (thr ? thr / Math.max(k.actual, 1e-9) : 1)) : 1;
  const exp = thr ? Math.min(1, (k.expected || 0) / thr) : 0;
  const unit = k.measure === "percent" ? "%" : "";
  const fmt = (v) => (v === null || v === undefined ? t("none") : `${Math.round(v * 10) / 10}${unit}`);
  return `<div class="kpi" data-target="${esc(k.code || k.target)}" data-status="${esc(status)}">
    <div class="kpi-label">${esc(tr(k.name) || k.target)}<span class="chip" style="background:${STATUS_COLORS[status]}">${esc(t(status))}</span></div>
    <div class="kbar"><i style="width:${Math.round(ratio * 100)}%;background:${STATUS_COLORS[status]}"></i>
      ${up && exp > 0 && exp < 1 ? `<b style="left:${Math.round(exp * 100)}%" title="${esc(t("expected"))}"></b>` : ""}</div>
    <small>${esc(t("actual"))}: ${esc(fmt(k.actual))}${k.denominator ? ` (${k.numerator}/${k.denominator})` : ""} ·
      ${esc(t("target"))}: ${esc(k.direction_label ? tr(k.direction_label) : k.direction)} ${esc(fmt(thr))}</small></div>`;
}

async function renderKpis(body, table) {
  const cols = [["rank", t("rank")], ["name", t("name")], ["met", t("met")], ["on_track", t("on_track")],
                ["at_risk", t("at_risk")], ["missed", t("missed")]];
  const head = cols.map(([k, label]) => `<th data-sort="${k}" class="${S.sort === k ? S.order : ""}">${esc(label)}</th>`).join("");
  const rows = table.units.map((u) => `<tr data-code="${esc(u.code)}" class="${u.code === S.commune ? "sel" : ""}">
      <td>${u.rank}</td><td>${esc(u.name)}</td><td>${u.met}/${u.targets}</td><td>${u.on_track}</td>
      <td>${u.at_risk}</td><td>${u.missed}</td></tr>`).join("");
  body.innerHTML = `<label class="check"><input id="tp-colour" type="checkbox" ${S.layer ? "checked" : ""}>${esc(t("colour"))}</label>
    <table class="props kpi-table"><thead><tr>${head}</tr></thead><tbody>${rows}</tbody></table>
    <div id="tp-unit"></div>`;
  body.querySelector("#tp-colour").addEventListener("change", (e) => (e.target.checked ? colourMap(true) : uncolourMap()));
  body.querySelectorAll("th[data-sort]").forEach((th) => th.addEventListener("click", () => {
    const k = th.dataset.sort;
    S.order = S.sort === k && S.order === "asc" ? "desc" : "asc";
    S.sort = k;
    render();
  }));
  body.querySelectorAll("tr[data-code]").forEach((tr_) => tr_.addEventListener("click", () => {
    S.commune = tr_.dataset.code;
    document.querySelector("#tp-commune").value = S.commune;
    render();
  }));
  if (S.commune) await renderUnit(body.querySelector("#tp-unit"), S.commune);
}

async function renderUnit(box, code) {
  const [unit, villages] = await Promise.all([
    api(`/kpis/commune/${encodeURIComponent(code)}?date=${S.date}&year=${S.year}&records=false`),
    api(`/kpis?level=village&commune=${encodeURIComponent(code)}&date=${S.date}&year=${S.year}&sort=code`),
  ]);
  const s = unit.summary;
  const vrows = villages.units.map((v) => {
    const ks = Object.entries(v.kpis).map(([code_, k]) => {
      const def = villages.targets.find((d) => d.code === code_) || {};
      return bar({ ...k, code: code_, name: def.name, measure: def.measure, direction: def.direction,
                   direction_label: def.direction_label });
    }).join("");
    return `<details class="village" data-code="${esc(v.code)}"><summary>${esc(v.name)} (${esc(v.code)}) — ${v.met}/${v.targets} ${esc(t("targets_met"))}</summary>${ks}</details>`;
  }).join("");
  box.innerHTML = `<h3 id="tp-unit-name">${esc(unit.unit.name)} — ${s.met}/${s.targets} ${esc(t("targets_met"))}</h3>
    <div class="kpis">${unit.targets.map(bar).join("")}</div>
    <h3>${esc(t("villages"))} (${villages.units.length})</h3>${vrows}`;
}

async function colourMap(force) {
  const a = app();
  if (!a) return;
  if (!S.layerStyle) {
    const layers = await api("/layers");
    const def = layers.find((l) => l.id === "kpi_communes");
    S.layerStyle = def ? def.style : { ramp: ["#d73027", "#1a9850"], color_by: "met", max_by: "targets" };
  }
  if (S.layer && !force) return;
  uncolourMap();
  const fc = { type: "FeatureCollection", features: [] };
  let url = `/collections/kpi_communes/items?limit=1000&datetime=${S.date}`;
  while (url) {
    const page = await api(url, { headers: { Accept: "application/geo+json" } });
    fc.features.push(...page.features);
    const next = (page.links || []).find((l) => l.rel === "next");
    url = next ? next.href : null;
  }
  const st = S.layerStyle;
  const color = (p) => {
    const ramp = st.ramp; const n = p[st.max_by] || 1;
    return ramp[Math.min(ramp.length - 1, Math.floor(((p[st.color_by] || 0) / n) * ramp.length))];
  };
  S.layer = L.geoJSON(fc, {
    style: (f) => ({ color: "#444", weight: 0.7, fillColor: color(f.properties), fillOpacity: st.fill_opacity || 0.65 }),
    onEachFeature: (f, l) => {
      const p = f.properties;
      l.bindTooltip(`${esc(p.name)}: ${p.met}/${p.targets} ${esc(t("targets_met"))}`, { sticky: true });
      l.on("click", () => { S.commune = p.code; S.tab = "kpis"; render(); });
    },
  }).addTo(a.map);
  if (fc.features.length) a.map.fitBounds(S.layer.getBounds(), { maxZoom: 13, padding: [20, 20] });
  document.body.dataset.kpiLayer = String(fc.features.length);
}

function uncolourMap() {
  if (S.layer) { app().map.removeLayer(S.layer); S.layer = null; }
  delete document.body.dataset.kpiLayer;
}

// ------------------------------------------------------------------ reviews
async function renderReviews(body) {
  if (!S.commune) { body.innerHTML = `<p class="hint">${esc(t("commune"))}?</p>`; return; }
  const list = await api(`/reviews?commune=${encodeURIComponent(S.commune)}&year=${S.year}`);
  const opener = canPlan() ? `<form id="tp-open" class="inline"><select name="kind">
      <option value="tong_ket">${esc(t("kind_tong_ket"))}</option><option value="so_ket">${esc(t("kind_so_ket"))}</option></select>
      <button class="btn primary" type="submit">${esc(t("open_review"))}</button></form>` : "";
  body.innerHTML = `${opener}<ul class="reviews">${list.reviews.map((r) => `<li><a href="#" data-id="${r.id}">
      ${esc(r.kind === "so_ket" ? t("kind_so_ket") : t("kind_tong_ket"))} ${r.year} · ${esc(r.reviewed_on)} ·
      ${r.items - r.open}/${r.items} ${esc(t("decided"))}</a></li>`).join("") || `<li class="hint">${esc(t("no_reviews"))}</li>`}</ul>
    <div id="tp-review"></div>`;
  const form = body.querySelector("#tp-open");
  if (form) form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const kind = new FormData(form).get("kind");
    const on = S.date.slice(0, 4) === String(S.year) ? S.date : `${S.year}-12-31` <= today() ? `${S.year}-12-31` : today();
    try {
      const rev = await api("/reviews", { method: "POST", headers: { "Content-Type": "application/json" },
                                         body: JSON.stringify({ commune: S.commune, year: S.year, kind, reviewed_on: on }) });
      S.review = rev.id; render();
    } catch (err) { toast(err); }
  });
  body.querySelectorAll("a[data-id]").forEach((a) => a.addEventListener("click", (e) => { e.preventDefault(); S.review = Number(a.dataset.id); render(); }));
  if (S.review) await renderReview(body.querySelector("#tp-review"), S.review);
}

async function renderReview(box, id) {
  const rev = await api(`/reviews/${id}`);
  const options = (sel) => Object.entries(rev.decisions).map(([k, l]) => `<option value="${k}" ${k === sel ? "selected" : ""}>${esc(tr(l))}</option>`).join("");
  box.innerHTML = `<h3>${esc(rev.commune_name || rev.commune_code)} · ${rev.year} · ${rev.open} / ${rev.items.length}</h3>
    ${canDecide() && rev.open ? `<button id="tp-confirm-all" class="btn primary" type="button">${esc(t("confirm_all"))}</button>` : ""}
    <table class="props review"><thead><tr><th>${esc(t("name"))}</th><th>${esc(t("proposal"))}</th><th>${esc(t("decision"))}</th></tr></thead>
    <tbody>${rev.items.map((i) => `<tr data-item="${i.id}" data-proposal="${esc(i.proposal)}">
      <td><b>${esc(i.name)}</b><br><small>${esc(i.type_name)} · ${esc(i.village_name || "")}</small><br>
        <small>${i.ratings.map((r) => `${esc(r.rating)}@${esc(r.rated_on)}`).join(", ")}</small></td>
      <td><span class="chip p-${esc(i.proposal)}">${esc(tr(i.proposal_label))}</span><br><small>${esc(lang() === "en" ? i.reason_en : i.reason_vi)}</small></td>
      <td>${i.decision ? `<b>${esc(tr(rev.decisions[i.decision]))}</b><br><small>${esc(i.decided_by || "")}</small>${i.decision_reason ? `<br><small class="why">${esc(i.decision_reason)}</small>` : ""}`
        : canDecide() ? `<select>${options(i.proposal)}</select><input placeholder="${esc(t("reason"))}">
           <button class="btn small confirm" type="button">${esc(t("confirm"))}</button>` : esc(t("none"))}</td></tr>`).join("")}</tbody></table>`;
  const all = box.querySelector("#tp-confirm-all");
  if (all) all.addEventListener("click", async () => {
    try { await api(`/reviews/${id}/confirm`, { method: "POST" }); render(); } catch (err) { toast(err); }
  });
  box.querySelectorAll("button.confirm").forEach((b) => b.addEventListener("click", async () => {
    const row = b.closest("tr");
    const decision = row.querySelector("select").value;
    const reason = row.querySelector("input").value.trim() || null;
    try {
      await api(`/reviews/${id}/items/${row.dataset.item}`, { method: "PUT", headers: { "Content-Type": "application/json" },
                                                             body: JSON.stringify({ decision, reason }) });
      render();
    } catch (err) { toast(err); }
  }));
}

// ------------------------------------------------------------------ events
function eventRow(e) {
  const tools = canPlan() ? `<button class="btn small" type="button" data-edit="${e.id}">${esc(t("edit"))}</button>
      <button class="btn small danger" type="button" data-del="${e.id}" data-etag='W/"${e.version}"'>${esc(t("del"))}</button>` : "";
  return `<tr data-event="${e.id}" data-version="${e.version}"><td>${esc(e.held_on)}</td><td>${esc(tr(e.kind_label))}</td>
    <td><b class="e-title">${esc(e.title)}</b>${e.village_name ? `<br><small>${esc(e.village_name)}</small>` : ""}
      ${e.place ? `<br><small class="e-place">${esc(e.place)}</small>` : ""}
      ${e.notes ? `<br><small class="e-notes">${esc(e.notes)}</small>` : ""}
      ${e.attachments.length ? `<br><small class="e-files">${esc(t("e_files_short"))}: ${e.attachments.map(esc).join(", ")}</small>` : ""}</td>
    <td class="e-people">${e.participants ?? ""}</td><td class="e-tools">${tools}</td></tr>`;
}

function eventForm(kinds, villages, ed) {
  const e = ed ? ed.event : {};
  const v = (k) => esc(e[k] ?? "");
  return `<form id="tp-event" class="event-form" data-mode="${ed ? "edit" : "add"}" ${ed ? `data-id="${ed.id}" data-etag='${esc(ed.etag)}'` : ""}>
    <h3>${esc(t(ed ? "edit_event" : "add_event"))}</h3>
    <label>${esc(t("e_kind"))}<select name="kind">${EVENT_KINDS.map((k) => `<option value="${k}" ${e.kind === k ? "selected" : ""}>${esc(tr(kinds[k]))}</option>`).join("")}</select></label>
    <label>${esc(t("e_title"))}<input name="title" required maxlength="500" value="${v("title")}"></label>
    <div class="row2"><label>${esc(t("e_date"))}<input name="held_on" type="date" required max="${today()}" value="${v("held_on")}"></label>
    <label>${esc(t("e_village"))}<select name="village_code"><option value="">—</option>${villages.map((x) => `<option value="${esc(x.code)}" ${e.village_code === x.code ? "selected" : ""}>${esc(x.name)}</option>`).join("")}</select></label></div>
    <div class="row2"><label>${esc(t("e_place"))}<input name="place" maxlength="500" value="${v("place")}"></label>
    <label>${esc(t("e_people"))}<input name="participants" type="number" min="0" value="${v("participants")}"></label></div>
    <label>${esc(t("e_notes"))}<textarea name="notes" rows="2" maxlength="5000">${v("notes")}</textarea></label>
    <label>${esc(t("e_files"))}<input name="attachments" value="${esc((e.attachments || []).join("; "))}"></label>
    <div class="error stale" hidden></div><p class="error msg" hidden></p>
    <button class="btn primary" type="submit">${esc(t("save"))}</button>
    ${ed ? `<button class="btn" type="button" data-cancel>${esc(t("cancel"))}</button>` : ""}</form>`;
}

function showStale(box) {
  box.innerHTML = `<p lang="vi">${esc(STALE_VI)}</p><p lang="en">${esc(STALE_EN)}</p>`;
  box.hidden = false;
}

async function openEditor(id) {
  // the current version and its ETag, read now: what the If-Match of the save will name
  const { body, headers } = await apiWithHeaders(`/events/${id}`);
  S.editing = { id, etag: headers.get("ETag") || `W/"${body.version}"`, event: body };
}

async function renderEvents(body) {
  if (!S.commune) { body.innerHTML = `<p class="hint">${esc(t("commune"))}?</p>`; return; }
  const list = await api(`/events?commune=${encodeURIComponent(S.commune)}&year=${S.year}&limit=500`);
  const villages = await api(`/kpis?level=village&commune=${encodeURIComponent(S.commune)}&date=${S.date}&sort=code`);
  const ed = S.editing;
  // the event being edited is edited at the top, where the click that opened it leads the eye;
  // a new event is added below the list
  const form = canPlan() ? eventForm(list.kinds, villages.units, ed) : "";
  body.innerHTML = `<div id="tp-event-notice" class="error stale" hidden></div>${ed ? form : ""}
    <table class="props events"><thead><tr><th>${esc(t("e_date"))}</th><th>${esc(t("e_kind"))}</th><th>${esc(t("e_title"))}</th>
      <th>${esc(t("e_people"))}</th><th>${esc(t("actions"))}</th></tr></thead>
    <tbody>${list.events.map(eventRow).join("")}</tbody></table>${ed ? "" : form}`;
  if (ed) document.querySelector("#targets-panel").scrollTop = 0;
  if (S.staleNotice) { showStale(body.querySelector("#tp-event-notice")); S.staleNotice = false; }
  body.querySelectorAll("button[data-edit]").forEach((b) => b.addEventListener("click", async () => {
    try { await openEditor(Number(b.dataset.edit)); render(); } catch (err) { toast(err); }
  }));
  body.querySelectorAll("button[data-del]").forEach((b) => b.addEventListener("click", async () => {
    if (!window.confirm(t("del_confirm"))) return;
    try {
      await apiWithHeaders(`/events/${b.dataset.del}`, { method: "DELETE", headers: { "If-Match": b.dataset.etag } });
      if (S.editing && S.editing.id === Number(b.dataset.del)) S.editing = null;
    } catch (err) {
      if (err.status !== 412 && err.status !== 404) { toast(err); return; }
      S.staleNotice = true;  // changed (412) or already deleted (404) by someone else: show the list as it is now
    }
    render();
  }));
  const f = body.querySelector("#tp-event");
  if (!f) return;
  const cancel = f.querySelector("[data-cancel]");
  if (cancel) cancel.addEventListener("click", () => { S.editing = null; render(); });
  f.addEventListener("submit", async (e) => {
    e.preventDefault();
    const d = Object.fromEntries(new FormData(f));
    const payload = { kind: d.kind, title: d.title, held_on: d.held_on, commune_code: S.commune,
                      village_code: d.village_code || null, place: d.place || null,
                      participants: d.participants === "" ? null : Number(d.participants),
                      notes: d.notes ? d.notes : null,
                      attachments: (d.attachments || "").split(";").map((x) => x.trim()).filter(Boolean) };
    const editing = f.dataset.mode === "edit";
    if (editing && S.editing && S.editing.event.external_id) payload.external_id = S.editing.event.external_id;
    for (const k of ["institution_id", "launch_point_id"]) {
      if (editing && S.editing && S.editing.event[k]) payload[k] = S.editing.event[k];
    }
    const msg = f.querySelector(".msg");
    const stale = f.querySelector(".stale");
    msg.hidden = true; stale.hidden = true;
    try {
      if (editing) {
        await apiWithHeaders(`/events/${f.dataset.id}`, { method: "PUT", headers: { "Content-Type": "application/json", "If-Match": f.dataset.etag },
                                                          body: JSON.stringify(payload) });
        S.editing = null;
      } else {
        await api("/events", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(payload) });
      }
      render();
    } catch (err) {
      if (editing && err.status === 412) {
        // someone saved in between: load their version (and its ETag) and say so, in both languages
        try { await openEditor(Number(f.dataset.id)); } catch (e2) { S.editing = null; }
        S.staleNotice = !S.editing;
        await render();
        const form = document.querySelector("#tp-event");
        if (S.editing && form) showStale(form.querySelector(".stale"));
        return;
      }
      msg.textContent = err.message + ((err.body && err.body.errors) ? ": " + err.body.errors.map((x) => x.message).join("; ") : "");
      msg.hidden = false;
    }
  });
}

// ------------------------------------------------------------------ Excel
async function renderExcel(body) {
  if (!S.commune) { body.innerHTML = `<p class="hint">${esc(t("commune"))}?</p>`; return; }
  if (!canPlan()) { body.innerHTML = `<p class="hint">${esc(t("none"))}</p>`; return; }
  const url = `/templates/${encodeURIComponent(S.commune)}/${S.year}`;
  body.innerHTML = `<p><a id="tp-template" class="btn primary" href="${url}.xlsx" download>${esc(t("download_template"))}</a></p>
    <form id="tp-upload"><input type="file" name="file" accept=".xlsx" required>
      <label class="check"><input type="checkbox" name="dry_run">${esc(t("dry_run"))}</label>
      <button class="btn primary" type="submit">${esc(t("upload"))}</button></form>
    <div id="tp-upload-result"></div>`;
  body.querySelector("#tp-upload").addEventListener("submit", async (e) => {
    e.preventDefault();
    const form = e.target;
    const data = new FormData();
    data.append("file", form.file.files[0]);
    const out = body.querySelector("#tp-upload-result");
    try {
      const res = await api(`${url}?dry_run=${form.dry_run.checked}`, { method: "POST", body: data });
      out.innerHTML = `<p class="ok" id="tp-upload-ok">${esc(t("changed"))}: <b>${res.changed}</b>${res.dry_run ? ` (${esc(t("dry_run"))})` : ""}</p>
        <ul>${res.changes.map((c) => `<li>${esc(c)}</li>`).join("")}</ul>`;
    } catch (err) {
      const errs = (err.body && err.body.errors) || [];
      out.innerHTML = `<p class="error" id="tp-upload-errors">${esc(t("errors"))} (${errs.length})</p>
        <table class="props"><thead><tr><th>${esc(t("sheet"))}</th><th>${esc(t("row"))}</th><th>${esc(t("column"))}</th><th>${esc(t("message"))}</th></tr></thead>
        <tbody>${errs.map((x) => `<tr><td>${esc(x.sheet || "")}</td><td>${esc(x.row ?? "")}</td><td>${esc(x.column || "")}</td>
          <td>${esc(lang() === "en" ? x.message_en : x.message_vi)}</td></tr>`).join("")}</tbody></table>`;
    }
  });
}

// ------------------------------------------------------------------ reports
async function renderReports(body) {
  const province = S.user.scope_level !== "commune";
  body.innerHTML = `<form id="tp-report">
    ${province ? `<label>${esc(t("reports"))}<select name="level"><option value="commune">${esc(t("level_commune"))}</option>
      <option value="province">${esc(t("level_province"))}</option></select></label>` : ""}
    <label><select name="kind"><option value="h1">${esc(t("kind_h1"))}</option><option value="year">${esc(t("kind_year"))}</option></select></label>
    ${S.user.sees_points ? `<label class="check"><input type="checkbox" name="annex">${esc(t("annex"))}</label>` : ""}
    <p class="direct"><a class="btn primary" data-fmt="docx" href="#">${esc(t("docx"))}</a>
       <a class="btn primary" data-fmt="xlsx" href="#">${esc(t("xlsx"))}</a>
       <a class="btn" data-fmt="html" href="#" target="_blank" rel="noopener">${esc(t("print"))}</a></p>
    <div class="as-job" hidden><button id="tp-build" class="btn primary" type="button">${esc(t("build"))}</button>
      <div id="tp-job" hidden><progress id="tp-job-bar" max="1" value="0" data-seen="0"></progress>
        <span id="tp-job-msg"></span> <button id="tp-job-cancel" class="btn small" type="button">${esc(t("cancel"))}</button></div>
      <div id="tp-job-files"></div></div></form>`;
  const form = body.querySelector("#tp-report");
  const level = () => (form.level ? form.level.value : "commune");
  const code = () => (level() === "province"
    ? (S.user.scope_level === "province" ? S.user.scope_code : (S.communes[0] || {}).province_code) : S.commune);
  const href = (fmt) => {
    const q = new URLSearchParams({ kind: form.kind.value, year: String(S.year) });
    if (form.annex && form.annex.checked) q.set("annex", "true");
    return `/reports/${level()}/${encodeURIComponent(code() || "")}.${fmt}?${q}`;
  };
  const update = () => {
    // a province roll-up takes tens of seconds: it runs as a job with a progress bar
    const asJob = level() === "province";
    form.querySelector(".direct").hidden = asJob;
    form.querySelector(".as-job").hidden = !asJob;
    form.querySelectorAll("a[data-fmt]").forEach((a) => { a.href = href(a.dataset.fmt); });
  };
  form.addEventListener("change", update);
  update();
  form.querySelector("#tp-build").addEventListener("click", () => startReportJob(form, code()));
  form.querySelector("#tp-job-cancel").addEventListener("click", async () => {
    if (S.reportJob) { try { await api(`/jobs/${S.reportJob.id}`, { method: "DELETE" }); } catch (err) { toast(err); } }
  });
}

async function startReportJob(form, code) {
  const box = form.querySelector("#tp-job");
  const bar = form.querySelector("#tp-job-bar");
  const msg = form.querySelector("#tp-job-msg");
  const files = form.querySelector("#tp-job-files");
  const build = form.querySelector("#tp-build");
  if (S.reportJob) clearTimeout(S.reportJob.timer);
  files.innerHTML = "";
  bar.value = 0; bar.dataset.seen = "0";
  msg.textContent = t("building");
  box.hidden = false; build.disabled = true;
  const payload = { kind: form.kind.value, year: S.year, annex: !!(form.annex && form.annex.checked) };
  let job;
  try {
    job = await api(`/reports/province/${encodeURIComponent(code || "")}`, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(payload) });
  } catch (err) {
    build.disabled = false; box.hidden = true;
    files.innerHTML = `<p class="error">${esc(err.message)}</p>`;
    return;
  }
  S.reportJob = { id: job.id, timer: null };
  let last = null;
  const poll = async () => {
    if (!S.reportJob || S.reportJob.id !== job.id) return;
    let st;
    try { st = await api(`/jobs/${job.id}`); } catch (err) { toast(err); build.disabled = false; return; }
    const shown = `${st.progress}|${st.message}`;
    if (shown !== last) { last = shown; bar.dataset.seen = String(Number(bar.dataset.seen) + 1); }
    bar.value = st.progress || 0;
    msg.textContent = `${Math.round((st.progress || 0) * 100)}% · ${st.message || t("building")}`;
    if (st.status === "done") {
      const res = await api(`/jobs/${job.id}/result`);
      const label = { docx: t("docx"), xlsx: t("xlsx"), html: t("print") };
      files.innerHTML = `<p class="ok" id="tp-job-done">${esc(t("job_done"))}</p><p>${res.files.map((f) => f.format === "html"
        ? `<a class="btn" data-file="html" href="${esc(f.href)}" target="_blank" rel="noopener">${esc(label.html)}</a>`
        : `<a class="btn primary" data-file="${esc(f.format)}" href="${esc(f.href)}" download="${esc(f.name)}">${esc(label[f.format])}</a>`).join(" ")}</p>`;
      build.disabled = false; S.reportJob = null;
      document.body.dataset.reportJob = "done";
      return;
    }
    if (st.status === "failed" || st.status === "cancelled") {
      const e = st.error || {};
      files.innerHTML = `<p class="error" id="tp-job-failed">${esc(t("job_failed"))}: ${esc(lang() === "en" ? e.en || st.status : e.vi || st.status)}</p>`;
      build.disabled = false; box.hidden = true; S.reportJob = null;
      document.body.dataset.reportJob = st.status;
      return;
    }
    S.reportJob.timer = setTimeout(poll, 500);
  };
  poll();
}

function toast(err) {
  const box = document.querySelector("#toast");
  if (!box) return;
  box.textContent = err.message || String(err);
  box.hidden = false;
  box.classList.add("error");
  setTimeout(() => { box.hidden = true; box.classList.remove("error"); }, 6000);
}

// ------------------------------------------------------------------ start
mount();
// app.js says who is signed in (after a login too); read it once ourselves in case we came late.
document.addEventListener("antt:user", () => { refreshUser().then(render).catch(() => {}); });
document.querySelector("#lang-toggle").addEventListener("click", () => setTimeout(render, 0));
refreshUser().then(() => { document.body.dataset.targetsReady = "1"; }).catch(() => {});
