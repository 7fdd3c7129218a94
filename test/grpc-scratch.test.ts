import net from 'node:net';
import { once } from 'node:events';
import { it } from 'vitest';
import { sdep, startTestGateway } from './helpers/gateway.js';
it('garbage', async () => {
  const gw = await startTestGateway({ manifests: { 'a.yaml': sdep('iris', 'a', { predictors: [{ name: 'default' }] }) } });
  for (const junk of [Buffer.from('this is not an HTTP/2 frame at all\r\n\r\n'), Buffer.alloc(64, 0xff), Buffer.from('000004080000000000', 'hex')]) {
    const s = net.connect(gw.port, '127.0.0.1');
    s.on('error', () => undefined);
    await once(s, 'connect');
    s.write('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
    s.write(junk);
    let got = 0; s.on('data', (d) => got += d.length);
    const t0 = Date.now();
    await Promise.race([once(s, 'close'), new Promise((r) => setTimeout(r, 300))]);
    console.log('junk', junk.length, 'got', got, 'closed', s.destroyed, Date.now() - t0);
    s.destroy();
  }
  const s = net.connect(gw.port, '127.0.0.1');
  s.on('error', () => undefined);
  await once(s, 'connect');
  s.end('PRI * HTTP/2.0\r\n');
  const t0 = Date.now();
  await Promise.race([once(s, 'close'), new Promise((r) => setTimeout(r, 2000))]);
  console.log('short preface closed', s.destroyed, Date.now() - t0);
  s.destroy();
  await gw.stop();
});
