// The coupon generation page: the bar and the counts follow the background job; core/poll.js reloads the
// page once it has finished, to show the outcome and the link to the batch.
(function () {
  const root = document.getElementById("coupon-generation");
  if (!root || root.dataset.finished === "true") return;
  const { setText, number } = window.patronage;
  window.patronage.poll(root.dataset.statusUrl, (s) => {
    document.getElementById("generation-bar").style.width = s.percent + "%";
    document.getElementById("generation-progress").setAttribute("aria-valuenow", s.percent);
    setText("generation-percent", s.percent);
    setText("generation-made", number(s.made));
    setText("generation-status", s.status_label);
    const waiting = document.getElementById("generation-waiting");
    if (waiting && s.status !== "queued") waiting.hidden = true;
  });
})();
