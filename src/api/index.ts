/**
 * Everything a loadfile imports from "cicada-load". Keep this surface small and typed.
 */

export { HttpResponse } from "../protocols/http/response.js";
export type { FetchInit, HttpSession, QueryValue, RequestOptions } from "../protocols/http/session.js";
export type { JobOptions, JobResult, JobState, JobUrl } from "../protocols/jobs.js";
export { jobState } from "../protocols/jobs.js";
export type {
  JsonRpcClient,
  JsonRpcOptions,
  RpcBatchEntry,
  RpcCallOptions,
} from "../protocols/jsonrpc/client.js";
export { jsonRpc } from "../protocols/jsonrpc/client.js";
export type { RpcError, RpcResult } from "../protocols/jsonrpc/exchange.js";
export type {
  McpCallToolResult,
  McpClient,
  McpClientOptions,
  McpInitializeResult,
  McpListToolsResult,
  McpTool,
} from "../protocols/mcp/client.js";
export { MCP_PROTOCOL_VERSION, mcpClient } from "../protocols/mcp/client.js";
export type { TokenCount, TokenCounter, TokenPreset } from "../protocols/sse/tokens.js";
export type { SseEnd, SseEvent, SseOptions, SseResult } from "../protocols/sse/types.js";
export type { WsClient } from "../protocols/ws/client.js";
export type {
  WsConnection,
  WsConnectOptions,
  WsData,
  WsMessage,
  WsNextOptions,
  WsRequestOptions,
} from "../protocols/ws/connection.js";
export type { CheckOptions, Checks } from "./checks.js";
export { check } from "./checks.js";
export type { CicadaConfig, ScenarioConfig, ThresholdConfig } from "./config.js";
export { defineConfig } from "./config.js";
export type { ScheduleRow } from "./context.js";
export type { Dataset, DatasetOptions, DatasetRow } from "./dataset.js";
export { dataset } from "./dataset.js";
export { InterruptTaskSet, RunStopped, StopUser } from "./errors.js";
export type { ShapeTick } from "./shape.js";
export { LoadShape, ramp, soak, spike, step } from "./shape.js";
export type { TaskFunction, TaskSpec } from "./tasks.js";
export { tag, task } from "./tasks.js";
export type { RequestRecord, UserClass } from "./user.js";
export { HttpUser, SequentialTaskSet, TaskSet, User } from "./user.js";
export type { WaitContext, WaitTime } from "./wait.js";
export { between, constant, constantPacing, constantThroughput } from "./wait.js";
export { WebSocketUser } from "./websocket.js";
