import { render } from "preact";
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { post, type StatsEvent, type UiState } from "./api";
import { Chart, COLORS, clock, fmt, line, timeAxis, timeX } from "./charts";
import { Downloads, Exceptions, Failures, Metrics, Verdicts, Workers } from "./panels";
import { StartForm } from "./StartForm";
import { StatsTable } from "./StatsTable";
import { columns, resourceCharts, SeriesStore } from "./series";
import "./style.css";

const RUNNING = new Set(["spawning", "running", "stopping"]);
const STOP_REASONS: Record<string, string> = { "run-time": "run time over", api: "stopped by hand" };

/** State and stats as the server pushes them, and whether the stream is up. */
function useServer() {
  const [state, setState] = useState<UiState | null>(null);
  const [stats, setStats] = useState<StatsEvent | null>(null);
  const [connected, setConnected] = useState(false);
  const store = useMemo(() => new SeriesStore(), []);

  useEffect(() => {
    let es: EventSource | null = null;
    let retry = 0;
    let closed = false;
    const connect = () => {
      es = new EventSource("api/events");
      es.onopen = () => setConnected(true);
      es.onerror = () => {
        setConnected(false);
        // EventSource retries a dropped stream by itself, but gives up for good on an HTTP error
        // (say, a restarting server's 502); keep trying then, gently.
        if (es?.readyState === EventSource.CLOSED && !closed) {
          es = null;
          retry = window.setTimeout(connect, 2000);
        }
      };
      es.addEventListener("state", (e) => setState(JSON.parse((e as MessageEvent<string>).data) as UiState));
      es.addEventListener("stats", (e) => {
        const ev = JSON.parse((e as MessageEvent<string>).data) as StatsEvent;
        store.add(ev);
        setStats(ev);
      });
    };
    connect();
    return () => {
      closed = true;
      clearTimeout(retry);
      es?.close();
    };
  }, [store]);

  return { state, stats, connected, store };
}

function openModel(state: UiState | null, stats: StatsEvent | null): boolean {
  if (stats?.rate != null) return true;
  const r = state?.run?.config?.rate;
  return typeof r === "number" && r > 0;
}

function Metric(props: {
  id: string;
  label: string;
  value: string;
  sub?: string | undefined;
  bad?: boolean;
}) {
  return (
    <div class={props.bad ? "metric bad" : "metric"} data-metric={props.id}>
      <span class="label">{props.label}</span>
      <span class="value">{props.value}</span>
      {props.sub && <span class="sub">{props.sub}</span>}
    </div>
  );
}

function EditLoad({ stats, open, disabled }: { stats: StatsEvent | null; open: boolean; disabled: boolean }) {
  const [users, setUsers] = useState("");
  const [spawnRate, setSpawnRate] = useState("");
  const [rate, setRate] = useState("");
  const [error, setError] = useState<string | null>(null);
  const runId = stats?.runId;
  const target = stats?.targetUsers ?? stats?.users;

  // Prefilled once per test with what it runs at; after that the boxes are the user's.
  const filledFor = useRef<number | undefined>(undefined);
  useEffect(() => {
    if (runId === undefined || filledFor.current === runId) return;
    filledFor.current = runId;
    setUsers(target != null ? String(target) : "");
    setRate(stats?.rate != null ? String(stats.rate) : "");
    setSpawnRate("");
    setError(null);
  }, [runId, target, stats?.rate]);

  const apply = async (e: Event) => {
    e.preventDefault();
    setError(null);
    const body: Record<string, number> = {};
    if (open) body.rate = Number(rate);
    else {
      body.users = Number(users);
      if (spawnRate.trim() !== "") body.spawnRate = Number(spawnRate);
    }
    try {
      await post("edit", body);
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
    }
  };

  return (
    <form class="edit" onSubmit={apply}>
      {open ? (
        <label>
          Rate
          <input
            id="edit-rate"
            type="number"
            min="0"
            step="any"
            value={rate}
            onInput={(e) => setRate(e.currentTarget.value)}
            required
          />
        </label>
      ) : (
        <>
          <label>
            Users
            <input
              id="edit-users"
              type="number"
              min="0"
              step="1"
              value={users}
              onInput={(e) => setUsers(e.currentTarget.value)}
              required
            />
          </label>
          <label>
            Spawn rate
            <input
              id="edit-spawn-rate"
              type="number"
              min="0"
              step="any"
              placeholder="same"
              value={spawnRate}
              onInput={(e) => setSpawnRate(e.currentTarget.value)}
            />
          </label>
        </>
      )}
      <button id="edit-apply" type="submit" disabled={disabled}>
        Apply
      </button>
      {error && (
        <span id="edit-error" class="error" role="alert">
          {error}
        </span>
      )}
    </form>
  );
}

async function act(path: string, setError: (e: string | null) => void) {
  setError(null);
  try {
    await post(path);
  } catch (err) {
    setError(err instanceof Error ? err.message : String(err));
  }
}

function Header(props: {
  state: UiState | null;
  stats: StatsEvent | null;
  connected: boolean;
  onNewTest: () => void;
  formOpen: boolean;
}) {
  const { state, stats, connected } = props;
  const [error, setError] = useState<string | null>(null);
  // A test's own status arrives with its stats; the state event covers the time before any.
  const status = state?.status ?? "connecting";
  const running = RUNNING.has(status);
  const open = openModel(state, stats);
  const totals = stats?.totals;
  const failPct = totals && totals.requests > 0 ? (100 * totals.failures) / totals.requests : 0;
  const target = stats?.targetUsers;
  const stopReason = state?.run?.stopReason;

  return (
    <header class="top">
      <div class="brand">
        <span class="logo">cicada</span>
        <span class="brand-sub">
          {state?.loadfile && <span class="loadfile">{state.loadfile}</span>}
          {running && state?.run?.config?.host && <span class="host">{String(state.run.config.host)}</span>}
        </span>
      </div>
      <div class="metrics">
        <div class="metric" data-metric="status">
          <span class="label">Status</span>
          <span class={`badge status-${status}`}>{status}</span>
          {status === "stopped" && stopReason && (
            <span class="sub" title={`stop reason: ${stopReason}`}>
              {STOP_REASONS[stopReason] ?? stopReason}
            </span>
          )}
        </div>
        {!connected && (
          <span class="badge disconnected" id="disconnected" title="The event stream dropped; reconnecting">
            disconnected
          </span>
        )}
        {stats && (
          <>
            <Metric
              id="users"
              label="Users"
              value={String(stats.users ?? 0)}
              sub={running && target != null && target !== stats.users ? `→ ${target}` : undefined}
            />
            {open && <Metric id="rate" label="Rate" value={`${fmt(stats.rate, 1)}/s`} />}
            {running ? (
              <Metric id="rps" label="RPS" value={fmt(stats.current?.rps ?? 0, 1)} />
            ) : (
              <Metric id="rps" label="Avg RPS" value={fmt(totals?.rps ?? 0, 1)} />
            )}
            <Metric id="failures" label="Failures" value={`${fmt(failPct, 1)}%`} bad={failPct > 0} />
            <Metric id="elapsed" label="Elapsed" value={clock(stats.elapsedSec ?? 0)} />
          </>
        )}
      </div>
      <div class="actions">
        {running && <EditLoad stats={stats} open={open} disabled={status === "stopping"} />}
        {running && (
          <button
            type="button"
            id="stop-button"
            class="danger"
            disabled={status === "stopping"}
            onClick={() => act("stop", setError)}
          >
            Stop
          </button>
        )}
        {running && (
          <button type="button" id="reset-button" onClick={() => act("reset", setError)}>
            Reset stats
          </button>
        )}
        {status === "stopped" && !props.formOpen && (
          <button type="button" id="new-test-button" class="primary" onClick={props.onNewTest}>
            New test
          </button>
        )}
        {error && (
          <span class="error" role="alert">
            {error}
          </span>
        )}
      </div>
    </header>
  );
}

function Charts({ stats, store }: { stats: StatsEvent; store: SeriesStore }) {
  const [endpoint, setEndpoint] = useState("");
  const keys = (stats.endpoints ?? []).map((e) => e.key);
  const open = stats.rate != null;
  // Recomputed on each event: the store has grown in place.
  const cols = columns(store, keys.includes(endpoint) ? endpoint : "", open);
  const one = endpoint !== "" && keys.includes(endpoint);

  return (
    <section class="card charts-card">
      <div class="section-head">
        <h2>Charts</h2>
        <label>
          Endpoint{" "}
          <select
            id="series-endpoint"
            value={one ? endpoint : ""}
            onChange={(e) => setEndpoint(e.currentTarget.value)}
          >
            <option value="">All (aggregated)</option>
            {keys.map((k) => (
              <option key={k} value={k}>
                {k}
              </option>
            ))}
          </select>
        </label>
      </div>
      <div class="charts">
        <Chart
          id="throughput"
          title={one ? "Requests and failures per second" : "RPS and failures/s"}
          layout="throughput"
          data={cols.throughput}
          options={() => ({
            scales: { x: { time: false }, y: { range: (_u, _min, max) => [0, Math.max(1, max)] } },
            series: [timeX, line("RPS", COLORS.rps, 1), line("Failures/s", COLORS.failures, 1)],
            axes: [timeAxis, { label: "per second" }],
          })}
        />
        <Chart
          id="latency"
          title="Response time percentiles (ms)"
          layout="latency"
          data={cols.latency}
          options={() => ({
            scales: { x: { time: false }, y: { range: (_u, _min, max) => [0, Math.max(1, max)] } },
            series: [timeX, line("p50", COLORS.p50), line("p95", COLORS.p95), line("p99", COLORS.p99)],
            axes: [timeAxis, { label: "ms" }],
          })}
        />
        <Chart
          id="users"
          title={open ? "Users and iterations/s" : "Users"}
          layout={open ? "open" : "closed"}
          data={cols.load}
          options={() => ({
            scales: {
              x: { time: false },
              users: { range: (_u, _min, max) => [0, Math.max(1, max)] },
              y: { range: (_u, _min, max) => [0, Math.max(1, max)] },
            },
            series: open
              ? [timeX, line("Users", COLORS.users, 0, "users"), line("Iterations/s", COLORS.iterations, 1)]
              : [timeX, line("Users", COLORS.users, 0, "users")],
            axes: open
              ? [timeAxis, { scale: "users", label: "users" }, { scale: "y", side: 1, grid: { show: false } }]
              : [timeAxis, { scale: "users", label: "users" }],
          })}
        />
        {resourceCharts(store).map((c) => (
          <Chart
            key={c.id}
            id={`res-${c.id}`}
            title={c.title}
            layout={c.labels.join("\u0000")}
            data={c.data}
            options={() => ({
              scales: { x: { time: false } },
              series: [
                timeX,
                ...c.labels.map((l, i) => ({ ...line(l, PALETTE[i % PALETTE.length]!, 1), spanGaps: true })),
              ],
              axes: [timeAxis, { label: c.axis }],
            })}
          />
        ))}
      </div>
    </section>
  );
}

/** Resource charts hold many series; each gets the next of these. */
const PALETTE = ["#2f6fde", "#e8890c", "#2f9e44", "#c9302c", "#6f42c1", "#17a2b8", "#8c6d1f", "#d63384"];

type Tab = "stats" | "metrics" | "failures" | "exceptions" | "verdicts" | "workers" | "downloads";

function Details({ stats, state }: { stats: StatsEvent; state: UiState | null }) {
  const [tab, setTab] = useState<Tab>("stats");
  const failing =
    (stats.thresholds ?? []).some((t) => !t.passed) || (stats.checks ?? []).some((c) => c.fails > 0);
  const tabs: Array<{ id: Tab; label: string; count?: number; bad?: boolean }> = [
    { id: "stats", label: "Statistics" },
    ...(stats.endpoints?.some((e) => e.metrics || e.counters)
      ? [{ id: "metrics" as const, label: "Streaming metrics" }]
      : []),
    {
      id: "failures",
      label: "Failures",
      count: stats.failures?.length ?? 0,
      bad: (stats.failures?.length ?? 0) > 0,
    },
    {
      id: "exceptions",
      label: "Exceptions",
      count: stats.exceptions?.length ?? 0,
      bad: (stats.exceptions?.length ?? 0) > 0,
    },
    { id: "verdicts", label: "Thresholds & checks", bad: failing },
    { id: "workers", label: "Workers", count: stats.workers?.length ?? 0 },
    { id: "downloads", label: "Downloads" },
  ];
  return (
    <section class="card">
      <div class="tabs" role="tablist">
        {tabs.map((t) => (
          <button
            key={t.id}
            type="button"
            role="tab"
            data-tab={t.id}
            aria-selected={tab === t.id}
            class={`${tab === t.id ? "on" : ""} ${t.bad ? "bad" : ""}`}
            onClick={() => setTab(t.id)}
          >
            {t.label}
            {t.count !== undefined && <span class="tab-count">{t.count}</span>}
          </button>
        ))}
      </div>
      <div class="tab-body">
        {tab === "stats" && <StatsTable stats={stats} />}
        {tab === "failures" && <Failures stats={stats} />}
        {tab === "exceptions" && <Exceptions stats={stats} />}
        {tab === "verdicts" && <Verdicts stats={stats} />}
        {tab === "workers" && <Workers stats={stats} />}
        {tab === "metrics" && <Metrics stats={stats} />}
        {tab === "downloads" && <Downloads ready={state?.run != null} />}
      </div>
    </section>
  );
}

function App() {
  const { state, stats, connected, store } = useServer();
  const [formOpen, setFormOpen] = useState(false);
  const status = state?.status;

  // A started test closes the form, whoever started it (this page, another tab, the API).
  useEffect(() => {
    if (status && RUNNING.has(status)) setFormOpen(false);
  }, [status]);

  const showForm = state !== null && (status === "ready" || (status === "stopped" && formOpen));
  return (
    <>
      <Header
        state={state}
        stats={stats}
        connected={connected}
        formOpen={showForm}
        onNewTest={() => setFormOpen(true)}
      />
      <main>
        {state === null && <p class="empty">Connecting to the server…</p>}
        {showForm && (
          <StartForm
            key={state.run?.id ?? 0}
            state={state}
            onCancel={status === "stopped" ? () => setFormOpen(false) : undefined}
          />
        )}
        {stats && state?.status !== "ready" && (
          <>
            <Charts stats={stats} store={store} />
            <Details stats={stats} state={state} />
          </>
        )}
      </main>
    </>
  );
}

render(<App />, document.getElementById("app")!);
