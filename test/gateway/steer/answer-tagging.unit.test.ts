/**
 * A bandit prediction's answer as a decorator of the answer an exchange or call writes
 * (rest/tagged-answer.ts, grpc/tagged-answer.ts), and gRPC's forwarded headers by REST's rule
 * (edge/http-headers.ts `forwardHeaderObject`): no sockets, the inner answer records what it got.
 */
import { describe, expect, it } from 'vitest';
import type { IncomingHttpHeaders } from 'node:http2';
import { forwardHeaderObject } from '../../../gateway/edge/http-headers.js';
import { TaggedGrpcAnswer, type CallAnswer } from '../../../gateway/grpc/tagged-answer.js';
import { TaggedJsonAnswer, taggable, type AnswerSink } from '../../../gateway/rest/tagged-answer.js';
import { ARM_TAG, DEFAULT_TAG_MAX_BYTES } from '../../../gateway/steer/answer-tag.js';
import { AnswerFields } from '../../../gateway/edge/answer-fields.js';

const TOKEN = '1.a.abc.def.ghi';

class Sink implements AnswerSink, CallAnswer {
  readonly got: string[] = [];
  heads: string[][] = [];
  head(status: number, fields: AnswerFields): boolean {
    this.got.push(`head ${status}`);
    this.heads.push(fields.list());
    return true;
  }
  data(chunk: Buffer): boolean {
    this.got.push(`data ${chunk.toString()}`);
    return true;
  }
  write(chunk: Buffer): void {
    this.got.push(`write ${chunk.length}`);
  }
  end(last?: Buffer): void {
    this.got.push(last === undefined ? 'end' : `end ${last.toString('latin1')}`);
  }
}

describe('a JSON answer carrying its token', () => {
  it('only a 2xx JSON answer, not encoded, not said to be over the limit, is tagged', () => {
    expect(taggable('POST', 200, AnswerFields.ofList(['content-type', 'application/json']))).toBe(true);
    expect(taggable('POST', 200, AnswerFields.ofList(['Content-Type', 'application/vnd.seldon+json; charset=utf-8']))).toBe(true);
    expect(taggable('HEAD', 200, AnswerFields.ofList(['content-type', 'application/json']))).toBe(false);
    expect(taggable('POST', 500, AnswerFields.ofList(['content-type', 'application/json']))).toBe(false);
    expect(taggable('POST', 200, AnswerFields.ofList(['content-type', 'text/plain']))).toBe(false);
    expect(taggable('POST', 200, AnswerFields.ofList(['content-type', 'application/json', 'content-encoding', 'gzip']))).toBe(false);
    expect(taggable('POST', 200, AnswerFields.ofList(['content-type', 'application/json', 'content-length', String(DEFAULT_TAG_MAX_BYTES + 1)]))).toBe(false);
  });

  it('holds the head and the body, then writes the answer tagged, with its new length', () => {
    const inner = new Sink();
    const a = new TaggedJsonAnswer(inner, TOKEN);
    a.head(200, AnswerFields.ofList(['content-type', 'application/json', 'content-length', '22']));
    a.data(Buffer.from('{"data":{"ndarray":'));
    a.data(Buffer.from('[1]}}'));
    expect(inner.got).toEqual([]);
    a.end();
    expect(inner.got[0]).toBe('head 200');
    const body = inner.got[1]!.slice('end '.length);
    expect(JSON.parse(body)).toEqual({ data: { ndarray: [1] }, meta: { tags: { [ARM_TAG]: TOKEN } } });
    expect(inner.heads[0]).toEqual(['content-type', 'application/json', 'content-length', String(Buffer.byteLength(body))]);
  });

  it('longer than the limit: passed on as it comes, untagged', () => {
    const inner = new Sink();
    const a = new TaggedJsonAnswer(inner, TOKEN);
    a.head(200, AnswerFields.ofList(['content-type', 'application/json']));
    const big = Buffer.alloc(DEFAULT_TAG_MAX_BYTES + 1, 'x');
    a.data(big);
    a.data(Buffer.from('tail'));
    a.end();
    expect(inner.got.map((g) => g.slice(0, 12))).toEqual(['head 200', `data ${'x'.repeat(7)}`, 'data tail', 'end']);
  });
});

describe('a gRPC answer carrying its token', () => {
  /** A gRPC frame of a SeldonMessage with no fields. */
  const EMPTY_MESSAGE = Buffer.from([0, 0, 0, 0, 0]);

  it('one whole message is written tagged at its end; an empty answer is ended as it is', () => {
    const inner = new Sink();
    const a = new TaggedGrpcAnswer(inner, TOKEN);
    a.write(EMPTY_MESSAGE);
    expect(inner.got).toEqual([]);
    a.end();
    expect(inner.got).toHaveLength(1);
    expect(inner.got[0]).toContain(TOKEN);
    const none = new Sink();
    new TaggedGrpcAnswer(none, TOKEN).end();
    expect(none.got).toEqual(['end']);
  });

  it('more than the limit: passed on as it comes', () => {
    const inner = new Sink();
    const a = new TaggedGrpcAnswer(inner, TOKEN);
    a.write(Buffer.alloc(DEFAULT_TAG_MAX_BYTES + 1));
    a.write(Buffer.alloc(3));
    a.end();
    expect(inner.got).toEqual([`write ${DEFAULT_TAG_MAX_BYTES + 1}`, 'write 3', 'end']);
  });
});

describe("gRPC's forwarded headers, by REST's rule", () => {
  it("from a peer that is not a trusted proxy: the client's own are replaced by its address and scheme", () => {
    const h: IncomingHttpHeaders = { 'x-forwarded-for': '1.2.3.4', 'x-forwarded-proto': 'https' };
    forwardHeaderObject(h, { address: '10.0.0.1', trusted: false });
    expect(h).toEqual({ 'x-forwarded-for': '10.0.0.1', 'x-forwarded-proto': 'http' });
  });

  it("a trusted proxy's are kept, its address appended; without an address, a forged list goes", () => {
    const h: IncomingHttpHeaders = { 'x-forwarded-for': '1.2.3.4', 'x-forwarded-proto': 'https' };
    forwardHeaderObject(h, { address: '10.0.0.1', trusted: true, proto: 'http' });
    expect(h).toEqual({ 'x-forwarded-for': '1.2.3.4, 10.0.0.1', 'x-forwarded-proto': 'https' });
    const none: IncomingHttpHeaders = { 'x-forwarded-for': '1.2.3.4' };
    forwardHeaderObject(none, { address: undefined, trusted: false, proto: 'https' });
    expect(none).toEqual({ 'x-forwarded-proto': 'https' });
  });
});
