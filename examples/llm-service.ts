/**
 * Example loadfile for an LLM serving endpoint: OpenAI-compatible chat completions, streamed,
 * with time to first token, inter-token latency and the server's `usage` token counts. Each user
 * sends its next request as soon as the last one ends, so the number of users is the number of
 * requests in flight, and a run per level of users finds where the server stops scaling.
 *
 * Against the demo target (8 generations at once, a queue of 64 behind them):
 *
 *   npx cicada demo --serve --capacity 8
 *   npx cicada run examples/llm-service.ts --headless -H http://127.0.0.1:8000 -u 16 -t 30s
 *   npx cicada sweep examples/llm-service.ts --concurrency 1,4,8,16,32 --step-time 5s -H http://127.0.0.1:8000
 */
import { constant, HttpUser, task } from "cicada-load";

const SYSTEM = "You are a concise assistant for a support team. Answer in plain sentences.";
const CONTEXT =
  "Ticket 4121: the customer was charged twice for the annual plan after switching payment " +
  "method mid-cycle. Ticket 4122: export to CSV times out for workspaces with more than ten " +
  "thousand rows. Ticket 4123: a request for single sign-on with the customer's identity provider. ";
// Short and long prompts: the demo's time to first token grows with the prompt (its prefill).
const PROMPTS = [
  "What is the refund policy?",
  "Draft a reply to Alice about her delayed order.",
  `Summarise these tickets for the weekly report.\n${CONTEXT}`,
  `Which of these tickets are billing issues, and what should we answer?\n${CONTEXT.repeat(3)}`,
];
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(Math.random() * xs.length)]!;

export class ChatUser extends HttpUser {
  static override waitTime = constant(0);

  @task
  async chat() {
    await this.client.sse("/v1/chat/completions", {
      json: {
        model: "cicada-demo",
        stream: true,
        stream_options: { include_usage: true },
        max_tokens: 64,
        messages: [
          { role: "system", content: SYSTEM },
          { role: "user", content: pick(PROMPTS) },
        ],
      },
      tokens: "openai",
      timeout: 60,
    });
  }
}
