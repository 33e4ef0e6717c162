import { fileURLToPath } from "node:url";
import preact from "@preact/preset-vite";
import { defineConfig } from "vite";

// The server serves dist/web/ as static files at the root of whatever address it listens on,
// so asset paths are relative and nothing may come from elsewhere.
export default defineConfig({
  root: fileURLToPath(new URL(".", import.meta.url)),
  base: "./",
  plugins: [preact({ prerender: { enabled: false } })],
  // `npm run dev:web` serves the app with hot reload in front of a running `cicada run`.
  // The server refuses a Host or Origin other than its own (docs/web-ui.md, "Security"), so the
  // proxy presents this page's own requests as coming from the server's address.
  server: {
    proxy: {
      "/api": {
        target: "http://127.0.0.1:8089",
        changeOrigin: true,
        configure: (proxy) => {
          proxy.on("proxyReq", (proxyReq, req) => {
            if (req.headers.origin === `http://${req.headers.host}`) {
              proxyReq.setHeader("origin", "http://127.0.0.1:8089");
            }
          });
        },
      },
    },
  },
  build: {
    outDir: fileURLToPath(new URL("../dist/web", import.meta.url)),
    emptyOutDir: true,
    sourcemap: false,
    // One small script and one stylesheet: nothing gained by splitting further.
    assetsInlineLimit: 0,
    chunkSizeWarningLimit: 200,
  },
});
