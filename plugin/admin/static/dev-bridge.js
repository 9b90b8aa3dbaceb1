// Development only (GALLRA_DEV): stands in for Shopify's App Bridge outside the Shopify admin.
// Session tokens come from /admin/dev/session-token, which needs the cookie set by the link that
// `gallra admin dev-login SHOP` prints; the server verifies them exactly like Shopify's.
(function () {
  "use strict";
  if (window.shopify && typeof window.shopify.idToken === "function") { return; }
  window.shopify = {
    idToken: function () {
      return fetch("/admin/dev/session-token", { method: "POST", credentials: "same-origin" })
        .then(function (response) {
          if (!response.ok) { throw new Error("no dev login: run `gallra admin dev-login SHOP` and open its link"); }
          return response.json();
        })
        .then(function (body) { return body.token; });
    }
  };
})();
