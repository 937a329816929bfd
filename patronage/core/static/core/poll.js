// Live progress of a background job's page (an import, a mailing): poll its status URL once a second and
// hand each status to `update`; once the job has finished, reload the page to show its outcome.
window.patronage = {
  poll(url, update) {
    async function poll() {
      try {
        const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
        if (response.ok) {
          const status = await response.json();
          if (status.finished) { window.location.reload(); return; }
          update(status);
        }
      } catch (error) { /* the next poll tries again */ }
      setTimeout(poll, 1000);
    }
    setTimeout(poll, 1000);
  },
  setText(id, text) { const element = document.getElementById(id); if (element) element.textContent = text; },
  number(n) { return Number(n || 0).toLocaleString("en-US"); },
};
