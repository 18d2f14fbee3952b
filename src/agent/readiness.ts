/**
 * Health of the agent's services, as `/readyz` reports it (Teleport's
 * `lib/tbot/readyz`): every service starts `initializing` and reports
 * `healthy` or `unhealthy` with an optional reason.
 *
 * @module
 */

/** A service's status. */
export type ServiceStatus = "initializing" | "healthy" | "unhealthy";

/** One service's entry in `/readyz`. */
export interface ServiceHealth {
  /** Status. */
  status: ServiceStatus;
  /** Why it is unhealthy (omitted when empty). */
  reason?: string;
  /** Time of the last report, RFC 3339, or null before the first. */
  updated_at: string | null;
}

/** The body of `/readyz`. */
export interface OverallHealth {
  /** `healthy` only if every service is. */
  status: "healthy" | "unhealthy";
  /** Per service. */
  services: Record<string, ServiceHealth>;
}

/** Reporter handed to one service. */
export interface HealthReporter {
  /** Reports success. */
  healthy(): void;
  /** Reports failure with a reason (must not contain secrets). */
  unhealthy(reason: string): void;
}

/** Registry of service health. */
export class ReadinessRegistry {
  #services = new Map<string, ServiceHealth>();
  #now: () => Date;

  /**
   * Creates an empty registry.
   *
   * @param now clock for `updated_at`
   */
  constructor(now: () => Date = () => new Date()) {
    this.#now = now;
  }

  /** Registers a service as `initializing` and returns its reporter. */
  register(name: string): HealthReporter {
    this.#services.set(name, { status: "initializing", updated_at: null });
    const set = (status: ServiceStatus, reason?: string) =>
      this.#services.set(name, {
        status,
        ...(reason ? { reason } : {}),
        updated_at: this.#now().toISOString(),
      });
    return { healthy: () => set("healthy"), unhealthy: (reason) => set("unhealthy", reason) };
  }

  /** One service's health, or undefined if unknown. */
  service(name: string): ServiceHealth | undefined {
    const s = this.#services.get(name);
    return s ? { ...s } : undefined;
  }

  /** All services and the overall status. */
  overall(): OverallHealth {
    const services = Object.fromEntries(
      [...this.#services].sort(([a], [b]) => a < b ? -1 : 1).map(([k, v]) => [k, { ...v }]),
    );
    const healthy = Object.values(services).every((s) => s.status === "healthy");
    return { status: healthy ? "healthy" : "unhealthy", services };
  }
}
