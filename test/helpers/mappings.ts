/**
 * Hand-written Ambassador Mappings for `seldon.io/ambassador-config` in tests: a REST one on
 * `/seldon/<ns>/<name>/` (inside the namespace scope) rewritten to the prediction path, and a gRPC
 * one matched by the `seldon` and `namespace` metadata, each with its own extra YAML lines.
 */
const HEAD = ['apiVersion: ambassador/v1', 'kind: Mapping'];

export function restMapping(name: string, namespace: string, service: string, lines: readonly string[] = []): string {
  return [...HEAD, `name: ${name}`, `prefix: /seldon/${namespace}/${name}/`, 'rewrite: /api/v1.0/predictions', `service: ${service}`, ...lines].join('\n');
}

export function grpcMapping(name: string, namespace: string, service: string, lines: readonly string[] = []): string {
  return [
    ...HEAD,
    `name: ${name}`,
    'grpc: true',
    'prefix: /seldon.protos.Seldon/',
    'rewrite: /seldon.protos.Seldon/',
    'headers:',
    `  seldon: ${name}`,
    `  namespace: ${namespace}`,
    `service: ${service}`,
    ...lines,
  ].join('\n');
}
