/**
 * The benchmarks' settings: each from its flag, else its environment variable, else a default.
 */

/** The flag's value, else `env`'s, else `dflt`. */
export const setting = (flag: string | undefined, env: string, dflt: string): string => flag ?? process.env[env] ?? dflt;

/** The same as a finite, non-negative number; anything else stops the run naming `env`. */
export function numberSetting(flag: string | undefined, env: string, dflt: number): number {
  const v = Number(setting(flag, env, String(dflt)));
  if (!Number.isFinite(v) || v < 0) throw new Error(`bad number for ${env}: ${String(flag ?? process.env[env])}`);
  return v;
}
