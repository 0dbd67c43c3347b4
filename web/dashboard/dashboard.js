// Aisle's live dashboard: only the public GraphQL API, with the key typed
// into the page, over HTTP POST (queries) and graphql-transport-ws
// (subscriptions). Every asset comes from this server.
(function () {
  "use strict";
  var endpoint = location.origin + "/graphql";
  var $ = function (id) { return document.getElementById(id); };
  var state = { auth: "", ws: null, storeSubs: [], fraudSub: null, timers: [] };

  function query(doc, variables) {
    var headers = { "Content-Type": "application/json", Accept: "application/graphql-response+json, application/json" };
    if (state.auth) headers.Authorization = state.auth;
    return fetch(endpoint, { method: "POST", headers: headers, body: JSON.stringify({ query: doc, variables: variables || {} }) })
      .then(function (res) { return res.json(); })
      .then(function (body) {
        if (body.errors && body.errors.length) {
          var err = new Error(body.errors.map(function (e) { return e.message; }).join("; "));
          err.code = (body.errors[0].extensions || {}).code;
          throw err;
        }
        return body.data;
      });
  }

  function subscribe(doc, variables, onData, onError) {
    return state.ws.subscribe({ query: doc, variables: variables }, {
      next: function (msg) {
        if (msg.errors && msg.errors.length) onError(new Error(msg.errors[0].message));
        else onData(msg.data);
      },
      error: function (err) { onError(err instanceof Error ? err : new Error(Array.isArray(err) ? err[0].message : "connection failed")); },
      complete: function () {},
    });
  }

  // colour runs from red (0) through yellow to green (1).
  function colour(p) { return "hsl(" + Math.round(120 * p) + " 70% 45%)"; }

  function paint(cell, a) {
    cell.style.background = colour(a.probability);
    cell.dataset.probability = String(a.probability);
    cell.dataset.status = a.status;
    cell.dataset.updated = a.updatedAt || "";
    cell.title = cell.dataset.name + " (" + a.productId + "): " + a.status + ", p=" + a.probability.toFixed(3) +
      (a.updatedAt ? ", evidence of " + a.updatedAt : ", prior only");
  }

  function stopStore() {
    state.storeSubs.forEach(function (unsubscribe) { unsubscribe(); });
    state.storeSubs = [];
    state.timers.forEach(clearInterval);
    state.timers = [];
  }

  function loadProducts(storeId, after, cells) {
    return query("query($id: ID!, $after: String) { store(id: $id) { products(first: 100, after: $after) { " +
      "edges { cursor node { id name availability { productId probability status updatedAt } } } pageInfo { hasNextPage endCursor } } } }",
      { id: storeId, after: after }).then(function (data) {
      var page = data.store.products;
      page.edges.forEach(function (e) {
        var cell = document.createElement("div");
        cell.className = "cell";
        cell.dataset.product = e.node.id;
        cell.dataset.name = e.node.name;
        if (e.node.availability) paint(cell, e.node.availability);
        cells.push(cell);
      });
      return page.pageInfo.hasNextPage ? loadProducts(storeId, page.pageInfo.endCursor, cells) : cells;
    });
  }

  function showStore(storeId) {
    stopStore();
    var grid = $("grid");
    grid.textContent = "loading…";
    grid.dataset.store = storeId;
    grid.dataset.ready = "";
    loadProducts(storeId, null, []).then(function (cells) {
      grid.textContent = "";
      cells.forEach(function (c) { grid.appendChild(c); });
      $("grid-summary").textContent = cells.length + " products, live";
      state.storeSubs.push(subscribe("subscription($s: ID!) { availabilityChanged(storeId: $s) { productId probability status updatedAt } }",
        { s: storeId }, function (data) {
          var a = data.availabilityChanged;
          var cell = grid.querySelector('[data-product="' + CSS.escape(a.productId) + '"]');
          if (cell) paint(cell, a);
        }, function (err) { $("grid-summary").textContent = "live updates stopped: " + err.message; }));
      grid.dataset.ready = "true";
    }).catch(function (err) { grid.textContent = "cannot load the store: " + err.message; });
    loadAtRisk(storeId);
    state.timers.push(setInterval(function () { loadAtRisk(storeId); }, 10000));
  }

  var atRiskFields = "productId probability status updatedAt";
  var evidenceFields = " evidence { signals found notFound lastPickAt lastPickFound feedQuantity feedAt countedAt prior }";

  // loadAtRisk asks for the at-risk list with evidence, then without it
  // (a key that may not see evidence), and says so when the server has
  // neither.
  function loadAtRisk(storeId) {
    var doc = function (fields) {
      return "query($id: ID!) { store(id: $id) { atRisk(first: 20) { edges { node { " + fields + " } } } } }";
    };
    var note = $("atrisk-note");
    note.textContent = "";
    query(doc(atRiskFields + evidenceFields), { id: storeId }).catch(function (err) {
      note.textContent = "evidence: " + err.message;
      return query(doc(atRiskFields), { id: storeId });
    }).then(function (data) {
      var body = $("atrisk").tBodies[0];
      body.textContent = "";
      data.store.atRisk.edges.forEach(function (e) {
        var n = e.node, row = body.insertRow();
        row.insertCell().textContent = n.productId;
        row.insertCell().textContent = n.probability.toFixed(3);
        row.insertCell().textContent = n.status;
        row.insertCell().textContent = n.evidence ? describeEvidence(n.evidence) : "";
      });
    }).catch(function (err) { note.textContent = "at-risk list unavailable: " + err.message; });
  }

  function describeEvidence(ev) {
    var parts = [];
    Object.keys(ev).forEach(function (k) {
      if (ev[k] === null || ev[k] === undefined || (Array.isArray(ev[k]) && ev[k].length === 0)) return;
      parts.push(k + " " + (typeof ev[k] === "number" ? +ev[k].toFixed(2) : Array.isArray(ev[k]) ? ev[k].join(" ") : ev[k]));
    });
    return parts.join(", ");
  }

  function loadPipeline() {
    query("{ pipelineStatus { measuredAt topics { topic eventsPerSecond lag newestAppliedAt newestAppliedAgeSeconds } } }").then(function (data) {
      $("pipeline-note").textContent = "measured " + data.pipelineStatus.measuredAt;
      var body = $("pipeline").tBodies[0];
      body.textContent = "";
      data.pipelineStatus.topics.forEach(function (t) {
        var row = body.insertRow();
        row.insertCell().textContent = t.topic;
        row.insertCell().textContent = t.eventsPerSecond.toFixed(2);
        row.insertCell().textContent = String(t.lag);
        row.insertCell().textContent = t.newestAppliedAt ? t.newestAppliedAgeSeconds.toFixed(1) + " s ago" : "none yet";
      });
    }).catch(function (err) { $("pipeline-note").textContent = "pipeline status needs an ops or service key (" + err.message + ")"; });
  }

  function watchFraud() {
    $("fraud-note").textContent = "";
    state.fraudSub = subscribe("subscription { riskAlerts(minScore: 0.8) { orderId score decision assessedAt reasons { description } } }", {},
      function (data) {
        var a = data.riskAlerts, item = document.createElement("li");
        item.textContent = a.assessedAt + " " + a.orderId + " " + a.decision + " " + a.score.toFixed(2) + ": " +
          a.reasons.map(function (r) { return r.description; }).join("; ");
        $("fraud").insertBefore(item, $("fraud").firstChild);
      }, function (err) { $("fraud-note").textContent = "fraud alerts need an ops or service key (" + err.message + ")"; });
  }

  function connect(key) {
    stopStore();
    if (state.fraudSub) state.fraudSub();
    if (state.ws) state.ws.dispose();
    clearInterval(state.pipelineTimer);
    state.auth = key ? "Bearer " + key : "";
    state.ws = graphqlWs.createClient({
      url: endpoint.replace(/^http/, "ws"),
      connectionParams: state.auth ? { Authorization: state.auth } : {},
      retryAttempts: 100,
      shouldRetry: function () { return true; },
      on: {
        connected: function () { $("connection").textContent = "live"; },
        closed: function () { $("connection").textContent = "reconnecting…"; },
      },
    });
    query("{ stores(first: 100) { edges { node { id name retailer { name } } } } }").then(function (data) {
      var select = $("store");
      select.textContent = "";
      data.stores.edges.forEach(function (e) {
        var o = document.createElement("option");
        o.value = e.node.id;
        o.textContent = e.node.name + " (" + e.node.retailer.name + ", " + e.node.id + ")";
        select.appendChild(o);
      });
      select.disabled = false;
      if (select.value) showStore(select.value);
    }).catch(function (err) { $("connection").textContent = "cannot list stores: " + err.message; });
    loadPipeline();
    state.pipelineTimer = setInterval(loadPipeline, 5000);
    $("fraud").textContent = "";
    watchFraud();
  }

  $("connect").addEventListener("submit", function (ev) { ev.preventDefault(); connect($("key").value.trim()); });
  $("store").addEventListener("change", function () { showStore($("store").value); });
})();
