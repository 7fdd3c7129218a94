/**
 * The input of the routing core: a SeldonDeployment as a cluster (or a manifest file) serves it
 * (machinelearning.seldon.io v1 / v1alpha2 / v1alpha3, and the 0.x shapes).
 *
 * These are the CRD's shapes, not the gateway's: every field is optional because clusters and
 * hand-written manifests omit what they like, and unknown fields are tolerated and ignored.
 * `compile/deployment.ts` reads them; the route domain (what they become) is in `routing/types.ts`.
 */

export type Annotations = Record<string, string>;

export interface ObjectMeta {
  name?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  annotations?: Annotations;
  labels?: Record<string, string>;
}

export interface GraphEndpoint {
  type?: string;
  service_host?: string;
  service_port?: number;
  httpPort?: number;
  grpcPort?: number;
}

export interface PredictiveUnit {
  name?: string;
  type?: string;
  implementation?: string;
  modelUri?: string;
  endpoint?: GraphEndpoint;
  children?: PredictiveUnit[];
  [key: string]: unknown;
}

export interface ExplainerSpec {
  type?: string;
  modelUri?: string;
  endpoint?: GraphEndpoint;
  [key: string]: unknown;
}

export interface PredictorSpec {
  name?: string;
  graph?: PredictiveUnit;
  traffic?: number;
  shadow?: boolean;
  annotations?: Annotations;
  explainer?: ExplainerSpec;
  ssl?: { certSecretName?: string };
  replicas?: number;
  [key: string]: unknown;
}

export interface SeldonDeploymentSpec {
  name?: string;
  annotations?: Annotations;
  predictors?: PredictorSpec[];
  oauth_key?: string;
  oauth_secret?: string;
  protocol?: string;
  transport?: string;
  [key: string]: unknown;
}

export interface ServiceStatus {
  svcName?: string;
  httpEndpoint?: string;
  grpcEndpoint?: string;
  explainerFor?: string;
}

export interface SeldonDeploymentStatus {
  state?: string;
  serviceStatus?: Record<string, ServiceStatus>;
  [key: string]: unknown;
}

export interface SeldonDeployment {
  apiVersion?: string;
  kind?: string;
  metadata?: ObjectMeta;
  spec?: SeldonDeploymentSpec;
  status?: SeldonDeploymentStatus;
}
