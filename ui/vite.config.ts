// Vite builds the UI with esbuild's own JSX transform for Preact (no framework plugin needed).
import { defineConfig } from "vitest/config";

export default defineConfig({
  esbuild: { jsx: "automatic", jsxImportSource: "preact" },
  build: { outDir: "dist", emptyOutDir: true, target: "es2022", sourcemap: false },
  // `cairn serve` serves the bundle at `/`; relative asset paths also work in the Tauri window.
  base: "./",
  server: { proxy: { "/api": "http://127.0.0.1:5000" } },
  test: { environment: "jsdom", globals: true, include: ["src/**/*.test.ts", "src/**/*.test.tsx"] },
});
