/**
 * The package's entry point, `import ... from "cicada-load"`: what loadfiles use (src/api), the
 * programmatic API (`run`, `sweep`, `benchmark`) and the errors it throws. Loadfiles themselves see only
 * src/api: the bundler gives them that module's names.
 */
export * from "./api/index.js";
export {
  CicadaError,
  ExitCode,
  type ExitCodeValue,
  Interrupted,
  TargetUnreachable,
  UsageError,
  WorkersUnreachable,
} from "./core/errors.js";
export * from "./embed/index.js";
