// The flag list's two-click toggle: the button opens a dialog asking for the reason; "Turn off"
// posts the same form as the flag page's environment action (audited through the services).
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  var dialog = document.getElementById("state-toggle");
  if (!dialog) return;
  var form = dialog.querySelector("form");
  document.querySelectorAll("button.state-toggle").forEach(function (button) {
    button.addEventListener("click", function () {
      var off = button.dataset.action === "disable";
      form.action = button.dataset.url;
      form.elements.environment.value = button.dataset.environment;
      dialog.querySelector(".toggle-question").textContent =
        "Turn " + (off ? "OFF" : "ON") + " " + button.dataset.flag + " in " +
        button.dataset.environmentName + "?";
      var submit = dialog.querySelector("input[type=submit]");
      submit.value = off ? "Turn off" : "Turn on";
      submit.style.background = off ? "#ba2121" : "#2e7d32";
      form.elements.reason.value = "";
      dialog.showModal();
      form.elements.reason.focus();
    });
  });
  dialog.querySelector(".cancel").addEventListener("click", function () { dialog.close(); });
});
