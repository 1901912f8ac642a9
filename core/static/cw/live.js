/*
 * cw's live pages: plain JavaScript, no build step, nothing to install.
 *
 * A page that can follow what happens carries an element with data-cw-live: the
 * address of a server-sent events stream (the API's, read with the admin session).
 * An EventSource follows it (and reconnects by itself, resuming with Last-Event-ID);
 * each event makes the page fetch itself again and put in place of its parts marked
 * data-cw-live-region (by id) their fresh copies: no JSON is rendered here, the
 * server's templates stay the only markup. At most one fetch runs at a time and one
 * follows it, however many events arrive meanwhile.
 *
 *   data-cw-live-mode="refresh"  replace the page's live regions (the default);
 *   data-cw-live-mode="log"      append the log viewer's chunks after the last shown
 *                                (data-cw-live-page is the page to read them from);
 *   data-cw-live-watch="<id>"    an event about this record shows the notice
 *                                [data-cw-live-notice]: the form may be out of date.
 *
 * Without JavaScript (or EventSource) the page is the same page, reloaded by hand.
 */
(function () {
  "use strict";
  var root = document.querySelector("[data-cw-live]");
  if (!root || !window.EventSource || !window.fetch) return;
  var status = document.querySelector("[data-cw-live-status]");
  var notice = document.querySelector("[data-cw-live-notice]");
  var mode = root.getAttribute("data-cw-live-mode") || "refresh";
  var watched = root.getAttribute("data-cw-live-watch");
  var session = root.getAttribute("data-cw-live-session");
  var running = false;
  var again = false;
  var KEPT_CHUNKS = 2000; // the log viewer drops the oldest rows beyond this

  function say(text, state) {
    if (!status) return;
    status.textContent = text;
    status.setAttribute("data-state", state);
  }

  function page(url) {
    return fetch(url, { credentials: "same-origin", headers: { "X-Requested-With": "cw-live" } })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.text();
      })
      .then(function (html) { return new DOMParser().parseFromString(html, "text/html"); });
  }

  function refresh() {
    return page(window.location.href).then(function (fresh) {
      document.querySelectorAll("[data-cw-live-region]").forEach(function (region) {
        var copy = fresh.getElementById(region.id);
        // A region the person is typing in is left alone until they are done.
        if (copy && !region.contains(document.activeElement)) {
          region.replaceWith(document.importNode(copy, true));
        }
      });
    });
  }

  function appendChunks() {
    var list = document.querySelector("ol.cw-log");
    var last = list && list.lastElementChild;
    var after = last ? last.getAttribute("data-chunk") : root.getAttribute("data-cw-live-after");
    var url = root.getAttribute("data-cw-live-page") + "&after=" + encodeURIComponent(after);
    return page(url).then(function (fresh) {
      var rows = fresh.querySelectorAll("ol.cw-log > li.cw-chunk");
      if (!rows.length) return;
      if (!list) { // the first chunks: the fresh page's whole log region replaces "no log yet"
        var region = document.getElementById("cw-log-region");
        var copy = fresh.getElementById("cw-log-region");
        if (region && copy) region.replaceWith(document.importNode(copy, true));
        return;
      }
      var bottom = window.innerHeight + window.scrollY >= document.body.scrollHeight - 40;
      rows.forEach(function (row) { list.appendChild(document.importNode(row, true)); });
      while (list.children.length > KEPT_CHUNKS) list.removeChild(list.firstElementChild);
      if (bottom) window.scrollTo(0, document.body.scrollHeight);
      if (fresh.querySelector("a.cw-newer")) again = true; // more than a page came: read on
    });
  }

  function update() {
    if (running) { again = true; return; }
    running = true;
    again = false;
    (mode === "log" ? appendChunks() : refresh())
      .then(function () { say("Live: updated " + new Date().toLocaleTimeString(), "live"); })
      .catch(function () { say("Could not update: reload the page", "error"); })
      .then(function () {
        running = false;
        if (again) update();
      });
  }

  var source = new EventSource(root.getAttribute("data-cw-live"), { withCredentials: true });
  source.onopen = function () { say("Live", "live"); };
  source.onerror = function () { say("Reconnecting…", "waiting"); };
  source.onmessage = update; // events without a name
  function onEvent(message) {
    var item = {};
    try { item = JSON.parse(message.data); } catch (ignored) { /* a trigger all the same */ }
    if (notice && watched && item.subject_id === watched) notice.hidden = false;
    if (session && item.session_number && String(item.session_number) !== session) {
      if (notice) notice.hidden = false; // a new session began: its own page shows it
      return;
    }
    update();
  }
  // Streams name each event (its kind, or "chunk"); listen to the names the page gives.
  (root.getAttribute("data-cw-live-events") || "").split(/\s+/).forEach(function (name) {
    if (name) source.addEventListener(name, onEvent);
  });
})();
