/**
 * Example loadfile for an AI agent service, modelled on a real team's Locust suite:
 * synchronous invocations, token streaming (SSE with LLM token metrics), async jobs, protocol
 * endpoints (MCP, A2A, AG-UI), a mixed workload and bursts against a rate-limited route.
 *
 *   npx cicada run examples/agent-service.ts -H http://127.0.0.1:8000 -u 50 -r 10 -t 1m
 *   npx cicada run examples/agent-service.ts AgentInvocationUser -H ... -u 20
 */
import { between, check, constant, HttpUser, jsonRpc, mcpClient, tag, task } from "cicada-load";

const MESSAGES = [
  "Summarise today's tickets",
  "What is the refund policy?",
  "Draft a reply to Alice",
  "Plan my week",
];
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(Math.random() * xs.length)]!;

/** Synchronous agent calls: 60 % plain, 40 % with conversation context. */
export class AgentInvocationUser extends HttpUser {
  static override weight = 3;
  static override waitTime = between(0.5, 2);

  @task(3)
  @tag("invoke")
  async simpleInvocation() {
    await this.client.post("/api/v1/agents/invoke", {
      json: { agent_id: "support", message: pick(MESSAGES) },
      name: "/api/v1/agents/invoke",
    });
  }

  @task(2)
  @tag("invoke")
  async invocationWithContext() {
    await this.client.post("/api/v1/agents/invoke", {
      json: { agent_id: "support", message: pick(MESSAGES), context: { user_tier: "pro", history: ["hi"] } },
      name: "/api/v1/agents/invoke [context]",
    });
  }
}

/**
 * Server-sent token streams. Each stream is one SSE request with time to first token,
 * inter-token latency and tokens per second: e.g. --threshold "SSE /v1/chat/completions: ttft p95<800".
 */
export class StreamingUser extends HttpUser {
  static override weight = 1;
  static override waitTime = between(1, 2);

  @task(3)
  @tag("stream")
  async chatCompletion() {
    await this.client.sse("/v1/chat/completions", {
      json: {
        model: "demo",
        stream: true,
        max_tokens: 24,
        messages: [{ role: "user", content: pick(MESSAGES) }],
      },
      tokens: "openai",
      timeout: 30,
    });
  }

  @task(1)
  @tag("stream")
  async agentStream() {
    await this.client.sse("/api/v1/agents/stream", {
      method: "POST",
      json: { message: pick(MESSAGES) },
      name: "/api/v1/agents/stream",
    });
  }
}

/** Submits jobs and follows each to its end: one JOB row per job, with submit latency and polls. */
export class AsyncJobUser extends HttpUser {
  static override weight = 1;
  static override waitTime = between(0.5, 1.5);

  @task
  @tag("jobs")
  async indexDocuments() {
    await this.client.job({
      name: "index-documents job",
      submit: { url: "/api/v1/jobs", json: { task: "index-documents" } },
      status: (j: { job_id: string }) => `/api/v1/jobs/${j.job_id}`,
      statusName: "/api/v1/jobs/[id]",
      poll: { interval: 0.25, timeout: 30 },
    });
  }
}

/** Agent protocols: MCP tools over streamable HTTP, A2A messages (JSON-RPC), AG-UI runs (SSE). */
export class ProtocolUser extends HttpUser {
  static override weight = 1;
  static override waitTime = between(0.5, 2);
  // The client exists once the user starts, not in its constructor.
  private mcp!: ReturnType<typeof mcpClient>;
  private a2a!: ReturnType<typeof jsonRpc>;

  override async onStart() {
    this.mcp = mcpClient(this.client, "/api/v1/mcp");
    this.a2a = jsonRpc(this.client, "/api/v1/a2a", { name: "A2A" });
    await this.mcp.initialize();
  }

  override async onStop() {
    await this.mcp.close();
  }

  @task(2)
  @tag("mcp")
  async listTools() {
    await this.mcp.listTools();
  }

  @task(3)
  @tag("mcp")
  async callTool() {
    const r = await this.mcp.callTool("add", { a: 2, b: 3 });
    check(r, { "add returns 5": (x) => JSON.stringify(x.result ?? "").includes("5") });
  }

  @task(1)
  @tag("a2a")
  async a2aMessage() {
    await this.a2a.call("message/send", {
      message: { role: "user", parts: [{ kind: "text", text: "hello" }] },
    });
  }

  @task(1)
  @tag("ag-ui")
  async agUiRun() {
    await this.client.sse("/api/v1/agui/run", {
      json: { threadId: `t${this.userId}`, messages: [{ role: "user", content: pick(MESSAGES) }] },
      tokens: "ag-ui",
      name: "AG-UI run",
    });
  }
}

/** The realistic mix: 50 % quick invocations, 20 % streams, 10 % jobs, 20 % health checks. */
export class MixedWorkloadUser extends HttpUser {
  static override weight = 2;
  static override waitTime = between(0.5, 2);

  @task(5)
  async quickInvoke() {
    await this.client.post("/api/v1/agents/invoke", {
      json: { message: pick(MESSAGES) },
      name: "/api/v1/agents/invoke",
    });
  }

  @task(2)
  async stream() {
    await this.client.get("/api/v1/agents/stream", {
      query: { message: "hi" },
      name: "/api/v1/agents/stream",
    });
  }

  @task(1)
  async job() {
    await this.client.post("/api/v1/jobs", { json: { task: "report" } });
  }

  @task(2)
  @tag("health")
  async health() {
    await this.client.get("/health");
  }
}

/**
 * Bursts against the rate-limited route. 429s are the expected answer under a burst, so
 * they count as successes here and are kept apart by name.
 */
export class BurstTrafficUser extends HttpUser {
  static override weight = 1;
  static override waitTime = constant(0.2);

  @task
  @tag("burst")
  async burst() {
    for (let i = 0; i < 5 && !this.stopping; i++) {
      await this.client.get("/api/v1/limited", {
        catchResponse: (res) => {
          if (res.status === 429) res.success();
        },
      });
    }
  }
}
