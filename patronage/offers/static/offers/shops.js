// A new offer's shops: only those of the environment picked above are shown (a Live offer lists only
// Live shops); a shop of the other environment is unticked when the environment changes.
(function () {
  "use strict";
  function sync() {
    const environment = document.getElementById("id_environment");
    if (!environment) return;
    document.querySelectorAll('input[name="applications"][data-environment]').forEach((box) => {
      const mine = box.dataset.environment === environment.value;
      if (!mine) box.checked = false;
      const row = box.closest("label") || box.parentElement;
      row.hidden = !mine;
      row.style.display = mine ? "" : "none";
    });
  }
  document.addEventListener("DOMContentLoaded", () => {
    const environment = document.getElementById("id_environment");
    if (environment) environment.addEventListener("change", sync);
    sync();
  });
})();
