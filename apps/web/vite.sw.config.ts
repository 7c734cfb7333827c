import { fileURLToPath } from "node:url";
import { defineConfig, defaultClientConditions } from "vite";

// The download service worker: one classic script at dist/sw.js (no imports, so it runs in every
// browser that has service workers), next to index.html so its scope is the page's directory.
export default defineConfig({
  resolve: { conditions: ["source", ...defaultClientConditions] },
  build: {
    outDir: "dist",
    emptyOutDir: false,
    target: "es2022",
    lib: { entry: fileURLToPath(new URL("./src/sw.ts", import.meta.url)), formats: ["iife"], name: "psaDownloadWorker", fileName: () => "sw.js" },
  },
});
