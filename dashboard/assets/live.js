// Live updates: the change stream (proxied at /changes) into the `live-change` store.
// EventSource reconnects by itself and resumes from the last id it saw. The "Live
// updates" switch calls window.chronologLive.setEnabled (a clientside callback), so
// following stops the moment it is switched off.
(function () {
  var source = null;
  var enabled = storedEnabled();
  var paused = false;

  function storedEnabled() {
    try {
      var stored = window.localStorage.getItem("live-enabled");
      return stored === null || JSON.parse(stored) !== false;
    } catch (e) {
      return true;
    }
  }
  function setProps(data) {
    if (window.dash_clientside && window.dash_clientside.set_props) {
      window.dash_clientside.set_props("live-change", { data: data });
    }
  }
  function deliver(kind) {
    return function (message) {
      if (!enabled) return;
      var change = JSON.parse(message.data);
      change.kind = kind;
      change.id = message.lastEventId;
      setProps(change);
    };
  }
  function connect() {
    if (source !== null) return;
    source = new EventSource("/changes");
    ["job", "run", "worker"].forEach(function (kind) {
      source.addEventListener(kind, deliver(kind));
    });
    if (paused) {
      // Back on after a pause: what changed meanwhile was not followed; pages re-read once.
      setProps({ kind: "resync", at: Date.now() });
    }
    paused = false;
  }
  function disconnect() {
    if (source === null) return;
    source.close();
    source = null;
    paused = true;
  }
  window.chronologLive = {
    setEnabled: function (value) {
      enabled = value !== false;
      if (enabled) connect();
      else disconnect();
    },
  };
  window.chronologLive.setEnabled(enabled);
})();
