// costlens report: sortable tables and plotly charts. No network, no external assets;
// inlined verbatim and allowed by the page's Content-Security-Policy through its sha256.
(function () {
  "use strict";

  // Sort key of a cell: data-v (exact number; "" = none, sorts last) or its text.
  function key(row, index) {
    var cell = row.cells[index];
    if (!cell) return null;
    var v = cell.getAttribute("data-v");
    if (v !== null) return v === "" ? null : parseFloat(v);
    return cell.textContent.trim().toLowerCase();
  }

  function sortTable(table, index, th) {
    var body = table.tBodies[0];
    if (!body) return;
    var ascending = th.getAttribute("aria-sort") !== "ascending";
    var rows = Array.prototype.slice.call(body.rows);
    rows.forEach(function (row, n) {
      if (!row.hasAttribute("data-pos")) row.setAttribute("data-pos", String(n));
    });
    rows.sort(function (a, b) {
      var x = key(a, index), y = key(b, index), c;
      if (x === y) c = 0;
      else if (x === null) return 1;
      else if (y === null) return -1;
      else if (typeof x === "number" && typeof y === "number") c = x - y;
      else c = String(x).localeCompare(String(y));
      if (c === 0) return Number(a.getAttribute("data-pos")) - Number(b.getAttribute("data-pos"));
      return ascending ? c : -c;
    });
    Array.prototype.forEach.call(th.parentNode.cells, function (cell) {
      if (cell.hasAttribute("aria-sort")) cell.setAttribute("aria-sort", "none");
    });
    th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    rows.forEach(function (row) { body.appendChild(row); });
  }

  Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), function (table) {
    var head = table.tHead;
    if (!head) return;
    Array.prototype.forEach.call(head.rows[head.rows.length - 1].cells, function (th, index) {
      var button = th.querySelector("button");
      if (button) button.addEventListener("click", function () { sortTable(table, index, th); });
    });
  });

  var holder = document.getElementById("report-charts");
  var charts = holder ? JSON.parse(holder.textContent) : {};
  var drawn = [];
  Object.keys(charts).sort().forEach(function (id) {
    var el = document.getElementById(id);
    if (!el) return;
    if (typeof Plotly === "undefined") {
      el.textContent = "Chart not shown: plotly.js did not load (a report written with --plotly cdn " +
        "needs the network). The table above holds the same figures.";
      el.className += " chart-missing";
      return;
    }
    var fig = charts[id];
    Plotly.newPlot(el, fig.data, fig.layout, {
      displaylogo: false,
      responsive: true,
      modeBarButtonsToRemove: ["select2d", "lasso2d", "autoScale2d"]
    });
    drawn.push(el);
  });

  // A printed page (A4 landscape, see the print CSS) is narrower than most screens: fit the charts to it.
  window.addEventListener("beforeprint", function () {
    drawn.forEach(function (el) { Plotly.relayout(el, { width: 1000 }); });
  });
  window.addEventListener("afterprint", function () {
    drawn.forEach(function (el) { Plotly.relayout(el, { width: null, autosize: true }); });
  });
})();
