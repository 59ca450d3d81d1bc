// The runs grid: status badges (text and colour) and refreshes on run events.
(function () {
  var components = (window.dashAgGridComponentFunctions = window.dashAgGridComponentFunctions || {});
  var DARK_TEXT = { light: true, warning: true, info: true };

  components.StatusBadge = function (props) {
    if (!props.value) return null;
    var colour = (props.data && props.data.status_colour) || "light";
    var text = DARK_TEXT[colour] ? " text-dark" : "";
    return React.createElement(
      "span",
      { className: "badge status-badge bg-" + colour + text },
      props.value
    );
  };

  // Many run events can arrive in a second: refresh at most once per REFRESH_MS. The grid
  // drops the pages it holds and asks again for the one shown, keeping its number. New
  // runs moved every row down, so the keys remembered for row numbers no longer hold:
  // they are forgotten first, and pages are found from the top again (then keyed afresh).
  var REFRESH_MS = 700;
  var pending = {};
  window.chronologRuns = {
    refresh: function (change, gridId, cursorsId) {
      var noUpdate = window.dash_clientside.no_update;
      var kinds = (change && change.kinds) || [];
      if (kinds.indexOf("run") < 0 || pending[gridId]) return noUpdate;
      pending[gridId] = setTimeout(function () {
        delete pending[gridId];
        window.dash_clientside.set_props(cursorsId, { data: {} });
        try {
          window.dash_ag_grid.getApi(gridId).purgeInfiniteCache();
        } catch (e) {
          // the page changed and the grid is gone: nothing to refresh
        }
      }, REFRESH_MS);
      return noUpdate;
    },
  };
})();
