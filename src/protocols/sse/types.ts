// The types of an SSE stream: its events, options, result, and how its tokens are counted.
/** One server-sent event. `event` and `id` are absent when the server did not send them. */
export interface SseEvent {
  event?: string;
  data: string;
  id?: string;
}

export interface SseOptions {
  /** Default GET, or POST when there is a body (`json` or `body`). */
  method?: string;
  /** Sent as JSON with `content-type: application/json`. */
  json?: unknown;
  body?: string | Uint8Array;
  headers?: Record<string, string>;
  /** Stat name; defaults to the URL's path. */
  name?: string;
  /** Seconds for the whole stream, from the request to its end. Default 300. */
  timeout?: number;
  /**
   * Counts tokens, which adds the ttft, itl and tokens_per_sec metrics: "openai" for OpenAI
   * chat-completions chunks, or a function of each event returning a number of tokens, their
   * text (whitespace-separated words are counted), a list of tokens, or null.
   */
  tokens?: TokenPreset | TokenCounter;
  /**
   * Counts the tokens of a text: the prompt's (input tokens) when the server sends no `usage`,
   * and the output's when neither `usage` nor `tokens` gives a count (the events' data, joined).
   */
  tokenizer?: (text: string) => number;
  /** Sees every event as it arrives; return "stop" to end the stream there (a success). */
  // biome-ignore lint/suspicious/noConfusingVoidType: callbacks that return nothing must type-check
  onEvent?: (event: SseEvent) => void | "stop";
}

export type SseEnd = "completed" | "error" | "timeout";

export interface SseResult {
  /** The response status; 0 when no response arrived. */
  status: number;
  /** True when the stream completed: `error` is null. */
  ok: boolean;
  events: SseEvent[];
  /** The tokens' text, concatenated, when tokens are counted. */
  text: string;
  tokens: number;
  /** From the request to the response head; null without a response. */
  ttfbMs: number | null;
  /** From the request to the first event; null without events. */
  ttfeMs: number | null;
  /** From the request to the first token; null without tokens. */
  ttftMs: number | null;
  /** From the request to the end of the stream (E2EL, for a completed one). */
  durationMs: number;
  /**
   * (E2EL − TTFT) / (output tokens − 1) of a completed stream with tokens counted; null with
   * fewer than 2 output tokens.
   */
  tpotMs: number | null;
  /** Output tokens of a completed stream with tokens counted (usage, counter or tokenizer); else null. */
  outputTokens: number | null;
  /** Prompt tokens, from the server's usage or the tokenizer; null without either. */
  inputTokens: number | null;
  end: SseEnd;
  /** Why the stream failed, as recorded; null when it completed. */
  error: string | null;
}

/**
 * What a token counter says about one event: a number of tokens, the text of the tokens (its
 * whitespace-separated words are counted), a list of tokens, or nothing.
 */
export type TokenCount = number | string | readonly string[] | null | undefined;

/** Reads the tokens an event carries. Throw to mark the event (and the stream) malformed. */
export type TokenCounter = (event: SseEvent) => TokenCount;

export type TokenPreset = "openai" | "ag-ui";

/** Where a stream's token counts came from, in that order of preference. */
export type TokenSource = "usage" | "preset" | "tokenizer";
