// The dashboard's live part: the server draws the overview and sends it
// as server-sent events; this only puts each in place and says whether
// the page is live. No build step, no framework.
'use strict';
(function () {
  var live = document.getElementById('live');
  var conn = document.getElementById('conn');
  var print = document.getElementById('print');
  if (print) {
    print.addEventListener('click', function () { window.print(); });
  }
  function say(k) {
    if (conn) {
      conn.textContent = conn.dataset[k];
      conn.className = k;
    }
  }
  if (!live || !live.dataset.events || !window.EventSource) {
    return;
  }
  var es = new EventSource(live.dataset.events);
  es.addEventListener('overview', function (e) {
    // Drawn and escaped by the server's templates (html/template).
    live.innerHTML = e.data;
    say('live');
  });
  es.addEventListener('error', function () {
    // EventSource retries by itself; it gives up (CLOSED) when the server
    // refuses, which is when the session has ended.
    say(es.readyState === EventSource.CLOSED ? 'ended' : 'lost');
  });
})();
