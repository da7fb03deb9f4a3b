"use strict";
// The token is the first part of this page's address; the API wants it in a header (never a cookie).
window.invoicesToken = () => decodeURIComponent(location.pathname.split("/")[1] || "");

async function invoicesPost(path, body) {
  const response = await fetch("/api/v1/" + path, {
    method: "POST",
    cache: "no-store",
    headers: { "Content-Type": "application/json", "X-Invoices-Token": window.invoicesToken() },
    body: JSON.stringify(body),
  });
  let data = null;
  try { data = await response.json(); } catch (e) { data = { error: response.statusText }; }
  if (!response.ok) throw new Error((data && data.error) || ("HTTP " + response.status));
  return data;
}

// Keyboard first: "/" the search box, "g" then s/t/r/f/h a view, "?" help.
(function shortcuts() {
  let pending = false;
  const views = { s: "search", t: "stats", r: "review", f: "folder", h: "help" };
  document.addEventListener("keydown", (event) => {
    const target = event.target;
    const typing = target && (target.tagName === "INPUT" || target.tagName === "TEXTAREA" || target.tagName === "SELECT" || target.isContentEditable);
    if (typing || event.ctrlKey || event.metaKey || event.altKey) return;
    const root = document.querySelector("link[rel=stylesheet]").getAttribute("href").replace("static/app.css", "");
    if (event.key === "/") {
      const box = document.getElementById("q");
      if (box) { event.preventDefault(); box.focus(); box.select(); }
    } else if (event.key === "?") {
      location.href = root + "help";
    } else if (pending && views[event.key]) {
      location.href = root + views[event.key];
    } else if (event.key === "c" && document.body.dataset.view === "invoice") {
      const first = document.querySelector(".field-row.flagged .edit") || document.querySelector(".field-row .edit");
      if (first) { event.preventDefault(); first.click(); }
    }
    pending = event.key === "g";
  });
})();

// Times from the index (epoch seconds) in the reader's local time.
for (const cell of document.querySelectorAll("[data-epoch]")) {
  const when = new Date(parseFloat(cell.dataset.epoch) * 1000);
  if (!isNaN(when)) cell.textContent = when.toLocaleString(document.body.dataset.lang === "zh" ? "zh-CN" : "en-GB");
}

// Invoice view: correct a field (the same validation and audit as the review view).
(function corrections() {
  const invoice = document.getElementById("invoice");
  if (!invoice) return;
  const id = invoice.dataset.document;
  for (const button of invoice.querySelectorAll("button.edit")) {
    button.addEventListener("click", () => {
      const row = button.closest("tr");
      const form = row.querySelector("form.correct");
      form.hidden = false;
      row.querySelector(".shown").hidden = true;
      const input = form.querySelector("input");
      input.focus();
      input.select();
    });
  }
  for (const form of invoice.querySelectorAll("form.correct")) {
    const row = form.closest("tr");
    const input = form.querySelector("input");
    const error = form.querySelector(".error");
    const close = () => { form.hidden = true; row.querySelector(".shown").hidden = false; error.textContent = ""; row.querySelector("button.edit").focus(); };
    form.querySelector(".cancel").addEventListener("click", close);
    input.addEventListener("keydown", (event) => { if (event.key === "Escape") { event.preventDefault(); close(); } });
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      error.textContent = "";
      try {
        await invoicesPost("documents/" + encodeURIComponent(id) + "/fields/" + encodeURIComponent(form.dataset.field), { value: input.value, accept: false });
      } catch (e) {
        error.textContent = e.message;
        input.focus();
        return;
      }
      location.reload();
    });
  }
  // A field's box on the page lights up with its row.
  for (const row of invoice.querySelectorAll(".field-row")) {
    const box = invoice.querySelector('.box[data-field="' + row.dataset.field + '"]');
    if (!box) continue;
    const on = () => box.classList.add("lit");
    const off = () => box.classList.remove("lit");
    row.addEventListener("mouseenter", on);
    row.addEventListener("mouseleave", off);
    row.addEventListener("focusin", on);
    row.addEventListener("focusout", off);
  }
})();

// Hot folder: retry one failed file (back into the inbox).
for (const button of document.querySelectorAll("button.retry")) {
  button.addEventListener("click", async () => {
    const status = button.parentElement.querySelector(".retried");
    button.disabled = true;
    try {
      const answer = await invoicesPost("folder/retry", { name: button.dataset.name });
      status.textContent = "✓ " + (document.body.dataset.lang === "zh" ? "已移回待处理：" : "moved back to the inbox: ") + answer.moved_to;
      button.closest("tr").classList.add("done");
    } catch (e) {
      status.textContent = e.message;
      button.disabled = false;
    }
  });
}
