// Live updates for mailroom serve: new messages appear in the open inbox, and template
// previews reload when a file changes. Everything else works without this script.
(function () {
  "use strict";
  if (!window.EventSource) { return; }
  var page = document.body.getAttribute("data-page");
  var list = document.getElementById("messages");
  var live = list && list.getAttribute("data-live") === "1";
  if (!live && page !== "templates") { return; }
  var wantTo = list ? (list.getAttribute("data-to") || "") : "";
  var wantSubject = list ? (list.getAttribute("data-subject") || "") : "";

  function cell(text) {
    var td = document.createElement("td");
    td.textContent = text;
    return td;
  }

  function addMessage(m) {
    if (document.getElementById("m-" + m.id)) { return; }
    var to = (m.to || []).join(", ");
    if (to.toLowerCase().indexOf(wantTo) < 0) { return; }
    if ((m.subject || "").toLowerCase().indexOf(wantSubject) < 0) { return; }
    var tr = document.createElement("tr");
    tr.id = "m-" + m.id;
    tr.className = "new";
    var date = cell(m.date || "");
    date.className = "date";
    tr.appendChild(date);
    tr.appendChild(cell(m.from || ""));
    tr.appendChild(cell(to));
    var td = document.createElement("td");
    var a = document.createElement("a");
    a.href = "/messages/" + encodeURIComponent(m.id);
    a.textContent = m.subject || "(no subject)";
    td.appendChild(a);
    tr.appendChild(td);
    list.insertBefore(tr, list.firstChild);
    var empty = document.getElementById("empty");
    if (empty) { empty.parentNode.removeChild(empty); }
    var count = document.getElementById("count");
    if (count) { count.textContent = String(Number(count.textContent) + 1); }
  }

  var events = new EventSource("/events");
  events.addEventListener("open", function () {
    document.body.setAttribute("data-events", "open");
  });
  if (live) {
    events.addEventListener("message", function (e) {
      try { addMessage(JSON.parse(e.data)); } catch (err) { /* a malformed event is skipped */ }
    });
  }
  if (page === "templates") {
    events.addEventListener("templates", function () { window.location.reload(); });
  }
  events.addEventListener("reload", function () { window.location.reload(); });
})();
