/**
 * An event's written forms (gateway/payload-log/event.ts) against the CloudEvents SDK for
 * JavaScript: the SDK reads the binary-mode headers back into the same event (percent-encoded
 * values included), a stream entry's fields give the event back, and a JSON line is the
 * CloudEvents JSON format the SDK reads in structured mode.
 */
import { HTTP, type CloudEvent } from 'cloudevents';
import { describe, expect, it } from 'vitest';
import { binaryHeaders, dataBytes, entryArgs, fixedAttributes, fromStreamFields, jsonLine, newEvent, streamFields, type EventHead } from '../../../gateway/payload-log/event.js';

const head: EventHead = { requestId: 'puid "quoted" 100% é', modelId: 'clf', service: 'iris', namespace: 'ml', endpoint: 'main', protocol: 'seldon' };

function viaSdk(headers: string[], body: Buffer): CloudEvent<unknown> {
  const h: Record<string, string> = {};
  for (let i = 0; i < headers.length; i += 2) h[headers[i]!] = headers[i + 1]!;
  return HTTP.toEvent({ headers: h, body }) as CloudEvent<unknown>;
}

describe('logged events, as the CloudEvents SDK reads them', () => {
  it('ce-ids are UUID-shaped and unique', () => {
    const ids = Array.from({ length: 1000 }, () => newEvent(head, 'decision', 'application/json', '{}').id);
    expect(new Set(ids).size).toBe(1000);
    for (const id of ids.slice(0, 5)) expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  it('binary mode: the SDK reads every attribute back, a value that needs it percent-encoded', () => {
    const e = newEvent(head, 'request', 'application/json', Buffer.from('{"a":1}'));
    const h = binaryHeaders(e);
    const got = viaSdk(h, dataBytes(e));
    expect(got).toMatchObject({
      specversion: '1.0',
      id: e.id,
      type: 'io.seldon.serving.inference.request',
      time: e.time,
      datacontenttype: 'application/json',
      modelid: 'clf',
      inferenceservicename: 'iris',
      namespace: 'ml',
      endpoint: 'main',
      protocol: 'seldon',
    });
    expect(h[h.indexOf('ce-requestid') + 1]).toBe('puid%20%22quoted%22%20100%25%20%C3%A9');
    expect(decodeURIComponent(String(got['requestid']))).toBe(head.requestId);
  });

  it('a cut body carries truncated and bodylength', () => {
    const e = newEvent(head, 'response', 'application/protobuf', Buffer.from([1, 2, 3]), 99);
    const got = viaSdk(binaryHeaders(e), dataBytes(e));
    expect([got['truncated'], got['bodylength'], got.datacontenttype]).toEqual(['true', '99', 'application/protobuf']);
  });

  it('a stream entry gives the event back whole: its flat fields, or its attributes as one JSON field', () => {
    const e = newEvent(head, 'decision', 'application/json', Buffer.from('{"x":[1]}'), 12);
    const fields = streamFields(e).map((f) => (typeof f === 'string' ? Buffer.from(f) : f));
    expect(fromStreamFields(fields)).toEqual(e);
    const [ce, data] = entryArgs(e);
    expect(fromStreamFields([Buffer.from('ce'), Buffer.from(ce), Buffer.from('data'), Buffer.from(data)])).toEqual(e);
    expect(fromStreamFields([Buffer.from('type'), Buffer.from('something.else')])).toBeUndefined();
  });

  it('attributes written once for a predictor (fixedAttributes) give the same entry as written per event', () => {
    const e = newEvent(head, 'request', 'application/x-thing', Buffer.from('{}'), 9);
    const once = newEvent({ ...head, fixed: fixedAttributes(head) }, 'request', 'application/x-thing', Buffer.from('{}'), 9);
    expect(entryArgs({ ...once, id: e.id, time: e.time })[0]).toBe(entryArgs(e)[0]);
    expect(JSON.parse(entryArgs(e)[0])).toMatchObject({ modelid: 'clf', inferenceservicename: 'iris', namespace: 'ml', endpoint: 'main', protocol: 'seldon', requestid: head.requestId });
  });

  it('a JSON line is the structured form: JSON data inline, any other as data_base64', () => {
    const json = newEvent(head, 'request', 'application/json', Buffer.from('{"data":{"ndarray":[[1.50]]}}'));
    const line = jsonLine(json);
    expect(line.endsWith('}\n')).toBe(true);
    expect(line).toContain('"data":{"data":{"ndarray":[[1.50]]}}');
    const sdk = HTTP.toEvent({ headers: { 'content-type': 'application/cloudevents+json' }, body: line }) as CloudEvent<unknown>;
    expect(sdk).toMatchObject({ id: json.id, type: 'io.seldon.serving.inference.request', requestid: head.requestId, data: { data: { ndarray: [[1.5]] } } });
    const bin = newEvent(head, 'response', 'application/protobuf', Buffer.from([0, 1, 2]));
    expect(JSON.parse(jsonLine(bin))).toMatchObject({ data_base64: 'AAEC', datacontenttype: 'application/protobuf' });
    // Cut JSON is not JSON: base64 too.
    const cut = newEvent(head, 'request', 'application/json', Buffer.from('{"data":'), 40);
    expect(JSON.parse(jsonLine(cut))).toMatchObject({ data_base64: Buffer.from('{"data":').toString('base64'), truncated: 'true', bodylength: '40' });
  });

  it('a body the gateway decoded or compressed names its coding in every form: requestencoding on a request, responseencoding on a response', () => {
    const req = newEvent(head, 'request', 'application/json', Buffer.from('{"a":1}'), undefined, 'gzip');
    const res = newEvent(head, 'response', 'application/json', Buffer.from('{"b":2}'), undefined, 'br');
    for (const [e, name, other] of [
      [req, 'requestencoding', 'responseencoding'],
      [res, 'responseencoding', 'requestencoding'],
    ] as const) {
      const sdk = viaSdk(binaryHeaders(e), dataBytes(e));
      expect(sdk[name]).toBe(e.encoding);
      expect(sdk[other]).toBeUndefined();
      expect(JSON.parse(entryArgs(e)[0])[name]).toBe(e.encoding);
      expect(JSON.parse(jsonLine(e))).toMatchObject({ [name]: e.encoding, data: JSON.parse(dataBytes(e).toString()) });
      const fields = streamFields(e).map((f) => (typeof f === 'string' ? Buffer.from(f) : f));
      expect(fromStreamFields(fields)).toEqual(e);
      const [ce, data] = entryArgs(e);
      expect(fromStreamFields([Buffer.from('ce'), Buffer.from(ce), Buffer.from('data'), Buffer.from(data)])).toEqual(e);
    }
    // A plain body has no such attribute.
    const plain = newEvent(head, 'request', 'application/json', Buffer.from('{}'));
    expect(binaryHeaders(plain).filter((h) => h.endsWith('encoding'))).toEqual([]);
    expect(entryArgs(plain)[0]).not.toContain('encoding');
  });
});
