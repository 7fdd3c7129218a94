/**
 * The ambassador Module's `server_name` (Envoy's `server_name` with `server_header_transformation:
 * OVERWRITE`, Emissary's setting): every answer's Server field is this name, whatever the model sent,
 * REST and gRPC alike. Without it the answers' fields go as they are and no answer pays for the feature
 * beyond one property check: the data plane marks an exchange (`RestResponse.serverName`) only when a
 * name is set, and the codecs rewrite a head only when marked.
 */
import type { OutgoingHttpHeader, OutgoingHttpHeaders } from 'node:http';

/** The name in force in one process: undefined until a Module sets one; replaced when the Module is read again. */
export class ServerName {
  constructor(public value: string | undefined) {}
}

const SERVER = 'server';

/** `headers` (a flat `[name, value, …]` list or an object) with every Server field dropped and `name` as the one Server field. */
export function withServer(headers: OutgoingHttpHeaders | readonly OutgoingHttpHeader[] | undefined, name: string): OutgoingHttpHeaders | string[] {
  if (headers === undefined) return [SERVER, name];
  if (Array.isArray(headers)) {
    const out: string[] = [];
    for (let i = 0; i < headers.length; i += 2) {
      const field = String(headers[i]);
      if (field.length !== SERVER.length || field.toLowerCase() !== SERVER) out.push(field, String(headers[i + 1]));
    }
    out.push(SERVER, name);
    return out;
  }
  const out: OutgoingHttpHeaders = {};
  for (const field of Object.keys(headers)) if (field.toLowerCase() !== SERVER) out[field] = (headers as OutgoingHttpHeaders)[field];
  out[SERVER] = name;
  return out;
}
