// The playground's result panel: ask the server for it again until the job is finished.
(function () {
  "use strict";

  function poll() {
    var panel = document.getElementById("job-result");
    if (!panel || !panel.dataset.pollUrl) return;
    setTimeout(function () {
      fetch(panel.dataset.pollUrl, { credentials: "same-origin", headers: { Accept: "text/html" } })
        .then(function (response) {
          if (!response.ok) throw new Error("status " + response.status);
          return response.text();
        })
        .then(function (html) {
          panel.outerHTML = html;
          poll();
        })
        .catch(function () {
          panel.dataset.pollInterval = String(Number(panel.dataset.pollInterval) * 2);
          poll();
        });
    }, Number(panel.dataset.pollInterval) || 1000);
  }

  poll();
})();
