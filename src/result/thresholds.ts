// The verdict of one threshold, as the result carries it; evaluated by thresholds/.

/** A threshold's verdict, as it appears in the JSON result (`thresholds[]`). */
export interface ThresholdResult {
  expr: string;
  scope: string;
  metric: string;
  op: string;
  /** The target, in the metric's unit (ms, a fraction for rates, per second for rps). */
  target: number;
  /** The measured value in the same unit; null when nothing was measured in the scope. */
  value: number | null;
  passed: boolean;
  /** Why there is no value, e.g. "no requests matched". */
  note?: string;
  abortOnFail?: boolean;
}
