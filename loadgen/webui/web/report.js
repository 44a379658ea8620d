/* aiload HTML report: draws the three charts from the history embedded in the page
 * (<script id="aiload-history" type="application/json">). Works offline: uPlot and
 * this script are inlined into the report by aiload. */
'use strict';
(function () {
  var el = document.getElementById('aiload-history');
  var hist = {time: []};
  try {
    hist = JSON.parse(el.textContent);
  } catch (e) {
    document.getElementById('charts-error').hidden = false;
  }
  window.ailoadReport = {history: hist};
  var c = aiload.charts({rps: 'chart-rps', rt: 'chart-rt', users: 'chart-users'}, hist);
  window.ailoadReport.charts = c;
  var t = 0;
  window.addEventListener('resize', function () {
    clearTimeout(t);
    t = setTimeout(c.resize, 100);
  });
})();
