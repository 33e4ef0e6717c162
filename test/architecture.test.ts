// The house rule, read from the code's own imports: each folder of src/ imports only folders
// below it, the fronts (cli, web, the programmatic API) import none of each other, and no import
// circle exists between files.
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";

const SRC = fileURLToPath(new URL("../../src/", import.meta.url));

/** Bottom to top. A folder may import itself and any folder before it in this list. */
const LAYERS = [
  "core",
  "demo",
  "stats",
  "protocols",
  "api",
  "loadfile",
  "runner",
  "result",
  "thresholds",
  "compare",
  "outputs",
  "testrun",
];
/** Peers at the top: each may import every layer, and none imports another. */
const FRONTS = ["cli", "web", "embed"];
/** Files directly in src/ (the package's entry points) assemble the fronts: they may import anything. */
const ROOT = "(root)";

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return sourceFiles(p);
    return /\.tsx?$/.test(name) && !name.endsWith(".d.ts") ? [p] : [];
  });
}

/** Relative module specifiers of a file: static imports and exports, and dynamic import(). */
function importsOf(text: string): string[] {
  // Strip comments and template literals, so generated code inside strings is not read as imports.
  const code = text
    .replace(/\/\*[\s\S]*?\*\//g, "")
    .replace(/(^|[^:"'`\\])\/\/.*$/gm, "$1")
    .replace(/`(?:\\[\s\S]|[^`\\])*`/g, "``");
  const out: string[] = [];
  const re =
    /(?:^|[\s;])(?:import|export)\s[^"';]*?from\s*["']([^"']+)["']|import\s*\(\s*["']([^"']+)["']\s*\)|^import\s*["']([^"']+)["']/gm;
  for (const m of code.matchAll(re)) {
    const spec = m[1] ?? m[2] ?? m[3]!;
    if (spec.startsWith(".")) out.push(spec);
  }
  return out;
}

function folderOf(file: string): string {
  const rel = relative(SRC, file);
  return rel.includes(sep) ? rel.split(sep)[0]! : ROOT;
}

function rank(folder: string): number {
  if (folder === ROOT) return LAYERS.length + 1;
  if (FRONTS.includes(folder)) return LAYERS.length;
  return LAYERS.indexOf(folder);
}

interface Graph {
  files: string[];
  edges: Map<string, string[]>;
}

function readGraph(): Graph {
  const files = sourceFiles(SRC);
  const known = new Set(files);
  const edges = new Map<string, string[]>();
  for (const f of files) {
    const targets: string[] = [];
    for (const spec of importsOf(readFileSync(f, "utf8"))) {
      const base = resolve(dirname(f), spec);
      const candidates = [
        base.replace(/\.js$/, ".ts"),
        base.replace(/\.js$/, ".tsx"),
        `${base}.ts`,
        join(base, "index.ts"),
      ];
      const hit = candidates.find((c) => known.has(c));
      assert.ok(hit, `${relative(SRC, f)} imports "${spec}", which is no file of src/`);
      targets.push(hit);
    }
    edges.set(f, targets);
  }
  return { files, edges };
}

/** Tarjan's strongly connected components with more than one file, or a file importing itself. */
function circles(g: Graph): string[][] {
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const on = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string) => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    on.add(v);
    for (const w of g.edges.get(v) ?? []) {
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
    }
    if (low.get(v) === idx.get(v)) {
      const comp: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        on.delete(w);
        comp.push(w);
      } while (w !== v);
      if (comp.length > 1 || (g.edges.get(v) ?? []).includes(v))
        out.push(comp.map((f) => relative(SRC, f)).sort());
    }
  };
  for (const f of g.files) if (!idx.has(f)) visit(f);
  return out;
}

describe("the house: import direction", () => {
  const graph = readGraph();

  it("every folder of src/ has a place in the house", () => {
    const folders = new Set(graph.files.map(folderOf));
    const unplaced = [...folders].filter((f) => f !== ROOT && !LAYERS.includes(f) && !FRONTS.includes(f));
    assert.deepEqual(unplaced, [], "add new folders to LAYERS or FRONTS (and to docs/architecture.md)");
  });

  it("each folder imports only folders below it, and the fronts none of each other", () => {
    const wrong: string[] = [];
    for (const [from, tos] of graph.edges) {
      const a = folderOf(from);
      for (const to of tos) {
        const b = folderOf(to);
        if (a === b) continue;
        if (rank(b) >= rank(a)) wrong.push(`${relative(SRC, from)} -> ${relative(SRC, to)}`);
      }
    }
    assert.deepEqual(wrong, []);
  });

  it("no import circle between files", () => {
    assert.deepEqual(circles(graph), []);
  });

  it("the rule's own reader sees imports, so it can fail", () => {
    assert.deepEqual(
      importsOf(
        `import { a } from "./a.js";\nimport type { B } from "../b/b.js";\nconst x = await import("./c.js");\n// import { z } from "./z.js";\nexport { d } from "./d.js";`,
      ),
      ["./a.js", "../b/b.js", "./c.js", "./d.js"],
    );
    const g: Graph = {
      files: ["x", "y"],
      edges: new Map([
        ["x", ["y"]],
        ["y", ["x"]],
      ]),
    };
    assert.equal(circles(g).length, 1);
  });
});
