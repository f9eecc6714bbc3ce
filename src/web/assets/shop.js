// Vitrine's shopper page: search by a dropped or chosen photo, or by a
// pasted image address, with the page's filters (and its words, which make
// the search hybrid), and "more" by asking for a longer list. Text search
// alone is the server-rendered form. Results are
// built with textContent, so a product title is always shown as text.
"use strict";
(function () {
  const PAGE = 24, MAX = 100;
  // A missing thumbnail shows the card's grey square instead of a broken image.
  document.querySelectorAll(".card img").forEach(placeholderOnError);

  const form = document.getElementById("photo");
  if (!form) return;
  const file = document.getElementById("photo-file");
  const zone = form.querySelector(".dropzone");
  const preview = document.getElementById("photo-preview");
  const filters = document.getElementById("filters");
  const grid = document.getElementById("grid");
  const title = document.getElementById("results-title");
  const status = document.getElementById("status");
  const browseMore = document.getElementById("more");
  const more = document.getElementById("more-results");
  const byUrl = document.getElementById("by-url");
  const urlInput = document.getElementById("photo-url");
  // `photo` is a File, or `{ url }` for an address to fetch.
  let photo = null, limit = PAGE, shown = 0;

  function placeholderOnError(img) {
    img.addEventListener("error", () => { img.removeAttribute("src"); img.alt = ""; }, { once: true });
  }

  function money(price, currency) {
    if (price === null || price === undefined) return "";
    return (Number(price).toFixed(2) + " " + (currency || "")).trim();
  }

  function card(r) {
    const a = document.createElement("a");
    a.className = "card";
    a.href = "/products/" + encodeURIComponent(r.product_id);
    const img = document.createElement("img");
    img.src = "/api/v1/products/" + encodeURIComponent(r.product_id) + "/thumbnail";
    img.alt = r.title || r.product_id;
    img.loading = "lazy";
    img.width = 160; img.height = 160;
    placeholderOnError(img);
    const t = document.createElement("span");
    t.className = "title"; t.textContent = r.title || r.product_id;
    const p = document.createElement("span");
    p.className = "price"; p.textContent = money(r.price, r.currency);
    const s = document.createElement("span");
    s.className = "score"; s.textContent = "match " + Math.round(r.score * 100) + "%";
    a.append(img, t, p, s);
    return a;
  }

  function query() {
    const q = new URLSearchParams();
    q.set("limit", String(limit));
    const f = new FormData(filters);
    for (const k of ["q", "category", "min_price", "max_price"]) {
      const v = String(f.get(k) || "").trim();
      if (v) q.set(k, v);
    }
    return q;
  }

  async function search(append) {
    if (!photo) return;
    status.textContent = "Searching…";
    let init;
    if (photo instanceof Blob) {
      const body = new FormData();
      body.append("image", photo, photo.name || "photo");
      init = { method: "POST", body };
    } else {
      init = { method: "POST", headers: { "Content-Type": "application/json" },
               body: JSON.stringify({ url: photo.url }) };
    }
    let resp, data;
    try {
      resp = await fetch("/api/v1/search/image?" + query(), init);
      data = await resp.json();
    } catch (e) {
      status.textContent = "The search did not answer; try again.";
      return;
    }
    if (!resp.ok) {
      status.textContent = data && data.error ? data.error : "The search failed (" + resp.status + ").";
      return;
    }
    const results = data.results || [];
    if (!append) { grid.replaceChildren(); shown = 0; }
    for (const r of results.slice(shown)) grid.append(card(r));
    shown = results.length;
    title.textContent = photo instanceof Blob
      ? "Products that look like your photo" : "Products that look like that picture";
    status.textContent = results.length ? "" : "Nothing matches these filters.";
    if (browseMore) browseMore.hidden = true;
    more.hidden = !(results.length === limit && limit < MAX);
  }

  function usePhoto(f) {
    if (!f) return;
    photo = f; limit = PAGE;
    preview.src = URL.createObjectURL(f);
    preview.hidden = false;
    search(false);
  }

  file.addEventListener("change", () => usePhoto(file.files[0]));
  byUrl.addEventListener("submit", (e) => {
    e.preventDefault();
    const url = urlInput.value.trim();
    if (!url) return;
    photo = { url }; limit = PAGE;
    preview.hidden = true;
    search(false);
  });
  for (const ev of ["dragenter", "dragover"]) {
    zone.addEventListener(ev, (e) => { e.preventDefault(); zone.classList.add("over"); });
  }
  for (const ev of ["dragleave", "drop"]) {
    zone.addEventListener(ev, () => zone.classList.remove("over"));
  }
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    const f = e.dataTransfer && e.dataTransfer.files[0];
    if (f) usePhoto(f);
  });
  // With a photo, the filters narrow the photo search instead of the catalog.
  filters.addEventListener("submit", (e) => {
    if (!photo) return;
    e.preventDefault();
    limit = PAGE;
    search(false);
  });
  more.addEventListener("click", () => {
    limit = Math.min(MAX, limit + PAGE);
    search(true);
  });
})();
