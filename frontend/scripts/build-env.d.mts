export class BuildEnvError extends Error {}
export function checkBuildEnv(env: Record<string, string | undefined>, command?: string): { backend: 'gateway' | 'supabase'; origin: string | null };
