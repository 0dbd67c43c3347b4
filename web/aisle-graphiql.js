// Aisle's GraphiQL fetcher: queries and mutations over HTTP POST, subscriptions
// over graphql-transport-ws. The Authorization header typed in GraphiQL's
// headers editor is sent on HTTP requests and in connection_init, so one key
// works for both (docs/design.md "Access").
(function () {
  "use strict";
  var endpoint = location.origin + "/graphql";
  var wsEndpoint = endpoint.replace(/^http/, "ws");
  var wsClients = {}; // one websocket per Authorization value

  function wsClient(authorization) {
    var key = authorization || "";
    if (!wsClients[key]) {
      wsClients[key] = graphqlWs.createClient({
        url: wsEndpoint,
        lazy: true,
        connectionParams: authorization ? { Authorization: authorization } : {},
      });
    }
    return wsClients[key];
  }

  // operationKind finds the kind of the operation GraphiQL is about to run.
  function operationKind(query, operationName) {
    var text = query.replace(/#[^\n]*/g, "");
    var re = /\b(query|mutation|subscription)\b\s*([_A-Za-z][_0-9A-Za-z]*)?/g;
    var match, first = null;
    while ((match = re.exec(text)) !== null) {
      first = first || match[1];
      if (operationName && match[2] === operationName) return match[1];
    }
    return first || "query";
  }

  function headerValue(headers, name) {
    for (var k in headers || {}) {
      if (k.toLowerCase() === name) return headers[k];
    }
    return undefined;
  }

  function fetcher(params, opts) {
    var headers = (opts && opts.headers) || {};
    if (operationKind(params.query || "", params.operationName) === "subscription") {
      return wsClient(headerValue(headers, "authorization")).iterate(params);
    }
    var h = Object.assign({ "Content-Type": "application/json", Accept: "application/json" }, headers);
    return fetch(endpoint, { method: "POST", headers: h, body: JSON.stringify(params) })
      .then(function (res) { return res.json(); });
  }

  var defaultQuery = [
    "# Aisle: live item availability.",
    "# Anonymous callers may read the catalog and availability.",
    "# Put an API key in the Headers tab to publish events:",
    '#   {"Authorization": "Bearer aisle_..."}',
    "",
    "query Stores {",
    "  stores(first: 5) {",
    "    edges { node { id name retailer { name } products(first: 5) { edges { node { id name category } } } } }",
    "  }",
    "}",
    "",
    "query Availability {",
    '  availability(storeId: "s-1", productIds: ["p-1", "p-2", "p-3"]) {',
    "    productId probability status updatedAt",
    "  }",
    "}",
    "",
    "subscription Live {",
    '  availabilityChanged(storeId: "s-1") { productId probability status updatedAt }',
    "}",
    "",
  ].join("\n");

  ReactDOM.createRoot(document.getElementById("graphiql")).render(
    React.createElement(GraphiQL, { fetcher: fetcher, defaultQuery: defaultQuery, shouldPersistHeaders: true })
  );
})();
