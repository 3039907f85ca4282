import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

// The page is built straight into the server's static root; Kiln serves it at "/" with an SPA fallback.
export default defineConfig({
  plugins: [react()],
  base: "/",
  build: {
    outDir: "../src/Kiln/wwwroot",
    emptyOutDir: true,
    // The CSP forbids inline scripts: never inline the module preload polyfill.
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
    sourcemap: false,
    target: "es2020",
    rollupOptions: {
      // @microsoft/signalr ships /*#__PURE__*/ comments Rollup cannot place; they only cost tree-shaking there.
      onwarn(warning, warn) {
        if (warning.code === "INVALID_ANNOTATION" && warning.id?.includes("@microsoft/signalr")) return;
        warn(warning);
      },
    },
  },
  server: { proxy: { "/api": "http://127.0.0.1:8080", "/hubs": { target: "ws://127.0.0.1:8080", ws: true }, "/health": "http://127.0.0.1:8080" } },
});
