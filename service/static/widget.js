// Fills every <div data-related-article="ID"> and <div data-related-url="URL"> (an empty URL: the
// page's own, its <link rel="canonical"> if it has one) with the related list of that article, as HTML
// from the service this script was loaded from. Options: data-k (how many), data-lang (the list's
// languages), data-lang-policy (same, same_then_other or any).
// It sends no cookies and no referrer, and stores nothing. A div that cannot be filled keeps what it
// held, with data-related-state="error" and the reason in data-related-error.
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || !script.src) return;
  var service = new URL(script.src).origin;

  function pageUrl() {
    var canonical = document.querySelector('link[rel="canonical"][href]');
    return canonical ? canonical.href : location.href;
  }

  function address(div) {
    var params = new URLSearchParams();
    var path;
    var id = div.getAttribute("data-related-article");
    if (id) {
      path = "/v1/articles/" + encodeURIComponent(id) + "/related.html";  // "/" in an id: %2F
    } else {
      path = "/v1/related.html";
      params.set("url", div.getAttribute("data-related-url") || pageUrl());
    }
    if (div.dataset.k) params.set("k", div.dataset.k);
    if (div.dataset.lang) params.set("lang", div.dataset.lang);
    if (div.dataset.langPolicy) params.set("lang_policy", div.dataset.langPolicy);
    var query = params.toString();
    return service + path + (query ? "?" + query : "");
  }

  function fill(div) {
    if (div.dataset.relatedState) return;
    div.dataset.relatedState = "loading";
    fetch(address(div), { credentials: "omit", referrerPolicy: "no-referrer", mode: "cors" })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.text();
      })
      .then(function (text) {
        var doc = new DOMParser().parseFromString(text, "text/html");
        var list = doc.querySelector(".related-articles");
        if (!list) throw new Error("no list in the answer");
        var style = doc.querySelector("style[data-related-style]");
        if (style && !document.querySelector("style[data-related-style]")) {
          document.head.appendChild(document.importNode(style, true));
        }
        div.replaceChildren(document.importNode(list, true));
        div.dataset.relatedState = "done";
      })
      .catch(function (error) {
        div.dataset.relatedState = "error";
        div.dataset.relatedError = error.message;
      });
  }

  function fillAll() {
    document.querySelectorAll("[data-related-article], [data-related-url]").forEach(fill);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", fillAll);
  } else {
    fillAll();
  }
})();
