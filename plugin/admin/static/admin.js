// Gallra admin: every navigation and form post carries a fresh App Bridge session token.
// Session tokens live one minute, so one is fetched per click rather than kept.
(function () {
  "use strict";
  var KEEP = ["shop", "host", "embedded", "locale"];
  var here = new URL(window.location.href);

  KEEP.forEach(function (key) {
    var value = here.searchParams.get(key);
    if (value) { try { sessionStorage.setItem("gallra." + key, value); } catch (e) { /* private mode */ } }
  });

  function carry(url) {
    KEEP.forEach(function (key) {
      if (url.searchParams.has(key)) { return; }
      var value = here.searchParams.get(key);
      if (!value) { try { value = sessionStorage.getItem("gallra." + key); } catch (e) { value = null; } }
      if (value) { url.searchParams.set(key, value); }
    });
    return url;
  }

  function sameApp(url) {
    return url.origin === window.location.origin && url.pathname.indexOf("/admin") === 0 &&
      url.pathname.indexOf("/admin/static/") !== 0 && url.pathname.indexOf("/admin/dev") !== 0;
  }

  function token() {
    if (!window.shopify || typeof window.shopify.idToken !== "function") {
      return Promise.reject(new Error("App Bridge is not available"));
    }
    return window.shopify.idToken();
  }

  function problem(error) {
    var box = document.createElement("p");
    box.className = "banner bad";
    box.setAttribute("role", "alert");
    box.textContent = "Could not authenticate: " + (error && error.message ? error.message : error);
    (document.querySelector("main") || document.body).prepend(box);
  }

  function go(href, replace) {
    var url = carry(new URL(href, window.location.href));
    return token().then(function (value) {
      url.searchParams.set("id_token", value);
      if (replace) { window.location.replace(url.toString()); } else { window.location.assign(url.toString()); }
    }, problem);
  }

  if (document.querySelector("[data-bounce]")) {
    var again = new URL(window.location.href);
    again.searchParams.delete("id_token");
    go(again.toString(), true);
    return;
  }

  // Keep the one-minute token (and a one-off notice) out of the address bar and history.
  if (here.searchParams.has("id_token") || here.searchParams.has("done")) {
    var clean = new URL(here.toString());
    clean.searchParams.delete("id_token");
    clean.searchParams.delete("done");
    window.history.replaceState(null, "", clean.toString());
  }

  // A queued or running preview: look again in a few seconds, until its report is there.
  var refresh = document.querySelector("[data-refresh]");
  if (refresh) {
    window.setTimeout(function () {
      var again = new URL(window.location.href);
      again.searchParams.delete("id_token");
      go(again.toString(), true);
    }, 1000 * Number(refresh.getAttribute("data-refresh") || "5"));
  }

  document.addEventListener("click", function (event) {
    var link = event.target.closest ? event.target.closest("a[href]") : null;
    if (!link || event.defaultPrevented || event.button !== 0) { return; }
    if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) { return; }
    var url = new URL(link.href, window.location.href);
    if (!sameApp(url)) { return; }
    event.preventDefault();
    go(url.toString(), false);
  });

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement) || form.dataset.ready === "1") { return; }
    event.preventDefault();
    if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) { return; }
    var buttons = form.querySelectorAll("button");
    buttons.forEach(function (b) { b.disabled = true; b.setAttribute("aria-busy", "true"); });
    token().then(function (value) {
      var field = form.querySelector("input[name=id_token]");
      if (!field) {
        field = document.createElement("input");
        field.type = "hidden";
        field.name = "id_token";
        form.appendChild(field);
      }
      field.value = value;
      form.action = carry(new URL(form.getAttribute("action"), window.location.href)).toString();
      form.dataset.ready = "1";
      form.submit();
    }, function (error) {
      buttons.forEach(function (b) { b.disabled = false; b.removeAttribute("aria-busy"); });
      problem(error);
    });
  });
})();
