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
  // Changes arriving together are delivered together: a store set twice in one tick
  // keeps only the last value, which hid one run's RunStarted behind another's outcome.
  var pending = [];
  var flushing = false;
  var MAX_CHANGES = 200;
  function deliver(kind) {
    return function (message) {
      if (!enabled) return;
      var change = JSON.parse(message.data);
      change.kind = kind;
      change.id = message.lastEventId;
      pending.push(change);
      if (!flushing) {
        flushing = true;
        setTimeout(flush, 50);
      }
    };
  }
  function unique(values) {
    return values.filter(function (v, i) { return v !== null && v !== undefined && values.indexOf(v) === i; });
  }
  function flush() {
    flushing = false;
    var changes = pending;
    pending = [];
    if (!enabled || changes.length === 0) return;
    var kinds = unique(changes.map(function (c) { return c.kind; }));
    setProps({
      kind: kinds.length === 1 ? kinds[0] : "mixed",
      kinds: kinds,
      job_ids: unique(changes.map(function (c) { return c.job_id; })),
      run_ids: unique(changes.map(function (c) { return c.run_id; })),
      changes: changes.slice(-MAX_CHANGES),
      id: changes[changes.length - 1].id,
      at: Date.now(),
    });
  }
  function connect() {
    if (source !== null) return;
    source = new EventSource("/changes");
    ["job", "run", "worker"].forEach(function (kind) {
      source.addEventListener(kind, deliver(kind));
    });
    if (paused) {
      // Back on after a pause: what changed meanwhile was not followed; pages re-read once.
      setProps({ kind: "resync", kinds: ["job", "run", "worker"], job_ids: [], run_ids: [],
                 changes: [], at: Date.now() });
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
