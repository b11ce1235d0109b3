// Sign-in: the link's token is in the address's fragment, which browsers
// never send to a server; post it once for the session cookie, take it
// off the address bar and history, and open the dashboard.
'use strict';
(function () {
  var msg = document.getElementById('msg');
  var token = location.hash.slice(1);
  history.replaceState(null, '', location.pathname + location.search);
  function fail(text) {
    msg.textContent = text;
    msg.className = 'error';
  }
  if (!token) {
    fail(msg.dataset.none);
    return;
  }
  fetch('/dashboard/session' + location.search, {
    method: 'POST',
    body: token,
    credentials: 'same-origin',
    headers: { 'Content-Type': 'text/plain' }
  }).then(function (r) {
    if (r.status === 204) {
      location.replace('/dashboard/');
      return;
    }
    return r.text().then(fail);
  }, function () {
    fail(msg.dataset.offline);
  });
})();
