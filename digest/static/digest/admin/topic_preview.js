// Topic change form: preview which recent papers the query (as typed) matches.
// A file, not an inline script: the admin's Content-Security-Policy allows only 'self'.
(function () {
  "use strict";
  function ready(fn) {
    if (document.readyState !== "loading") fn(); else document.addEventListener("DOMContentLoaded", fn);
  }
  ready(function () {
    var box = document.getElementById("topic-preview");
    var query = document.getElementById("id_query");
    if (!box || !query) return;
    var button = document.getElementById("topic-preview-button");
    var status = document.getElementById("topic-preview-status");
    var list = document.getElementById("topic-preview-results");
    var timer = null;
    var seq = 0;

    function render(data) {
      list.textContent = "";
      if (!data.phrases.length) {
        status.textContent = "Type some keywords or \"quoted phrases\" to see matches.";
        return;
      }
      // data.window names the papers scored: the last N days, or the latest N days with trending papers.
      // data.scorer names the scorer used; data.fallback says why it is not the configured one.
      status.textContent = data.matching + " of " + data.candidates + " papers (" + data.window +
        ") would be listed under the topic (score ≥ " + data.threshold + ", scored with " + data.scorer +
        (data.fallback ? "; words only because " + data.fallback + ", so the saved scores will differ" : "") +
        ")" + (data.papers.length ? "; best first:" : ".");
      data.papers.forEach(function (p) {
        var li = document.createElement("li");
        if (p.matches) li.className = "pb-match";
        li.textContent = p.title + (p.arxiv_id ? " (" + p.arxiv_id + ")" : "") + " — score " + p.score +
          (p.matches ? "" : " (below threshold)");
        list.appendChild(li);
      });
    }

    function run() {
      var mine = ++seq;
      status.textContent = "Scoring…";
      var name = document.getElementById("id_name"), description = document.getElementById("id_description");
      var url = box.dataset.url + "?query=" + encodeURIComponent(query.value) +
        "&name=" + encodeURIComponent(name ? name.value : "") +
        "&description=" + encodeURIComponent(description ? description.value : "");
      fetch(url, {credentials: "same-origin"})
        .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
        .then(function (data) { if (mine === seq) render(data); })
        .catch(function (e) { if (mine === seq) status.textContent = "Preview failed: " + e.message; });
    }

    button.addEventListener("click", run);
    query.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(run, 500);
    });
    if (query.value) run();
  });
})();
