// The playground: the cost of the current choices as they change (looked up in the prices
// the server computed with its own pricing rule), and the result panel, asked for again
// until the job is finished.
(function () {
  "use strict";

  function plural(n, word) {
    return n.toLocaleString("en-US") + " " + word + (n === 1 ? "" : "s");
  }

  function showCost() {
    var form = document.getElementById("playground-form");
    var panel = document.getElementById("request-cost");
    var data = document.getElementById("playground-prices");
    if (!form || !panel || !data) return;
    var prices = JSON.parse(data.textContent);
    var balance = Number(panel.dataset.balance);

    function update() {
      var model = form.elements.model.value;
      var size = form.elements.size.value;
      var images = Number(form.elements.num_images.value);
      var costs = (prices.costs[model] || {})[size];
      var cost = costs && Number.isInteger(images) ? costs[images - 1] : undefined;
      var credits = document.getElementById("cost-credits");
      var explained = document.getElementById("cost-explained");
      var after = document.getElementById("balance-after");
      var short = document.getElementById("cost-short");
      if (cost === undefined) {
        credits.textContent = "—";
        explained.textContent = costs ? "(choose 1 to " + costs.length + " images)" : "";
        after.textContent = "—";
        short.hidden = true;
        return;
      }
      credits.textContent = plural(cost, "credit");
      explained.textContent = "= " + plural(prices.credits_per_image[model], "credit") +
        " × " + plural(images, "image") + " × " + prices.megapixels[size] +
        " megapixels per image (rounded up)";
      after.textContent = cost <= balance ? plural(balance - cost, "credit") : "—";
      short.hidden = cost <= balance;
    }

    form.addEventListener("input", update);
    form.addEventListener("change", update);
    update();
  }

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

  showCost();
  poll();
})();
