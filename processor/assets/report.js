// Draws the report's charts from the JSON in #report-data with the inlined Chart.js.
// A chart is drawn only where the page has its canvas: the page leaves out charts of no data.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("report-data").textContent);
  var SEVERITY = { urgent: "#d62839", high: "#f4a259", normal: "#3d7ea6", low: "#8d99ae" };
  var OUTCOME = { met: "#2a9d8f", breached: "#e63946", pending: "#adb5bd" };
  var SEVERITIES = ["urgent", "high", "normal", "low"];

  Chart.defaults.animation = false;
  Chart.defaults.responsive = true;
  Chart.defaults.maintainAspectRatio = false;
  Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
  Chart.defaults.color = "#52606d";
  Chart.defaults.plugins.legend.position = "bottom";

  function draw(id, config) {
    var canvas = document.getElementById(id);
    if (canvas) {
      new Chart(canvas, config);
    }
  }

  function unique(values) {
    return values.filter(function (v, i) { return values.indexOf(v) === i; });
  }

  function present(rows) {
    var seen = rows.map(function (r) { return r.severity; });
    return SEVERITIES.filter(function (s) { return seen.indexOf(s) >= 0; });
  }

  function hours(seconds) {
    return seconds === null ? null : Math.round(seconds / 36) / 100;
  }

  // Initial-response attainment per ISO week, one line per severity.
  var weekly = data.attainment_by_week_severity;
  var weeks = unique(weekly.map(function (r) { return r.week; }));
  draw("chart-weekly", {
    type: "line",
    data: {
      labels: weeks,
      datasets: present(weekly).map(function (severity) {
        return {
          label: severity, borderColor: SEVERITY[severity], backgroundColor: SEVERITY[severity],
          spanGaps: true, tension: 0.2, pointRadius: 3,
          data: weeks.map(function (week) {
            var row = weekly.find(function (r) { return r.week === week && r.severity === severity; });
            return row ? row.attainment_pct : null;
          }),
        };
      }),
    },
    options: { scales: { y: { suggestedMin: 0, max: 100, title: { display: true, text: "% met" } } } },
  });

  // Met, breached and pending per severity and tier, stacked.
  var cells = data.attainment_by_severity_tier;
  draw("chart-severity-tier", {
    type: "bar",
    data: {
      labels: cells.map(function (r) { return r.severity + " / " + r.tier; }),
      datasets: ["met", "breached", "pending"].map(function (outcome) {
        return { label: outcome, backgroundColor: OUTCOME[outcome],
                 data: cells.map(function (r) { return r[outcome]; }) };
      }),
    },
    options: { scales: { x: { stacked: true }, y: { stacked: true, title: { display: true, text: "tickets" } } } },
  });

  // Time to first response: tickets per bucket, one bar per severity.
  var responses = data.first_response.filter(function (r) { return r.severity !== null; });
  draw("chart-first-response", {
    type: "bar",
    data: {
      labels: data.buckets.first_response,
      datasets: responses.map(function (r) {
        return { label: r.severity, backgroundColor: SEVERITY[r.severity], data: r.buckets };
      }),
    },
    options: { scales: { y: { title: { display: true, text: "tickets" } } } },
  });

  // Update dues per week the update fell due, stacked by severity.
  var dues = data.update_dues;
  var dueWeeks = unique(dues.map(function (r) { return r.week; }));
  draw("chart-update-dues", {
    type: "bar",
    data: {
      labels: dueWeeks,
      datasets: present(dues).map(function (severity) {
        return {
          label: severity, backgroundColor: SEVERITY[severity],
          data: dueWeeks.map(function (week) {
            var row = dues.find(function (r) { return r.week === week && r.severity === severity; });
            return row ? row.update_dues : 0;
          }),
        };
      }),
    },
    options: { scales: { x: { stacked: true }, y: { stacked: true, title: { display: true, text: "update dues" } } } },
  });

  // Escalations per step, one bar per severity.
  var escalations = data.escalations;
  var steps = unique(escalations.map(function (r) { return r.step; })).sort(function (a, b) { return a - b; });
  draw("chart-escalations", {
    type: "bar",
    data: {
      labels: steps.map(function (step) { return "step " + step; }),
      datasets: present(escalations).map(function (severity) {
        return {
          label: severity, backgroundColor: SEVERITY[severity],
          data: steps.map(function (step) {
            var row = escalations.find(function (r) { return r.step === step && r.severity === severity; });
            return row ? row.escalations : 0;
          }),
        };
      }),
    },
    options: { scales: { y: { title: { display: true, text: "escalations" } } } },
  });

  // Elapsed from the clock start to each step (median and p90), against the ladder's time.
  draw("chart-escalation-elapsed", {
    type: "bar",
    data: {
      labels: escalations.map(function (r) { return r.severity + " / step " + r.step; }),
      datasets: [
        { label: "ladder (after)", backgroundColor: "#cbd2d9",
          data: escalations.map(function (r) { return hours(r.after_seconds); }) },
        { label: "median elapsed", backgroundColor: "#3d7ea6",
          data: escalations.map(function (r) { return hours(r.elapsed_p50_seconds); }) },
        { label: "p90 elapsed", backgroundColor: "#1f4e79",
          data: escalations.map(function (r) { return hours(r.elapsed_p90_seconds); }) },
      ],
    },
    options: { scales: { y: { title: { display: true, text: "hours after the clock start" } } } },
  });

  // Maintenance notices per lead time; buckets wholly under the minimum notice in red.
  var maintenance = data.maintenance;
  var lower = [0].concat(data.buckets.lead_time_lower_seconds);
  var minimum = maintenance.minimum_notice_seconds;
  draw("chart-lead-times", {
    type: "bar",
    data: {
      labels: data.buckets.lead_time,
      datasets: [{
        label: "notices",
        backgroundColor: lower.map(function (from, i) {
          var to = data.buckets.lead_time_lower_seconds[i];
          return minimum !== null && to !== undefined && to <= minimum ? OUTCOME.breached : OUTCOME.met;
        }),
        data: maintenance.lead_time_buckets,
      }],
    },
    options: {
      plugins: { legend: { display: false } },
      scales: { y: { title: { display: true, text: "notices" } } },
    },
  });
})();
