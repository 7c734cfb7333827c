import { defineConfig, defaultClientConditions } from "vite";

// The page: relative URLs (base "./"), so it works at `/` of the server, under a path prefix, or on
// any static host. Workspace packages are built from their TypeScript source ("source" condition).
export default defineConfig({
  base: "./",
  resolve: { conditions: ["source", ...defaultClientConditions] },
  build: { outDir: "dist", target: "es2022", emptyOutDir: true, sourcemap: false },
});
