// The console: search titles, open an article (#article=ID), its related list with the parts of each
// score as bars, and its story. Read-only; every text goes in as text (textContent), never as HTML.
(function () {
  "use strict";
  var K = 8;
  var PARTS = ["relatedness", "main", "head", "use", "lex", "freshness", "redundancy"];

  function $(id) { return document.getElementById(id); }

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) {
      var value = attrs[name];
      if (value === null || value === undefined || value === false) return;
      if (name === "text") node.textContent = value;
      else node.setAttribute(name, value);
    });
    (children || []).forEach(function (child) { if (child) node.appendChild(child); });
    return node;
  }

  // Only an absolute http(s) address is a link, as in the HTML list: a stored `javascript:`, `data:` or
  // protocol-relative `//host/...` url is shown as text.
  function webUrl(value) {
    var url = String(value || "").trim();
    return /^https?:\/\//i.test(url) ? url : null;
  }

  function path(id) { return "/v1/articles/" + encodeURIComponent(id); }  // an id is one segment

  function getJson(url) {
    return fetch(url, { credentials: "omit", headers: { Accept: "application/json" } }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (body) {
        return { status: r.status, ok: r.ok, body: body };
      });
    });
  }

  function failure(answer) {
    var error = (answer.body && answer.body.error) || {};
    return "HTTP " + answer.status + (error.message ? ": " + error.message : "");
  }

  function day(value, lang) {
    if (!value) return "";
    try {
      return new Intl.DateTimeFormat(lang || "en", { dateStyle: "medium" }).format(new Date(value));
    } catch (e) {
      return value.slice(0, 10);
    }
  }

  function headline(item, opens) {
    var attrs = { lang: item.lang, dir: "auto", class: "title" };
    if (opens) {
      attrs.href = "#article=" + encodeURIComponent(item.id);
      attrs["data-id"] = item.id;
      return el("a", Object.assign(attrs, { text: item.title }));
    }
    return el("span", Object.assign(attrs, { text: item.title }));
  }

  function meta(item) {
    // Each part isolated (bdi): an Arabic date or source keeps its order inside an English line.
    var lang = item.other_language ? item.lang + " (fills in: another language)" : item.lang;
    var bits = [item.id, lang, day(item.published_at, item.lang), item.section, item.source];
    var parts = [];
    bits.filter(Boolean).forEach(function (bit, i) {
      if (i) parts.push(document.createTextNode(" · "));
      parts.push(el("bdi", { text: bit }));
    });
    return el("span", { class: "muted meta" }, parts);
  }

  function bars(explain) {
    var rows = PARTS.filter(function (name) { return explain && name in explain; }).map(function (name) {
      var value = explain[name];
      var width = Math.min(100, Math.abs(value) * 100).toFixed(1) + "%";
      var bar = el("span", { class: "bar" + (value < 0 ? " negative" : ""), "data-part": name });
      bar.style.width = width;
      return el("div", { class: "part", role: "img", "aria-label": name + " " + value.toFixed(3) }, [
        el("span", { class: "part-name", text: name }),
        el("span", { class: "track" }, [bar]),
        el("span", { class: "part-value", text: value.toFixed(3) }),
      ]);
    });
    return el("div", { class: "parts" }, rows);
  }

  function search(event) {
    event.preventDefault();
    var q = $("search-q").value.trim();
    $("search-status").textContent = "Searching…";
    getJson("/v1/search?k=20&q=" + encodeURIComponent(q)).then(function (answer) {
      var list = $("search-results");
      list.replaceChildren();
      if (!answer.ok) { $("search-status").textContent = failure(answer); return; }
      var results = answer.body.results;
      $("search-status").textContent = results.length + " article" + (results.length === 1 ? "" : "s");
      results.forEach(function (item) {
        list.appendChild(el("li", { "data-id": item.id }, [headline(item, true), meta(item)]));
      });
    });
  }

  function showRelated(id) {
    var list = $("related");
    list.replaceChildren();
    $("related-status").textContent = "Loading…";
    getJson(path(id) + "/related?explain=true&k=" + K).then(function (answer) {
      if (!answer.ok) { $("related-status").textContent = failure(answer); return; }
      var related = answer.body.related;
      var copies = answer.body.article.copies;
      $("related-status").textContent = related.length + " listed" +
        (copies.length ? "; its own copies, left out: " + copies.join(", ") : "") +
        " · scorer " + answer.body.scorer;
      related.forEach(function (item) {
        list.appendChild(el("li", { "data-id": item.id }, [
          headline(item, true),
          el("span", { class: "score", text: "score " + item.score.toFixed(3) }),
          meta(item),
          item.copies.length ? el("span", { class: "muted", text: "copies: " + item.copies.join(", ") }) : null,
          bars(item.explain),
        ]));
      });
    });
  }

  function showStory(id) {
    var list = $("story");
    list.replaceChildren();
    $("story-panel").hidden = false;
    $("story-status").textContent = "Loading…";
    getJson(path(id) + "/story").then(function (answer) {
      if (answer.status === 404) {
        // The article was just read: a 404 here is the route's, not the article's.
        $("story-status").textContent = "No story route on this service (GET /v1/articles/{id}/story answered 404).";
        $("story-panel").dataset.state = "no-route";
        return;
      }
      if (!answer.ok) { $("story-status").textContent = failure(answer); return; }
      var story = answer.body.story;
      $("story-panel").dataset.state = "done";
      $("story-status").textContent = story.length + " articles, oldest first; threshold " +
        Number(answer.body.threshold).toFixed(2);
      story.forEach(function (item) {
        list.appendChild(el("li", { "data-id": item.id, class: item.id === id ? "current" : null }, [
          item.first_report ? el("strong", { class: "first", text: "first report" }) : null,
          headline(item, item.id !== id),
          el("span", { class: "score", text: "relatedness " + Number(item.relatedness).toFixed(3) }),
          meta(item),
          item.copies && item.copies.length ? el("span", { class: "muted", text: "copies: " + item.copies.join(", ") }) : null,
        ]));
      });
    });
  }

  function open(id) {
    var box = $("article");
    $("article-panel").hidden = false;
    box.replaceChildren(el("p", { class: "muted", text: "Loading…" }));
    getJson(path(id)).then(function (answer) {
      if (!answer.ok) {
        box.replaceChildren(el("p", { class: "error", role: "alert", text: failure(answer) }));
        $("related").replaceChildren();
        $("story-panel").hidden = true;
        return;
      }
      var a = answer.body;
      var href = webUrl(a.url);
      var title = href ? el("a", { href: href, lang: a.lang, dir: "auto", text: a.title })
                        : el("span", { lang: a.lang, dir: "auto", text: a.title });
      var parts = [
        el("h3", { class: "article-title", "data-id": a.id }, [title]),
        meta(a),
        a.listed ? null : el("p", { class: "muted", text: "listed: false (never in another article's list)" }),
        el("p", { class: "body", lang: a.lang, dir: "auto", text: a.body.slice(0, 400) + (a.body.length > 400 ? "…" : "") }),
      ];
      box.replaceChildren.apply(box, parts.filter(Boolean));
      showRelated(id);
      showStory(id);
    });
  }

  function route() {
    var match = /^#article=(.+)$/.exec(location.hash);
    if (match) open(decodeURIComponent(match[1]));
  }

  document.addEventListener("DOMContentLoaded", function () {
    $("related-k").textContent = K;
    $("search-form").addEventListener("submit", search);
    window.addEventListener("hashchange", route);
    getJson("/v1/index").then(function (answer) {
      if (answer.ok) {
        $("index-info").textContent = "bundle " + answer.body.version + " · " +
          answer.body.writes.articles + " articles · read-only";
      } else {
        $("index-info").textContent = failure(answer);
      }
    });
    route();
  });
})();
