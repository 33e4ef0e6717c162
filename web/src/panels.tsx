import { REPORTS, type StatsEvent } from "./api";
import { fmt } from "./charts";

const int = (v: number) => v.toLocaleString("en-US");

function Empty({ text }: { text: string }) {
  return <p class="empty">{text}</p>;
}

export function Failures({ stats }: { stats: StatsEvent }) {
  const rows = stats.failures ?? [];
  if (rows.length === 0) return <Empty text="No failures." />;
  return (
    <div class="scroll">
      <table id="failures">
        <thead>
          <tr>
            <th>Method</th>
            <th>Name</th>
            <th>Error</th>
            <th class="num">Occurrences</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((f) => (
            <tr key={`${f.method} ${f.name} ${f.error}`}>
              <td>{f.method ?? ""}</td>
              <td>{f.name}</td>
              <td class="wrap">{f.error}</td>
              <td class="num">{int(f.occurrences)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

export function Exceptions({ stats }: { stats: StatsEvent }) {
  const rows = stats.exceptions ?? [];
  if (rows.length === 0) return <Empty text="No exceptions." />;
  return (
    <div id="exceptions">
      {rows.map((x) => (
        <details key={`${x.where} ${x.message}`} class="exception">
          <summary>
            <span class="count">{int(x.count)}×</span> <span class="message">{x.message}</span>
            {x.where && <span class="where"> in {x.where}</span>}
          </summary>
          <pre>{x.traceback || "(no stack trace)"}</pre>
        </details>
      ))}
    </div>
  );
}

/** A threshold's numbers as its expression writes them: rates in percent, latencies in ms. */
function thresholdNumber(metric: string | undefined, v: number | null | undefined): string {
  if (v === null || v === undefined) return "—";
  if (metric && /rate/i.test(metric)) return `${fmt(v * 100, 2)}%`;
  if (metric && /^(p\d+|avg|mean|min|max|med)/i.test(metric)) return `${fmt(v)} ms`;
  return fmt(v);
}

export function Verdicts({ stats }: { stats: StatsEvent }) {
  const thresholds = stats.thresholds ?? [];
  const checks = stats.checks ?? [];
  if (thresholds.length === 0 && checks.length === 0)
    return <Empty text="No thresholds or checks in this test." />;
  return (
    <div class="verdicts">
      {thresholds.length > 0 && (
        <section>
          <h3>Thresholds</h3>
          <table id="thresholds">
            <thead>
              <tr>
                <th>Threshold</th>
                <th>Scope</th>
                <th class="num">Value</th>
                <th class="num">Limit</th>
                <th>Result</th>
              </tr>
            </thead>
            <tbody>
              {thresholds.map((t) => (
                <tr key={`${t.scope} ${t.expr}`} data-threshold={t.expr} data-passed={String(t.passed)}>
                  <td>
                    <code>{t.expr}</code>
                  </td>
                  <td>{t.scope === "all" || !t.scope ? "all requests" : t.scope}</td>
                  <td class="num">{thresholdNumber(t.metric, t.value)}</td>
                  <td class="num">
                    {t.op ?? ""} {thresholdNumber(t.metric, t.target)}
                  </td>
                  <td class={t.passed ? "pass" : "fail"}>{t.passed ? "pass" : "fail"}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </section>
      )}
      {checks.length > 0 && (
        <section>
          <h3>Checks</h3>
          <table id="checks">
            <thead>
              <tr>
                <th>Check</th>
                <th class="num">Passes</th>
                <th class="num">Fails</th>
                <th class="num">Pass rate</th>
              </tr>
            </thead>
            <tbody>
              {checks.map((c) => {
                const total = c.passes + c.fails;
                const rate = c.rate ?? (total > 0 ? c.passes / total : 1);
                return (
                  <tr key={c.name} data-check={c.name}>
                    <td>{c.name}</td>
                    <td class="num">{int(c.passes)}</td>
                    <td class="num">{int(c.fails)}</td>
                    <td class={`num ${c.fails > 0 ? "fail" : "pass"}`}>{fmt(rate * 100, 1)}%</td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </section>
      )}
    </div>
  );
}

export function Workers({ stats }: { stats: StatsEvent }) {
  const rows = stats.workers ?? [];
  if (rows.length === 0) return <Empty text="No worker data." />;
  return (
    <table id="workers" class="workers">
      <thead>
        <tr>
          <th>Worker</th>
          <th class="num">Users</th>
          <th class="num" title="Event-loop utilization over the last second">
            CPU
          </th>
          <th class="num">Heap</th>
        </tr>
      </thead>
      <tbody>
        {rows.map((w) => {
          const cpu = w.cpu ?? null;
          return (
            <tr key={w.id} data-worker={w.id}>
              <td>
                {w.id}
                {w.lost && <span class="fail"> lost</span>}
              </td>
              <td class="num">{w.users ?? "—"}</td>
              <td class={`num ${cpu !== null && cpu > 0.9 ? "fail" : ""}`}>
                {cpu === null ? "—" : `${Math.round(cpu * 100)}%`}
                {cpu !== null && <span class="meter" style={{ width: `${Math.min(100, cpu * 100)}%` }} />}
              </td>
              <td class="num">{w.heapUsedMB == null ? "—" : `${fmt(w.heapUsedMB, 1)} MB`}</td>
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}

export function Downloads({ ready }: { ready: boolean }) {
  return (
    <div id="downloads">
      {!ready && <p class="empty">Nothing to download until a test has run.</p>}
      <ul class="downloads">
        {REPORTS.map((r) => (
          <li key={r.path}>
            <a
              href={r.path}
              download={r.file}
              data-report={r.path.replace(/^api\/report[./]?/, "") || "html"}
              aria-disabled={!ready}
              class={ready ? undefined : "disabled"}
            >
              {r.label}
            </a>
          </li>
        ))}
      </ul>
      <p class="note">
        The same files as <code>--json</code>, <code>--csv</code> and <code>--html</code> write, for the
        current or last test.
      </p>
    </div>
  );
}

/** Streaming and protocol metrics per endpoint: ttft, itl, rtt, ... and their counters. */
export function Metrics({ stats }: { stats: StatsEvent }) {
  const rows = (stats.endpoints ?? []).flatMap((e) =>
    Object.entries(e.metrics ?? {}).map(([k, m]) => ({ e, k, m })),
  );
  const fmt = (k: string, v: number) =>
    k.endsWith("_per_sec") || k === "polls" ? v.toFixed(2) : v.toFixed(2);
  return (
    <div>
      <table class="grid" id="metrics-table">
        <thead>
          <tr>
            <th>Type</th>
            <th>Name</th>
            <th>Metric</th>
            <th class="num">Count</th>
            <th class="num">p50</th>
            <th class="num">p95</th>
            <th class="num">p99</th>
            <th class="num">Max</th>
          </tr>
        </thead>
        <tbody>
          {rows.map(({ e, k, m }) => (
            <tr key={`${e.key} ${k}`} data-endpoint={e.key} data-metric={k}>
              <td>{e.type}</td>
              <td>{`${e.method ?? ""} ${e.name}`.trim()}</td>
              <td>{k}</td>
              <td class="num">{m.count}</td>
              <td class="num">{fmt(k, m.p50)}</td>
              <td class="num">{fmt(k, m.p95)}</td>
              <td class="num">{fmt(k, m.p99)}</td>
              <td class="num">{fmt(k, m.max)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <p class="note">Times in ms; rates per second.</p>
      <ul>
        {(stats.endpoints ?? [])
          .filter((e) => e.counters)
          .map((e) => (
            <li key={e.key}>
              <b>{e.key}</b>:{" "}
              {Object.entries(e.counters ?? {})
                .map(([k, n]) => `${k} ${n}`)
                .join(", ")}
            </li>
          ))}
      </ul>
    </div>
  );
}
