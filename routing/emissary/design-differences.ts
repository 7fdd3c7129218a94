/**
 * Where the gateway keeps another meaning than Emissary's on purpose, whatever the config: `migrate-check`
 * prints every one (routing/emissary/migration-report.ts), so a migrating team reads them before the switch. Each is
 * also in docs/migrating-from-ambassador.md (test/gateway/migrate-check.test.ts checks that every topic is).
 * Differences a config causes (a key not honoured, a Mapping dropped) are the report's own lines, not these.
 */

export interface DesignDifference {
  /** What it is about, as the migration guide names it. */
  readonly topic: string;
  /** What Emissary (its Envoy) does. */
  readonly emissary: string;
  /** What the gateway does, and why in a few words. */
  readonly gateway: string;
}

export const DESIGN_DIFFERENCES: readonly DesignDifference[] = [
  {
    topic: 'internal addresses',
    emissary: 'Envoy counts an RFC 1918 peer without X-Forwarded-For as internal (its x-request-id kept, no x_forwarded_proto_redirect)',
    gateway: 'every request is external: preserve_external_request_id and x_forwarded_proto_redirect apply to all',
  },
  {
    topic: 'Host validation',
    emissary: 'checks the characters of Host / :authority only: api.example.com@evil.com, h:80:80, [::1, h: and x,y are routed and forwarded',
    gateway: 'a Host that is not host[:port] (RFC 9112 section 3.2, RFC 3986; "," refused too) gets 400 and reaches no model',
  },
  {
    topic: 'X-Forwarded-For with a port or brackets',
    emissary: 'an entry such as 1.2.3.4:5678 or [2001:db8::1]:443 is no address to Envoy: ip_allow/ip_deny judge the peer instead',
    gateway: 'such an entry is read as its address; an entry that is no address in any form is refused by ip_allow/ip_deny',
  },
  {
    topic: 'x-envoy-original-path',
    emissary: 'sent only when the route rewrites the path',
    gateway: 'sent on every REST request (the path as routed, dot segments resolved)',
  },
  {
    topic: 'server header',
    emissary: '`server: envoy` on every answer (server_name unset)',
    gateway: "without the Module's server_name, the model's Server field as sent and none on the gateway's own answers",
  },
  {
    topic: 'x-request-id',
    emissary: "an external request's x-request-id is replaced",
    gateway: "a client's x-request-id is kept (the Module's preserve_external_request_id: false replaces it)",
  },
  {
    topic: 'X-Forwarded-For from an untrusted peer',
    emissary: 'the peer appended to what the client sent',
    gateway: 'replaced by the peer (kept and appended to only from a trusted peer): a client cannot forge the first entry',
  },
  {
    topic: 'error answers',
    emissary: 'plain text from Envoy (no healthy upstream, upstream request timeout), a 404 with no body',
    gateway: "Seldon's JSON status with Envoy's codes; gRPC the matching status",
  },
  {
    topic: 'x-envoy-expected-rq-timeout-ms',
    emissary: 'sent to the model',
    gateway: 'not sent',
  },
  {
    topic: '/ambassador/v0/',
    emissary: 'check_alive, check_ready and diag on the public port',
    gateway: '/healthz, /readyz and the diagnostics page on the admin port only',
  },
  {
    topic: 'idle client connections',
    emissary: 'closed after 1 hour (listener_idle_timeout_ms unset)',
    gateway: "HTTP/1.1 after 65 s, HTTP/2 after 5 minutes (the Module's listener_idle_timeout_ms sets both)",
  },
  {
    topic: 'l5d-dst-override in a group of Mappings',
    emissary: "merges add_linkerd_headers' header with the group's add_request_headers: every Mapping of a canary pair sends the last Mapping's service",
    gateway: "each Mapping sends its own service, as it would alone: the mesh routes a canary's requests to the canary",
  },
  {
    topic: 'passive endpoint health',
    emissary: 'no outlier detection unless configured: an endpoint answering 500 while its peers answer 200 keeps its share (NoHealthCheckTest)',
    gateway: 'an endpoint failing while its peers answer is ejected for a while (docs/routing.md#endpoint-health); --outlier-detection off keeps every endpoint in turn, as Emissary',
  },
];
