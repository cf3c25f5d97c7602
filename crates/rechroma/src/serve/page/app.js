// rechroma serve: the page. Plain script, no build step and no network beyond this server.
"use strict";

const $ = (id) => document.getElementById(id);
const EXTENSIONS = /\.(jpe?g|png|webp|tiff?|bmp)$/i;
const PARALLEL = 2; // requests in flight at once; the server queues a few more and answers 503 beyond
const MAX_RETRIES = 30;

// A server bound beyond loopback prints its address with ?token=…: kept for this tab, taken out of
// the address bar, and sent with every API call.
const TOKEN = (() => {
  const q = new URLSearchParams(location.search);
  const given = q.get("token");
  if (given) {
    sessionStorage.setItem("rechroma-token", given);
    history.replaceState(null, "", location.pathname);
  }
  return given || sessionStorage.getItem("rechroma-token") || "";
})();

function authHeaders() {
  return TOKEN ? { Authorization: "Bearer " + TOKEN } : {};
}

function api(path, options = {}) {
  return fetch(path, { ...options, headers: { ...authHeaders(), ...(options.headers || {}) } });
}

const state = {
  model: null, // from /api/models
  limits: null,
  items: [], // {id, file, name, status, progress, message, settings, result, confidence, width, height, xhr}
  selected: null,
  zoom: false, // the photo shown at 100 % (its own pixels)
  running: 0,
  nextId: 1,
};

// ---- settings -------------------------------------------------------------------------------

function defaults() {
  const m = state.model;
  const d = (m && m.decode) || {};
  return {
    vividness: d.vividness ?? 1,
    cast: 0,
    temperature: (d.decoding && d.decoding.temperature) ?? 0.38,
    size: (m && m.size) || 256,
    format: "png",
  };
}

function readControls() {
  return {
    vividness: parseFloat($("vividness").value),
    cast: parseFloat($("cast").value),
    temperature: parseFloat($("temperature").value),
    size: parseInt($("size").value, 10),
    format: $("format").value,
  };
}

function writeControls(s) {
  $("vividness").value = s.vividness;
  $("cast").value = s.cast ?? 0;
  $("temperature").value = s.temperature;
  $("size").value = String(s.size);
  $("format").value = s.format;
  showValues();
}

function showValues() {
  $("vividness-out").textContent = Math.round(parseFloat($("vividness").value) * 100) + " %";
  $("cast-out").textContent = Math.round(parseFloat($("cast").value) * 100) + " %";
  $("temperature-out").textContent = parseFloat($("temperature").value).toFixed(2);
}

// The hints of a photo that have a colour, as the API's JSON (photo pixels).
function hintsJson(item) {
  const placed = (item.hints || []).filter((h) => h.color);
  return placed.length ? JSON.stringify(placed.map((h) => ({ x: h.x, y: h.y, color: h.color }))) : "";
}

function query(item, confidence, extra = {}) {
  const settings = item.settings;
  const controls = (state.model && state.model.controls) || {};
  const q = new URLSearchParams();
  q.set("size", settings.size);
  q.set("vividness", settings.vividness);
  if (settings.cast) q.set("cast-removal", settings.cast);
  if (controls.temperature) q.set("temperature", settings.temperature);
  if (confidence) q.set("confidence", "true");
  else q.set("format", extra.format || settings.format);
  const hints = hintsJson(item);
  if (hints) q.set("hints", hints);
  if (item.photoId) q.set("photo", item.photoId);
  if (extra.preview) q.set("preview", "true");
  return q.toString();
}

// ---- adding photos --------------------------------------------------------------------------

function megabytes(n) {
  return (n / 1048576).toFixed(n < 10485760 ? 1 : 0) + " MB";
}

function addFiles(files) {
  const settings = readControls();
  for (const file of files) {
    const item = {
      id: state.nextId++, file, name: file.name, status: "queued", progress: 0, message: "waiting",
      settings: { ...settings }, result: null, confidence: null, width: 0, height: 0,
      before: URL.createObjectURL(file),
    };
    if (state.limits && file.size > state.limits.max_upload_bytes) {
      fail(item, `too large: ${megabytes(file.size)} (the limit is ${megabytes(state.limits.max_upload_bytes)})`);
    } else if (file.size === 0) {
      fail(item, "the file is empty");
    }
    state.items.push(item);
    if (!state.selected) state.selected = item;
  }
  render();
  pump();
}

// A dropped folder is walked (webkitGetAsEntry); only photo files are taken from folders.
async function filesFromDrop(dataTransfer) {
  const entries = [...dataTransfer.items].map((i) => i.webkitGetAsEntry && i.webkitGetAsEntry()).filter(Boolean);
  if (entries.length === 0) return [...dataTransfer.files];
  const out = [];
  const fileOf = (entry) => new Promise((ok, no) => entry.file(ok, no));
  const walk = async (entry, inFolder) => {
    if (entry.isFile) {
      if (!inFolder || EXTENSIONS.test(entry.name)) out.push(await fileOf(entry));
    } else if (entry.isDirectory) {
      const reader = entry.createReader();
      for (;;) {
        const batch = await new Promise((ok, no) => reader.readEntries(ok, no));
        if (batch.length === 0) break;
        for (const e of batch) await walk(e, true);
      }
    }
  };
  for (const e of entries) await walk(e, false);
  out.sort((a, b) => a.name.localeCompare(b.name));
  return out;
}

// ---- the queue --------------------------------------------------------------------------------

// The server's messages, in a photographer's words where they name a developer's concept.
function plain(message) {
  if (/cannot decode|unsupported image format|unknown .*format/i.test(message))
    return "not a photo this page can read (JPEG, PNG, WebP, TIFF or BMP), or a damaged file";
  return message.replace(/^the upload: /, "");
}

function fail(item, message) {
  item.status = "error";
  item.message = plain(message);
}

function pump() {
  while (state.running < PARALLEL) {
    const item = state.items.find((i) => i.status === "queued");
    if (!item) return;
    state.running++;
    colorize(item, false)
      .catch(() => {})
      .finally(() => {
        state.running--;
        pump();
      });
  }
}

// One request: the photo's bytes as the body; resolves with the result's object URL.
function request(item, confidence, attempt = 0) {
  item.resultSeq = item.previewSeq;
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    item.xhr = xhr;
    xhr.open("POST", "/api/colorize?" + query(item, confidence));
    for (const [k, v] of Object.entries(authHeaders())) xhr.setRequestHeader(k, v);
    xhr.responseType = "blob";
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable) {
        item.progress = e.loaded / e.total;
        item.message = `uploading ${Math.round(item.progress * 100)} %`;
        renderItem(item);
      }
    };
    xhr.upload.onload = () => {
      item.status = "working";
      item.message = confidence ? "computing the confidence map…" : "colorizing…";
      renderItem(item);
      if (item === state.selected) renderStage();
    };
    xhr.onerror = () => reject(new Error("the server cannot be reached"));
    xhr.onabort = () => reject(new Error("stopped"));
    xhr.onload = async () => {
      if (xhr.status === 200) {
        item.width = parseInt(xhr.getResponseHeader("x-rechroma-width"), 10) || 0;
        item.height = parseInt(xhr.getResponseHeader("x-rechroma-height"), 10) || 0;
        item.lastBlob = xhr.response;
        resolve(URL.createObjectURL(xhr.response));
        return;
      }
      let message = `error ${xhr.status}`;
      try {
        message = JSON.parse(await xhr.response.text()).error || message;
      } catch (_) { /* not JSON: keep the status */ }
      if (xhr.status === 503 && attempt < MAX_RETRIES) {
        const wait = (parseInt(xhr.getResponseHeader("retry-after"), 10) || 2) * 1000;
        item.status = "working";
        item.message = "the server is busy; retrying…";
        renderItem(item);
        setTimeout(() => request(item, confidence, attempt + 1).then(resolve, reject), wait);
        return;
      }
      reject(new Error(message));
    };
    item.status = item.photoId ? "working" : "uploading";
    item.message = item.photoId ? "colorizing…" : "uploading";
    renderItem(item);
    xhr.send(item.photoId ? null : item.file);
  });
}

async function colorize(item, confidence) {
  item.confidenceRun = confidence;
  try {
    const url = await request(item, confidence);
    if (item.removed) { URL.revokeObjectURL(url); return; }
    if (confidence) {
      if (item.confidence) URL.revokeObjectURL(item.confidence);
      item.confidence = url;
    } else {
      if (item.result) URL.revokeObjectURL(item.result);
      if (item.confidence) URL.revokeObjectURL(item.confidence);
      item.result = url;
      item.resultBlob = item.lastBlob;
      item.resultFormat = item.settings.format;
      if (item.jpeg) { URL.revokeObjectURL(item.jpeg.url); item.jpeg = null; }
      item.confidence = null;
      if (item.resultSeq === item.previewSeq) item.previewFresh = false;
    }
    item.status = "done";
    item.message = `${item.width} × ${item.height}`;
  } catch (e) {
    if (item.removed) return;
    fail(item, e.message);
  }
  item.confidenceRun = false;
  renderItem(item);
  if (item === state.selected) renderStage();
  if (item.pending) {
    const settings = item.pending;
    item.pending = null;
    rerun(item, settings);
    return;
  }
  if (item === state.selected && $("confidence").checked && !item.confidence && item.status === "done") {
    colorize(item, true);
  }
}

// Re-runs a finished (or failed) photo with new settings.
function rerun(item, settings) {
  if (!item) return;
  if (item.status === "uploading" || item.status === "working") {
    item.pending = { ...settings }; // applied when the running request ends
    return;
  }
  item.pending = null;
  if (state.limits && item.file.size > state.limits.max_upload_bytes) return;
  item.settings = { ...settings };
  item.status = "queued";
  item.message = "waiting";
  renderItem(item);
  pump();
}

// ---- removing and downloading all ------------------------------------------------------------

// Removes a photo from the page; its request, if any, is stopped (the server stops its work at the next
// stage when the connection closes).
function removeItem(item) {
  item.removed = true;
  if (item.xhr && (item.status === "uploading" || item.status === "working")) item.xhr.abort();
  for (const url of [item.result, item.confidence, item.before, item.previewUrl]) if (url) URL.revokeObjectURL(url);
  const i = state.items.indexOf(item);
  state.items.splice(i, 1);
  const li = document.querySelector(`li[data-id="${item.id}"]`);
  if (li) li.remove();
  if (state.selected === item) select(state.items[Math.min(i, state.items.length - 1)] || null);
  else render();
}

function removeAll() {
  for (const item of [...state.items]) removeItem(item);
}

// CRC-32 (IEEE) of bytes, for the zip format.
const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(bytes) {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

// A zip archive (stored, not compressed: the photos are compressed already) of [name, bytes] pairs.
// Hand-written (about 40 lines) rather than a library: the page has no build step and loads nothing
// from elsewhere.
function zip(files) {
  const enc = new TextEncoder();
  const parts = [];
  const central = [];
  let offset = 0;
  for (const [name, bytes] of files) {
    const n = enc.encode(name);
    const crc = crc32(bytes);
    const local = new DataView(new ArrayBuffer(30));
    local.setUint32(0, 0x04034b50, true); local.setUint16(4, 20, true); local.setUint16(6, 0x0800, true);
    local.setUint32(14, crc, true); local.setUint32(18, bytes.length, true); local.setUint32(22, bytes.length, true);
    local.setUint16(26, n.length, true);
    const entry = new DataView(new ArrayBuffer(46));
    entry.setUint32(0, 0x02014b50, true); entry.setUint16(4, 20, true); entry.setUint16(6, 20, true);
    entry.setUint16(8, 0x0800, true); entry.setUint32(16, crc, true); entry.setUint32(20, bytes.length, true);
    entry.setUint32(24, bytes.length, true); entry.setUint16(28, n.length, true); entry.setUint32(42, offset, true);
    parts.push(local, n, bytes);
    central.push(entry, n);
    offset += 30 + n.length + bytes.length;
  }
  const size = central.reduce((s, p) => s + p.byteLength, 0);
  const end = new DataView(new ArrayBuffer(22));
  end.setUint32(0, 0x06054b50, true); end.setUint16(8, files.length, true); end.setUint16(10, files.length, true);
  end.setUint32(12, size, true); end.setUint32(16, offset, true);
  return new Blob([...parts, ...central, end], { type: "application/zip" });
}

// What "Download" saves: the result as received, or its JPEG copy when the format changed from PNG to
// JPEG after it came (re-encoded here: a change of format does not colorize again). Null until ready.
function downloadable(item) {
  if (!item.result || !item.resultBlob) return null;
  if (item.settings.format === "jpeg" && item.resultFormat === "png") return item.jpeg || null;
  return { url: item.result, blob: item.resultBlob };
}

// The PNG result of a photo as a JPEG (quality 0.95), made in the browser (8 bits; EXIF is not kept).
async function reencode(item) {
  const img = new Image();
  img.src = item.result;
  await img.decode();
  const canvas = document.createElement("canvas");
  canvas.width = img.naturalWidth;
  canvas.height = img.naturalHeight;
  canvas.getContext("2d").drawImage(img, 0, 0);
  const blob = await new Promise((ok) => canvas.toBlob(ok, "image/jpeg", 0.95));
  if (item.jpeg) URL.revokeObjectURL(item.jpeg.url);
  item.jpeg = { url: URL.createObjectURL(blob), blob };
}

function downloadName(item) {
  return `${item.name.replace(/\.[^.]+$/, "")}-colour.${item.settings.format === "jpeg" ? "jpg" : "png"}`;
}

// Every finished photo's full-resolution result in one zip (names made unique).
async function downloadAll() {
  const done = state.items.filter((i) => downloadable(i) && i.status === "done");
  if (done.length === 0) return;
  const seen = new Map();
  const files = [];
  for (const item of done) {
    let name = downloadName(item);
    const k = (seen.get(name) || 0) + 1;
    seen.set(name, k);
    if (k > 1) name = name.replace(/(\.[^.]+)$/, `-${k}$1`);
    files.push([name, new Uint8Array(await downloadable(item).blob.arrayBuffer())]);
  }
  const url = URL.createObjectURL(zip(files));
  const a = document.createElement("a");
  a.href = url;
  a.download = "rechroma-colour.zip";
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
}

// ---- rendering ----------------------------------------------------------------------------------

function renderItem(item) {
  let li = document.querySelector(`li[data-id="${item.id}"]`);
  if (!li) {
    li = document.createElement("li");
    li.dataset.id = item.id;
    li.className = "item";
    li.tabIndex = 0;
    const thumb = document.createElement("img");
    thumb.alt = "";
    // A file the browser cannot show (not a photo, or a TIFF) gets an empty tile, not a broken icon.
    thumb.addEventListener("error", () => thumb.classList.add("broken"));
    thumb.addEventListener("load", () => thumb.classList.remove("broken"));
    const text = document.createElement("div");
    text.innerHTML = '<div class="name"></div><div class="state"></div><div class="progress"><div></div></div>';
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "remove";
    remove.textContent = "✕";
    remove.setAttribute("aria-label", `Remove ${item.name}`);
    remove.title = "Remove (stops its work)";
    remove.addEventListener("click", (e) => { e.stopPropagation(); removeItem(item); });
    li.append(thumb, text, remove);
    const pick = () => select(item);
    li.addEventListener("click", pick);
    li.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); pick(); } });
    $("list").append(li);
  }
  li.classList.toggle("selected", item === state.selected);
  li.setAttribute("aria-current", item === state.selected ? "true" : "false");
  li.classList.toggle("error", item.status === "error");
  li.classList.toggle("done", item.status === "done");
  li.querySelector("img").src = item.result || item.before;
  li.querySelector(".name").textContent = item.name;
  li.querySelector(".name").title = item.name;
  li.querySelector(".state").textContent = item.message;
  const bar = li.querySelector(".progress");
  bar.classList.toggle("busy", item.status === "working");
  bar.hidden = !(item.status === "uploading" || item.status === "working");
  bar.firstElementChild.style.width = item.status === "uploading" ? `${item.progress * 100}%` : "";
  renderBatch();
}

function renderStage() {
  const item = state.selected;
  $("empty").hidden = !!item;
  $("stage").hidden = !item;
  if (!item) return;
  $("name").textContent = item.name;
  $("dims").textContent = item.width ? `${item.width} × ${item.height} px` : "";
  const showConfidence = $("confidence").checked && item.confidence;
  const after = $("after");
  const usePreview = item.previewFresh && item.previewUrl && !(state.zoom && item.result);
  const src0 = showConfidence ? item.confidence : usePreview ? item.previewUrl : item.result;
  const src = src0;
  // Until there is a result, the original is shown alone (no broken "after" image).
  after.hidden = !src;
  $("before").classList.toggle("solo", !src);
  if (src && after.getAttribute("src") !== src) {
    after.dataset.state = "loading";
    after.src = src;
  } else if (!src) {
    after.removeAttribute("src");
    after.dataset.state = "none";
  }
  $("after-tag").textContent = showConfidence ? "confidence" : "after";
  $("legend").hidden = !showConfidence;
  // A format the browser cannot show (TIFF, the usual scan format): the result's own lightness, drawn
  // gray, stands in for the original once there is a result; until then nothing (no broken icon).
  const before = $("before");
  const beforeSrc = item.beforeBroken ? item.result : item.before;
  before.classList.toggle("fallback", !!item.beforeBroken);
  before.hidden = !beforeSrc;
  if (beforeSrc && (before.dataset.item !== String(item.id) || before.getAttribute("src") !== beforeSrc)) {
    before.dataset.item = item.id;
    before.src = beforeSrc;
  }
  const link = $("download");
  // Downloadable while only its confidence map computes.
  const saved = downloadable(item);
  if (saved && (item.status === "done" || item.confidenceRun)) {
    link.href = saved.url;
    link.download = downloadName(item);
    link.setAttribute("aria-disabled", "false");
  } else {
    link.removeAttribute("href");
    link.setAttribute("aria-disabled", "true");
  }
  const status = $("status");
  const busy = item.status !== "done";
  status.hidden = !busy;
  status.textContent = item.status === "error" ? item.message : busy ? item.message : "";
  status.classList.toggle("error", item.status === "error");
  writeControls(item.pending || item.settings);
  placeSplit();
}

function renderBatch() {
  $("batch").hidden = state.items.length === 0;
  $("download-all").disabled = !state.items.some((i) => i.result && i.status === "done");
}

function render() {
  for (const item of state.items) renderItem(item);
  renderBatch();
  renderStage();
}

// Selects a photo; with "Confidence map" ticked, its map is requested too.
function select(item) {
  state.selected = item;
  closePicker();
  render();
  // The selected photo's entry stays in view; on a phone the viewer (above the list) is brought back.
  const li = item && document.querySelector(`li[data-id="${item.id}"]`);
  if (li) li.scrollIntoView({ block: "nearest" });
  if (item && window.matchMedia("(max-width: 800px)").matches) $("viewer").scrollIntoView({ block: "start" });
  if (item && $("confidence").checked && item.status === "done" && !item.confidence) colorize(item, true);
}

// The before image covers the left part of the after image, up to the split.
function placeSplit() {
  const after = $("after");
  const before = $("before");
  const compare = $("compare");
  // Positions inside the box's content: its scroll offsets count when zoomed to 100 %.
  const rect = compare.getBoundingClientRect();
  const box = { left: rect.left - compare.scrollLeft, top: rect.top - compare.scrollTop };
  const img = (after.naturalWidth ? after : before).getBoundingClientRect();
  const split = parseFloat($("split").value) / 100;
  before.style.width = img.width + "px";
  before.style.height = img.height + "px";
  before.style.left = img.left - box.left + "px";
  before.style.top = img.top - box.top + "px";
  before.style.clipPath = before.classList.contains("solo") ? "none" : `inset(0 ${(1 - split) * 100}% 0 0)`;
  $("divider").hidden = before.classList.contains("solo");
  const divider = $("divider");
  divider.style.left = img.left - box.left + split * img.width - 1 + "px";
  divider.style.top = img.top - box.top + "px";
  divider.style.height = img.height + "px";
  // The range input and the hint layer lie exactly over the photo, so the divider follows the pointer.
  for (const el of [$("split"), $("markers")]) {
    el.style.left = img.left - box.left + "px";
    el.style.top = img.top - box.top + "px";
    el.style.width = img.width + "px";
    el.style.height = img.height + "px";
  }
  renderMarkers();
}


// ---- zoom to 100 % ------------------------------------------------------------------------------

// Shows the photo at its own pixels (or fitted again), keeping the point at (`fx`, `fy`) — fractions of
// the photo — under the same place of the box (the centre by default).
function setZoom(on, fx = 0.5, fy = 0.5) {
  const compare = $("compare");
  state.zoom = on;
  compare.classList.toggle("zoomed", on);
  compare.tabIndex = on ? 0 : -1;
  $("zoom").setAttribute("aria-pressed", String(on));
  // At 100 % the full-resolution result is shown, not the preview.
  renderStage();
  const after = $("after");
  const centre = () => {
    placeSplit();
    if (!on) return;
    compare.scrollLeft = fx * after.offsetWidth - compare.clientWidth / 2;
    compare.scrollTop = fy * after.offsetHeight - compare.clientHeight / 2;
    placeSplit();
  };
  if (after.complete) centre();
  else after.addEventListener("load", centre, { once: true });
}

// Dragging pans a zoomed photo (outside hint mode, where a click places a hint).
function wirePanning() {
  const compare = $("compare");
  let drag = null;
  compare.addEventListener("pointerdown", (e) => {
    if (!state.zoom || hintUi.on || e.button !== 0) return;
    drag = { x: e.clientX, y: e.clientY, left: compare.scrollLeft, top: compare.scrollTop };
    compare.classList.add("panning");
    try { compare.setPointerCapture(e.pointerId); } catch (_) { /* a synthetic pointer: no capture */ }
  });
  compare.addEventListener("pointermove", (e) => {
    if (!drag) return;
    compare.scrollLeft = drag.left - (e.clientX - drag.x);
    compare.scrollTop = drag.top - (e.clientY - drag.y);
  });
  const end = () => { drag = null; compare.classList.remove("panning"); };
  compare.addEventListener("pointerup", end);
  compare.addEventListener("pointercancel", end);
  compare.addEventListener("dblclick", (e) => {
    if (hintUi.on) return;
    const r = $("after").getBoundingClientRect();
    setZoom(!state.zoom, Math.min(1, Math.max(0, (e.clientX - r.left) / r.width)), Math.min(1, Math.max(0, (e.clientY - r.top) / r.height)));
  });
}

// ---- colour hints -------------------------------------------------------------------------------
// A hint is {x, y, color} in the photo's pixels. The photo is kept by the server (/api/photos) once,
// so each change re-colours a preview at the working size without a re-upload; a full-resolution
// result with the hints follows a moment later, for the download.

const hintUi = { on: false, selected: null, drag: null };

function hintsOf(item) {
  if (!item.hints) { item.hints = []; item.undo = []; item.previewSeq = 0; }
  return item.hints;
}

function snapshot(item) {
  hintsOf(item);
  item.undo.push(JSON.stringify(item.hints));
  if (item.undo.length > 100) item.undo.shift();
}

async function ensurePhoto(item) {
  if (item.photoId) return item.photoId;
  if (!item.keeping) {
    item.keeping = (async () => {
      for (let attempt = 0; attempt < MAX_RETRIES; attempt++) {
        const r = await api("/api/photos", { method: "POST", body: item.file });
        if (r.status === 503) {
          await new Promise((ok) => setTimeout(ok, (parseInt(r.headers.get("retry-after"), 10) || 2) * 1000));
          continue;
        }
        const body = await r.json();
        if (!r.ok) throw new Error(body.error || `error ${r.status}`);
        item.photoId = body.photo;
        item.width = body.width;
        item.height = body.height;
        return body.photo;
      }
      throw new Error("the server stayed busy");
    })();
    item.keeping.catch(() => { item.keeping = null; });
  }
  return item.keeping;
}

// The photo pixel under a pointer event, from the drawn photo's rectangle.
function photoPoint(item, e) {
  const r = $("markers").getBoundingClientRect();
  const fx = Math.min(Math.max((e.clientX - r.left) / r.width, 0), 0.9999);
  const fy = Math.min(Math.max((e.clientY - r.top) / r.height, 0), 0.9999);
  return { x: Math.floor(fx * item.width) + 0.5, y: Math.floor(fy * item.height) + 0.5 };
}

function renderMarkers() {
  const layer = $("markers");
  const item = state.selected;
  layer.hidden = !(hintUi.on && item && item.width);
  layer.replaceChildren();
  if (layer.hidden) return;
  for (const [i, h] of hintsOf(item).entries()) {
    const m = document.createElement("button");
    m.type = "button";
    m.className = "marker" + (h.color ? "" : " empty") + (h === hintUi.selected ? " selected" : "");
    m.style.left = (h.x / item.width) * 100 + "%";
    m.style.top = (h.y / item.height) * 100 + "%";
    if (h.color) m.style.background = h.color;
    m.setAttribute("aria-label", `hint ${i + 1} at ${Math.round(h.x)}, ${Math.round(h.y)}: ${h.color || "no colour yet"} (arrows move it, Delete removes it, Enter picks its colour)`);
    m.dataset.index = i;
    m.addEventListener("pointerdown", (e) => startDrag(e, h, m));
    m.addEventListener("keydown", (e) => markerKey(e, h));
    m.addEventListener("focus", () => { hintUi.selected = h; });
    layer.append(m);
  }
  const n = hintsOf(item).filter((h) => h.color).length;
  $("hint-count").textContent = n ? `${n} hint${n > 1 ? "s" : ""}` : "";
  $("hint-undo").disabled = !item.undo.length;
  $("hint-clear").disabled = !item.hints.length;
}

function startDrag(e, h, marker) {
  e.preventDefault();
  e.stopPropagation();
  const item = state.selected;
  marker.setPointerCapture(e.pointerId);
  const before = JSON.stringify(item.hints);
  let moved = false;
  const move = (ev) => {
    const p = photoPoint(item, ev);
    if (Math.abs(p.x - h.x) + Math.abs(p.y - h.y) > 0.5) moved = true;
    h.x = p.x; h.y = p.y;
    marker.style.left = (h.x / item.width) * 100 + "%";
    marker.style.top = (h.y / item.height) * 100 + "%";
  };
  const up = () => {
    marker.removeEventListener("pointermove", move);
    marker.removeEventListener("pointerup", up);
    hintUi.selected = h;
    if (moved) {
      item.undo.push(before);
      if (h.color) hintsChanged(item);
      renderMarkers();
    } else {
      openPicker(item, h);
    }
  };
  marker.addEventListener("pointermove", move);
  marker.addEventListener("pointerup", up);
}

function markerKey(e, h) {
  const item = state.selected;
  const step = Math.max(1, Math.round(Math.max(item.width, item.height) / 100));
  const moves = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] };
  if (e.key === "Delete" || e.key === "Backspace") {
    e.preventDefault();
    removeHint(item, h);
  } else if (moves[e.key]) {
    e.preventDefault();
    e.stopPropagation();
    snapshot(item);
    h.x = Math.min(Math.max(h.x + moves[e.key][0], 0.5), item.width - 0.5);
    h.y = Math.min(Math.max(h.y + moves[e.key][1], 0.5), item.height - 0.5);
    if (h.color) hintsChanged(item);
    renderMarkers();
    focusMarker(item, h);
  } else if (e.key === "Enter" || e.key === " ") {
    e.preventDefault();
    openPicker(item, h);
  }
}

function focusMarker(item, h) {
  const i = item.hints.indexOf(h);
  const m = document.querySelector(`.marker[data-index="${i}"]`);
  if (m) m.focus();
}

function addHint(item, point) {
  snapshot(item);
  const h = { x: point.x, y: point.y, color: null };
  item.hints.push(h);
  hintUi.selected = h;
  renderMarkers();
  openPicker(item, h);
}

function removeHint(item, h) {
  snapshot(item);
  item.hints.splice(item.hints.indexOf(h), 1);
  closePicker();
  hintsChanged(item);
  renderMarkers();
}

async function openPicker(item, h) {
  hintUi.selected = h;
  const picker = $("picker");
  picker.hidden = false;
  picker.dataset.state = "loading";
  const box = $("suggestions");
  box.replaceChildren();
  box.textContent = "asking the model…";
  if (h.color) $("hint-color").value = h.color;
  renderMarkers();
  try {
    await ensurePhoto(item);
    const others = item.hints.filter((o) => o !== h && o.color);
    const q = new URLSearchParams({ photo: item.photoId, x: h.x, y: h.y, size: item.settings.size, count: 6 });
    if (others.length) q.set("hints", JSON.stringify(others.map((o) => ({ x: o.x, y: o.y, color: o.color }))));
    const r = await api("/api/suggest?" + q, { method: "POST" });
    const body = await r.json();
    if (!r.ok) throw new Error(body.error || `error ${r.status}`);
    if (hintUi.selected !== h) return;
    box.replaceChildren();
    for (const s of body.suggestions) {
      const b = document.createElement("button");
      b.type = "button";
      b.className = "swatch";
      b.setAttribute("role", "option");
      b.setAttribute("aria-selected", String(h.color === s.color));
      b.style.background = s.color;
      b.textContent = Math.round(s.probability * 100) + " %";
      b.title = `${s.color}, ${Math.round(s.probability * 100)} % likely here`;
      b.setAttribute("aria-label", b.title);
      b.dataset.color = s.color;
      b.addEventListener("click", () => setColor(item, h, s.color));
      box.append(b);
    }
    picker.dataset.state = "ready";
    const first = box.querySelector(".swatch");
    if (first) first.focus();
  } catch (e) {
    box.textContent = e.message;
    picker.dataset.state = "error";
  }
}

function closePicker() {
  $("picker").hidden = true;
  $("picker").dataset.state = "closed";
  const item = state.selected;
  if (item && item.hints) {
    // A point left without a colour is dropped.
    const empty = item.hints.filter((h) => !h.color);
    if (empty.length) { item.hints = item.hints.filter((h) => h.color); renderMarkers(); }
  }
}

function setColor(item, h, color) {
  snapshot(item);
  h.color = color;
  $("hint-color").value = color;
  for (const b of $("suggestions").children) b.setAttribute("aria-selected", String(b.dataset.color === color));
  hintsChanged(item);
  renderMarkers();
}

const fullRun = debounce((item) => rerun(item, item.settings), 1500);

// Re-colours the preview now, the full-resolution result a moment later.
async function hintsChanged(item) {
  hintsOf(item);
  const seq = ++item.previewSeq;
  const started = performance.now();
  try {
    await ensurePhoto(item);
    const r = await api("/api/colorize?" + query(item, false, { preview: true, format: "jpeg" }), { method: "POST" });
    if (seq !== item.previewSeq) return;
    if (!r.ok) throw new Error((await r.json()).error || `error ${r.status}`);
    if (item.previewUrl) URL.revokeObjectURL(item.previewUrl);
    item.previewUrl = URL.createObjectURL(await r.blob());
    item.previewFresh = true;
    state.lastPreviewMs = performance.now() - started;
    renderStage();
    fullRun(item);
  } catch (e) {
    if (seq === item.previewSeq) { $("status").hidden = false; $("status").textContent = e.message; }
  }
}

function setHintMode(on) {
  hintUi.on = on;
  $("hint-mode").setAttribute("aria-pressed", String(on));
  $("hints-bar").hidden = !on;
  $("split").hidden = on;
  if (on) {
    $("split").value = 0;
    // Keep the photo on the server now, so the first hint does not wait for its upload.
    if (state.selected) ensurePhoto(state.selected).then(renderMarkers, () => {});
  } else closePicker();
  placeSplit();
}

// ---- wiring -------------------------------------------------------------------------------------

function debounce(f, ms) {
  let t = 0;
  return (...a) => { clearTimeout(t); t = setTimeout(() => f(...a), ms); };
}

async function start() {
  try {
    const info = await (await api("/api/models")).json();
    state.model = info.models[0];
    state.limits = info.limits;
    // Words for photographers: which model, and what it offers; the technical name is in the tooltip.
    const named = state.model.name === "embedded" ? "Built-in colour model" : `Model “${state.model.name.split("/").filter(Boolean).pop()}”`;
    $("model").textContent = state.model.controls.hints ? `${named} · takes colour hints` : named;
    $("model").title = `${state.model.architecture} (${state.model.name})`;
    $("limits").textContent = `JPEG, PNG, WebP, TIFF, BMP · up to ${megabytes(info.limits.max_upload_bytes)} and ${Math.round(info.limits.max_pixels / 1e6)} megapixels`;
    $("temperature-row").hidden = !state.model.controls.temperature;
    $("confidence-row").hidden = !state.model.controls.confidence;
    $("hint-mode").hidden = !state.model.controls.hints;
  } catch (e) {
    $("model").textContent = "the server cannot be reached";
  }
  writeControls(defaults());

  const drop = $("drop");
  const input = $("file");
  drop.addEventListener("click", () => input.click());
  drop.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); input.click(); } });
  input.addEventListener("change", () => { addFiles([...input.files]); input.value = ""; });
  // The whole window takes drops; the drop zone shows where.
  window.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  window.addEventListener("dragleave", (e) => { if (!e.relatedTarget) drop.classList.remove("over"); });
  window.addEventListener("drop", async (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    addFiles(await filesFromDrop(e.dataTransfer));
  });

  // The settings are read when they change (a result arriving meanwhile redraws the controls from its
  // photo's settings), and applied after a pause.
  const rerunLater = debounce((item, s) => rerun(item, s), 400);
  const changed = () => {
    const item = state.selected;
    if (!item) return;
    item.pending = readControls();
    rerunLater(item, item.pending);
  };
  for (const id of ["vividness", "cast", "temperature"]) {
    $(id).addEventListener("input", () => { showValues(); changed(); });
  }
  $("size").addEventListener("change", changed);
  // A new download format is a new encoding, not a new colorizing: a PNG result is re-encoded here, and
  // a result already in that format is kept.
  $("format").addEventListener("change", async () => {
    const item = state.selected;
    const format = $("format").value;
    if (!item || item.status !== "done" || !item.result) return changed();
    if (format === item.resultFormat || (format === "jpeg" && item.resultFormat === "png")) {
      item.settings = { ...item.settings, format };
      renderStage();
      if (format === "jpeg" && item.resultFormat === "png" && !item.jpeg) {
        await reencode(item);
        renderStage();
        renderBatch();
      }
      return;
    }
    changed();
  });
  $("reset").addEventListener("click", () => { writeControls(defaults()); changed(); });
  $("apply-all").addEventListener("click", () => {
    const s = readControls();
    // Photos already on these settings are not run again.
    for (const item of state.items) {
      if (item.status === "done" && JSON.stringify(item.settings) === JSON.stringify(s)) continue;
      rerun(item, s);
    }
  });
  $("download-all").addEventListener("click", downloadAll);
  $("clear-all").addEventListener("click", removeAll);
  // Leaving the page loses the photos: ask first; and stop the server's work on them when it goes.
  window.addEventListener("beforeunload", (e) => {
    if (state.items.length > 0) { e.preventDefault(); e.returnValue = ""; }
  });
  window.addEventListener("pagehide", () => {
    for (const item of state.items) if (item.xhr && (item.status === "uploading" || item.status === "working")) item.xhr.abort();
  });
  $("confidence").addEventListener("change", () => {
    const item = state.selected;
    if ($("confidence").checked && item && item.status === "done" && !item.confidence) colorize(item, true);
    renderStage();
  });
  $("split").addEventListener("input", placeSplit);
  $("split").addEventListener("focus", () => $("compare").classList.add("split-focus"));
  $("split").addEventListener("blur", () => $("compare").classList.remove("split-focus"));
  $("hint-mode").addEventListener("click", () => setHintMode(!hintUi.on));
  $("zoom").addEventListener("click", () => setZoom(!state.zoom));
  wirePanning();
  $("markers").addEventListener("pointerdown", (e) => {
    const item = state.selected;
    if (e.target !== $("markers") || !item || !item.width) return;
    e.preventDefault();
    addHint(item, photoPoint(item, e));
  });
  $("hint-add").addEventListener("click", async () => {
    const item = state.selected;
    if (!item) return;
    await ensurePhoto(item).catch(() => {});
    if (!item.width) return;
    addHint(item, { x: Math.floor(item.width / 2) + 0.5, y: Math.floor(item.height / 2) + 0.5 });
  });
  $("hint-undo").addEventListener("click", () => {
    const item = state.selected;
    if (!item || !item.undo.length) return;
    item.hints = JSON.parse(item.undo.pop());
    closePicker();
    hintsChanged(item);
    renderMarkers();
  });
  $("hint-clear").addEventListener("click", () => {
    const item = state.selected;
    if (!item || !item.hints.length) return;
    snapshot(item);
    item.hints = [];
    closePicker();
    hintsChanged(item);
    renderMarkers();
  });
  $("hint-color").addEventListener("change", () => {
    const item = state.selected;
    if (item && hintUi.selected) setColor(item, hintUi.selected, $("hint-color").value);
  });
  $("hint-delete").addEventListener("click", () => {
    const item = state.selected;
    if (item && hintUi.selected) removeHint(item, hintUi.selected);
  });
  $("picker-close").addEventListener("click", closePicker);
  $("picker").addEventListener("keydown", (e) => { if (e.key === "Escape") closePicker(); });
  $("after").addEventListener("load", () => { $("after").dataset.state = "ready"; placeSplit(); });
  $("before").addEventListener("load", placeSplit);
  // A format the browser cannot show (TIFF): remembered per photo; renderStage shows the stand-in.
  $("before").addEventListener("error", () => {
    const item = state.selected;
    if (item && !item.beforeBroken && $("before").getAttribute("src") === item.before) {
      item.beforeBroken = true;
      renderStage();
    }
  });
  window.addEventListener("resize", placeSplit);
  document.addEventListener("keydown", (e) => {
    if (e.target.tagName === "INPUT" || e.target.tagName === "SELECT") return;
    const i = state.items.indexOf(state.selected);
    if (e.key === "ArrowDown" && i + 1 < state.items.length) select(state.items[i + 1]);
    if (e.key === "ArrowUp" && i > 0) select(state.items[i - 1]);
  });
  render();
}

start();
