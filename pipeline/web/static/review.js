"use strict";
const $ = (id) => document.getElementById(id);
const state = { queue: [], index: 0, doc: null, cards: [], cache: new Map(), finished: 0, reviewer: "" };

function el(tag, props, ...children) {
  const node = document.createElement(tag);
  Object.assign(node, props || {});
  for (const child of children) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
}

async function api(path, options) {
  // The API takes the token in a header (never a cookie): read from this page's address, not the page.
  const opts = Object.assign({ cache: "no-store" }, options || {});
  opts.headers = Object.assign({ "X-Invoices-Token": window.invoicesToken() }, opts.headers || {});
  const response = await fetch("/api/v1/" + path, opts);
  let data = null;
  try { data = await response.json(); } catch (e) { data = { error: response.statusText }; }
  if (!response.ok) {
    const error = new Error((data && data.error) || ("HTTP " + response.status));
    error.status = response.status;
    throw error;
  }
  return data;
}

function banner(message) {
  $("banner").textContent = message || "";
  $("banner").style.display = message ? "block" : "none";
}

function fieldsLeft() {
  let n = 0;
  state.queue.forEach((entry, i) => { if (!entry.done) n += i === state.index && state.doc ? openCards().length : entry.fields.length; });
  return n;
}

function updateCounts() {
  const open = state.queue.filter((entry) => !entry.done).length;
  $("counts").textContent = open + (open === 1 ? " invoice" : " invoices") + " · " + fieldsLeft() + " fields to review" +
    (state.finished ? " · " + state.finished + " done" : "");
  $("who").textContent = state.reviewer ? "reviewer: " + state.reviewer : "";
}

function renderQueue() {
  const list = $("queue-list");
  list.replaceChildren();
  state.queue.forEach((entry, i) => {
    const item = el("li", { className: (i === state.index ? "current " : "") + (entry.done ? "done" : "") },
      el("span", { className: "name", textContent: entry.source_name, title: entry.source_name }),
      el("span", { className: "sub", textContent: entry.doc_type + " · " + entry.fields.length + " to review" }));
    item.addEventListener("click", () => show(i));
    list.append(item);
  });
  updateCounts();
}

function docUrl(id) { return "documents/" + encodeURIComponent(id); }
function reviewUrl(id) { return "review/documents/" + encodeURIComponent(id); }

function fetchDoc(id) {
  if (!state.cache.has(id)) {
    const promise = api(reviewUrl(id)).then((doc) => {
      // Warm the images so the next invoice appears at once.
      for (const page of doc.pages) new Image().src = docUrl(id) + "/pages/" + page.index + ".png";
      for (const field of doc.fields) if (field.box) new Image().src = docUrl(id) + "/crops/" + field.name + ".png";
      return doc;
    });
    promise.catch(() => state.cache.delete(id));
    state.cache.set(id, promise);
  }
  return state.cache.get(id);
}

function prefetchAfter(i) {
  for (let j = i + 1; j < state.queue.length; j++) {
    if (!state.queue[j].done) { fetchDoc(state.queue[j].document_id).catch(() => {}); return; }
  }
}

async function loadQueue() {
  banner("");
  const data = await api("review/queue");
  state.reviewer = data.reviewer;
  state.queue = data.documents.map((entry) => Object.assign({ done: false }, entry));
  state.cache.clear();
  state.index = 0;
  renderQueue();
  if (!state.queue.length) return showEmpty();
  await show(0);
}

function showEmpty() {
  state.doc = null;
  $("fields").style.display = "none";
  $("viewer").style.display = "none";
  $("empty").style.display = "block";
  updateCounts();
  $("again").focus();
}

async function show(i) {
  state.index = i;
  const entry = state.queue[i];
  renderQueue();
  let doc;
  try {
    doc = await fetchDoc(entry.document_id);
  } catch (error) {
    banner("Cannot load " + entry.source_name + ": " + error.message);
    return;
  }
  state.cache.delete(entry.document_id);
  if (state.index !== i) return;
  $("fields").style.display = "";
  $("viewer").style.display = "";
  $("empty").style.display = "none";
  renderDocument(doc);
  prefetchAfter(i);
}

function renderDocument(doc) {
  state.doc = doc;
  const summary = doc.summary || {};
  const facts = [summary.seller_name || summary.vendor_name, summary.invoice_number && "No. " + summary.invoice_number,
    summary.issue_date, summary.total_amount && "total " + summary.total_amount].filter(Boolean);
  $("doc-head").replaceChildren(
    el("div", { className: "title", textContent: doc.source_name }),
    el("div", { className: "sub", textContent: doc.doc_type + " · " + doc.document_id.slice(0, 12) + (facts.length ? " · " + facts.join(" · ") : "") }));
  $("cards").replaceChildren();
  state.cards = [];
  for (const field of doc.fields) addCard(field);
  $("page-img").src = docUrl(doc.document_id) + "/pages/" + (doc.pages.length ? doc.pages[0].index : 0) + ".png";
  if (!state.cards.length) return finishDocument();
  focusCard(state.cards[0]);
  updateCounts();
}

function addCard(field) {
  const doc = state.doc;
  const input = el("input", {
    className: "value", value: field.value, spellcheck: false, autocomplete: "off",
    placeholder: field.value ? "" : "missing: type the value, or Enter to confirm it is not on the page",
  });
  input.setAttribute("aria-label", field.label);
  input.dataset.field = field.name;
  if (field.kind === "amount") input.inputMode = "decimal";
  const refs = el("div", { className: "refs" });
  if (field.qr_value !== null) refs.append(el("span", { className: "ref" }, "QR code: ", el("b", { textContent: field.qr_value })));
  if (field.ledger_value !== null) refs.append(el("span", { className: "ref" }, "Ledger: ", el("b", { textContent: field.ledger_value })));
  const crop = field.box
    ? el("img", { className: "crop", alt: "the page around " + field.label, src: docUrl(doc.document_id) + "/crops/" + field.name + ".png" })
    : el("div", { className: "nocrop", textContent: field.status === "missing" ? "not found on the page" : "no box on the page (value from " + field.source + ")" });
  if (field.box) crop.addEventListener("error", () => crop.replaceWith(el("div", { className: "nocrop", textContent: "the page image is not available" })));
  const card = {
    field, input,
    error: el("div", { className: "error", role: "alert" }),
    outcome: el("div", { className: "outcome" }),
    done: false, busy: false,
  };
  card.node = el("div", { className: "field" },
    el("div", { className: "field-head" },
      el("span", { className: "label", textContent: field.label }),
      el("span", { className: "meta", textContent: field.source + " · " + (field.status === "missing" ? "missing" : field.confidence.toFixed(2)) })),
    crop,
    el("ul", { className: "reasons" }, ...field.reasons.map((reason) => el("li", { textContent: reason }))),
    field.qr_value !== null || field.ledger_value !== null ? refs : null,
    input,
    el("div", { className: "hint", textContent: "format: " + field.hint }),
    card.error, card.outcome);
  card.node.dataset.field = field.name;
  input.addEventListener("focus", () => { activate(card); input.select(); });
  input.addEventListener("keydown", (event) => onKey(event, card));
  $("cards").append(card.node);
  state.cards.push(card);
  return card;
}

function openCards() { return state.cards.filter((card) => !card.done); }

function activate(card) {
  for (const other of state.cards) other.node.classList.toggle("active", other === card);
  highlight(card.field);
}

function highlight(field) {
  const doc = state.doc;
  const mark = $("mark");
  const box = field && field.box;
  const page = doc.pages.find((p) => box && p.index === box.page) || doc.pages[0];
  if (page) {
    const src = docUrl(doc.document_id) + "/pages/" + page.index + ".png";
    if (!$("page-img").src.endsWith(src)) $("page-img").src = src;
  }
  if (!box || !page) {
    mark.style.display = "none";
    $("page-note").textContent = field ? "This field has no box on the page." : "";
    return;
  }
  const xs = box.polygon.map((p) => p[0]);
  const ys = box.polygon.map((p) => p[1]);
  const pad = 4;
  const x0 = Math.max(0, Math.min(...xs) - pad), x1 = Math.min(page.width, Math.max(...xs) + pad);
  const y0 = Math.max(0, Math.min(...ys) - pad), y1 = Math.min(page.height, Math.max(...ys) + pad);
  Object.assign(mark.style, {
    display: "block",
    left: (100 * x0 / page.width) + "%", top: (100 * y0 / page.height) + "%",
    width: (100 * (x1 - x0) / page.width) + "%", height: (100 * (y1 - y0) / page.height) + "%",
  });
  $("page-note").textContent = "Page " + (page.index + 1) + (doc.pages.length > 1 ? " of " + doc.pages.length : "") + " · " + field.label;
  mark.scrollIntoView({ block: "nearest", inline: "nearest" });
}

function focusCard(card) {
  if (!card) return;
  card.input.focus();
  card.node.scrollIntoView({ block: "nearest" });
}

function onKey(event, card) {
  if (event.key === "Enter") {
    event.preventDefault();
    submit(card);
  } else if (event.key === "Escape") {
    event.preventDefault();
    card.input.value = card.field.value;
    card.input.select();
    showError(card, "");
  }
}

function showError(card, message) {
  card.error.textContent = message;
  card.error.classList.toggle("shown", Boolean(message));
}

async function submit(card) {
  if (card.busy || card.done) return;
  const typed = card.input.value.trim();
  const accept = typed === card.field.value.trim();
  card.busy = true;
  showError(card, "");
  let data;
  try {
    data = await api(docUrl(state.doc.document_id) + "/fields/" + encodeURIComponent(card.field.name), {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ value: accept ? null : typed, accept }),
    });
  } catch (error) {
    card.busy = false;
    showError(card, error.status === 400 ? error.message : "Not saved: " + error.message);
    card.input.focus();
    card.input.select();
    return;
  }
  card.busy = false;
  markDone(card, data.action === "accept"
    ? (data.value ? "✓ accepted " + data.value : "✓ confirmed: not on the page")
    : "✓ corrected to " + data.value);
  card.input.value = data.value;
  merge(data.document, card);
}

function markDone(card, text) {
  card.done = true;
  card.outcome.textContent = text;
  card.node.classList.add("done");
  card.node.classList.remove("active");
  card.input.disabled = true;
}

function merge(doc, current) {
  // A correction re-runs the rules: some fields may now be fine, others newly doubtful.
  state.doc = doc;
  const pending = new Map(doc.fields.map((field) => [field.name, field]));
  for (const card of state.cards) {
    if (!card.done && !pending.has(card.field.name)) markDone(card, "✓ confirmed by the rules");
  }
  const shown = new Set(state.cards.filter((card) => !card.done).map((card) => card.field.name));
  for (const [name, field] of pending) {
    if (!shown.has(name)) addCard(field);
  }
  const entry = state.queue[state.index];
  entry.fields = doc.fields.map((field) => field.name);
  const open = openCards();
  renderQueue();
  if (!open.length) return finishDocument();
  const after = state.cards.indexOf(current);
  focusCard(open.find((card) => state.cards.indexOf(card) > after) || open[0]);
}

function finishDocument() {
  const entry = state.queue[state.index];
  if (entry && !entry.done) { entry.done = true; state.finished += 1; }
  nextDocument();
}

function nextDocument() {
  const n = state.queue.length;
  for (let step = 1; step <= n; step++) {
    const j = (state.index + step) % n;
    if (!state.queue[j].done) return show(j);
  }
  renderQueue();
  showEmpty();
}

$("next").addEventListener("click", () => nextDocument());
$("again").addEventListener("click", () => loadQueue().catch((error) => banner(error.message)));
document.addEventListener("keydown", (event) => {
  if (event.key === "PageDown" && state.doc) { event.preventDefault(); nextDocument(); }
});
$("page-img").addEventListener("load", () => {
  const active = state.cards.find((card) => card.node.classList.contains("active"));
  if (active) highlight(active.field);
});
loadQueue().catch((error) => banner("Cannot load the review queue: " + error.message));
