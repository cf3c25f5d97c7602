// rechroma serve: the page. Plain script, no build step and no network beyond this server.
"use strict";

const $ = (id) => document.getElementById(id);
const EXTENSIONS = /\.(jpe?g|png|webp|tiff?|bmp)$/i;
const PARALLEL = 2; // requests in flight at once; the server queues a few more and answers 503 beyond
const MAX_RETRIES = 30;

const state = {
  model: null, // from /api/models
  limits: null,
  items: [], // {id, file, name, status, progress, message, settings, result, confidence, width, height, xhr}
  selected: null,
  running: 0,
  nextId: 1,
};

// ---- settings -------------------------------------------------------------------------------

function defaults() {
  const m = state.model;
  const d = (m && m.decode) || {};
  return {
    vividness: d.vividness ?? 1,
    temperature: (d.decoding && d.decoding.temperature) ?? 0.38,
    size: (m && m.size) || 256,
    format: "png",
  };
}

function readControls() {
  return {
    vividness: parseFloat($("vividness").value),
    temperature: parseFloat($("temperature").value),
    size: parseInt($("size").value, 10),
    format: $("format").value,
  };
}

function writeControls(s) {
  $("vividness").value = s.vividness;
  $("temperature").value = s.temperature;
  $("size").value = String(s.size);
  $("format").value = s.format;
  showValues();
}

function showValues() {
  $("vividness-out").textContent = Math.round(parseFloat($("vividness").value) * 100) + " %";
  $("temperature-out").textContent = parseFloat($("temperature").value).toFixed(2);
}

function query(settings, confidence) {
  const controls = (state.model && state.model.controls) || {};
  const q = new URLSearchParams();
  q.set("size", settings.size);
  q.set("vividness", settings.vividness);
  if (controls.temperature) q.set("temperature", settings.temperature);
  if (confidence) q.set("confidence", "true");
  else q.set("format", settings.format);
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

function fail(item, message) {
  item.status = "error";
  item.message = message;
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
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    item.xhr = xhr;
    xhr.open("POST", "/api/colorize?" + query(item.settings, confidence));
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
    xhr.onload = async () => {
      if (xhr.status === 200) {
        item.width = parseInt(xhr.getResponseHeader("x-rechroma-width"), 10) || 0;
        item.height = parseInt(xhr.getResponseHeader("x-rechroma-height"), 10) || 0;
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
    item.status = "uploading";
    item.message = "uploading";
    renderItem(item);
    xhr.send(item.file);
  });
}

async function colorize(item, confidence) {
  try {
    const url = await request(item, confidence);
    if (confidence) {
      if (item.confidence) URL.revokeObjectURL(item.confidence);
      item.confidence = url;
    } else {
      if (item.result) URL.revokeObjectURL(item.result);
      if (item.confidence) URL.revokeObjectURL(item.confidence);
      item.result = url;
      item.confidence = null;
    }
    item.status = "done";
    item.message = `${item.width} × ${item.height}`;
  } catch (e) {
    fail(item, e.message);
  }
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
  if (state.limits && item.file.size > state.limits.max_upload_bytes) return;
  item.settings = { ...settings };
  item.status = "queued";
  item.message = "waiting";
  renderItem(item);
  pump();
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
    const text = document.createElement("div");
    text.innerHTML = '<div class="name"></div><div class="state"></div><div class="progress"><div></div></div>';
    li.append(thumb, text);
    const pick = () => {
      state.selected = item;
      render();
    };
    li.addEventListener("click", pick);
    li.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); pick(); } });
    $("list").append(li);
  }
  li.classList.toggle("selected", item === state.selected);
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
  const src = showConfidence ? item.confidence : item.result;
  if (src && after.getAttribute("src") !== src) {
    after.dataset.state = "loading";
    after.src = src;
  } else if (!src) {
    after.removeAttribute("src");
    after.dataset.state = "none";
  }
  $("after-tag").textContent = showConfidence ? "confidence" : "after";
  $("legend").hidden = !showConfidence;
  const before = $("before");
  if (before.dataset.item !== String(item.id)) {
    before.dataset.item = item.id;
    before.classList.remove("fallback");
    before.src = item.before;
  }
  const link = $("download");
  if (item.result && item.status === "done") {
    const stem = item.name.replace(/\.[^.]+$/, "");
    link.href = item.result;
    link.download = `${stem}-colour.${item.settings.format === "jpeg" ? "jpg" : "png"}`;
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

function render() {
  for (const item of state.items) renderItem(item);
  renderStage();
}

// The before image covers the left part of the after image, up to the split.
function placeSplit() {
  const after = $("after");
  const before = $("before");
  const box = $("compare").getBoundingClientRect();
  const img = (after.naturalWidth ? after : before).getBoundingClientRect();
  const split = parseFloat($("split").value) / 100;
  before.style.width = img.width + "px";
  before.style.height = img.height + "px";
  before.style.left = img.left - box.left + "px";
  before.style.top = img.top - box.top + "px";
  before.style.clipPath = `inset(0 ${(1 - split) * 100}% 0 0)`;
  const divider = $("divider");
  divider.style.left = img.left - box.left + split * img.width - 1 + "px";
  divider.style.top = img.top - box.top + "px";
  divider.style.height = img.height + "px";
}

// ---- wiring -------------------------------------------------------------------------------------

function debounce(f, ms) {
  let t = 0;
  return (...a) => { clearTimeout(t); t = setTimeout(() => f(...a), ms); };
}

async function start() {
  try {
    const info = await (await fetch("/api/models")).json();
    state.model = info.models[0];
    state.limits = info.limits;
    $("model").textContent = `${state.model.architecture} · ${state.model.name} model`;
    $("limits").textContent = `JPEG, PNG, WebP, TIFF, BMP · up to ${megabytes(info.limits.max_upload_bytes)} and ${Math.round(info.limits.max_pixels / 1e6)} megapixels`;
    $("temperature-row").hidden = !state.model.controls.temperature;
    $("confidence-row").hidden = !state.model.controls.confidence;
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

  const changed = debounce(() => rerun(state.selected, readControls()), 400);
  for (const id of ["vividness", "temperature"]) {
    $(id).addEventListener("input", () => { showValues(); changed(); });
  }
  $("size").addEventListener("change", changed);
  $("format").addEventListener("change", changed);
  $("reset").addEventListener("click", () => { writeControls(defaults()); changed(); });
  $("apply-all").addEventListener("click", () => {
    const s = readControls();
    for (const item of state.items) rerun(item, s);
  });
  $("confidence").addEventListener("change", () => {
    const item = state.selected;
    if ($("confidence").checked && item && item.status === "done" && !item.confidence) colorize(item, true);
    renderStage();
  });
  $("split").addEventListener("input", placeSplit);
  $("after").addEventListener("load", () => { $("after").dataset.state = "ready"; placeSplit(); });
  $("before").addEventListener("load", placeSplit);
  // A format the browser cannot show (TIFF): the result's own gray stands in for the original.
  $("before").addEventListener("error", () => {
    const item = state.selected;
    if (item && item.result && !$("before").classList.contains("fallback")) {
      $("before").classList.add("fallback");
      $("before").src = item.result;
    }
  });
  window.addEventListener("resize", placeSplit);
  document.addEventListener("keydown", (e) => {
    if (e.target.tagName === "INPUT" || e.target.tagName === "SELECT") return;
    const i = state.items.indexOf(state.selected);
    if (e.key === "ArrowDown" && i + 1 < state.items.length) { state.selected = state.items[i + 1]; render(); }
    if (e.key === "ArrowUp" && i > 0) { state.selected = state.items[i - 1]; render(); }
  });
  render();
}

start();
