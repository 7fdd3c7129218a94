/**
 * No broken links in the README and docs/: every relative link names a file or folder that
 * exists, and every `#anchor` (on the same page or another Markdown file) names a heading there,
 * slugged as GitHub slugs them (github-slugger: the heading's text lower-cased, every character
 * that is not a letter, digit, space, `-` or `_` dropped, spaces to `-`, repeats numbered `-1`, `-2`).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));
const PAGES = [
  'README.md',
  ...readdirSync(join(root, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
];

/** Markdown without its fenced code blocks and inline code spans (links there are not links). */
function prose(text: string): string {
  return text.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, '').replace(/`[^`\n]*`/g, '');
}

/** A heading's text as GitHub renders it: inline code, emphasis and link syntax gone. */
function headingText(raw: string): string {
  return raw
    .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/`([^`]*)`/g, '$1')
    .replace(/(\*\*|__|\*)/g, '')
    .trim();
}

/** GitHub's anchor of a heading text (github-slugger). */
export function slug(text: string): string {
  return headingText(text)
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '')
    .replace(/ /g, '-');
}

/** Every anchor a Markdown file has: its headings' slugs (repeats numbered) and explicit `<a name|id="…">`. */
function anchors(file: string): Set<string> {
  const text = readFileSync(file, 'utf8').replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, '');
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const m of text.matchAll(/^#{1,6}\s+(.+?)\s*#*\s*$/gm)) {
    const base = slug(m[1]!);
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  for (const m of text.matchAll(/<a\s+(?:name|id)="([^"]+)"/g)) out.add(m[1]!);
  return out;
}

/** The relative links of a page: `[text](target)` and `[text]: target` definitions. */
function links(page: string): string[] {
  const text = prose(readFileSync(join(root, page), 'utf8'));
  const out: string[] = [];
  for (const m of text.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) out.push(m[1]!);
  for (const m of text.matchAll(/^\s*\[[^\]]+\]:\s*(\S+)/gm)) out.push(m[1]!);
  return out.filter((l) => !/^[a-z][a-z0-9+.-]*:/i.test(l));
}

describe('links in the README and docs/', () => {
  it('the slugs follow GitHub', () => {
    expect(slug('Observability benchmark: `observe-bench.ts` (on this machine)')).toBe('observability-benchmark-observe-benchts-on-this-machine');
    expect(slug('OAuth front end (compatible with Seldon’s API front end)')).toBe('oauth-front-end-compatible-with-seldons-api-front-end');
    expect(slug('13–16. split exactness')).toBe('1316-split-exactness');
    expect(slug('snake_case and **bold** [a link](x.md)')).toBe('snake_case-and-bold-a-link');
  });

  it.each(PAGES)('%s: every relative link and #anchor resolves', (page) => {
    const broken: string[] = [];
    for (const link of links(page)) {
      const [path, anchor] = link.split('#', 2) as [string, string | undefined];
      const target = path === '' ? join(root, page) : join(root, dirname(page), decodeURIComponent(path));
      if (!existsSync(target)) {
        broken.push(`${link}: ${relative(root, target)} does not exist`);
        continue;
      }
      if (anchor === undefined || anchor === '') continue;
      if (!target.endsWith('.md')) {
        broken.push(`${link}: an anchor into a file that is not Markdown`);
        continue;
      }
      if (!anchors(target).has(decodeURIComponent(anchor))) broken.push(`${link}: ${relative(root, target)} has no heading #${anchor}`);
    }
    expect(broken, broken.join('\n')).toEqual([]);
  });
});
