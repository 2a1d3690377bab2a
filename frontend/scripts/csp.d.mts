export function chartStyleHashes(): string[];
export function supabaseCsp(origin: string): string;
