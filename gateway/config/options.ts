/**
 * Every option: the rows of each section file. `--help` and the configuration reference list them
 * grouped by their `section`, in this order within a group. A new option is a row in its section's
 * file (and a line in that section's builder).
 */
import { ADMIN_OPTIONS } from './admin.js';
import { MODULE_OPTIONS } from './ambassador-module.js';
import { COMPRESSION_OPTIONS } from './compression.js';
import { AUTH_OPTIONS } from './auth.js';
import { EDGE_OPTIONS } from './edge.js';
import { EXT_AUTH_OPTIONS } from './ext-auth.js';
import { FALLBACK_TARGET_OPTIONS } from './fallback-targets.js';
import { JWT_OPTIONS } from './jwt.js';
import { LISTEN_OPTIONS } from './listen.js';
import { LOG_SINK_OPTIONS } from './log-sinks.js';
import { OBSERVE_OPTIONS } from './observe.js';
import { BOTH, env, type OptionSpec } from './option.js';
import { PROCESS_OPTIONS } from './process.js';
import { ROUTE_DEFAULT_OPTIONS } from './route-defaults.js';
import { SHADOW_OPTIONS } from './shadows.js';
import { SOURCE_OPTIONS } from './source.js';
import { TLS_OPTIONS } from './tls.js';
import { UPSTREAM_OPTIONS } from './upstream.js';
import { UPSTREAM_TLS_OPTIONS } from './upstream-tls.js';

/** What the command itself reads: its help, and the output form of `routes`. */
const GENERAL_OPTIONS: readonly OptionSpec[] = [
  { flag: 'json', section: 'general', env: env('json'), kind: 'boolean', commands: ['routes'], help: 'Print the table as JSON (the shape of the admin /routes).' },
  { flag: 'help', section: 'general', short: 'h', env: '', kind: 'boolean', commands: BOTH, help: 'Show this help.' },
];

export const OPTIONS: readonly OptionSpec[] = [
  ...LISTEN_OPTIONS,
  ...EDGE_OPTIONS,
  ...COMPRESSION_OPTIONS,
  ...SOURCE_OPTIONS,
  ...MODULE_OPTIONS,
  ...TLS_OPTIONS,
  ...UPSTREAM_OPTIONS,
  ...UPSTREAM_TLS_OPTIONS,
  ...FALLBACK_TARGET_OPTIONS,
  ...ROUTE_DEFAULT_OPTIONS,
  ...SHADOW_OPTIONS,
  ...AUTH_OPTIONS,
  ...JWT_OPTIONS,
  ...EXT_AUTH_OPTIONS,
  ...OBSERVE_OPTIONS,
  ...LOG_SINK_OPTIONS,
  ...ADMIN_OPTIONS,
  ...PROCESS_OPTIONS,
  ...GENERAL_OPTIONS,
];
