/**
 * The deploy/local launchers as the fault tests and people use them: `start` when running says so
 * and succeeds, `status` tells running from stopped, and a stopped instance starts again on the
 * same address with its data.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { access } from 'node:fs/promises';
import { connect } from 'node:net';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createClient, ClickHouseLogLevel } from '@clickhouse/client';
import { Kafka, logLevel } from 'kafkajs';
import { startLocalService } from './index.ts';
import type { LauncherName, LocalService } from './index.ts';

const started: LocalService[] = [];

after(async () => {
  await Promise.all(started.map((service) => service.dispose()));
});

async function launch(name: LauncherName): Promise<LocalService> {
  const service = await startLocalService(name);
  started.push(service);
  return service;
}

interface ScriptResult {
  code: number;
  stdout: string;
  stderr: string;
}

function runScript(name: LauncherName, command: string, dir: string): Promise<ScriptResult> {
  const script = fileURLToPath(new URL(`../../deploy/local/${name}.sh`, import.meta.url));
  const dirVariable = name === 'kafka' ? 'ATTEST_KAFKA_DIR' : 'ATTEST_CLICKHOUSE_DIR';
  return new Promise((resolve) => {
    execFile('bash', [script, command], { env: { ...process.env, [dirVariable]: dir }, timeout: 120_000 }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : -1, stdout, stderr });
    });
  });
}

function refusesConnections(hostPort: string): Promise<boolean> {
  const url = new URL(hostPort.includes('://') ? hostPort : `tcp://${hostPort}`);
  return new Promise((resolve) => {
    const socket = connect({ host: url.hostname, port: Number(url.port) });
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(true));
  });
}

describe('deploy/local/kafka.sh', () => {
  it('is idempotent, reports its status, and restarts on the same address with its records', { timeout: 240_000 }, async () => {
    const service = await launch('kafka');
    assert.match(service.endpoint, /^127\.0\.0\.1:\d+$/);

    const again = await runScript('kafka', 'start', service.dir);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, /already running/);
    assert.equal(again.stdout.trim(), `ATTEST_KAFKA_BROKERS=${service.endpoint}`);
    assert.equal((await runScript('kafka', 'status', service.dir)).code, 0);
    assert.equal((await runScript('kafka', 'env', service.dir)).stdout.trim(), `ATTEST_KAFKA_BROKERS=${service.endpoint}`);

    const kafka = new Kafka({ clientId: 'attest-launcher-test', brokers: [service.endpoint], logLevel: logLevel.NOTHING, connectionTimeout: 5_000 });
    const topic = `attest-launcher-${randomUUID()}`;
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic, numPartitions: 1, replicationFactor: 1 }], waitForLeaders: true });
    await admin.disconnect();
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    const [ack] = await producer.send({ topic, acks: -1, messages: [{ key: 'session-a', value: 'before the restart' }] });
    await producer.disconnect();
    assert.equal(ack?.baseOffset, '0');

    await service.stop();
    assert.equal(await refusesConnections(service.endpoint), true, 'the broker port is closed after stop');
    const stopped = await runScript('kafka', 'status', service.dir);
    assert.equal(stopped.code, 3);
    assert.match(stopped.stderr, /stopped/);
    const noEnv = await runScript('kafka', 'env', service.dir);
    assert.equal(noEnv.code, 1);
    assert.match(noEnv.stderr, /not running/);

    await service.start();
    const reader = kafka.admin();
    await reader.connect();
    try {
      const offsets = await reader.fetchTopicOffsets(topic);
      assert.deepEqual(
        offsets.map(({ partition, low, high }) => ({ partition, low, high })),
        [{ partition: 0, low: '0', high: '1' }],
        'the acknowledged record survived the restart',
      );
    } finally {
      await reader.disconnect();
    }
  });
});

describe('deploy/local/clickhouse.sh', () => {
  it('is idempotent, reports its status, and restarts on the same address with its tables', { timeout: 120_000 }, async () => {
    const service = await launch('clickhouse');
    assert.match(service.endpoint, /^http:\/\/127\.0\.0\.1:\d+$/);
    const again = await runScript('clickhouse', 'start', service.dir);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, /already running/);
    assert.equal(again.stdout.trim(), `ATTEST_CLICKHOUSE_URL=${service.endpoint}`);

    const table = `attest_launcher_${randomUUID().replaceAll('-', '')}`;
    const client = createClient({ url: service.endpoint, log: { level: ClickHouseLogLevel.OFF } });
    try {
      await client.command({ query: `CREATE TABLE ${table} (id UInt32) ENGINE = MergeTree ORDER BY id` });
      await client.insert({ table, values: [{ id: 7 }], format: 'JSONEachRow' });

      await service.stop();
      assert.equal(await refusesConnections(service.endpoint), true, 'the HTTP port is closed after stop');
      assert.equal((await runScript('clickhouse', 'status', service.dir)).code, 3);

      await service.start();
      const rows = await (await client.query({ query: `SELECT id FROM ${table}`, format: 'JSONEachRow' })).json();
      assert.deepEqual(rows, [{ id: 7 }]);
    } finally {
      await client.close();
    }
  });

  it('deletes its instance directory on dispose', { timeout: 60_000 }, async () => {
    const service = await startLocalService('clickhouse');
    await service.dispose();
    await assert.rejects(access(service.dir), { code: 'ENOENT' });
    assert.equal(await refusesConnections(service.endpoint), true);
  });
});
