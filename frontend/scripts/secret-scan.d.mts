export interface Finding {
  kind: string;
  match: string;
  index: number;
}
export interface ScanOptions {
  known?: string[];
  allowed?: string[];
}
export function privilegedJwt(token: string): string;
export function scanText(text: string, opts?: ScanOptions): Finding[];
export function knownSecrets(env?: Record<string, string | undefined>, repoRoot?: string): string[];
export function scanDir(dir: string, opts?: ScanOptions): (Finding & { file: string })[];
export function redact(match: string): string;
