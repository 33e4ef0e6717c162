/**
 * The Kubernetes manifests and the container image recipe, checked without a cluster: each build
 * (the base and every overlay) is rendered as kustomize renders it, every object is validated
 * against the Kubernetes schemas, and the names, labels, ports, secrets, mounts and flags that
 * tie the master to its workers must agree. Where kubectl is installed, its own render must
 * equal ours.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, posix, relative } from "node:path";
import { after, before, describe, it } from "node:test";
import { Deployment } from "kubernetes-models/apps/v1";
import { Job } from "kubernetes-models/batch/v1";
import { NetworkPolicy } from "kubernetes-models/networking.k8s.io/v1";
import { ConfigMap, Namespace, Secret, Service } from "kubernetes-models/v1";
import { parse, parseAllDocuments } from "yaml";
import { ROOT, runCli } from "./helpers.js";

const K8S = join(ROOT, "deploy/kubernetes");
const BUILDS = ["", "overlays/example", "overlays/web-ui", "overlays/tls"];

// ---------------------------------------------------------------------------------------------
// Kustomize, as far as these manifests use it.

type Obj = Record<string, any>;

/** YAML as Kubernetes and kustomize read it: 1.1, where 0440 is octal. */
const YAML_11 = { version: "1.1" } as const;

/**
 * Stand-ins for the files a user creates and never commits (the token, the web UI's login, the
 * TLS files), so that the builds render here as they do on the user's machine.
 */
const UNCOMMITTED: Record<string, string> = {
  "base/token.env": "token=test-token-not-a-secret\n",
  "overlays/web-ui/web-login.env": "login=cicada:test-login\n",
  "overlays/tls/tls.crt": "-----BEGIN CERTIFICATE-----\ntest\n-----END CERTIFICATE-----\n",
  "overlays/tls/tls.key": "-----BEGIN PRIVATE KEY-----\ntest\n-----END PRIVATE KEY-----\n",
  "overlays/tls/ca.crt": "-----BEGIN CERTIFICATE-----\nca\n-----END CERTIFICATE-----\n",
};

/** The fields of a kustomization.yaml this emulation understands; any other fails the test. */
const KNOWN_KEYS = new Set([
  "apiVersion",
  "kind",
  "namespace",
  "resources",
  "configMapGenerator",
  "secretGenerator",
  "patches",
  "replicas",
  "images",
]);

/** Reads a file of deploy/kubernetes, or its stand-in when the user would have created it. */
function readK8s(path: string): string {
  const rel = relative(K8S, path).split("\\").join("/");
  return UNCOMMITTED[rel] ?? readFileSync(path, "utf8");
}

/** `key=path` or `path` of a generator's `files`. */
function generatorFile(dir: string, entry: string): [string, string] {
  const eq = entry.indexOf("=");
  const [key, file] = eq >= 0 ? [entry.slice(0, eq), entry.slice(eq + 1)] : [posix.basename(entry), entry];
  return [key, readK8s(join(dir, file))];
}

function envFile(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split("\n")) {
    if (line.trim() === "" || line.trimStart().startsWith("#")) continue;
    const eq = line.indexOf("=");
    assert.ok(eq > 0, `not KEY=VALUE: ${line}`);
    out[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return out;
}

/** Generated ConfigMaps and Secrets, named as declared (kustomize adds a hash that we strip). */
function generated(dir: string, k: Obj): { objects: Obj[]; hashed: string[] } {
  const objects: Obj[] = [];
  const hashed: string[] = [];
  for (const [kind, gens] of [
    ["ConfigMap", k.configMapGenerator],
    ["Secret", k.secretGenerator],
  ] as const) {
    for (const g of (gens ?? []) as Obj[]) {
      const data: Record<string, string> = {};
      for (const e of (g.files ?? []) as string[]) {
        const [key, text] = generatorFile(dir, e);
        data[key] = text;
      }
      for (const e of (g.envs ?? []) as string[]) Object.assign(data, envFile(readK8s(join(dir, e))));
      const enc = kind === "Secret" ? (s: string) => Buffer.from(s).toString("base64") : (s: string) => s;
      objects.push({
        apiVersion: "v1",
        kind,
        metadata: { name: g.name },
        data: Object.fromEntries(Object.entries(data).map(([key, v]) => [key, enc(v)])),
        ...(kind === "Secret" ? { type: "Opaque" } : {}),
      });
      if (!g.options?.disableNameSuffixHash) hashed.push(g.name);
    }
  }
  return { objects, hashed };
}

/** A JSON pointer's parent and last key; `-` appends to an array. */
function pointer(root: Obj, path: string): [Obj, string] {
  const parts = path
    .split("/")
    .slice(1)
    .map((p) => p.replace(/~1/g, "/").replace(/~0/g, "~"));
  let at: Obj = root;
  for (const p of parts.slice(0, -1)) {
    assert.ok(at[p] !== undefined, `patch path ${path}: no ${p}`);
    at = at[p];
  }
  return [at, parts.at(-1)!];
}

function applyJsonPatch(obj: Obj, ops: Obj[]): void {
  for (const op of ops) {
    const [parent, key] = pointer(obj, op.path);
    if (op.op === "replace") {
      assert.ok(key in parent, `patch replace ${op.path}: nothing there`);
      parent[key] = structuredClone(op.value);
    } else if (op.op === "add") {
      if (Array.isArray(parent))
        parent.splice(key === "-" ? parent.length : Number(key), 0, structuredClone(op.value));
      else parent[key] = structuredClone(op.value);
    } else if (op.op === "remove") {
      if (Array.isArray(parent)) parent.splice(Number(key), 1);
      else delete parent[key];
    } else {
      assert.fail(`patch op ${op.op} is not emulated`);
    }
  }
}

function podSpec(o: Obj): Obj {
  return o.spec.template.spec;
}

/** `kustomize build DIR`, for the fields above. */
function build(dir: string): { objects: Obj[]; hashed: string[] } {
  const k = parse(readFileSync(join(dir, "kustomization.yaml"), "utf8"), YAML_11) as Obj;
  for (const key of Object.keys(k))
    assert.ok(KNOWN_KEYS.has(key), `${dir}: kustomization field ${key} is not emulated`);
  const objects: Obj[] = [];
  const hashed: string[] = [];
  for (const r of (k.resources ?? []) as string[]) {
    const path = join(dir, r);
    if (statSync(path).isDirectory()) {
      const sub = build(path);
      objects.push(...sub.objects);
      hashed.push(...sub.hashed);
    } else {
      for (const doc of parseAllDocuments(readFileSync(path, "utf8"), YAML_11)) {
        assert.equal(doc.errors.length, 0, `${path}: ${doc.errors.join("; ")}`);
        if (doc.contents !== null) objects.push(doc.toJS() as Obj);
      }
    }
  }
  const gen = generated(dir, k);
  objects.push(...gen.objects);
  hashed.push(...gen.hashed);
  for (const p of (k.patches ?? []) as Obj[]) {
    const targets = objects.filter((o) => o.kind === p.target.kind && o.metadata.name === p.target.name);
    assert.equal(targets.length, 1, `${dir}: patch target ${p.target.kind}/${p.target.name}`);
    applyJsonPatch(targets[0]!, parse(p.patch, YAML_11) as Obj[]);
  }
  for (const r of (k.replicas ?? []) as Obj[]) {
    const t = objects.filter((o) => o.kind === "Deployment" && o.metadata.name === r.name);
    assert.equal(t.length, 1, `${dir}: replicas for ${r.name}`);
    t[0]!.spec.replicas = r.count;
  }
  for (const img of (k.images ?? []) as Obj[]) {
    for (const o of objects.filter((x) => x.spec?.template?.spec)) {
      for (const c of podSpec(o).containers as Obj[]) {
        const [name, tag] = (c.image as string).split(":");
        if (name === img.name) c.image = `${img.newName ?? name}:${img.newTag ?? tag}`;
      }
    }
  }
  if (k.namespace) {
    for (const o of objects) {
      if (o.kind === "Namespace") assert.equal(o.metadata.name, k.namespace, `${dir}: the Namespace object`);
      else o.metadata.namespace = k.namespace;
    }
  }
  return { objects, hashed };
}

// ---------------------------------------------------------------------------------------------
// Unknown fields. The schemas' validators accept any extra field, which the API server refuses
// (kubectl apply validates strictly): a misspelt field is found here from the fields each type
// declares in the models' type declarations.

/** Each Kubernetes kind's declaration file in kubernetes-models. */
const DECLARATIONS: Record<string, string> = {
  Namespace: "kubernetes-models/v1/Namespace",
  ConfigMap: "kubernetes-models/v1/ConfigMap",
  Secret: "kubernetes-models/v1/Secret",
  Service: "kubernetes-models/v1/Service",
  Job: "kubernetes-models/batch/v1/Job",
  Deployment: "kubernetes-models/apps/v1/Deployment",
  NetworkPolicy: "kubernetes-models/networking.k8s.io/v1/NetworkPolicy",
};

interface Declared {
  /** Field name to the declaration file of its type (or of its elements), if it has fields. */
  fields: Map<string, string | undefined>;
}

const declared = new Map<string, Declared | undefined>();

/** The fields of the interface a `.d.ts` file declares, or undefined for a type without fields. */
function declaration(file: string): Declared | undefined {
  if (declared.has(file)) return declared.get(file);
  const lines = readFileSync(file, "utf8").split("\n");
  const imports = new Map<string, string>();
  for (const l of lines) {
    const m = /^import \{ (\w+) \} from "(.+)";$/.exec(l);
    if (!m) continue;
    const spec = m[2]!;
    imports.set(
      m[1]!,
      spec.startsWith(".") ? join(file, "..", `${spec}.d.ts`) : join(ROOT, "node_modules", `${spec}.d.ts`),
    );
  }
  const start = lines.findIndex((l) => /^export interface I\w+/.test(l));
  let out: Declared | undefined;
  if (start >= 0) {
    out = { fields: new Map() };
    for (const l of lines.slice(start + 1)) {
      if (l.startsWith("}")) break;
      const m = /^ {4}"([^"]+)"\??: (.*?);?$/.exec(l);
      if (!m) continue;
      const type = /^Array<(\w+)>$/.exec(m[2]!)?.[1] ?? m[2]!;
      out.fields.set(m[1]!, imports.get(type));
    }
  }
  declared.set(file, out);
  return out;
}

function unknownFields(value: unknown, file: string, path: string, found: string[]): void {
  if (Array.isArray(value)) {
    value.forEach((v, i) => {
      unknownFields(v, file, `${path}[${i}]`, found);
    });
    return;
  }
  const decl = declaration(file);
  if (!decl || value === null || typeof value !== "object") return;
  for (const [k, v] of Object.entries(value)) {
    if (!decl.fields.has(k)) found.push(`${path}.${k}`);
    else {
      const sub = decl.fields.get(k);
      if (sub) unknownFields(v, sub, `${path}.${k}`, found);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// What every build must hold.

const MODELS: Record<string, new (o: Obj) => { validate(): void }> = {
  Namespace,
  ConfigMap,
  Secret,
  Service,
  Job,
  Deployment,
  NetworkPolicy,
};

function one(objects: Obj[], kind: string, name?: string): Obj {
  const hits = objects.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
  assert.equal(hits.length, 1, `one ${kind}${name ? `/${name}` : ""}, found ${hits.length}`);
  return hits[0]!;
}

/** The value after `flag` in `args`, which must hold it once. */
function flag(args: string[], name: string): string {
  const at = args.indexOf(name);
  assert.ok(at >= 0 && at + 1 < args.length, `${name} missing from ${args.join(" ")}`);
  assert.equal(args.lastIndexOf(name), at, `${name} twice in ${args.join(" ")}`);
  return args[at + 1]!;
}

const matches = (selector: Record<string, string>, labels: Record<string, string>) =>
  Object.entries(selector).every(([k, v]) => labels[k] === v);

function decoded(secret: Obj, key: string): string {
  assert.ok(secret.data?.[key] !== undefined, `Secret ${secret.metadata.name} has no key ${key}`);
  return Buffer.from(secret.data[key], "base64").toString();
}

function checkBuild(label: string, objects: Obj[]): void {
  // Every object is a valid Kubernetes object of its kind.
  for (const o of objects) {
    const Model = MODELS[o.kind];
    assert.ok(Model, `${label}: no schema check for kind ${o.kind}`);
    assert.doesNotThrow(() => new Model(o).validate(), `${label}: ${o.kind}/${o.metadata?.name} is invalid`);
    const found: string[] = [];
    unknownFields(o, join(ROOT, "node_modules", `${DECLARATIONS[o.kind]}.d.ts`), o.kind, found);
    assert.deepEqual(
      found,
      [],
      `${label}: ${o.kind}/${o.metadata?.name} has fields Kubernetes does not know`,
    );
  }

  const ns = one(objects, "Namespace").metadata.name;
  for (const o of objects) {
    if (o.kind !== "Namespace") assert.equal(o.metadata.namespace, ns, `${label}: ${o.kind} namespace`);
  }
  const job = one(objects, "Job", "cicada-master");
  const svc = one(objects, "Service", "cicada-master");
  const workers = one(objects, "Deployment", "cicada-worker");
  const master = podSpec(job).containers[0] as Obj;
  const worker = podSpec(workers).containers[0] as Obj;
  assert.equal(podSpec(job).containers.length, 1);
  assert.equal(podSpec(workers).containers.length, 1);

  // Labels and selectors: the Service reaches the master only; the Deployment owns its pods.
  const masterLabels = job.spec.template.metadata.labels as Record<string, string>;
  const workerLabels = workers.spec.template.metadata.labels as Record<string, string>;
  assert.ok(matches(svc.spec.selector, masterLabels), `${label}: the Service selects the master`);
  assert.ok(!matches(svc.spec.selector, workerLabels), `${label}: the Service must not select workers`);
  assert.deepEqual(
    workers.spec.selector.matchLabels,
    workerLabels,
    `${label}: the Deployment selects its pods`,
  );
  assert.ok(
    !matches(workers.spec.selector.matchLabels, masterLabels),
    `${label}: worker selector takes the master`,
  );

  // The master's port: flag, container port, Service port and the workers' dial all agree.
  const margs = master.args as string[];
  const wargs = worker.args as string[];
  assert.equal(margs[0], "run");
  assert.ok(margs.includes("--master"), `${label}: the master runs --master`);
  assert.equal(
    flag(margs, "--master-bind-host"),
    "0.0.0.0",
    `${label}: the master must listen beyond loopback`,
  );
  const bindPort = Number(flag(margs, "--master-bind-port"));
  const mport = (master.ports as Obj[]).find((p) => p.containerPort === bindPort);
  assert.ok(mport, `${label}: no container port ${bindPort}`);
  const sport = (svc.spec.ports as Obj[]).find(
    (p) => p.targetPort === mport.name || p.targetPort === bindPort,
  );
  assert.ok(sport, `${label}: the Service does not forward to the master's port`);
  assert.equal(sport.port, 5557);
  assert.equal(wargs[0], "worker");
  const dial = flag(wargs, "--master-host");
  assert.ok(
    [svc.metadata.name, `${svc.metadata.name}.${ns}`, `${svc.metadata.name}.${ns}.svc`].includes(dial) ||
      dial === `${svc.metadata.name}.${ns}.svc.cluster.local`,
    `${label}: workers dial ${dial}, not the Service`,
  );
  assert.equal(Number(flag(wargs, "--master-port")), sport.port, `${label}: workers dial another port`);
  assert.equal(
    Number(flag(margs, "--expect-workers")),
    workers.spec.replicas,
    `${label}: --expect-workers must equal the workers' replicas`,
  );
  assert.equal(master.image, worker.image, `${label}: master and workers run one image`);

  // Only the workers reach the master's port.
  const policy = one(objects, "NetworkPolicy", "cicada-master");
  assert.ok(
    matches(policy.spec.podSelector.matchLabels, masterLabels),
    `${label}: the policy guards the master`,
  );
  assert.deepEqual(policy.spec.policyTypes, ["Ingress"]);
  for (const rule of policy.spec.ingress as Obj[]) {
    for (const from of rule.from as Obj[]) {
      assert.deepEqual(Object.keys(from), ["podSelector"], `${label}: the policy admits more than pods`);
      assert.ok(
        matches(from.podSelector.matchLabels, workerLabels),
        `${label}: the policy admits non-workers`,
      );
      assert.ok(!matches(from.podSelector.matchLabels, masterLabels));
    }
  }
  assert.ok(
    (policy.spec.ingress as Obj[]).some((r) => (r.ports as Obj[]).some((p) => p.port === bindPort)),
    `${label}: the policy keeps the workers off the master's port`,
  );

  // The loadfile: the master's argument names a file of the ConfigMap mounted where it runs.
  const loadfile = posix.resolve(master.workingDir ?? "/", margs[1]!);
  const mount = (master.volumeMounts as Obj[]).find((m) => loadfile.startsWith(`${m.mountPath}/`));
  assert.ok(mount, `${label}: nothing mounted at ${loadfile}`);
  const vol = (podSpec(job).volumes as Obj[]).find((v) => v.name === mount.name);
  assert.ok(vol?.configMap, `${label}: ${loadfile} is not from a ConfigMap`);
  const cm = one(objects, "ConfigMap", vol.configMap.name);
  const key = posix.relative(mount.mountPath, loadfile);
  assert.ok(typeof cm.data?.[key] === "string", `${label}: ConfigMap ${cm.metadata.name} has no ${key}`);
  assert.match(cm.data[key], /from "cicada-load"/, `${label}: the mounted file is not a loadfile`);

  // The token: both sides take CICADA_TOKEN from one Secret that holds it.
  const tokenOf = (c: Obj) =>
    (c.env as Obj[]).find((e) => e.name === "CICADA_TOKEN")?.valueFrom?.secretKeyRef;
  const mref = tokenOf(master);
  assert.ok(mref, `${label}: the master gets no CICADA_TOKEN from a Secret`);
  assert.deepEqual(tokenOf(worker), mref, `${label}: workers take the token from elsewhere`);
  assert.ok(decoded(one(objects, "Secret", mref.name), mref.key).length > 0);

  for (const w of [job, workers]) {
    const spec = podSpec(w);
    const c = spec.containers[0] as Obj;
    const where = `${label}: ${w.kind}`;
    // Every Secret and ConfigMap reference resolves.
    for (const e of (c.env ?? []) as Obj[]) {
      const ref = e.valueFrom?.secretKeyRef;
      if (ref) decoded(one(objects, "Secret", ref.name), ref.key);
    }
    for (const v of (spec.volumes ?? []) as Obj[]) {
      const target = v.secret
        ? one(objects, "Secret", v.secret.secretName)
        : v.configMap
          ? one(objects, "ConfigMap", v.configMap.name)
          : undefined;
      for (const item of (v.secret ?? v.configMap)?.items ?? []) {
        assert.ok(
          target?.data?.[item.key] !== undefined,
          `${where}: volume ${v.name} has no key ${item.key}`,
        );
      }
    }
    for (const m of (c.volumeMounts ?? []) as Obj[]) {
      assert.ok(
        (spec.volumes as Obj[]).some((v) => v.name === m.name),
        `${where}: mount of missing volume ${m.name}`,
      );
    }
    // Secure by default: non-root, no privilege, read-only root with a writable /tmp.
    assert.equal(spec.securityContext.runAsNonRoot, true, where);
    assert.ok(spec.securityContext.runAsUser > 0, where);
    assert.equal(spec.securityContext.seccompProfile?.type, "RuntimeDefault", where);
    assert.equal(spec.automountServiceAccountToken, false, where);
    // Service links would set CICADA_MASTER_PORT=tcp://… and the like: CICADA_* names Cicada reads.
    assert.equal(spec.enableServiceLinks, false, where);
    assert.equal(c.securityContext.readOnlyRootFilesystem, true, where);
    assert.equal(c.securityContext.allowPrivilegeEscalation, false, where);
    assert.deepEqual(c.securityContext.capabilities.drop, ["ALL"], where);
    assert.equal(c.securityContext.capabilities.add, undefined, where);
    const tmp = (c.volumeMounts as Obj[]).find((m) => m.mountPath === "/tmp");
    assert.ok(tmp && !tmp.readOnly, `${where}: /tmp must be writable (loadfile bundles)`);
    assert.ok(
      (spec.volumes as Obj[]).find((v) => v.name === tmp.name)?.emptyDir,
      `${where}: /tmp is an emptyDir`,
    );
    for (const kind of ["requests", "limits"]) {
      for (const r of ["cpu", "memory"])
        assert.ok(c.resources?.[kind]?.[r], `${where}: resources.${kind}.${r}`);
    }
  }

  // A run is a result: never retried, and bounded in time whatever its flags say.
  assert.equal(job.spec.backoffLimit, 0);
  assert.equal(podSpec(job).restartPolicy, "Never");
  assert.ok(job.spec.activeDeadlineSeconds > 0);

  // Headless: the JSON result on stdout, for kubectl logs. Web UI: on the Service's port 8089,
  // behind a login, since it listens beyond loopback.
  if (margs.includes("--headless")) {
    assert.equal(flag(margs, "--json"), "-", `${label}: the headless master prints its result`);
  } else {
    const webPort = Number(flag(margs, "--web-port"));
    assert.equal(webPort, 8089);
    assert.equal(flag(margs, "--web-host"), "0.0.0.0");
    const cport = (master.ports as Obj[]).find((p) => p.containerPort === webPort);
    assert.ok(cport, `${label}: no container port ${webPort}`);
    const s = (svc.spec.ports as Obj[]).find((p) => p.port === webPort);
    assert.ok(
      s && (s.targetPort === cport.name || s.targetPort === webPort),
      `${label}: Service port ${webPort}`,
    );
    const login = (master.env as Obj[]).find((e) => e.name === "CICADA_WEB_LOGIN")?.valueFrom?.secretKeyRef;
    assert.ok(login, `${label}: the web UI beyond loopback needs a login`);
    assert.match(decoded(one(objects, "Secret", login.name), login.key), /^[^:]+:.+$/);
  }
}

/** Flags of `args` (words that start with -). */
const flagsOf = (args: string[]) => args.filter((a) => /^--?[a-zA-Z]/.test(a));

/** Flags `cicada CMD --help` lists. */
async function helpFlags(cmd: string): Promise<Set<string>> {
  const r = await runCli([cmd, "--help"]);
  assert.equal(r.code, 0, r.stderr);
  return new Set([...r.stdout.matchAll(/(?:^|[\s,])(--?[a-zA-Z][\w-]*)/g)].map((m) => m[1]!));
}

// ---------------------------------------------------------------------------------------------

describe("Kubernetes manifests", () => {
  const renders = new Map<string, { objects: Obj[]; hashed: string[] }>();
  before(() => {
    for (const b of BUILDS) renders.set(b, build(join(K8S, b)));
  });

  for (const b of BUILDS) {
    it(`${b || "deploy/kubernetes"}: valid objects whose names, labels, ports, secrets and mounts agree`, () => {
      checkBuild(b || "base", renders.get(b)!.objects);
    });
  }

  it("the overlays change what they say: N workers, the run's flags, the web UI, TLS", () => {
    const get = (b: string) => renders.get(b)!.objects;
    const margs = (b: string) => podSpec(one(get(b), "Job")).containers[0].args as string[];
    const wargs = (b: string) => podSpec(one(get(b), "Deployment")).containers[0].args as string[];
    assert.equal(one(get(""), "Deployment").spec.replicas, 2);
    assert.equal(one(get("overlays/example"), "Deployment").spec.replicas, 4);
    assert.match(
      podSpec(one(get("overlays/example"), "Job")).containers[0].image,
      /^registry\.example\.com\//,
    );
    assert.ok(!margs("overlays/web-ui").includes("--headless"));
    assert.equal(flag(margs("overlays/tls"), "--tls-cert"), "/etc/cicada/tls/tls.crt");
    assert.equal(flag(margs("overlays/tls"), "--tls-key"), "/etc/cicada/tls/tls.key");
    assert.equal(flag(wargs("overlays/tls"), "--tls-ca"), "/etc/cicada/tls/ca.crt");
    // Workers hold the CA only, never the master's key.
    const wvol = (podSpec(one(get("overlays/tls"), "Deployment")).volumes as Obj[]).find((v) => v.secret);
    assert.deepEqual(
      wvol?.secret.items.map((i: Obj) => i.key),
      ["ca.crt"],
    );
    for (const [path, mountOf] of [
      ["/etc/cicada/tls/tls.crt", "Job"],
      ["/etc/cicada/tls/ca.crt", "Deployment"],
    ] as const) {
      const spec = podSpec(one(get("overlays/tls"), mountOf));
      const m = (spec.containers[0].volumeMounts as Obj[]).find((x) => path.startsWith(`${x.mountPath}/`));
      const v = (spec.volumes as Obj[]).find((x) => x.name === m?.name);
      assert.ok(
        v?.secret?.items.some((i: Obj) => i.path === posix.basename(path)),
        `${mountOf}: ${path} is not mounted`,
      );
    }
  });

  it("a misspelt field is found", () => {
    const job = structuredClone(one(renders.get("")!.objects, "Job"));
    podSpec(job).containers[0].volumeMount = podSpec(job).containers[0].volumeMounts;
    podSpec(job).securityContext.runAsNonroot = true;
    const found: string[] = [];
    unknownFields(job, join(ROOT, "node_modules", `${DECLARATIONS.Job}.d.ts`), "Job", found);
    assert.deepEqual(found.sort(), [
      "Job.spec.template.spec.containers[0].volumeMount",
      "Job.spec.template.spec.securityContext.runAsNonroot",
    ]);
    // The fields around them are known, down to the volume mounts' own fields.
    assert.ok(
      declaration(join(ROOT, "node_modules", "kubernetes-models/v1/VolumeMount.d.ts"))?.fields.has(
        "readOnly",
      ),
    );
  });

  it("every flag in the manifests is one the cicada command takes", async () => {
    const run = await helpFlags("run");
    const worker = await helpFlags("worker");
    for (const [b, r] of renders) {
      const job = podSpec(one(r.objects, "Job")).containers[0].args as string[];
      const dep = podSpec(one(r.objects, "Deployment")).containers[0].args as string[];
      for (const [args, known, cmd] of [
        [job, run, "run"],
        [dep, worker, "worker"],
      ] as const) {
        for (const f of flagsOf(args)) {
          assert.ok(known.has(f), `${b || "base"}: cicada ${cmd} has no flag ${f}`);
        }
      }
    }
  });

  it("no secret is committed: the generators' secret files are ignored by git and not tracked", () => {
    const git = spawnSync("git", ["ls-files", "deploy/kubernetes"], { cwd: ROOT, encoding: "utf8" });
    assert.equal(git.status, 0, git.stderr);
    const tracked = new Set(git.stdout.split("\n").filter(Boolean));
    assert.ok(tracked.has("deploy/kubernetes/base/kustomization.yaml"), "git lists the manifests");
    for (const rel of Object.keys(UNCOMMITTED)) {
      assert.ok(!tracked.has(`deploy/kubernetes/${rel}`), `${rel} is committed`);
      const ignored = spawnSync("git", ["check-ignore", "-q", `deploy/kubernetes/${rel}`], { cwd: ROOT });
      assert.equal(ignored.status, 0, `${rel} is not ignored by git`);
    }
    // And kustomize needs each of them, so a build without them refuses to run.
    const sources = new Set<string>();
    for (const b of [...BUILDS, "base"]) {
      const dir = join(K8S, b);
      const k = parse(readFileSync(join(dir, "kustomization.yaml"), "utf8"), YAML_11) as Obj;
      for (const g of (k.secretGenerator ?? []) as Obj[]) {
        for (const f of [...(g.files ?? []), ...(g.envs ?? [])] as string[]) {
          sources.add(
            relative(K8S, join(dir, f.split("=").at(-1)!))
              .split("\\")
              .join("/"),
          );
        }
      }
    }
    assert.deepEqual([...sources].sort(), Object.keys(UNCOMMITTED).sort());
  });

  describe("kubectl's own render", () => {
    const kubectl = spawnSync("kubectl", ["version", "--client"], { encoding: "utf8" }).status === 0;
    let copy = "";
    before(() => {
      if (!kubectl) return;
      copy = mkdtempSync(join(tmpdir(), "cicada-k8s-"));
      cpSync(K8S, copy, { recursive: true });
      for (const [rel, text] of Object.entries(UNCOMMITTED)) writeFileSync(join(copy, rel), text);
    });
    after(() => {
      if (copy) rmSync(copy, { recursive: true, force: true });
    });

    for (const b of BUILDS) {
      it(`${b || "deploy/kubernetes"}: kubectl kustomize renders what this test checks`, (t) => {
        if (!kubectl) return t.skip("kubectl is not installed");
        const r = spawnSync("kubectl", ["kustomize", join(copy, b)], { encoding: "utf8", timeout: 30_000 });
        assert.equal(r.status, 0, r.stderr);
        let text = r.stdout;
        // The content hash kustomize appends to generated names, and to every reference to them.
        for (const name of renders.get(b)!.hashed) {
          text = text.replace(new RegExp(`\\b${name}-[a-z0-9]{10}\\b`, "g"), name);
        }
        const theirs = parseAllDocuments(text, YAML_11).map((d) => d.toJS() as Obj);
        // kustomize folds long base64 over lines; the API server's decoder skips the newlines.
        for (const o of theirs.filter((x) => x.kind === "Secret")) {
          for (const k of Object.keys(o.data ?? {})) o.data[k] = o.data[k].replace(/\s+/g, "");
        }
        checkBuild(`kubectl ${b || "base"}`, theirs);
        const key = (o: Obj) => `${o.kind}/${o.metadata.name}`;
        const sort = (xs: Obj[]) => [...xs].sort((x, y) => key(x).localeCompare(key(y)));
        assert.deepEqual(sort(theirs), sort(renders.get(b)!.objects));
      });
    }
  });

  it("needs no file outside deploy/kubernetes", () => {
    for (const b of BUILDS) {
      const k = parse(readFileSync(join(K8S, b, "kustomization.yaml"), "utf8"), YAML_11) as Obj;
      for (const r of (k.resources ?? []) as string[]) {
        const abs = join(K8S, b, r);
        assert.ok(!relative(K8S, abs).startsWith(".."), `${b}: ${r} is outside deploy/kubernetes`);
        assert.ok(existsSync(abs), `${b}: ${r} does not exist`);
      }
    }
    // Every overlay in the repository is one of the builds above (a user's own may sit beside them).
    const git = spawnSync("git", ["ls-files", "deploy/kubernetes/overlays"], { cwd: ROOT, encoding: "utf8" });
    assert.equal(git.status, 0, git.stderr);
    const tracked = git.stdout.split("\n").filter((l) => l.endsWith("/kustomization.yaml"));
    assert.ok(tracked.length > 0, "git lists the overlays");
    for (const f of tracked) {
      const b = posix.dirname(f.slice("deploy/kubernetes/".length));
      assert.ok(BUILDS.includes(b), `${b} is not tested`);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// The image recipe.

/** Dockerfile instructions, continuation lines joined, comments dropped. */
function instructions(text: string): Array<{ op: string; arg: string }> {
  const out: Array<{ op: string; arg: string }> = [];
  let cur = "";
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line.startsWith("#") || (line === "" && cur === "")) continue;
    cur = cur ? `${cur} ${line.replace(/\\$/, "").trim()}` : line.replace(/\\$/, "").trim();
    if (line.endsWith("\\")) continue;
    const m = /^(\w+)\s+(.*)$/.exec(cur);
    assert.ok(m, `Dockerfile: cannot read ${cur}`);
    out.push({ op: m[1]!.toUpperCase(), arg: m[2]! });
    cur = "";
  }
  return out;
}

describe("Dockerfile", () => {
  const all = instructions(readFileSync(join(ROOT, "Dockerfile"), "utf8"));
  const stages = all.map((x, i) => ({ ...x, i })).filter((x) => x.op === "FROM");
  const final = all.slice(stages.at(-1)!.i);
  const args = Object.fromEntries(
    all
      .slice(0, stages[0]!.i)
      .filter((x) => x.op === "ARG")
      .map((x) => x.arg.split("=") as [string, string]),
  );

  it("runs cicada as a non-root user on a small Node image", () => {
    for (const s of stages) {
      // A stage starts from a small Node image, or from an earlier stage.
      assert.match(s.arg, /^(node:\$\{NODE_VERSION\}-(slim|alpine)\b|source-)/, `FROM ${s.arg}`);
    }
    assert.ok(Number(args.NODE_VERSION) >= 20, "Node 20 or later, as package.json's engines");
    const users = final.filter((x) => x.op === "USER");
    assert.equal(users.length, 1, "one USER in the final stage");
    const [uid] = users[0]!.arg.split(":");
    // Numeric, so that Kubernetes' runAsNonRoot can check it; and not root.
    assert.match(uid!, /^\d+$/);
    assert.notEqual(Number(uid), 0);
    const manifests = build(K8S).objects.filter((o) => o.spec?.template?.spec);
    for (const o of manifests) assert.equal(podSpec(o).securityContext.runAsUser, Number(uid), o.kind);
    const entry = final.filter((x) => x.op === "ENTRYPOINT");
    assert.equal(entry.length, 1);
    assert.deepEqual(JSON.parse(entry[0]!.arg), ["cicada"]);
  });

  it("installs the packed tarball by default, or the registry's package on request", () => {
    assert.equal(args.CICADA_SOURCE, "local");
    const names = stages.map((s) => /\bAS\s+(\S+)$/i.exec(s.arg)?.[1]);
    assert.ok(names.includes("source-local") && names.includes("source-registry"));
    assert.ok(stages.some((s) => /^source-\$\{CICADA_SOURCE\}\s+AS\s+source$/i.test(s.arg)));
    const local = all.slice(stages.find((s) => s.arg.endsWith("source-local"))!.i);
    assert.ok(
      local.some((x) => x.op === "RUN" && /\bnpm pack\b/.test(x.arg)),
      "source-local packs the package",
    );
    const registry = all.slice(stages.find((s) => s.arg.endsWith("source-registry"))!.i);
    const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { name: string };
    assert.ok(
      registry.some((x) => x.op === "RUN" && x.arg.includes(`${pkg.name}@`)),
      "installs the package by name",
    );
    assert.ok(final.some((x) => x.op === "RUN" && /npm install --global --omit=dev/.test(x.arg)));
  });

  it(".dockerignore keeps installed modules, builds and secrets out of the build context", () => {
    const ignored = readFileSync(join(ROOT, ".dockerignore"), "utf8")
      .split("\n")
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith("#"));
    for (const p of ["node_modules", "dist", ".git", "**/*.env", "**/*.key"]) {
      assert.ok(ignored.includes(p), `.dockerignore lacks ${p}`);
    }
  });
});
