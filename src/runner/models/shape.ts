// A LoadShape exported by the loadfile (like Locust's LoadTestShape): the loadfile's own code
// decides, tick by tick, and each tick picks its unit. `{users, spawnRate?, userClasses?}` asks
// for users alive (closed model), reached at spawnRate users a second (default: at once);
// `{rate}` asks for arrivals per second and `{burst}` for that many arrivals at once (open model).
// The run ends when tick() returns null (reason `shape`), or as failed if tick() throws.
import type { LoadShape, ShapeTick } from "../../api/shape.js";
import type { LoadModel, LoadStep } from "./model.js";

export class ShapeModel implements LoadModel {
  /** Users the shape has ramped to so far (fractional while spawning at a rate). */
  private users = 0;
  /** Seconds at the shape's latest tick. */
  private lastSec = 0;

  constructor(private readonly shape: LoadShape) {}

  tick(elapsedMs: number): LoadStep {
    const elapsed = elapsedMs / 1000;
    let r: ShapeTick | null;
    try {
      r = this.shape.tick(elapsed);
    } catch (err) {
      const why = (err as Error)?.message ?? err;
      return {
        kind: "fail",
        fatal: `load shape failed: ${why}`,
        notice: `the load shape's tick() threw: ${why}`,
      };
    }
    if (r === null) return { kind: "end", reason: "shape" };
    const dt = this.lastSec === 0 ? 0 : elapsed - this.lastSec;
    this.lastSec = elapsed;
    if ("users" in r) {
      const target = Math.max(0, Math.round(r.users));
      // Ticks come every 100 ms; the first one, or a late one, still moves a tick's worth.
      const step = r.spawnRate === undefined ? Number.POSITIVE_INFINITY : r.spawnRate * Math.max(dt, 0.1);
      const cur = this.users;
      this.users = cur < target ? Math.min(target, cur + step) : Math.max(target, cur - step);
      return {
        kind: "users",
        users: Math.floor(this.users),
        ...(r.userClasses ? { userClasses: r.userClasses } : {}),
        ramping: false,
      };
    }
    if ("rate" in r) {
      this.users = 0;
      return { kind: "rate", rate: Math.max(0, r.rate) };
    }
    if ("burst" in r && r.burst > 0) {
      this.users = 0;
      return { kind: "burst", count: Math.floor(r.burst) };
    }
    return { kind: "hold" };
  }
}
