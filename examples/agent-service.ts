/**
 * Example loadfile for an AI agent service, modelled on a real team's Locust suite:
 * synchronous invocations, token streaming, async jobs, protocol endpoints (MCP, A2A),
 * a mixed workload and bursts against a rate-limited route.
 *
 *   npx cicada run examples/agent-service.ts -H http://127.0.0.1:8000 -u 50 -r 10 -t 1m
 *   npx cicada run examples/agent-service.ts AgentInvocationUser -H ... -u 20
 */
import { between, constant, type HttpResponse, HttpUser, tag, task } from "cicada";

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

/** Server-sent token streams; the whole stream is one timed request. */
export class StreamingUser extends HttpUser {
  static override weight = 1;
  static override waitTime = between(1, 2);

  @task
  @tag("stream")
  async stream() {
    await this.client.post("/api/v1/agents/stream", {
      json: { message: pick(MESSAGES) },
      headers: { accept: "text/event-stream" },
      catchResponse: (res) => {
        if (!res.text().includes("data: [DONE]")) res.failure("stream ended without [DONE]");
      },
    });
  }
}

/** Submits jobs and polls them until they finish. */
export class AsyncJobUser extends HttpUser {
  static override weight = 1;
  static override waitTime = between(0.5, 1.5);
  private jobs: string[] = [];

  @task(3)
  @tag("jobs")
  async submit() {
    const res = await this.client.post("/api/v1/jobs", { json: { task: "index-documents" } });
    if (res.status === 202) this.jobs.push(res.json<{ job_id: string }>().job_id);
  }

  @task(2)
  @tag("jobs")
  async poll() {
    const id = this.jobs[0];
    if (!id) return;
    const res = await this.client.get(`/api/v1/jobs/${id}`, { name: "/api/v1/jobs/[id]" });
    if (res.ok && res.json<{ status: string }>().status === "completed") this.jobs.shift();
  }
}

const rpc = (method: string, params: unknown, id: number) => ({ jsonrpc: "2.0", id, method, params });

/** JSON-RPC protocol endpoints: MCP tools and A2A messages. */
export class ProtocolUser extends HttpUser {
  static override weight = 1;
  static override waitTime = between(0.5, 2);
  private sessionId = "";
  private seq = 0;

  override async onStart() {
    const res = await this.client.post("/api/v1/mcp", {
      json: rpc("initialize", { protocolVersion: "2025-06-18", clientInfo: { name: "cicada" } }, ++this.seq),
      name: "MCP initialize",
    });
    this.sessionId = res.header("mcp-session-id") ?? "";
  }

  private mcp(method: string, params: unknown): Promise<HttpResponse> {
    return this.client.post("/api/v1/mcp", {
      json: rpc(method, params, ++this.seq),
      headers: { "mcp-session-id": this.sessionId },
      name: `MCP ${method}`,
      catchResponse: (res) => {
        if (res.ok && res.json<{ error?: { message: string } }>().error) res.failure("JSON-RPC error");
      },
    });
  }

  @task(2)
  @tag("mcp")
  async listTools() {
    await this.mcp("tools/list", {});
  }

  @task(3)
  @tag("mcp")
  async callTool() {
    await this.mcp("tools/call", { name: "add", arguments: { a: 2, b: 3 } });
  }

  @task(1)
  @tag("a2a")
  async a2aMessage() {
    await this.client.post("/api/v1/a2a", {
      json: rpc(
        "message/send",
        { message: { role: "user", parts: [{ kind: "text", text: "hello" }] } },
        ++this.seq,
      ),
      name: "A2A message/send",
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
