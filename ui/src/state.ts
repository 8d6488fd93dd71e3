// App-wide state: the API, who the user is, the theme, and the hash route.

import { signal } from "@preact/signals";

import { invoke } from "@tauri-apps/api/core";

import { httpApi, tauriApi, type Api } from "./api";
import { parseRoute, type Route } from "./route";
import type { Info } from "./wire";

/** The API: through the desktop app's commands in its window, else over HTTP to the page's own
 *  origin (`cairn serve`). */
function makeApi(): Api {
  if ("__TAURI_INTERNALS__" in window) return tauriApi(invoke);
  return httpApi("");
}

export const api = makeApi();
export const info = signal<(Info & { tracking_uri?: string }) | null>(null);

export type Theme = "light" | "dark";
export const theme = signal<Theme>((localStorage.getItem("cairn.theme") as Theme) ?? (matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light"));

export function toggleTheme() {
  theme.value = theme.value === "dark" ? "light" : "dark";
  localStorage.setItem("cairn.theme", theme.value);
  document.documentElement.dataset.theme = theme.value;
}


export type { Route };

export const route = signal<Route>(parseRoute(window.location.hash));
window.addEventListener("hashchange", () => {
  route.value = parseRoute(window.location.hash);
});

export function go(hash: string) {
  window.location.hash = hash;
}
