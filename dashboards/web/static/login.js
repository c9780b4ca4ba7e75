// Login: the API's session login; on success, back to the page that sent us here.
"use strict";

(() => {
  const form = document.getElementById("login");
  const error = document.getElementById("login-error");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.hidden = true;
    const response = await fetch("/api/v1/login", {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ username: form.username.value, password: form.password.value }),
    });
    if (response.ok) {
      // The server vetted ?next= (a path of this site, else "/"): never an open redirect.
      location.assign(Siaga.config.next || "/");
      return;
    }
    error.textContent = Siaga.t(response.status === 429 ? "login.limited" : "login.failed");
    error.hidden = false;
  });
})();
