/**
 * A small Prometheus registry (counters, gauges, histograms with labels)
 * rendered in the text exposition format 0.0.4, shared by tbot's and the auth
 * service's metrics.
 *
 * @module
 */

/** Label names and values. */
export type Labels = Record<string, string>;

/** The Prometheus metric types this registry renders. */
export type MetricKind = "counter" | "gauge" | "histogram";

interface Series {
  labels: Labels;
  value: number;
  buckets?: number[];
  sum?: number;
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

function labelText(labels: Labels, extra?: [string, string]): string {
  const all = Object.entries(labels);
  if (extra) all.push(extra);
  if (all.length === 0) return "";
  return `{${all.map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(",")}}`;
}

function num(v: number): string {
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  return Number.isNaN(v) ? "NaN" : String(v);
}

/** One metric family. */
export class Metric {
  /** Metric name. */
  readonly name: string;
  /** `# HELP` text. */
  readonly help: string;
  /** Metric type. */
  readonly kind: MetricKind;
  /** Histogram bucket upper bounds, ascending (empty otherwise). */
  readonly bucketBounds: readonly number[];
  #series = new Map<string, Series>();

  /**
   * Creates an empty family.
   *
   * @param name metric name
   * @param help help text
   * @param kind counter, gauge or histogram
   * @param buckets upper bounds (histograms only), ascending
   */
  constructor(name: string, help: string, kind: MetricKind, buckets: readonly number[] = []) {
    this.name = name;
    this.help = help;
    this.kind = kind;
    this.bucketBounds = buckets;
  }

  #get(labels: Labels): Series {
    const key = JSON.stringify(Object.entries(labels).sort());
    let s = this.#series.get(key);
    if (!s) {
      s = { labels: { ...labels }, value: 0 };
      if (this.kind === "histogram") {
        s.buckets = this.bucketBounds.map(() => 0);
        s.sum = 0;
      }
      this.#series.set(key, s);
    }
    return s;
  }

  /** Adds `by` (default 1) to a counter or gauge. */
  inc(labels: Labels = {}, by = 1): void {
    this.#get(labels).value += by;
  }

  /** Sets a gauge. */
  set(labels: Labels, value: number): void {
    this.#get(labels).value = value;
  }

  /** Records one histogram observation. */
  observe(labels: Labels, value: number): void {
    const s = this.#get(labels);
    s.value += 1;
    s.sum! += value;
    this.bucketBounds.forEach((b, i) => {
      if (value <= b) s.buckets![i] += 1;
    });
  }

  /** The current value of a counter or gauge series (0 if never touched). */
  value(labels: Labels = {}): number {
    return this.#get(labels).value;
  }

  /** Exposition text of this family. */
  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} ${this.kind}`];
    for (const s of this.#series.values()) {
      if (this.kind !== "histogram") {
        lines.push(`${this.name}${labelText(s.labels)} ${num(s.value)}`);
        continue;
      }
      this.bucketBounds.forEach((b, i) => {
        lines.push(`${this.name}_bucket${labelText(s.labels, ["le", num(b)])} ${s.buckets![i]}`);
      });
      lines.push(`${this.name}_bucket${labelText(s.labels, ["le", "+Inf"])} ${s.value}`);
      lines.push(`${this.name}_sum${labelText(s.labels)} ${num(s.sum!)}`);
      lines.push(`${this.name}_count${labelText(s.labels)} ${s.value}`);
    }
    return lines.join("\n") + "\n";
  }
}

/** Exponential bucket bounds: `start`, `start*factor`, … (`count` of them). */
export function exponentialBuckets(start: number, factor: number, count: number): number[] {
  return Array.from({ length: count }, (_, i) => Number((start * factor ** i).toPrecision(6)));
}
