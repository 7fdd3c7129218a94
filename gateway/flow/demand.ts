/** What one predictor under flow control asks of its model right now, in one process. */
export interface PredictorDemand {
  readonly namespace: string;
  readonly deployment: string;
  readonly predictor: string;
  /** Waiting for a slot, including requests held while the predictor has no ready endpoint. */
  readonly queued: number;
  /** Sent to the model and not yet answered. */
  readonly inflight: number;
}

/** A process's flow controller, as the demand reporters see it. */
export interface FlowDemandSource {
  /** Every predictor with a flow policy in the current table (at 0 too), with its counts now. */
  snapshot(): PredictorDemand[];
  /** `listener` runs synchronously whenever a count changes (often): consumers debounce. Returns an unsubscribe. */
  onChange(listener: () => void): () => void;
}

/** How many replicas of the gateway share the fixed limits (1 without Redis, or while it is away). */
export interface ReplicaCount {
  replicas(): number;
}

/** One count of the replicas, as the control plane sends it to every data plane. */
export interface ReplicaTally {
  /** Live replicas; 1 without Redis or while it is away. */
  readonly replicas: number;
  /** Live processes (their workers summed) as last counted; kept while Redis is away. */
  readonly processes: number;
}
