// Progressive enhancement for the signup, manage and fresh-link forms; all work without it.
(function () {
  "use strict";

  // A notice ("Saved.", a welcome) comes as ?saved=1 and the like after a redirect: drop it from
  // the address once shown, so a reload or a bookmark does not say it again.
  if (window.history && history.replaceState && /[?&](saved|welcome|paused|new_link)=/.test(location.search)) {
    history.replaceState(null, "", location.pathname + location.hash);
  }

  // A form re-shown with errors: its summary takes the focus, so a screen reader starts there
  // (autofocus does this too; not every browser honours it on a div). A link in it moves the focus
  // to the field and shows the field's label or legend, which a plain jump scrolls out of sight.
  var summary = document.querySelector("[data-error-summary]");
  if (summary) {
    if (document.activeElement !== summary) { summary.focus(); }
    summary.addEventListener("click", function (event) {
      var link = event.target.closest("a[href^='#']");
      var input = link && document.getElementById(link.getAttribute("href").slice(1));
      if (!input) { return; }
      event.preventDefault();
      var group = input.closest(".field") || input.closest("fieldset");
      (group && group.querySelector("label, .label, legend") || input).scrollIntoView();
      input.focus({ preventScroll: true });
    });
  }

  // Pre-fill the time zone from the browser, only where the visitor has not chosen one.
  var zone = document.querySelector("select[data-timezone-autodetect]");
  if (zone && window.Intl && Intl.DateTimeFormat) {
    try {
      var detected = Intl.DateTimeFormat().resolvedOptions().timeZone;
      if (detected && !zone.querySelector('option[value="' + detected.replace(/"/g, "") + '"]')) {
        // The menu lists canonical zones only; browsers may report an alias (Asia/Calcutta),
        // which the server accepts: offer it rather than leave the reader on the default.
        var option = document.createElement("option");
        option.value = detected;
        option.textContent = detected.replace(/_/g, " ");
        zone.insertBefore(option, zone.firstChild);
      }
      if (detected) {
        zone.value = detected;
      }
    } catch (e) { /* an old browser: keep the default */ }
  }

  // The weekday only matters for weekly digests: hide it for daily ones.
  document.querySelectorAll("form").forEach(function (form) {
    var weekday = form.querySelector("select[name=weekday]");
    var radios = form.querySelectorAll("input[name=frequency]");
    if (!weekday || !radios.length) { return; }
    var field = weekday.closest(".field");
    function sync() {
      var checked = form.querySelector("input[name=frequency]:checked");
      // Never hidden while it shows an error: the error summary links to it.
      var weekly = checked && checked.value === "weekly";
      field.classList.toggle("is-hidden", !weekly && !field.classList.contains("field--error"));
    }
    radios.forEach(function (radio) { radio.addEventListener("change", sync); });
    sync();
  });
})();
