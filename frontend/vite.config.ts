import { loadEnv, type Plugin } from 'vite';
import { defineConfig } from 'vitest/config';
import { checkBuildEnv } from './scripts/build-env.mjs';
import { supabaseCsp } from './scripts/csp.mjs';

const gateway = process.env.GATEWAY_URL ?? 'http://127.0.0.1:8080';

/** A Supabase build pins its project in a CSP <meta> (the exact https/wss origin; the
 * vercel.json header allows *.supabase.co, and sets frame-ancestors, which a meta cannot). */
function cspMeta(origin: string): Plugin {
  const csp = supabaseCsp(origin);
  return {
    name: 'streamdesk-supabase-csp',
    transformIndexHtml: () => [{ tag: 'meta', attrs: { 'http-equiv': 'Content-Security-Policy', content: csp }, injectTo: 'head-prepend' }],
  };
}

export default defineConfig(({ mode, command }) => {
  const env = { ...loadEnv(mode, process.cwd(), 'VITE_'), ...pick(process.env) };
  // `vite build --mode supabase` is the same as VITE_BACKEND=supabase.
  const backend = env.VITE_BACKEND || (mode === 'supabase' ? 'supabase' : 'gateway');
  // Refuses a Supabase build without its project, or with a key that must stay secret.
  const { origin } = checkBuildEnv({ ...env, VITE_BACKEND: backend }, command);
  return {
    base: backend === 'supabase' ? '/' : './',
    oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
    // A compile-time constant: the other backend's dynamic import is dead code, never emitted.
    define: { 'import.meta.env.VITE_BACKEND': JSON.stringify(backend) },
    plugins: backend === 'supabase' && origin ? [cspMeta(origin)] : [],
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
    test: { environment: 'node', include: ['test/**/*.test.ts'], testTimeout: 20_000 },
  };
});

function pick(e: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(e)) if (k.startsWith('VITE_') && v != null) out[k] = v;
  return out;
}
