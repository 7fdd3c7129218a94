/**
 * Text the route table keeps for as long as it lives (keys, ids, hosts, prefixes), made of parts.
 *
 * V8 keeps a string built with `+` or a template literal as a tree of its parts (a cons string: 32
 * bytes a node, and `${a}/${b}/${c}` is four nodes over the parts) until something reads it whole.
 * A table of 1,000 deployments kept about 47 such trees per deployment, which every full collection of
 * a worker marks (load/README.md, "The heap per deployment"). `join` writes one flat string.
 */
export function joined(...parts: string[]): string {
  return parts.join('');
}
