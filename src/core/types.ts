// Small types shared by several layers: defined here so that neither has to import the other.

/** As written in a loadfile or config: durations may be strings like "30s". */
export interface StageInput {
  duration: string | number;
  target: number;
}
