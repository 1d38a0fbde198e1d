/**
 * The passthrough contract: whatever works against the fixture upstream directly must work the
 * same way through the gateway (ARCHITECTURE.md, "The hot path": the gateway must be
 * transparent). One suite, run against every target — the fixture itself over each transport
 * (proving the suite is not vacuous) and each gateway endpoint. One `it` per MCP feature.
 *
 * A target maps fixture names to what its clients see: the gateway's aggregate endpoint
 * namespaces tools and prompts as `<upstream>__<name>`; per-server endpoints and the fixture
 * use names unchanged. Resource URIs are never rewritten.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
// The server package's ProtocolError matches errors raised by the client too (brand-checked
// `instanceof`).
import { ProtocolError } from '@modelcontextprotocol/server';
import type { JSONRPCNotification, LoggingLevel } from '@modelcontextprotocol/client';
import {
  BLOB_BASE64,
  BLOB_MIME_TYPE,
  BLOB_URI,
  ECHO_META_KEY,
  FAIL_TEXT,
  FIXTURE_TOOLS,
  GREET_PROMPT,
  HELLO_TEXT,
  HELLO_URI,
  ITEM_IDS,
  ITEM_TEMPLATE,
  PNG_BASE64,
  THROW_ERROR_CODE,
  WAV_BASE64,
  dynamicToolText,
  greetText,
  itemText,
  itemUri,
} from './fixtures/upstream/catalog.ts';
import { CLIENT_ANSWERS } from './harness/client.ts';
import type { ConnectClientOptions, TestClient } from './harness/client.ts';

export type PassthroughConnectOptions = Pick<ConnectClientOptions, 'name' | 'sampling' | 'elicitation' | 'roots'>;

export interface PassthroughTarget {
  /** A new, initialized MCP session as an agent would open it. */
  connect(options?: PassthroughConnectOptions): Promise<TestClient>;
  /** The name under which the fixture's tool `name` is offered. */
  toolName(name: string): string;
  /** The name under which the fixture's prompt `name` is offered. */
  promptName(name: string): string;
  /** Stops whatever the target started. */
  close(): Promise<void>;
  /** True through the gateway: every result with content then carries `_meta["attest/receipt"]` (README.md, "Receipts"). */
  readonly receipts?: boolean;
}

/** The one key the gateway adds to results (its receipt); everything else must pass unchanged. */
export const RECEIPT_META_KEY = 'attest/receipt';

const TEST_TIMEOUT_MS = 20_000;
/** How long a notification may take to arrive before the test fails. */
const NOTIFY_WITHIN_MS = 5_000;

export function describePassthrough(title: string, startTarget: () => Promise<PassthroughTarget>): void {
  void describe(title, { timeout: 240_000 }, () => {
    let target: PassthroughTarget | undefined;
    let shared: TestClient | undefined;
    const clients: TestClient[] = [];

    const t = (): PassthroughTarget => target ?? assert.fail('target did not start');
    const c = (): TestClient => shared ?? assert.fail('shared client did not connect');
    /** A fresh session, for features that change session state (log level, tools, subscriptions). */
    const fresh = async (options?: PassthroughConnectOptions): Promise<TestClient> => {
      const client = await t().connect(options);
      clients.push(client);
      return client;
    };
    const call = (client: TestClient, tool: string, args: Record<string, unknown> = {}) => client.client.callTool({ name: t().toolName(tool), arguments: args });

    before(
      async () => {
        target = await startTarget();
        shared = await fresh();
      },
      { timeout: 90_000 },
    );

    after(
      async () => {
        await Promise.allSettled(clients.map((client) => client.close()));
        await target?.close();
      },
      { timeout: 30_000 },
    );

    const test = (name: string, fn: () => Promise<void>): void => {
      void it(name, { timeout: TEST_TIMEOUT_MS }, fn);
    };

    test('initialize: answers with serverInfo and the tools, resources, prompts, logging and completions capabilities', async () => {
      const info = c().client.getServerVersion();
      assert.ok(info !== undefined, 'no serverInfo');
      assert.equal(typeof info.name, 'string');
      assert.ok(info.name.length > 0, 'serverInfo.name is empty');
      assert.equal(typeof info.version, 'string');
      const caps = c().client.getServerCapabilities();
      assert.ok(caps !== undefined, 'no capabilities');
      for (const capability of ['tools', 'resources', 'prompts', 'logging', 'completions'] as const) {
        assert.ok(caps[capability] !== undefined, `capability ${capability} missing: ${JSON.stringify(caps)}`);
      }
    });

    test('tools/list: lists every fixture tool, with input schemas and the output schema of add', async () => {
      const { tools } = await c().client.listTools();
      const byName = new Map(tools.map((tool) => [tool.name, tool]));
      for (const name of FIXTURE_TOOLS) assert.ok(byName.has(t().toolName(name)), `tool ${t().toolName(name)} missing from ${[...byName.keys()].join(', ')}`);
      const draft = 'https://json-schema.org/draft/2020-12/schema';
      const echo = byName.get(t().toolName('echo'));
      assert.deepEqual(echo?.inputSchema, { type: 'object', properties: { text: { type: 'string' } }, required: ['text'], $schema: draft });
      const add = byName.get(t().toolName('add'));
      assert.deepEqual(add?.outputSchema, { type: 'object', properties: { sum: { type: 'number' } }, required: ['sum'], $schema: draft, additionalProperties: false });
    });

    test('tools/call: text content', async () => {
      const result = await call(c(), 'echo', { text: 'hello attest' });
      assert.deepEqual(result.content, [{ type: 'text', text: 'hello attest' }]);
      assert.notEqual(result.isError, true);
    });

    test('tools/call: structuredContent conforming to the output schema', async () => {
      const result = await call(c(), 'add', { a: 2, b: 3 });
      assert.deepEqual(result.structuredContent, { sum: 5 });
      assert.deepEqual(result.content, [{ type: 'text', text: JSON.stringify({ sum: 5 }) }]);
    });

    test('tools/call: image content', async () => {
      const result = await call(c(), 'image');
      assert.deepEqual(result.content, [{ type: 'image', data: PNG_BASE64, mimeType: 'image/png' }]);
    });

    test('tools/call: audio content', async () => {
      const result = await call(c(), 'audio');
      assert.deepEqual(result.content, [{ type: 'audio', data: WAV_BASE64, mimeType: 'audio/wav' }]);
    });

    test('tools/call: embedded resource content', async () => {
      const result = await call(c(), 'embedded');
      assert.deepEqual(result.content, [{ type: 'resource', resource: { uri: HELLO_URI, mimeType: 'text/plain', text: HELLO_TEXT } }]);
    });

    test('tools/call: resource_link content', async () => {
      const result = await call(c(), 'link');
      assert.deepEqual(result.content, [{ type: 'resource_link', uri: HELLO_URI, name: 'hello', mimeType: 'text/plain', description: 'The static hello resource' }]);
    });

    test('tools/call: a tool error arrives as a result with isError true', async () => {
      const result = await call(c(), 'fail');
      assert.equal(result.isError, true);
      assert.deepEqual(result.content, [{ type: 'text', text: FAIL_TEXT }]);
    });

    test('tools/call: a JSON-RPC error from the tool keeps its code, message and data', async () => {
      await assert.rejects(call(c(), 'throw', { message: 'boom from the fixture' }), (error: unknown) => {
        assert.ok(error instanceof ProtocolError, `expected a JSON-RPC error, got ${String(error)}`);
        assert.equal(error.code, THROW_ERROR_CODE);
        assert.match(error.message, /boom from the fixture/);
        assert.deepEqual(error.data, { tool: 'throw' });
        return true;
      });
    });

    test('tools/call: an unknown tool is a JSON-RPC invalid-params error', async () => {
      // MCP spec, server/tools "Error Handling": unknown tools are protocol errors, -32602.
      await assert.rejects(call(c(), 'no_such_tool'), (error: unknown) => {
        assert.ok(error instanceof ProtocolError, `expected a JSON-RPC error, got ${String(error)}`);
        assert.equal(error.code, -32602);
        return true;
      });
    });

    test('_meta: request _meta reaches the tool and result _meta reaches the client', async () => {
      const sent = { 'com.example/trace': 'abc-123', 'com.example/nested': { depth: 2, list: [1, 'two'] } };
      const result = await c().client.callTool({ name: t().toolName('echo'), arguments: { text: 'meta' }, _meta: sent });
      const received = result._meta?.[ECHO_META_KEY];
      assert.ok(isRecord(received), `result _meta lacks ${ECHO_META_KEY}: ${JSON.stringify(result._meta)}`);
      for (const [key, value] of Object.entries(sent)) assert.deepEqual(received[key], value, `request _meta key ${key}`);
    });

    test('progress: notifications for a request with a progressToken reach the client in order', async () => {
      const seen: { progress: number; total?: number }[] = [];
      const result = await c().client.callTool(
        { name: t().toolName('slow'), arguments: { steps: 3, delayMs: 20, tag: `progress-${randomUUID()}` } },
        { onprogress: ({ progress, total }) => seen.push({ progress, total }) },
      );
      assert.deepEqual(result.content, [{ type: 'text', text: 'completed 3 steps' }]);
      assert.deepEqual(seen, [
        { progress: 1, total: 3 },
        { progress: 2, total: 3 },
        { progress: 3, total: 3 },
      ]);
    });

    test('cancellation: aborting a call cancels it at the server', async () => {
      const tag = `cancel-${randomUUID()}`;
      const abort = new AbortController();
      let started: () => void = () => undefined;
      const firstProgress = new Promise<void>((resolve) => {
        started = resolve;
      });
      const pending = c().client.callTool(
        { name: t().toolName('slow'), arguments: { steps: 200, delayMs: 50, tag } },
        { signal: abort.signal, onprogress: () => started() },
      );
      await firstProgress;
      abort.abort('passthrough suite cancelled the call');
      await assert.rejects(pending);

      const deadline = Date.now() + NOTIFY_WITHIN_MS;
      let record: unknown;
      do {
        record = (await call(c(), 'was_cancelled', { tag })).structuredContent;
        if (isRecord(record) && record.cancelled === true) break;
        await sleep(50);
      } while (Date.now() < deadline);
      assert.ok(isRecord(record), 'was_cancelled returned no structuredContent');
      assert.equal(record.started, true, 'the server never saw the call');
      assert.equal(record.cancelled, true, `the server did not see the cancellation: ${JSON.stringify(record)}`);
      assert.equal(record.completed, false);
    });

    test('sampling: the server\'s sampling/createMessage reaches the client and its answer returns', async () => {
      const prompt = `What is ${randomUUID()}?`;
      const result = await call(c(), 'sample', { prompt });
      assert.deepEqual(result.structuredContent, { model: CLIENT_ANSWERS.samplingModel, role: 'assistant', text: `${CLIENT_ANSWERS.samplingPrefix}${prompt}` });
      const request = await c().inbox.waitForRequest('sampling/createMessage', (r) => JSON.stringify(r.params).includes(prompt), NOTIFY_WITHIN_MS);
      assert.deepEqual(request.params?.messages, [{ role: 'user', content: { type: 'text', text: prompt } }]);
    });

    test('elicitation: the server\'s elicitation/create reaches the client and its answer returns', async () => {
      const message = `Who are you, ${randomUUID()}?`;
      const result = await call(c(), 'elicit', { message });
      assert.deepEqual(result.structuredContent, { action: CLIENT_ANSWERS.elicitation.action, content: CLIENT_ANSWERS.elicitation.content });
      const request = await c().inbox.waitForRequest('elicitation/create', (r) => r.params?.message === message, NOTIFY_WITHIN_MS);
      assert.equal(request.params?.mode, 'form');
      assert.deepEqual(request.params?.requestedSchema, {
        type: 'object',
        properties: { name: { type: 'string', title: 'Name' }, confirm: { type: 'boolean', title: 'Confirm' } },
        required: ['name'],
      });
    });

    test('roots: the server\'s roots/list reaches the client and its answer returns', async () => {
      const result = await call(c(), 'roots');
      assert.deepEqual(result.structuredContent, { roots: CLIENT_ANSWERS.roots });
    });

    test('logging: logging/setLevel filters notifications/message by level', async () => {
      const client = await fresh();
      const loggedAt = async (level: LoggingLevel): Promise<string[]> => {
        const tag = `log-${randomUUID()}`;
        await client.client.setLoggingLevel(level);
        await call(client, 'log', { levels: ['debug', 'info', 'warning', 'error'], message: tag });
        await client.inbox.waitForNotification('notifications/message', (n) => logMessage(n) === tag && n.params?.level === 'error', NOTIFY_WITHIN_MS);
        return client.inbox
          .notificationsOf('notifications/message')
          .filter((n) => logMessage(n) === tag)
          .map((n) => String(n.params?.level));
      };
      assert.deepEqual(await loggedAt('warning'), ['warning', 'error']);
      assert.deepEqual(await loggedAt('debug'), ['debug', 'info', 'warning', 'error']);
      const one = client.inbox.notificationsOf('notifications/message').at(-1);
      assert.equal(one?.params?.logger, 'fixture');
    });

    test('list_changed: a tool added at run time is announced, listed and callable', async () => {
      const client = await fresh();
      const name = `dyn_${randomUUID().slice(0, 8)}`;
      await client.client.listTools();
      const before = client.inbox.notificationsOf('notifications/tools/list_changed').length;
      await call(client, 'add_tool', { name });
      await client.inbox.waitForNotification('notifications/tools/list_changed', () => client.inbox.notificationsOf('notifications/tools/list_changed').length > before, NOTIFY_WITHIN_MS);
      const { tools } = await client.client.listTools();
      assert.ok(
        tools.some((tool) => tool.name === t().toolName(name)),
        `new tool ${t().toolName(name)} not listed`,
      );
      const result = await call(client, name);
      assert.deepEqual(result.content, [{ type: 'text', text: dynamicToolText(name) }]);
    });

    test('resources/list: lists the static resources and the template\'s items', async () => {
      const { resources } = await c().client.listResources();
      const uris = resources.map((resource) => resource.uri);
      for (const uri of [HELLO_URI, BLOB_URI, ...ITEM_IDS.map(itemUri)]) assert.ok(uris.includes(uri), `resource ${uri} missing from ${uris.join(', ')}`);
      assert.equal(resources.find((resource) => resource.uri === HELLO_URI)?.mimeType, 'text/plain');
    });

    test('resources/read: text', async () => {
      const { contents } = await c().client.readResource({ uri: HELLO_URI });
      assert.deepEqual(contents, [{ uri: HELLO_URI, mimeType: 'text/plain', text: HELLO_TEXT }]);
    });

    test('resources/read: blob', async () => {
      const { contents } = await c().client.readResource({ uri: BLOB_URI });
      assert.deepEqual(contents, [{ uri: BLOB_URI, mimeType: BLOB_MIME_TYPE, blob: BLOB_BASE64 }]);
    });

    test('resources/read: an instance of a template', async () => {
      const { contents } = await c().client.readResource({ uri: itemUri('42') });
      assert.deepEqual(contents, [{ uri: itemUri('42'), mimeType: 'text/plain', text: itemText('42') }]);
    });

    test('resources/templates/list: lists the item template', async () => {
      const { resourceTemplates } = await c().client.listResourceTemplates();
      const template = resourceTemplates.find((candidate) => candidate.uriTemplate === ITEM_TEMPLATE);
      assert.ok(template !== undefined, `template ${ITEM_TEMPLATE} missing`);
      assert.equal(template.mimeType, 'text/plain');
    });

    test('resources/subscribe: an update to a subscribed resource reaches the client', async () => {
      const client = await fresh();
      assert.equal(client.client.getServerCapabilities()?.resources?.subscribe, true, 'resources.subscribe not advertised');
      await client.client.subscribeResource({ uri: HELLO_URI });
      const touched = await call(client, 'touch', { uri: HELLO_URI });
      assert.deepEqual(touched.structuredContent, { uri: HELLO_URI, notified: true });
      const updated = await client.inbox.waitForNotification('notifications/resources/updated', (n) => n.params?.uri === HELLO_URI, NOTIFY_WITHIN_MS);
      assert.equal(updated.params?.uri, HELLO_URI);
    });

    test('resources/unsubscribe: no update after unsubscribing', async () => {
      const client = await fresh();
      await client.client.subscribeResource({ uri: BLOB_URI });
      await client.client.unsubscribeResource({ uri: BLOB_URI });
      const touched = await call(client, 'touch', { uri: BLOB_URI });
      assert.deepEqual(touched.structuredContent, { uri: BLOB_URI, notified: false }, 'the unsubscribe did not reach the server');
      assert.deepEqual(
        client.inbox.notificationsOf('notifications/resources/updated').filter((n) => n.params?.uri === BLOB_URI),
        [],
      );
    });

    test('prompts/list: lists greet with its argument', async () => {
      const { prompts } = await c().client.listPrompts();
      const greet = prompts.find((prompt) => prompt.name === t().promptName(GREET_PROMPT));
      assert.ok(greet !== undefined, `prompt ${t().promptName(GREET_PROMPT)} missing from ${prompts.map((p) => p.name).join(', ')}`);
      assert.deepEqual(
        greet.arguments?.map((argument) => ({ name: argument.name, required: argument.required })),
        [{ name: 'name', required: true }],
      );
    });

    test('prompts/get: renders greet', async () => {
      const result = await c().client.getPrompt({ name: t().promptName(GREET_PROMPT), arguments: { name: 'Ada' } });
      assert.deepEqual(result.messages, [{ role: 'user', content: { type: 'text', text: greetText('Ada') } }]);
    });

    test('completion/complete: a prompt argument', async () => {
      const { completion } = await c().client.complete({ ref: { type: 'ref/prompt', name: t().promptName(GREET_PROMPT) }, argument: { name: 'name', value: 'Al' } });
      assert.deepEqual(completion.values, ['Alice', 'Albert']);
    });

    test('completion/complete: a resource template variable', async () => {
      const { completion } = await c().client.complete({ ref: { type: 'ref/resource', uri: ITEM_TEMPLATE }, argument: { name: 'id', value: '1' } });
      assert.deepEqual(completion.values, ['1', '10', '11', '12']);
    });

    test('ping, logging/setLevel, resources/subscribe and unsubscribe answer exactly {} (EmptyResult), receipt or not', async () => {
      const client = await fresh();
      assert.deepEqual(await client.client.ping(), {});
      assert.deepEqual(await client.client.setLoggingLevel('info'), {});
      assert.deepEqual(await client.client.subscribeResource({ uri: HELLO_URI }), {});
      assert.deepEqual(await client.client.unsubscribeResource({ uri: HELLO_URI }), {});
    });

    test('receipts: a result with content carries the receipt in _meta and nothing else is added', async () => {
      const result = await call(c(), 'add', { a: 1, b: 1 });
      const meta = result._meta;
      if (t().receipts !== true) {
        assert.equal(meta, undefined);
        return;
      }
      assert.deepEqual(Object.keys(meta ?? {}), [RECEIPT_META_KEY], 'only the receipt may be added');
      const receipt = meta?.[RECEIPT_META_KEY] as { callId?: unknown; request?: { position?: { index?: unknown } }; outcome?: { eventId?: unknown } } | undefined;
      assert.equal(typeof receipt?.callId, 'string', `no receipt: ${JSON.stringify(meta)}`);
      assert.equal(typeof receipt?.request?.position?.index, 'number');
      assert.equal(typeof receipt?.outcome?.eventId, 'string');
    });
  });
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function logMessage(notification: JSONRPCNotification): unknown {
  const data = notification.params?.data;
  return isRecord(data) ? data.message : undefined;
}
