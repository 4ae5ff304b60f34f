// The inspector's live updates and the chaos form. Plain JavaScript, no dependencies, no build step.
// The server renders every section; this script only asks for them again when the request log changes
// (polling GET /_emulator/requests), and sends the chaos rules with PUT /_emulator/chaos.
"use strict";

(function () {
  const CONTROL = "/_emulator/";
  const POLL_MS = 1000;
  let latest = null;

  function newestId() {
    const row = document.querySelector("#requests-table tr.request");
    return row ? Number(row.dataset.id) : 0;
  }

  async function refresh(names) {
    const containers = document.querySelectorAll("[data-section]");
    for (const container of containers) {
      const name = container.dataset.section;
      if (names && !names.includes(name)) continue;
      const reply = await fetch("sections/" + name, { cache: "no-store" });
      if (reply.ok) container.innerHTML = await reply.text();
    }
  }

  async function poll() {
    const status = document.getElementById("live-status");
    try {
      const reply = await fetch(CONTROL + "requests?limit=1", { cache: "no-store" });
      const entries = (await reply.json()).requests;
      const id = entries.length ? entries[entries.length - 1].id : 0;
      if (id !== latest) {
        latest = id;
        await refresh();
      }
      status.textContent = "live";
      status.className = "";
    } catch (error) {
      status.textContent = "emulator not reachable";
      status.className = "stale";
    }
    window.setTimeout(poll, POLL_MS);
  }

  function showError(text) {
    document.getElementById("chaos-error").textContent = text;
  }

  async function currentRules() {
    const reply = await fetch(CONTROL + "chaos", { cache: "no-store" });
    return (await reply.json()).rules;
  }

  async function putRules(body) {
    const reply = await fetch(CONTROL + "chaos", {
      method: "PUT",
      headers: { "Content-Type": "application/json" },
      body: typeof body === "string" ? body : JSON.stringify(body),
    });
    if (!reply.ok) {
      let message = "The emulator refused the rules (" + reply.status + ").";
      try {
        message = (await reply.json()).error.message;
      } catch (ignored) {
        // Not JSON: keep the generic message.
      }
      showError(message);
      return false;
    }
    showError("");
    await refresh(["chaos"]);
    return true;
  }

  function optionalNumber(value) {
    return value === "" ? null : Number(value);
  }

  function ruleFromForm(form) {
    const data = new FormData(form);
    return {
      method: data.get("method"),
      path: data.get("path"),
      status: optionalNumber(data.get("status")),
      probability: Number(data.get("probability") || 1),
      latency: Number(data.get("latency") || 0),
      retryAfter: optionalNumber(data.get("retryAfter")),
      times: optionalNumber(data.get("times")),
    };
  }

  document.addEventListener("DOMContentLoaded", function () {
    latest = newestId();
    document.getElementById("chaos-form").addEventListener("submit", async function (event) {
      event.preventDefault();
      const rules = await currentRules();
      rules.push(ruleFromForm(event.target));
      await putRules({ rules: rules });
    });
    document.getElementById("chaos-clear").addEventListener("click", function () {
      putRules({ rules: [] });
    });
    // Delegated: the chaos section is replaced on every refresh.
    document.getElementById("chaos-body").addEventListener("click", async function (event) {
      const target = event.target;
      if (target.classList.contains("remove-rule")) {
        const rules = await currentRules();
        rules.splice(Number(target.dataset.index), 1);
        await putRules({ rules: rules });
      } else if (target.id === "chaos-json-save") {
        await putRules(document.getElementById("chaos-json").value);
      }
    });
    document.getElementById("reset-button").addEventListener("click", async function () {
      await fetch(CONTROL + "reset", { method: "POST" });
      await refresh();
    });
    window.setTimeout(poll, POLL_MS);
  });
})();
