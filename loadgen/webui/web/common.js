/* aiload: helpers shared by the live UI (app.js) and the HTML report (report.js).
 * History is column-oriented, as the server sends it:
 *   {time:[unix s], user_count:[], rps:[], fail_per_sec:[], p50:[], p95:[], p99:[]}
 * where a percentile is null for a second without responses (drawn as a gap). */
'use strict';
var aiload = (function () {
  function fmtMs(v) {
    if (v === null || v === undefined || isNaN(v)) return 'N/A';
    var a = Math.abs(v);
    if (a >= 100) return Math.round(v).toString();
    if (a >= 10) return v.toFixed(1);
    return v.toFixed(2);
  }
  function fmtRate(v) {
    if (v === null || v === undefined || isNaN(v)) return '0';
    return v >= 1000 ? Math.round(v).toString() : v.toFixed(1);
  }
  function fmtInt(v) {
    return v === null || v === undefined ? '0' : Math.round(v).toLocaleString('en-US');
  }
  function cell(tr, text, cls) {
    var td = document.createElement('td');
    td.textContent = text;
    if (cls) td.className = cls;
    tr.appendChild(td);
    return td;
  }

  var SERIES = {
    rps: [['RPS', '#1a7f37', 'rps'], ['Failures/s', '#cf222e', 'fail_per_sec']],
    rt: [['50th percentile', '#1f6feb', 'p50'], ['95th percentile', '#9a6700', 'p95'],
         ['99th percentile', '#8250df', 'p99']],
    users: [['Users', '#0d1b2a', 'user_count']],
  };

  /* whole seconds at least: the history has one point per second */
  var X_INCRS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 28800, 86400];

  function chartWidth(el) {
    var w = el.clientWidth || (document.documentElement.clientWidth - 40);
    return Math.max(260, w - 18);
  }
  function chartHeight() {
    return window.innerWidth < 640 ? 190 : 250;
  }
  function columns(h, key) {
    var cols = [h.time || []];
    SERIES[key].forEach(function (s) { cols.push(h[s[2]] || []); });
    return cols;
  }

  function showLatest(u) {
    var n = u.data[0].length;
    if (n && u.setLegend) u.setLegend({idx: n - 1});
  }

  /* Creates the three charts inside the elements with the given ids.
   * Returns {update(history), resize(), points()}. */
  function charts(ids, history) {
    var made = {};
    Object.keys(ids).forEach(function (key) {
      var el = document.getElementById(ids[key]);
      var series = [{}];
      SERIES[key].forEach(function (s) {
        series.push({label: s[0], stroke: s[1], width: 2, spanGaps: false,
                     value: function (u, v) {
                       if (v === null || v === undefined) return '-';
                       return key === 'rt' ? fmtMs(v) : key === 'users' ? fmtInt(v) : fmtRate(v);
                     }});
      });
      var opts = {width: chartWidth(el), height: chartHeight(), series: series,
                  scales: {x: {time: true}, y: {range: function (u, min, max) { return [0, max > 0 ? max * 1.1 : 1]; }}},
                  axes: [{space: 70, incrs: X_INCRS}, {size: 60}], legend: {live: true}, cursor: {drag: {x: false, y: false}}};
      made[key] = {el: el, plot: new uPlot(opts, columns(history, key), el)};
      showLatest(made[key].plot);
      el.setAttribute('data-points', (history.time || []).length);
    });
    return {
      update: function (h) {
        Object.keys(made).forEach(function (key) {
          var u = made[key].plot;
          u.setData(columns(h, key));
          /* outside a hover the legend shows the latest second's values */
          if (u.cursor.idx === null || u.cursor.idx === undefined) showLatest(u);
          made[key].el.setAttribute('data-points', (h.time || []).length);
        });
      },
      resize: function () {
        Object.keys(made).forEach(function (key) {
          made[key].plot.setSize({width: chartWidth(made[key].el), height: chartHeight()});
        });
      },
      points: function () { return made.rps ? made.rps.plot.data[0].length : 0; },
    };
  }

  return {fmtMs: fmtMs, fmtRate: fmtRate, fmtInt: fmtInt, cell: cell, charts: charts};
})();
