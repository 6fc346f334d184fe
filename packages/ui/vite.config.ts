import { defineConfig } from "vite";

// The dashboard is served by the daemon at /ui under a strict Content-Security-Policy: no inline script, so no
// module-preload polyfill (it would be inlined) and every asset a file of its own under /ui/assets.
export default defineConfig({
  base: "/ui/",
  build: {
    outDir: "dist",
    emptyOutDir: true,
    target: "es2022",
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
    sourcemap: false,
    reportCompressedSize: true,
  },
  oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
});
