// "My codes": the Copy button puts the code on the clipboard and says so for a moment.
(function () {
  "use strict";

  function fallbackCopy(text) {
    var field = document.createElement("textarea");
    field.value = text;
    field.setAttribute("readonly", "");
    field.style.position = "absolute";
    field.style.left = "-9999px";
    document.body.appendChild(field);
    field.select();
    var done = false;
    try {
      done = document.execCommand("copy");
    } catch (error) {
      done = false;
    }
    document.body.removeChild(field);
    return done ? Promise.resolve() : Promise.reject(new Error("copy refused"));
  }

  function copy(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text).catch(function () {
        return fallbackCopy(text);
      });
    }
    return fallbackCopy(text);
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) {
      return;
    }
    var code = button.getAttribute("data-copy");
    var label = button.querySelector(".copy-label");
    var status = document.getElementById("copy-status");
    copy(code).then(
      function () {
        button.classList.add("copied");
        label.textContent = "Copied";
        if (status) {
          status.textContent = "Code " + code + " copied.";
        }
        window.setTimeout(function () {
          button.classList.remove("copied");
          label.textContent = "Copy";
        }, 2000);
      },
      function () {
        // The browser refused: select the code so a long press or Ctrl+C copies it.
        var value = button.closest(".code-card").querySelector(".code-value");
        var range = document.createRange();
        range.selectNodeContents(value);
        var selection = window.getSelection();
        selection.removeAllRanges();
        selection.addRange(range);
        if (status) {
          status.textContent = "Select the code and copy it.";
        }
      }
    );
  });
})();
