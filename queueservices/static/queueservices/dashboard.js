// The operator pages: local times, copy buttons, the live refresh and the charts.
(function () {
  "use strict";

  // Every <time> is printed in UTC; add the browser's local time beside it.
  function localTimes(root) {
    for (const el of root.querySelectorAll("time[datetime]")) {
      const next = el.nextElementSibling;
      if (next && next.classList.contains("local-time")) continue;
      const local = new Date(el.getAttribute("datetime"));
      if (!isNaN(local)) {
        const span = document.createElement("span");
        span.className = "local-time";
        span.textContent = " (" + local.toLocaleString() + " local)";
        el.after(span);
      }
    }
  }

  function copy(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text);
    }
    const area = document.createElement("textarea");
    area.value = text;
    document.body.appendChild(area);
    area.select();
    document.execCommand("copy");
    area.remove();
    return Promise.resolve();
  }

  document.addEventListener("click", function (event) {
    const button = event.target.closest("button.copy[data-copy]");
    if (!button) return;
    event.preventDefault();
    copy(button.dataset.copy).then(function () {
      button.classList.add("copied");
      setTimeout(function () { button.classList.remove("copied"); }, 1200);
    });
  });

  // Live refresh (htmx polls while this says so); paused state kept per browser.
  const KEY = "queueservices.live";
  window.qsLive = function () { return localStorage.getItem(KEY) !== "off"; };

  function showToggle() {
    const button = document.getElementById("refresh-toggle");
    if (!button) return;
    const on = window.qsLive();
    button.setAttribute("aria-pressed", on ? "true" : "false");
    button.textContent = on ? "Live: on (pause)" : "Live: paused (resume)";
    button.classList.toggle("off", !on);
  }

  document.addEventListener("click", function (event) {
    if (!event.target.closest("#refresh-toggle")) return;
    localStorage.setItem(KEY, window.qsLive() ? "off" : "on");
    showToggle();
  });

  // Charts (uPlot), drawn once and fed the numbers of each refresh.
  const charts = {};

  function series(label, stroke) {
    return { label: label, stroke: stroke, width: 2, spanGaps: true,
      points: { show: true, size: 4 } };
  }

  function draw() {
    const source = document.getElementById("chart-data");
    if (!source || !window.uPlot) return;
    const data = JSON.parse(source.textContent);
    const plots = {
      "chart-counts": {
        series: [series("completed", "#2f9e44"), series("failed", "#e03131"),
          series("retried", "#f08c00")],
        data: [data.minutes, data.completed, data.failed, data.retried],
      },
      "chart-lateness": {
        series: [series("p50 ms", "#1c7ed6"), series("p95 ms", "#7048e8")],
        data: [data.minutes, data.lateness_p50_ms, data.lateness_p95_ms],
      },
    };
    for (const [id, plot] of Object.entries(plots)) {
      const el = document.getElementById(id);
      if (!el) continue;
      if (charts[id] && el.contains(charts[id].root)) {
        charts[id].setData(plot.data);
        continue;
      }
      el.replaceChildren();
      charts[id] = new uPlot(
        { width: Math.max(300, el.clientWidth || 560), height: 200,
          series: [{}].concat(plot.series), scales: { x: { time: true } } },
        plot.data, el);
    }
    document.body.dataset.chartsDrawn = String((+document.body.dataset.chartsDrawn || 0) + 1);
  }

  function refreshed(event) {
    localTimes(event && event.target ? event.target : document);
    draw();
  }

  document.addEventListener("htmx:afterSettle", refreshed);
  window.addEventListener("load", function () {
    showToggle();
    refreshed();
  });
})();
