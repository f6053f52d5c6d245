// The operator key of the operator pages: kept in sessionStorage (this browser tab only), sent as X-API-Key.
// `keyForm` wires the page's #key-form (#key, #key-save, #key-forget, #key-entry, #key-message).
import { t } from "/static/i18n.js";
import { town } from "/static/town.js";

const KEY = town ? `stadtpuls.operatorKey.${town}` : "stadtpuls.operatorKey"; // a key belongs to one town

export const storedKey = () => sessionStorage.getItem(KEY) || "";

export function say(node, text, kind = "info") {
  node.textContent = text;
  node.dataset.kind = kind;
}

// `missing`: the text asking for a key; `onKey()` runs when a key was entered, `onForget()` when it was removed.
// Returns `refused(detail)`, for a 401/403 answer: the key is dropped and the form asks again.
export function keyForm({ missing, onKey, onForget }) {
  const form = document.getElementById("key-form");
  const input = document.getElementById("key");
  const message = document.getElementById("key-message");
  const show = () => {
    const has = Boolean(storedKey());
    document.getElementById("key-forget").hidden = !has;
    document.getElementById("key-entry").hidden = has;
    document.getElementById("key-save").hidden = has;
    if (has) say(message, t("pickups.key.saved"));
  };
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const key = input.value.trim();
    if (!key) { say(message, missing, "error"); input.focus(); return; }
    sessionStorage.setItem(KEY, key);
    input.value = "";
    show();
    onKey();
  });
  document.getElementById("key-forget").addEventListener("click", () => {
    sessionStorage.removeItem(KEY);
    say(message, "");
    onForget();
    show();
    input.focus();
  });
  show();
  return {
    focus: () => input.focus(),
    refused(detail) {
      sessionStorage.removeItem(KEY);
      show();
      say(message, t("pickups.key.bad", { detail }), "error");
      input.focus();
    },
  };
}
