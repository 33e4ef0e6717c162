import { useState } from "preact/hooks";
import { post, type StartRequest, type UiState } from "./api";

interface Fields {
  open: boolean;
  users: string;
  spawnRate: string;
  rate: string;
  maxUsers: string;
  host: string;
  runTime: string;
  stages: string;
  shape: string;
  classes: Set<string>;
  tags: Set<string>;
  excludeTags: Set<string>;
}

const str = (v: unknown) => (typeof v === "number" || typeof v === "string" ? String(v) : "");
const strings = (v: unknown) => (Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : []);

/**
 * The form starts from the server's defaults, then from the last test's settings where they
 * read as start-request fields, so "New test" repeats the last one unless told otherwise.
 */
function initial(state: UiState): Fields {
  const d: Record<string, unknown> = { ...state.defaults };
  const last = state.run?.config ?? {};
  for (const [k, v] of Object.entries(last)) if (k in d && v !== undefined) d[k] = v;
  // A run's settings may hold the run time in seconds, as the engine reads it.
  if (!("runTime" in last) && typeof last.runTimeSec === "number" && last.runTimeSec > 0)
    d.runTime = `${last.runTimeSec}s`;
  const rate = typeof d.rate === "number" && d.rate > 0 ? d.rate : null;
  const classes = (state.classes ?? []).map((c) => c.name);
  const picked = strings(d.userClasses).filter((c) => classes.includes(c));
  return {
    open: rate !== null,
    users: str(d.users),
    spawnRate: str(d.spawnRate),
    rate: str(rate),
    maxUsers: str(d.maxUsers),
    host: str(d.host),
    runTime: str(d.runTime),
    stages: str(d.stages),
    shape: str(d.shape),
    classes: new Set(picked.length > 0 ? picked : classes),
    tags: new Set(strings(d.tags)),
    excludeTags: new Set(strings(d.excludeTags)),
  };
}

/** A blank box means "the default"; anything else goes to the server as typed, for it to judge. */
function num(v: string): number | undefined {
  const t = v.trim();
  return t === "" ? undefined : Number(t);
}
const text = (v: string) => (v.trim() === "" ? null : v.trim());

function request(f: Fields, state: UiState): StartRequest {
  const body: StartRequest = {
    host: text(f.host) ?? undefined,
    // Sent even when empty: a blank run time means "until stopped", not "the default".
    runTime: text(f.runTime),
    stages: text(f.stages),
    shape: text(f.shape),
    tags: [...f.tags],
    excludeTags: [...f.excludeTags],
  };
  if ((state.classes ?? []).length > 0) body.userClasses = [...f.classes];
  if (f.open) {
    body.rate = num(f.rate);
    body.maxUsers = num(f.maxUsers) ?? null;
  } else {
    body.rate = null;
    body.users = num(f.users);
    body.spawnRate = num(f.spawnRate);
  }
  return body;
}

function Chips(props: { name: string; all: string[]; on: Set<string>; toggle: (t: string) => void }) {
  return (
    <div class="chips" data-chips={props.name}>
      {props.all.map((t) => (
        <button
          key={t}
          type="button"
          class={props.on.has(t) ? "chip on" : "chip"}
          aria-pressed={props.on.has(t)}
          data-tag={t}
          onClick={() => props.toggle(t)}
        >
          {t}
        </button>
      ))}
    </div>
  );
}

export function StartForm({ state, onCancel }: { state: UiState; onCancel?: () => void }) {
  const [f, setF] = useState(() => initial(state));
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const set = (patch: Partial<Fields>) => setF((old) => ({ ...old, ...patch }));
  const input = (key: keyof Fields) => (e: Event) => set({ [key]: (e.target as HTMLInputElement).value });
  const flip = (key: "classes" | "tags" | "excludeTags", v: string) => {
    const next = new Set(f[key]);
    if (next.has(v)) next.delete(v);
    else next.add(v);
    set({ [key]: next });
  };

  const classes = state.classes ?? [];
  const tags = state.tags ?? [];
  const shapes = state.shapes ?? [];
  const shaped = f.stages.trim() !== "" || f.shape !== "";

  const submit = async (e: Event) => {
    e.preventDefault();
    if (classes.length > 0 && f.classes.size === 0) {
      setError("Pick at least one user class.");
      return;
    }
    setBusy(true);
    setError(null);
    try {
      await post("start", request(f, state));
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <form id="start-form" class="card start" onSubmit={submit}>
      <div class="form-head">
        <h2>Start a new test</h2>
        <div class="segmented" role="radiogroup" aria-label="Load model">
          <label class={f.open ? "seg-opt" : "seg-opt on"}>
            <input
              type="radio"
              name="model"
              value="closed"
              checked={!f.open}
              onChange={() => set({ open: false })}
            />
            Users
          </label>
          <label class={f.open ? "seg-opt on" : "seg-opt"}>
            <input
              type="radio"
              name="model"
              value="open"
              checked={f.open}
              onChange={() => set({ open: true })}
            />
            Arrival rate
          </label>
        </div>
      </div>

      <div class="grid">
        {f.open ? (
          <>
            <label>
              Rate <small>iterations/s</small>
              <input
                name="rate"
                type="number"
                min="0"
                step="any"
                value={f.rate}
                onInput={input("rate")}
                required
              />
            </label>
            <label>
              Max users <small>optional</small>
              <input
                name="maxUsers"
                type="number"
                min="1"
                step="1"
                value={f.maxUsers}
                onInput={input("maxUsers")}
              />
            </label>
          </>
        ) : (
          <>
            <label>
              Users <small>peak</small>
              <input name="users" type="number" min="0" step="1" value={f.users} onInput={input("users")} />
            </label>
            <label>
              Spawn rate <small>users/s</small>
              <input
                name="spawnRate"
                type="number"
                min="0"
                step="any"
                value={f.spawnRate}
                onInput={input("spawnRate")}
              />
            </label>
          </>
        )}
        <label class="wide">
          Host
          <input
            name="host"
            type="text"
            placeholder="http://127.0.0.1:8000"
            value={f.host}
            onInput={input("host")}
          />
        </label>
        <label>
          Run time <small>e.g. 5m, blank = until stopped</small>
          <input
            name="runTime"
            type="text"
            placeholder="until stopped"
            value={f.runTime}
            onInput={input("runTime")}
          />
        </label>
        <label>
          Stages <small>duration:target, …</small>
          <input
            name="stages"
            type="text"
            placeholder="30s:100,2m:100,10s:0"
            value={f.stages}
            onInput={input("stages")}
          />
        </label>
        {shapes.length > 0 && (
          <label>
            Shape
            <select name="shape" value={f.shape} onChange={input("shape")}>
              <option value="">none</option>
              {shapes.map((s) => (
                <option key={s} value={s}>
                  {s}
                </option>
              ))}
            </select>
          </label>
        )}
      </div>
      {shaped && <p class="hint">Stages or a shape set the load over time, in place of the numbers above.</p>}

      {classes.length > 0 && (
        <fieldset class="classes">
          <legend>User classes</legend>
          {classes.map((c) => (
            <label key={c.name} class="check">
              <input
                type="checkbox"
                name="userClasses"
                value={c.name}
                checked={f.classes.has(c.name)}
                onChange={() => flip("classes", c.name)}
              />
              {c.name}
              <small>
                {c.fixedCount ? `${c.fixedCount} fixed` : `weight ${c.weight}`}
                {c.tags && c.tags.length > 0 ? ` · ${c.tags.join(", ")}` : ""}
              </small>
            </label>
          ))}
        </fieldset>
      )}

      {tags.length > 0 && (
        <div class="tag-pickers">
          <div>
            <span class="label">Only tags</span>
            <Chips name="tags" all={tags} on={f.tags} toggle={(t) => flip("tags", t)} />
          </div>
          <div>
            <span class="label">Exclude tags</span>
            <Chips name="excludeTags" all={tags} on={f.excludeTags} toggle={(t) => flip("excludeTags", t)} />
          </div>
        </div>
      )}

      {state.workers && (
        <p id="workers-connected" class={state.workers.connected === 0 ? "error" : "hint"}>
          {state.workers.connected === 0
            ? "No worker connected yet: start cicada worker on the load machines."
            : `${state.workers.connected} worker${state.workers.connected === 1 ? "" : "s"} connected: the test runs on ${state.workers.connected === 1 ? "it" : "them"}.`}
        </p>
      )}
      <div class="form-actions">
        <button id="start-button" class="primary" type="submit" disabled={busy}>
          {busy ? "Starting…" : "Start"}
        </button>
        {onCancel && (
          <button type="button" onClick={onCancel}>
            Cancel
          </button>
        )}
        {error && (
          <p id="start-error" class="error" role="alert">
            {error}
          </p>
        )}
      </div>
    </form>
  );
}
