// Live updates: the change stream (proxied at /changes) into the `live-change` store.
// EventSource reconnects by itself and resumes from the last id it saw.
(function () {
  var source = null;
  function enabled() {
    try {
      var stored = window.localStorage.getItem("live-enabled");
      return stored === null || JSON.parse(stored) !== false;
    } catch (e) {
      return true;
    }
  }
  function deliver(kind) {
    return function (message) {
      if (!window.dash_clientside || !window.dash_clientside.set_props) return;
      var change = JSON.parse(message.data);
      change.kind = kind;
      change.id = message.lastEventId;
      window.dash_clientside.set_props("live-change", { data: change });
    };
  }
  var paused = false;
  function connect() {
    if (source !== null) return;
    source = new EventSource("/changes");
    ["job", "run", "worker"].forEach(function (kind) {
      source.addEventListener(kind, deliver(kind));
    });
    if (paused && window.dash_clientside && window.dash_clientside.set_props) {
      // Back on after a pause: what changed meanwhile was not followed, so pages re-read once.
      window.dash_clientside.set_props("live-change", { data: { kind: "resync", at: Date.now() } });
    }
    paused = false;
  }
  function disconnect() {
    if (source === null) return;
    source.close();
    source = null;
    paused = true;
  }
  function follow() {
    if (enabled()) connect();
    else disconnect();
  }
  // The switch writes `live-enabled` to localStorage (a dcc.Store); follow it.
  window.addEventListener("storage", follow);
  setInterval(follow, 1000);
  follow();
})();
