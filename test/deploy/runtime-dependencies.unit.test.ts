/**
 * package.json's `dependencies` are what the image installs (`npm ci --omit=dev`), so they must be
 * exactly the packages the gateway's own code loads at run time: the files under gateway/, routing/
 * and source/. A dependency nothing there imports only makes the image larger; a package they import
 * that is only a devDependency is missing from the image. Imports are read with the TypeScript
 * parser, so `import type` (erased when compiled) does not count as a run-time import.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));
const RUNTIME_DIRS = ['gateway', 'routing', 'source'];
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { dependencies: Record<string, string>; devDependencies: Record<string, string> };

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = join(dir, name);
    if (statSync(full).isDirectory()) return sourceFiles(full);
    return /\.[cm]?ts$/.test(name) && !name.endsWith('.d.ts') ? [full] : [];
  });
}

/** The module specifiers a file loads when it runs: static imports and re-exports (not type-only), import(), require() and createRequire(…)(). */
function runtimeSpecifiers(fileName: string, text: string): string[] {
  const file = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, true);
  const out: string[] = [];
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node) && ts.isStringLiteral(node.moduleSpecifier)) {
      const clause = node.importClause;
      const typeOnly =
        clause !== undefined &&
        (clause.isTypeOnly ||
          (clause.name === undefined &&
            clause.namedBindings !== undefined &&
            ts.isNamedImports(clause.namedBindings) &&
            clause.namedBindings.elements.length > 0 &&
            clause.namedBindings.elements.every((e) => e.isTypeOnly)));
      if (!typeOnly) out.push(node.moduleSpecifier.text);
    } else if (ts.isExportDeclaration(node) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier) && !node.isTypeOnly) {
      out.push(node.moduleSpecifier.text);
    } else if (ts.isCallExpression(node) && node.arguments.length > 0 && ts.isStringLiteralLike(node.arguments[0]!)) {
      const callee = node.expression;
      // `createRequire(import.meta.url)('x')` loads x on first use, as the gateway does for what only some roles need.
      const createdRequire = ts.isCallExpression(callee) && ts.isIdentifier(callee.expression) && callee.expression.text === 'createRequire';
      if (callee.kind === ts.SyntaxKind.ImportKeyword || (ts.isIdentifier(callee) && callee.text === 'require') || createdRequire) out.push((node.arguments[0] as ts.StringLiteralLike).text);
    }
    ts.forEachChild(node, visit);
  };
  visit(file);
  return out;
}

/** `@scope/name/sub` → `@scope/name`, `name/sub` → `name`; undefined for relative paths and Node built-ins. */
function packageOf(specifier: string): string | undefined {
  if (specifier.startsWith('.') || specifier.startsWith('/') || specifier.startsWith('node:') || builtinModules.includes(specifier.split('/')[0]!)) return undefined;
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}

/** package → the runtime files that import it. */
function runtimeImports(): Map<string, string[]> {
  const uses = new Map<string, string[]>();
  for (const dir of RUNTIME_DIRS) {
    for (const file of sourceFiles(join(root, dir))) {
      for (const spec of runtimeSpecifiers(file, readFileSync(file, 'utf8'))) {
        const name = packageOf(spec);
        if (name !== undefined) uses.set(name, [...(uses.get(name) ?? []), relative(root, file)]);
      }
    }
  }
  return uses;
}

describe('runtime dependencies', () => {
  const uses = runtimeImports();

  it('every package in `dependencies` is imported by gateway/, routing/ or source/', () => {
    const unused = Object.keys(pkg.dependencies).filter((name) => !uses.has(name));
    expect(unused, 'listed in dependencies (so installed in the image) but never imported at run time: move to devDependencies or remove').toEqual([]);
  });

  it('every package gateway/, routing/ and source/ import is in `dependencies` (not only a devDependency)', () => {
    const missing = [...uses].filter(([name]) => pkg.dependencies[name] === undefined).map(([name, files]) => `${name} (${files.join(', ')})`);
    expect(missing, 'imported at run time but absent from the image (npm ci --omit=dev)').toEqual([]);
  });

  it("the gRPC libraries serve KEDA's external scaler only: the proxies never load them", () => {
    for (const name of ['@grpc/grpc-js', '@grpc/proto-loader']) {
      expect(pkg.devDependencies[name], name).toBeUndefined();
      expect(uses.get(name), name).toEqual(['gateway/keda/scaler.ts']);
    }
  });

  it('the reader: type-only imports do not count; import(), require(), re-exports and subpaths do', () => {
    const text = [
      "import type { A } from 'only-types';",
      "import { type B } from 'only-types-too';",
      "import { type C, d } from 'mixed';",
      "import 'side-effect';",
      "import fs from 'node:fs';",
      "import path from 'path';",
      "import { x } from './local.js';",
      "export { y } from '@scope/pkg/sub/path';",
      "export type { Z } from 'reexported-types';",
      "const m = await import('dynamic');",
      "const r = require('required/sub');",
    ].join('\n');
    const names = runtimeSpecifiers('probe.ts', text)
      .map(packageOf)
      .filter((n) => n !== undefined);
    expect(names).toEqual(['mixed', 'side-effect', '@scope/pkg', 'dynamic', 'required']);
  });
});
