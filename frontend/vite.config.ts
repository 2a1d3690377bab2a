import { defineConfig } from 'vitest/config';

const gateway = process.env.GATEWAY_URL ?? 'http://127.0.0.1:8080';

export default defineConfig({
  base: './',
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: { outDir: 'dist', target: 'es2022', sourcemap: false, chunkSizeWarningLimit: 400 },
  server: {
    port: 5173,
    host: '127.0.0.1',
    proxy: {
      '/api': { target: gateway, changeOrigin: false },
      '/livez': { target: gateway },
      '/ws': { target: gateway.replace(/^http/, 'ws'), ws: true },
    },
  },
  test: { environment: 'node', include: ['test/**/*.test.ts'] },
});
