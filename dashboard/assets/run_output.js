// The run page: its live output (the API's stream, proxied at /runs/<id>/output) appended
// to #run-live-output, and its elapsed time. #run-live-key says which attempt runs
// ("<run id>/<attempt>", empty when none does); a new key follows the new attempt.
(function () {
  var SHOWN = 64 * 1024; // characters kept on screen (the tail)
  var source = null;
  var following = "";

  function append(pre, text) {
    var all = pre.textContent + text + "\n";
    pre.textContent = all.length > SHOWN ? all.slice(all.length - SHOWN) : all;
    pre.scrollTop = pre.scrollHeight;
  }

  function stop() {
    if (source !== null) source.close();
    source = null;
  }

  function follow(key, pre) {
    stop();
    following = key;
    var runId = key.slice(0, key.lastIndexOf("/"));
    source = new EventSource("/runs/" + encodeURIComponent(runId) + "/output");
    ["stdout", "stderr"].forEach(function (stream) {
      source.addEventListener(stream, function (message) {
        append(pre, stream === "stderr" ? "[stderr] " + message.data : message.data);
      });
    });
    source.addEventListener("end", stop); // the attempt ended: do not reconnect
  }

  function check() {
    var keyNode = document.getElementById("run-live-key");
    var pre = document.getElementById("run-live-output");
    var key = keyNode ? keyNode.textContent : "";
    if (!pre) {
      stop();
      following = "";
      return;
    }
    if (key && key !== following) follow(key, pre);
  }
  setInterval(check, 500);

  function elapsed(timing) {
    if (!timing || !timing.started) return "";
    var end = timing.finished ? Date.parse(timing.finished) : Date.now();
    var seconds = Math.max(0, Math.floor((end - Date.parse(timing.started)) / 1000));
    var minutes = Math.floor(seconds / 60);
    var text = minutes ? minutes + " min " + (seconds % 60) + " s" : seconds + " s";
    return (timing.running ? "running for " : "ran for ") + text;
  }
  window.chronologRunOutput = { elapsed: elapsed };
})();
