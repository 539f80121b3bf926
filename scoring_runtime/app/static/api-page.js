// The API page's start-up: fetch this service's OpenAPI document (asking for a key when /swagger.json requires one)
// and hand it to Swagger UI. A file of its own, not an inline script, so that the page's Content-Security-Policy can
// refuse inline scripts.
(function () {
  "use strict";

  var root = document.getElementById("swagger-ui");
  var form = document.getElementById("token-form");
  var input = document.getElementById("token");
  var problem = document.getElementById("problem");
  // The page's own folder, as the browser reached it: "/" for /docs, "/models/x/" for /models/x/docs, with whatever
  // a proxy in front adds. Requests go there rather than where the document's paths and servers point: the document
  // names https (Swagger 2's `schemes`) and the paths as this server sees them, not as the browser reaches them.
  var base = new URL(".", window.location.href);
  var specUrl = new URL(root.getAttribute("data-spec"), base).href;
  // SERVICE_PATH_PREFIX, which the generated paths begin with: taken off before a path is resolved against `base`.
  var documentedPrefix = root.getAttribute("data-path-prefix") || "";
  // Kept in this closure only: never written to storage.
  var token = "";

  function toThisServer(url) {
    var target = new URL(url, base);
    var path = target.pathname;
    if (documentedPrefix && (path === documentedPrefix || path.indexOf(documentedPrefix + "/") === 0)) {
      path = path.slice(documentedPrefix.length);
    }
    return new URL(path.replace(/^\/+/, "") + target.search, base).href;
  }

  function hasAuthorization(headers) {
    return Object.keys(headers || {}).some(function (name) {
      return name.toLowerCase() === "authorization";
    });
  }

  function bearerScheme(spec) {
    var schemes = spec.securityDefinitions || (spec.components || {}).securitySchemes || {};
    return Object.prototype.hasOwnProperty.call(schemes, "Bearer");
  }

  function say(message) {
    problem.textContent = message;
    problem.hidden = !message;
  }

  function render(spec) {
    if (spec.info && spec.info.title) {
      document.title = spec.info.title + " - API";
    }
    var ui = null;
    var authorize = function () {
      // Shown as authorized in Swagger UI's dialog too, where the document declares the scheme.
      if (ui !== null && token && bearerScheme(spec)) {
        ui.preauthorizeApiKey("Bearer", "Bearer " + token);
      }
    };
    ui = window.SwaggerUIBundle({
      spec: spec,
      domNode: root,
      validatorUrl: null,
      requestInterceptor: function (request) {
        request.url = toThisServer(request.url);
        if (token && !hasAuthorization(request.headers)) {
          request.headers = request.headers || {};
          request.headers.Authorization = "Bearer " + token;
        }
        return request;
      },
      onComplete: authorize,
    });
    authorize();
  }

  function load() {
    var headers = token ? { Authorization: "Bearer " + token } : {};
    fetch(specUrl, { headers: headers, credentials: "same-origin", cache: "no-store" })
      .then(function (response) {
        if (response.status === 401) {
          form.hidden = false;
          say(token ? "The key or token was not accepted." : "This service's API document requires a key or token.");
          input.focus();
          return null;
        }
        if (!response.ok) {
          return response.text().then(function (text) {
            throw new Error(response.status + " " + text);
          });
        }
        return response.json();
      })
      .then(function (spec) {
        if (spec !== null) {
          form.hidden = true;
          say("");
          render(spec);
        }
      })
      .catch(function (error) {
        say("The API document could not be loaded: " + error.message);
      });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    token = input.value.trim().replace(/^bearer\s+/i, "");
    load();
  });
  load();
})();
