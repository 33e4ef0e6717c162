import type { SseEvent, TokenCount, TokenCounter, TokenPreset } from "./types.js";

export type { TokenCount, TokenCounter, TokenPreset };

/** What one event meant for the stream, after the counter looked at it. */
export interface TokenStep {
  tokens: number;
  text: string;
  /** The stream's final event (OpenAI's `[DONE]`): the stream completed. */
  done: boolean;
  /** The event is a failure: the stream ends with this error. */
  error: string | null;
  /** The server's own counts (OpenAI's `usage`, sent in the last chunk). */
  usage?: { output?: number; input?: number };
}

const NOTHING: TokenStep = Object.freeze({ tokens: 0, text: "", done: false, error: null });
const DONE: TokenStep = Object.freeze({ tokens: 0, text: "", done: true, error: null });

/** A stream that must end with a final event knows when it was cut short. */
export interface TokenReader {
  step(event: SseEvent): TokenStep;
  /** True when the stream has to end with a final event ([DONE]) to count as complete. */
  readonly needsDone: boolean;
}

export function tokenReader(tokens: TokenPreset | TokenCounter | undefined): TokenReader | null {
  if (tokens === undefined) return null;
  if (tokens === "openai") return { step: openAiStep, needsDone: true };
  if (tokens === "ag-ui") return { step: agUiStep, needsDone: true };
  if (typeof tokens !== "function") throw new TypeError(`unknown tokens preset ${JSON.stringify(tokens)}`);
  return { step: (event) => customStep(tokens, event), needsDone: false };
}

/**
 * AG-UI agent runs: one token per non-empty TEXT_MESSAGE_CONTENT delta; RUN_FINISHED completes
 * the stream and RUN_ERROR fails it.
 */
function agUiStep(event: SseEvent): TokenStep {
  let e: unknown;
  try {
    e = JSON.parse(event.data);
  } catch {
    return { ...NOTHING, error: "SSE malformed: data is not JSON" };
  }
  if (typeof e !== "object" || e === null)
    return { ...NOTHING, error: "SSE malformed: data is not an object" };
  const x = e as { type?: unknown; delta?: unknown; message?: unknown };
  switch (x.type) {
    case "TEXT_MESSAGE_CONTENT":
      return typeof x.delta === "string" && x.delta !== ""
        ? { ...NOTHING, tokens: 1, text: x.delta }
        : NOTHING;
    case "RUN_FINISHED":
      return DONE;
    case "RUN_ERROR":
      return {
        ...NOTHING,
        error: `SSE error event: ${typeof x.message === "string" ? x.message : "RUN_ERROR"}`,
      };
    default:
      return NOTHING;
  }
}

/**
 * OpenAI chat-completions chunks (and the legacy completions' `choices[0].text`). One token per
 * non-empty content delta: servers send about one token per chunk, and counting chunks needs
 * no tokenizer, so every model and server is measured the same way.
 */
function openAiStep(event: SseEvent): TokenStep {
  const data = event.data.trim();
  if (data === "[DONE]") return DONE;
  let chunk: unknown;
  try {
    chunk = JSON.parse(data);
  } catch {
    return { ...NOTHING, error: "SSE malformed: data is not JSON" };
  }
  if (typeof chunk !== "object" || chunk === null)
    return { ...NOTHING, error: "SSE malformed: data is not an object" };
  const c = chunk as { error?: unknown; choices?: unknown; usage?: unknown };
  if (c.error !== undefined && c.error !== null)
    return { ...NOTHING, error: `SSE error event: ${errorText(c.error)}` };
  const usage = usageOf(c.usage);
  if (!Array.isArray(c.choices)) return usage ? { ...NOTHING, usage } : NOTHING;
  const first = c.choices[0] as { delta?: { content?: unknown }; text?: unknown } | undefined;
  const content = first?.delta?.content ?? first?.text;
  if (typeof content !== "string" || content === "") return usage ? { ...NOTHING, usage } : NOTHING;
  return { tokens: 1, text: content, done: false, error: null, ...(usage ? { usage } : {}) };
}

/** OpenAI's `usage` (completion_tokens, prompt_tokens); null when absent or not counts. */
function usageOf(u: unknown): TokenStep["usage"] | null {
  if (typeof u !== "object" || u === null) return null;
  const x = u as { completion_tokens?: unknown; prompt_tokens?: unknown };
  const count = (v: unknown) => (typeof v === "number" && Number.isSafeInteger(v) && v >= 0 ? v : undefined);
  const output = count(x.completion_tokens);
  const input = count(x.prompt_tokens);
  if (output === undefined && input === undefined) return null;
  return { ...(output !== undefined ? { output } : {}), ...(input !== undefined ? { input } : {}) };
}

function errorText(e: unknown): string {
  if (typeof e === "string") return e;
  const m = (e as { message?: unknown }).message;
  return typeof m === "string" ? m : JSON.stringify(e);
}

function customStep(fn: TokenCounter, event: SseEvent): TokenStep {
  let v: TokenCount;
  try {
    v = fn(event);
  } catch (err) {
    return { ...NOTHING, error: `SSE malformed: ${err instanceof Error ? err.message : String(err)}` };
  }
  if (v === null || v === undefined) return NOTHING;
  if (typeof v === "number") {
    const n = Number.isFinite(v) && v > 0 ? Math.floor(v) : 0;
    return n === 0 ? NOTHING : { tokens: n, text: "", done: false, error: null };
  }
  if (typeof v === "string") return { tokens: countWords(v), text: v, done: false, error: null };
  if (Array.isArray(v)) {
    const parts = v.filter((s) => typeof s === "string" && s !== "");
    return { tokens: parts.length, text: parts.join(""), done: false, error: null };
  }
  return NOTHING;
}

function countWords(s: string): number {
  let n = 0;
  for (const w of s.split(/\s+/)) if (w !== "") n++;
  return n;
}
