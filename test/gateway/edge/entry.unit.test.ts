/**
 * Who serves a request as it enters (gateway/edge/entry.ts): the proxy, the OAuth front end or the
 * gateway's own routes, by path on REST and by metadata on gRPC; no front end while it is off.
 */
import { describe, expect, it } from 'vitest';
import { frontEndServes, grpcFrontEndCall, restEntry } from '../../../gateway/edge/entry.js';

describe('entry', () => {
  it('REST: /seldon/ is the proxy’s, the old API paths the front end’s, three exact paths the gateway’s own', () => {
    const table: [string, string][] = [
      ['/seldon/ns/iris/api/v1.0/predictions', 'proxy'],
      ['/api/v1.0/predictions', 'front'],
      ['/api/v0.1/feedback', 'front'],
      ['/api/v1.0', 'proxy'],
      ['/oauth/token', 'own'],
      ['/oauth/token?grant_type=client_credentials', 'own'],
      ['/ping', 'own'],
      ['/ready', 'own'],
      ['/ready/more', 'proxy'],
      ['/oauth/other', 'proxy'],
      ['/pingx', 'proxy'],
    ];
    expect(table.map(([url]) => [url, restEntry(url, true)])).toEqual(table);
    // The front end off: every path is the proxy's (its 404 is the gateway's JSON).
    expect(table.map(([url]) => restEntry(url, false))).toEqual(table.map(() => 'proxy'));
    expect(restEntry(undefined, true)).toBe('proxy');
  });

  it('gRPC: oauth_token without seldon is a front-end call, only while the front end is on; it serves seldon.protos.Seldon', () => {
    expect(grpcFrontEndCall({ oauth_token: 't' }, true)).toBe(true);
    expect(grpcFrontEndCall({ oauth_token: 't' }, false)).toBe(false);
    expect(grpcFrontEndCall({ oauth_token: 't', seldon: 'iris' }, true)).toBe(false);
    expect(grpcFrontEndCall({ authorization: 'Bearer t' }, true)).toBe(false);
    expect(frontEndServes('/seldon.protos.Seldon/Predict')).toBe(true);
    expect(frontEndServes('/other.Service/Call')).toBe(false);
  });
});
