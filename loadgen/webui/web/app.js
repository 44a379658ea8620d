/* aiload live UI: polls /stats/requests and /stats/history once a second and drives the
 * Locust-compatible endpoints (/swarm, /stop, /stats/reset). No framework, no network
 * beyond the aiload process that served this page. */
'use strict';
(function () {
  var $ = function (id) { return document.getElementById(id); };
  var POLL_MS = 1000;
  var ui = {
    state: '', running: false, charts: null, epoch: null, from: 0, sortKey: null, sortAsc: false,
    hist: {time: [], user_count: [], rps: [], fail_per_sec: [], p50: [], p95: [], p99: []},
    lastStats: null, polling: false, shape: '',
  };
  window.ailoadUi = ui; /* inspected by the browser tests */

  function message(text, isError) {
    var m = $('msg');
    if (!text) { m.hidden = true; return; }
    m.textContent = text;
    m.className = isError ? 'msg err' : 'msg';
    m.hidden = false;
  }

  function getJson(url, opts) {
    return fetch(url, opts || {cache: 'no-store'}).then(function (r) {
      var ct = r.headers.get('content-type') || '';
      var body = ct.indexOf('json') >= 0 ? r.json() : r.text().then(function (t) { return {message: t}; });
      return body.then(function (b) {
        if (!r.ok && b && b.success === undefined) b.success = false;
        if (!r.ok && b && !b.message) b.message = 'HTTP ' + r.status;
        return b;
      });
    });
  }

  /* ---- start / edit form ---- */
  function showForm(editing) {
    var d = $('start');
    d.hidden = false;
    d.classList.toggle('editing', editing);
    $('form-title').textContent = editing ? 'Edit running load test' : 'Start new load test';
    $('btn-submit').textContent = editing ? 'Update' : 'Start';
    $('btn-cancel').hidden = !editing && ui.state === 'ready';
    if (editing && ui.lastStats) $('f-users').value = ui.lastStats.user_count;
    $('f-users').focus();
  }
  function hideForm() { $('start').hidden = true; }

  $('start-form').addEventListener('submit', function (ev) {
    ev.preventDefault();
    var editing = $('start').classList.contains('editing');
    var body = new URLSearchParams();
    body.set('user_count', $('f-users').value);
    body.set('spawn_rate', $('f-rate').value);
    if (!editing) {
      body.set('host', $('f-host').value.trim());
      body.set('run_time', $('f-runtime').value.trim());
    }
    $('btn-submit').disabled = true;
    getJson('/swarm', {method: 'POST', body: body}).then(function (r) {
      $('btn-submit').disabled = false;
      if (!r.success) { message(r.message || 'the test could not start', true); return; }
      message('');
      hideForm();
      if (!editing) resetHistory();
      poll();
    }).catch(function (e) {
      $('btn-submit').disabled = false;
      message('aiload did not answer: ' + e, true);
    });
  });
  $('btn-cancel').addEventListener('click', hideForm);
  $('btn-new').addEventListener('click', function () { showForm(false); });
  $('btn-edit').addEventListener('click', function () { showForm(true); });
  $('btn-stop').addEventListener('click', function () {
    getJson('/stop').then(function (r) {
      if (r.success === false) message(r.message, true);
      poll();
    });
  });
  $('btn-reset').addEventListener('click', function () {
    fetch('/stats/reset', {cache: 'no-store'}).then(function () { resetHistory(); poll(); });
  });

  /* ---- tabs ---- */
  Array.prototype.forEach.call(document.querySelectorAll('.tabs button'), function (b) {
    b.addEventListener('click', function () { showTab(b.getAttribute('data-tab')); });
  });
  function showTab(name) {
    Array.prototype.forEach.call(document.querySelectorAll('.tabs button'), function (b) {
      var on = b.getAttribute('data-tab') === name;
      b.classList.toggle('on', on);
      /* on a phone the tab bar scrolls: keep the chosen tab in view */
      if (on && b.scrollIntoView) b.scrollIntoView({block: 'nearest', inline: 'nearest'});
    });
    Array.prototype.forEach.call(document.querySelectorAll('.tab'), function (t) {
      t.classList.toggle('on', t.id === 'tab-' + name);
    });
    if (name === 'charts') ensureCharts().resize();
    if (name === 'exceptions') pollExceptions();
    if (name === 'ratios') pollRatios();
    if (location.hash !== '#' + name) history.replaceState(null, '', '#' + name);
  }

  /* ---- statistics table ---- */
  Array.prototype.forEach.call(document.querySelectorAll('#stats-table th'), function (th) {
    th.addEventListener('click', function () {
      var k = th.getAttribute('data-k');
      ui.sortAsc = ui.sortKey === k ? !ui.sortAsc : (k === 'name' || k === 'method');
      ui.sortKey = k;
      Array.prototype.forEach.call(document.querySelectorAll('#stats-table th'), function (o) {
        o.classList.toggle('sorted', o === th);
        o.classList.toggle('asc', o === th && ui.sortAsc);
      });
      if (ui.lastStats) renderStats(ui.lastStats);
    });
  });

  function statRow(tr, s) {
    var f = aiload;
    f.cell(tr, s.method || '');
    f.cell(tr, s.name);
    f.cell(tr, f.fmtInt(s.num_requests), 'n');
    f.cell(tr, f.fmtInt(s.num_failures), s.num_failures > 0 ? 'n fail' : 'n');
    var none = !s.num_requests;
    f.cell(tr, none ? 'N/A' : f.fmtMs(s.median_response_time), 'n');
    f.cell(tr, none ? 'N/A' : f.fmtMs(s['response_time_percentile_0.95']), 'n');
    f.cell(tr, none ? 'N/A' : f.fmtMs(s['response_time_percentile_0.99']), 'n');
    f.cell(tr, none ? 'N/A' : f.fmtMs(s.avg_response_time), 'n');
    f.cell(tr, none ? 'N/A' : f.fmtMs(s.min_response_time), 'n');
    f.cell(tr, none ? 'N/A' : f.fmtMs(s.max_response_time), 'n');
    f.cell(tr, f.fmtInt(s.avg_content_length), 'n');
    f.cell(tr, f.fmtRate(s.current_rps), 'n');
    f.cell(tr, f.fmtRate(s.current_fail_per_sec), 'n');
  }

  function renderStats(d) {
    var rows = (d.stats || []).slice();
    var total = rows.length && rows[rows.length - 1].name === 'Aggregated' ? rows.pop() : null;
    if (ui.sortKey) {
      var k = ui.sortKey, dir = ui.sortAsc ? 1 : -1;
      rows.sort(function (a, b) {
        var x = a[k], y = b[k];
        if (typeof x === 'string' || typeof y === 'string') return dir * String(x).localeCompare(String(y));
        return dir * ((x || 0) - (y || 0));
      });
    }
    var tb = document.querySelector('#stats-table tbody');
    var frag = document.createDocumentFragment();
    rows.forEach(function (s) {
      var tr = document.createElement('tr');
      statRow(tr, s);
      frag.appendChild(tr);
    });
    tb.replaceChildren(frag);
    var tf = document.querySelector('#stats-table tfoot');
    if (total) {
      var tr = document.createElement('tr');
      statRow(tr, total);
      tr.children[0].textContent = '';
      tf.replaceChildren(tr);
    } else {
      tf.replaceChildren();
    }
  }

  function renderFailures(errors) {
    var tb = document.querySelector('#failures-table tbody');
    var frag = document.createDocumentFragment();
    var n = 0;
    errors.forEach(function (e) {
      var tr = document.createElement('tr');
      aiload.cell(tr, aiload.fmtInt(e.occurrences), 'n');
      aiload.cell(tr, e.method || '');
      aiload.cell(tr, e.name);
      aiload.cell(tr, e.error, 'err');
      frag.appendChild(tr);
      n += e.occurrences;
    });
    tb.replaceChildren(frag);
    $('no-failures').hidden = errors.length > 0;
    $('fail-count').hidden = n === 0;
    $('fail-count').textContent = aiload.fmtInt(n);
  }

  /* the Server-Timing split of the service time, when the target sends it */
  var PHASES = [['network_client', 'network + client'], ['queue', 'server queue'], ['app', 'app']];
  function renderTiming(d) {
    var t = d.server_timing;
    $('timing').hidden = !t;
    if (!t) return;
    var frag = document.createDocumentFragment();
    PHASES.forEach(function (ph) {
      var v = t[ph[0]];
      if (!v) return;
      var p = v.percentiles_ms || {};
      var tr = document.createElement('tr');
      aiload.cell(tr, ph[1]);
      aiload.cell(tr, aiload.fmtMs(v.avg_ms), 'n');
      aiload.cell(tr, aiload.fmtMs(p['50']), 'n');
      aiload.cell(tr, aiload.fmtMs(p['95']), 'n');
      aiload.cell(tr, aiload.fmtMs(p['99']), 'n');
      frag.appendChild(tr);
    });
    document.querySelector('#timing-table tbody').replaceChildren(frag);
  }

  /* a master's workers (Locust's Workers tab); absent on a single process */
  function renderWorkers(d) {
    if (!d.workers) return;
    $('workers-button').hidden = false;
    $('worker-count').textContent = aiload.fmtInt(d.worker_count || 0);
    var tb = document.querySelector('#workers-table tbody');
    var frag = document.createDocumentFragment();
    d.workers.forEach(function (wk) {
      var tr = document.createElement('tr');
      aiload.cell(tr, wk.id);
      aiload.cell(tr, wk.state);
      aiload.cell(tr, aiload.fmtInt(wk.user_count), 'n');
      aiload.cell(tr, wk.cpu_usage.toFixed(1) + ' %', 'n');
      aiload.cell(tr, (wk.memory_usage / 1048576).toFixed(1) + ' MB', 'n');
      frag.appendChild(tr);
    });
    tb.replaceChildren(frag);
    $('no-workers').hidden = d.workers.length > 0;
  }

  function pollExceptions() {
    getJson('/exceptions').then(function (d) {
      var tb = document.querySelector('#exceptions-table tbody');
      var list = (d && d.exceptions) || [];
      tb.replaceChildren();
      list.forEach(function (e) {
        var tr = document.createElement('tr');
        aiload.cell(tr, aiload.fmtInt(e.count), 'n');
        aiload.cell(tr, e.msg, 'err');
        aiload.cell(tr, e.traceback, 'err');
        aiload.cell(tr, Array.isArray(e.nodes) ? e.nodes.join(', ') : e.nodes || ''); // Locust: a string
        tb.appendChild(tr);
      });
      $('no-exceptions').hidden = list.length > 0;
    }).catch(function () {});
  }

  /* ---- current ratio (GET /tasks), nested lists as Locust shows them ---- */
  function pct(r) {
    return (Math.round((r || 0) * 1000) / 10).toFixed(1) + '%';
  }
  function ratioList(ul, tree) {
    Object.keys(tree || {}).forEach(function (name) {
      var li = document.createElement('li');
      var p = document.createElement('span');
      p.className = 'pct';
      p.textContent = pct(tree[name].ratio);
      var n = document.createElement('span');
      n.className = 'rname';
      n.textContent = name;
      li.appendChild(p);
      li.appendChild(n);
      if (tree[name].tasks) {
        var sub = document.createElement('ul');
        ratioList(sub, tree[name].tasks);
        li.appendChild(sub);
      }
      ul.appendChild(li);
    });
  }
  function renderRatios(d) {
    [['ratio-per-class', d.per_class], ['ratio-total', d.total]].forEach(function (x) {
      var ul = $(x[0]);
      ul.replaceChildren();
      ratioList(ul, x[1]);
    });
  }
  function pollRatios() {
    return getJson('/tasks').then(renderRatios).catch(function () {});
  }

  function renderHeader(d) {
    var prev = ui.state;
    ui.state = d.state;
    $('g-host').textContent = d.host || $('f-host').value || '-';
    $('g-state').textContent = d.state;
    $('g-users').textContent = aiload.fmtInt(d.user_count);
    /* the rate is a 10 s window: once the test has stopped nothing is sent, so show 0
       rather than the last seconds of the run */
    var live = d.state === 'running' || d.state === 'spawning' || d.state === 'stopping';
    var rps = d.total_rps_current !== undefined ? d.total_rps_current : d.current_rps;
    $('g-rps').textContent = aiload.fmtRate(live ? rps : 0);
    $('g-fail').textContent = Math.round((d.fail_ratio || 0) * 100) + '%';
    $('g-rate-box').hidden = !d.open_model;
    if (d.open_model) $('g-rate').textContent = aiload.fmtRate(d.target_rate) + '/s';
    if (d.cpu_warning && !ui.cpuWarned) {
      ui.cpuWarned = true;
      message('A load-generating thread of aiload ran above 90% CPU: the measured rates may be ' +
              'limited by this machine rather than by the target.', false);
    }
    var running = d.state === 'running' || d.state === 'spawning';
    $('btn-edit').hidden = !running || !!ui.shape; /* a LoadTestShape's test is not edited */
    $('btn-stop').hidden = !running;
    $('btn-new').hidden = running || d.state === 'ready' || d.state === 'stopping';
    if (d.state === 'ready' && prev !== 'ready' && $('start').hidden) showForm(false);
    if (running && !ui.running && !$('start').classList.contains('editing')) hideForm();
    if (!$('f-host').value && d.host) $('f-host').value = d.host;
    ui.running = running;
  }

  /* ---- charts: incremental history ---- */
  function resetHistory() {
    Object.keys(ui.hist).forEach(function (k) { ui.hist[k] = []; });
    ui.from = 0;
    ui.epoch = null;
    if (ui.charts) ui.charts.update(ui.hist);
  }
  function ensureCharts() {
    if (!ui.charts) ui.charts = aiload.charts({rps: 'chart-rps', rt: 'chart-rt', users: 'chart-users'}, ui.hist);
    return ui.charts;
  }
  function mergeHistory(h) {
    if ((ui.epoch !== null && h.epoch !== ui.epoch) || h.from !== ui.from) {
      /* stats were reset elsewhere (another tab, the API): start over */
      resetHistory();
      return pollHistory();
    }
    ui.epoch = h.epoch;
    var n = (h.time || []).length;
    for (var i = 0; i < n; i++) {
      Object.keys(ui.hist).forEach(function (k) { ui.hist[k].push(h[k] ? h[k][i] : null); });
    }
    ui.from = h.next;
    if (n || !ui.charts) ensureCharts().update(ui.hist);
  }
  function pollHistory() {
    return getJson('/stats/history?from=' + ui.from).then(mergeHistory);
  }

  function poll() {
    if (ui.polling) return;
    ui.polling = true;
    Promise.all([
      getJson('/stats/requests').then(function (d) {
        ui.lastStats = d;
        renderHeader(d);
        renderStats(d);
        renderTiming(d);
        renderFailures(d.errors || []);
        renderWorkers(d);
        if ($('tab-ratios').classList.contains('on')) pollRatios();
      }),
      pollHistory(),
    ]).then(function () {
      if ($('msg').textContent.indexOf('aiload did not answer') === 0) message('');
    }).catch(function (e) {
      message('aiload did not answer: ' + e, true);
    }).then(function () { ui.polling = false; });
  }

  var resizeTimer = 0;
  window.addEventListener('resize', function () {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(function () { if (ui.charts) ui.charts.resize(); }, 100);
  });

  getJson('/defaults').then(function (d) {
    if (d.user_count) $('f-users').value = d.user_count;
    if (d.spawn_rate) $('f-rate').value = d.spawn_rate;
    if (d.shape) { /* the shape sets both: the fields are greyed, as in Locust's form */
      ui.shape = d.shape;
      ['f-users', 'f-rate'].forEach(function (id) {
        $(id).disabled = true;
        $(id).required = false;
        $(id).value = '';
        $(id).placeholder = 'set by ' + d.shape;
      });
      $('shape-note').textContent = d.shape + ' (a LoadTestShape) sets the users and the spawn rate.';
      $('shape-note').hidden = false;
      if (ui.state === 'running' || ui.state === 'spawning') $('btn-edit').hidden = true;
    }
    if (d.host && !$('f-host').value) $('f-host').value = d.host;
    if (d.run_time) $('f-runtime').value = d.run_time + 's';
  }).catch(function () {});
  ensureCharts();
  showTab((location.hash || '#stats').slice(1).replace(/[^a-z]/g, '') || 'stats');
  if (!document.querySelector('.tab.on')) showTab('stats');
  poll();
  setInterval(poll, POLL_MS);
})();
