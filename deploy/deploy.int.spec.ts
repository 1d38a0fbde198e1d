/**
 * The deployment files, checked where no container engine and no cluster run:
 * - every YAML file under deploy/compose and deploy/helm parses;
 * - compose.yaml, interpolated as `docker compose` would, validates against the Compose
 *   Specification schema (the copy the `dclint` npm package ships);
 * - the example gateway configs load with the gateway's own config schema;
 * - the Helm chart lints and renders (`helm`), its values schema refuses weakened settings, and the
 *   rendered objects validate strictly against the Kubernetes schemas (`kubernetes-validate`);
 * - the invariants docs/compliance.md §1 rests on hold everywhere: the Kafka topic settings,
 *   no secret written into a file, health checks and probes on every long-running process.
 * helm and kubernetes-validate are installed by deploy/helm/install-tools.sh; a test that needs
 * one says plainly that it skipped, and why, when it is not there.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { Ajv } from 'ajv';
import { parse as parseYaml, parseAllDocuments } from 'yaml';
import { parseConfig } from '#schemas';

const REPO = path.join(import.meta.dirname, '..');
const COMPOSE_DIR = path.join(REPO, 'deploy', 'compose');
const COMPOSE_FILE = path.join(COMPOSE_DIR, 'compose.yaml');
const CHART = path.join(REPO, 'deploy', 'helm', 'attest');
const CHART_CI_VALUES = ['kafka-values.yaml', 'kurrent-values.yaml'].map((f) => path.join(CHART, 'ci', f));
/** Oldest Kubernetes the chart supports (Chart.yaml kubeVersion) and the newest schemas to hand. */
const KUBE_VERSIONS = ['1.27.0', '1.37.0'];
/** Six calendar months are at most 184 days (EU AI Act Art. 19 and 26(6)). */
const MIN_RETENTION_MS = 184 * 24 * 60 * 60 * 1000;
const TOOLS = path.join(process.env['ATTEST_CACHE_DIR'] ?? path.join(os.homedir(), '.cache', 'attest'), 'deploy-tools');
const INSTALL_HINT = 'run `bash deploy/helm/install-tools.sh`';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

function isObject(value: unknown): value is JsonObject {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function obj(value: unknown, what: string): JsonObject {
  assert.ok(isObject(value), `${what}: expected a mapping, got ${JSON.stringify(value)}`);
  return value;
}

function list(value: unknown, what: string): Json[] {
  assert.ok(Array.isArray(value), `${what}: expected a list, got ${JSON.stringify(value)}`);
  return value as Json[];
}

/** A scalar as YAML would print it; anything else as JSON (for messages and comparisons). */
function asText(value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return `${value}`;
  return JSON.stringify(value) ?? 'undefined';
}

function str(value: unknown, what: string): string {
  assert.equal(typeof value, 'string', `${what}: expected a string, got ${JSON.stringify(value)}`);
  return value as string;
}

/** Files under `dir` (recursively) whose name passes `keep`. */
function filesUnder(dir: string, keep: (file: string) => boolean): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .map((f) => path.join(dir, f))
    .filter((f) => statSync(f).isFile() && keep(f))
    .sort();
}

function readYaml(file: string): unknown {
  // Compose files use YAML merge keys (`<<: *anchor`); `docker compose` resolves them.
  return parseYaml(readFileSync(file, 'utf8'), { merge: true, prettyErrors: true });
}

// ---------------------------------------------------------------------------------------------
// Compose interpolation, as `docker compose` does it before validating: ${VAR}, ${VAR:-default},
// ${VAR-default}, ${VAR:?error}, ${VAR?error}, $VAR, and $$ for a literal $.
// ---------------------------------------------------------------------------------------------
const COMPOSE_REF = /\$(\$|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))/g;

function interpolate(value: Json, env: Readonly<Record<string, string>>, at: string): Json {
  if (typeof value === 'string') {
    return value.replace(COMPOSE_REF, (_m, whole: string, braced: string | undefined, op: string | undefined, arg: string | undefined, bare: string | undefined) => {
      if (whole === '$') return '$';
      const name = braced ?? bare ?? '';
      const set = env[name];
      const usable = op?.startsWith(':') === true ? set !== undefined && set !== '' : set !== undefined;
      if (usable) return set ?? '';
      if (op === ':-' || op === '-') return arg ?? '';
      if (op === ':?' || op === '?') throw new Error(`${at}: required variable ${name} is missing: ${arg ?? ''}`);
      return '';
    });
  }
  if (Array.isArray(value)) return value.map((v, i) => interpolate(v, env, `${at}[${i}]`));
  if (isObject(value)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, interpolate(v, env, `${at}.${k}`)]));
  return value;
}

/** Names of the variables a compose file requires (`${NAME:?…}` / `${NAME?…}`). */
function requiredComposeVars(text: string): Set<string> {
  return new Set([...text.matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*):?\?/g)].map((m) => m[1] ?? ''));
}

// ---------------------------------------------------------------------------------------------
// Secrets: nothing that authenticates may be written into a deployment file. A value counts as a
// reference when it is wholly `${NAME…}` (the gateway and compose both resolve those from the
// environment).
// ---------------------------------------------------------------------------------------------
const WHOLLY_REF = /^\$\{[A-Za-z_][A-Za-z0-9_]*(?::?[-?][^}]*)?\}$/;
const SECRET_KEY_NAME = /(pass(word|wd)?|secret|token|api[-_]?key|credential|private[-_]?key|connection[-_]?string)$/i;
const SECRET_ENV_NAME = /(PASSWORD|PASSWD|SECRET|TOKEN|API_KEY|CREDENTIAL|PRIVATE_KEY|CONNECTION_STRING)$/;
const LITERAL_SECRETS: readonly [RegExp, string][] = [
  [/-----BEGIN [A-Z ]*PRIVATE KEY-----/, 'a PEM private key'],
  [/\batk_[A-Za-z0-9_-]{16,}/, 'an Attest API key'],
  [/\b(bearer|basic)\s+(?!\$\{)[A-Za-z0-9._~+/=-]{8,}/i, 'a literal Authorization credential'],
  // <user>:<password> placeholders in comments are not credentials.
  [/[a-z][a-z0-9+.-]*:\/\/[^/\s:@${}<>]+:(?!\$\{|<)[^@\s/]+@/i, 'a URL with a literal password'],
];

/** Paths (a.b[0].c) of secret-looking values that are literal rather than `${ENV}` references. */
function literalSecrets(value: Json, at = ''): string[] {
  const found: string[] = [];
  if (typeof value === 'string') {
    for (const [pattern, what] of LITERAL_SECRETS) if (pattern.test(value)) found.push(`${at || '(root)'}: ${what}`);
  } else if (Array.isArray(value)) {
    value.forEach((v, i) => found.push(...literalSecrets(v, `${at}[${i}]`)));
  } else if (isObject(value)) {
    for (const [k, v] of Object.entries(value)) {
      const here = at === '' ? k : `${at}.${k}`;
      // `existingSecret`, `caSecret`: the chart's convention for the name of a Kubernetes Secret.
      const namesASecret = /^[a-z]+Secret$/.test(k) && typeof v === 'string' && /^([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?)?$/.test(v);
      if (SECRET_KEY_NAME.test(k) && !namesASecret && typeof v === 'string' && v !== '' && !WHOLLY_REF.test(v)) found.push(`${here}: literal value for a secret-named key`);
      found.push(...literalSecrets(v, here));
    }
  }
  return found;
}

/** Environment entries (compose `environment`) whose secret-named variables hold literal values. */
function literalSecretEnv(environment: Json | undefined, at: string): string[] {
  if (environment === undefined || environment === null) return [];
  const entries: [string, Json][] = Array.isArray(environment)
    ? environment.map((e) => {
        const [k, ...rest] = asText(e).split('=');
        return [k ?? '', rest.join('=')];
      })
    : Object.entries(obj(environment, at));
  return entries.filter(([k, v]) => SECRET_ENV_NAME.test(k) && !(typeof v === 'string' && WHOLLY_REF.test(v))).map(([k]) => `${at}.${k}: literal value for a secret`);
}

// ---------------------------------------------------------------------------------------------
// The Kafka topic settings docs/compliance.md §1 requires, wherever they are written down.
// ---------------------------------------------------------------------------------------------
function assertTopicSettings(config: Readonly<Record<string, string>>, replicationFactor: number, where: string): void {
  assert.equal(replicationFactor, 3, `${where}: replication factor 3`);
  assert.equal(config['min.insync.replicas'], '2', `${where}: min.insync.replicas=2 (acks=all then waits for two copies)`);
  assert.equal(config['unclean.leader.election.enable'], 'false', `${where}: unclean.leader.election.enable=false`);
  assert.equal(config['cleanup.policy'], 'delete', `${where}: cleanup.policy=delete (never compact an audit log)`);
  assert.equal(config['retention.bytes'], '-1', `${where}: retention.bytes=-1 (no size-based deletion)`);
  const retention = Number(config['retention.ms']);
  assert.ok(retention === -1 || retention >= MIN_RETENTION_MS, `${where}: retention.ms ${config['retention.ms']} is below six months (${MIN_RETENTION_MS})`);
}

/** Fills every `${NAME}` a gateway config references with a harmless stand-in. */
function standInEnv(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const m of text.matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-[^}]*)?\}/g)) {
    const name = m[1] ?? '';
    env[name] = name.includes('HASH') ? `sha256:${'0'.repeat(64)}` : name === 'ATTEST_INSTANCE' ? 'gw-test-1' : `stand-in-${name.toLowerCase()}`;
  }
  return env;
}

/** Loads a gateway config with the gateway's own loader and schema (unknown keys are errors); returns its `log` section. */
function checkGatewayConfig(text: string, where: string): JsonObject {
  const raw = obj(parseYaml(text), where);
  try {
    parseConfig(raw, { env: standInEnv(text), baseDir: REPO });
  } catch (error) {
    assert.fail(`${where} is not a valid gateway config: ${(error as Error).message}`);
  }
  return obj(raw['log'], `${where} log`);
}

// ---------------------------------------------------------------------------------------------
// External tools.
// ---------------------------------------------------------------------------------------------
function executable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return statSync(file).isFile();
  } catch {
    return false;
  }
}

/** The tool from its variable, else PATH, else the deploy-tools cache; undefined when absent. */
function findTool(name: string, variable: string, cached: string): string | undefined {
  const chosen = process.env[variable];
  if (chosen !== undefined && chosen !== '') {
    assert.ok(executable(chosen), `${variable}=${chosen} is not an executable file`);
    return chosen;
  }
  for (const dir of (process.env['PATH'] ?? '').split(path.delimiter)) {
    if (dir !== '' && executable(path.join(dir, name))) return path.join(dir, name);
  }
  return executable(cached) ? cached : undefined;
}

const HELM = findTool('helm', 'ATTEST_HELM', path.join(TOOLS, 'bin', 'helm'));
const KUBERNETES_VALIDATE = findTool('kubernetes-validate', 'ATTEST_KUBERNETES_VALIDATE', path.join(TOOLS, 'venv', 'bin', 'kubernetes-validate'));

function run(command: string, args: readonly string[]): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(command, args, { encoding: 'utf8', timeout: 120_000, maxBuffer: 64 * 1024 * 1024 });
  if (result.error !== undefined) throw result.error;
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

function helmTemplate(valuesFile: string, sets: readonly string[] = []): { status: number | null; stdout: string; stderr: string } {
  assert.ok(HELM !== undefined);
  const args = ['template', 'attest', CHART, '--namespace', 'audit', '--kube-version', KUBE_VERSIONS[KUBE_VERSIONS.length - 1] ?? '', '-f', valuesFile];
  for (const set of sets) args.push('--set', set);
  return run(HELM, args);
}

function renderedObjects(manifest: string, where: string): JsonObject[] {
  const docs = parseAllDocuments(manifest);
  const objects: JsonObject[] = [];
  for (const doc of docs) {
    assert.deepEqual(doc.errors, [], `${where}: rendered YAML does not parse`);
    const value = doc.toJS() as Json;
    if (value !== null) objects.push(obj(value, where));
  }
  return objects;
}

function byKind(objects: readonly JsonObject[], kind: string): JsonObject[] {
  return objects.filter((o) => o['kind'] === kind);
}

// =============================================================================================

describe('deploy: YAML', () => {
  it('every YAML file under deploy/compose and deploy/helm parses (chart templates are checked by rendering)', () => {
    const files = [
      ...filesUnder(COMPOSE_DIR, (f) => /\.ya?ml$/.test(f)),
      ...filesUnder(path.join(REPO, 'deploy', 'helm'), (f) => /\.ya?ml$/.test(f) && !f.includes(`${path.sep}templates${path.sep}`)),
    ];
    assert.ok(files.length >= 7, `expected the compose file, configs, Chart.yaml and values files, found ${files.join(', ')}`);
    for (const file of files) {
      for (const doc of parseAllDocuments(readFileSync(file, 'utf8'), { merge: true })) {
        assert.deepEqual(doc.errors.map((e) => e.message), [], `${path.relative(REPO, file)} does not parse`);
        assert.deepEqual(doc.warnings.map((e) => e.message), [], `${path.relative(REPO, file)} parses with warnings`);
      }
    }
  });

  it('the secret scanner finds what it is meant to find (so that its passes mean something)', () => {
    const planted: Json = {
      log: { sasl: { password: 'hunter2' }, connectionString: 'kurrentdb://admin:changeit@db:2113' },
      upstreams: { a: { headers: { Authorization: 'Bearer abcdefghijkl' } } },
      note: 'atk_eRAHee2m_tDXlLuE4_L_J-UuXABtmwPIrAJpDpfOnHg',
    };
    assert.equal(literalSecrets(planted).length, 5, literalSecrets(planted).join('\n'));
    assert.deepEqual(literalSecrets({ auth: { existingSecret: 'attest-api-keys' }, sasl: { existingSecret: 'Passw0rd!x' } }), ['sasl.existingSecret: literal value for a secret-named key']);
    const clean: Json = { log: { sasl: { password: '${KAFKA_PASSWORD}' }, connectionString: '${KURRENT_URL}' }, upstreams: { a: { headers: { Authorization: 'Bearer ${TOKEN}' } } } };
    assert.deepEqual(literalSecrets(clean), []);
    assert.deepEqual(literalSecretEnv({ DB_PASSWORD: 'x', API_TOKEN: '${API_TOKEN:?set it}' }, 'env'), ['env.DB_PASSWORD: literal value for a secret']);
  });
});

describe('deploy/compose', () => {
  const text = readFileSync(COMPOSE_FILE, 'utf8');
  const required = requiredComposeVars(text);
  const env = Object.fromEntries([...required].map((name) => [name, name.includes('HASH') ? `sha256:${'0'.repeat(64)}` : 'stand-in']));
  const compose = obj(interpolate(readYaml(COMPOSE_FILE) as Json, env, 'compose.yaml'), 'compose.yaml');
  const services = obj(compose['services'], 'services');
  const service = (name: string): JsonObject => obj(services[name], `services.${name}`);

  it('validates against the Compose Specification schema, interpolated as docker compose does', () => {
    const require = createRequire(import.meta.url);
    let schemaFile: string;
    try {
      schemaFile = path.join(path.dirname(require.resolve('dclint/package.json')), 'schemas', 'compose.schema.json');
    } catch {
      assert.fail('the Compose schema comes from the npm package dclint: add it (npm install --save-dev dclint)');
    }
    const schema = JSON.parse(readFileSync(schemaFile, 'utf8')) as Record<string, unknown>;
    delete schema['$schema'];
    const ajv = new Ajv({ allErrors: true, strict: false, validateFormats: false });
    const validate = ajv.compile(schema);
    const valid = validate(compose);
    assert.ok(valid, `compose.yaml breaks the Compose spec:\n${JSON.stringify(validate.errors, null, 2)}`);
    // The missing-variable message is what a user sees without .env: it must name the file.
    assert.throws(() => interpolate(readYaml(COMPOSE_FILE) as Json, {}, 'compose.yaml'), /required variable \w+ is missing: set \w+ in deploy\/compose\/\.env/);
  });

  it('.env.example names every variable the compose file requires, with no value filled in', () => {
    const example = readFileSync(path.join(COMPOSE_DIR, '.env.example'), 'utf8');
    for (const name of required) {
      const line = example.split('\n').find((l) => l.startsWith(`${name}=`));
      assert.ok(line !== undefined, `.env.example lacks ${name}`);
      assert.equal(line, `${name}=`, `.env.example must leave ${name} empty`);
    }
  });

  it('every long-running service has a health check, and every dependency waits on a condition', () => {
    for (const [name, raw] of Object.entries(services)) {
      const s = obj(raw, name);
      const oneShot = s['restart'] === 'no';
      if (!oneShot) {
        const check = obj(s['healthcheck'], `services.${name}.healthcheck`);
        const test = list(check['test'], `services.${name}.healthcheck.test`);
        assert.ok(test[0] === 'CMD' || test[0] === 'CMD-SHELL', `services.${name}: healthcheck.test starts with CMD or CMD-SHELL`);
        assert.notEqual(check['disable'], true, `services.${name}: health check disabled`);
      }
      const profiles = (s['profiles'] as string[] | undefined) ?? [];
      for (const [dep, condition] of Object.entries(obj(s['depends_on'] ?? {}, `services.${name}.depends_on`))) {
        const target = services[dep];
        assert.ok(target !== undefined, `services.${name} depends on undefined service ${dep}`);
        const wanted = obj(condition, `services.${name}.depends_on.${dep}`)['condition'];
        const targetOneShot = obj(target, dep)['restart'] === 'no';
        assert.equal(wanted, targetOneShot ? 'service_completed_successfully' : 'service_healthy', `services.${name}.depends_on.${dep}.condition`);
        const targetProfiles = (obj(target, dep)['profiles'] as string[] | undefined) ?? [];
        assert.ok(targetProfiles.length === 0 || targetProfiles.some((p) => profiles.includes(p)), `services.${name} would start without ${dep} (profiles ${JSON.stringify(targetProfiles)})`);
      }
    }
  });

  it('publishes ports on loopback only (plaintext Kafka, insecure KurrentDB) and mounts only files that exist', () => {
    for (const [name, raw] of Object.entries(services)) {
      const s = obj(raw, name);
      for (const port of (s['ports'] as Json[] | undefined) ?? []) {
        assert.match(asText(port), /^127\.0\.0\.1:\d+:\d+$/, `services.${name}.ports: ${asText(port)} must be bound to 127.0.0.1`);
      }
      for (const volume of (s['volumes'] as Json[] | undefined) ?? []) {
        const source = asText(volume).split(':')[0] ?? '';
        if (source.startsWith('.')) assert.ok(existsSync(path.join(COMPOSE_DIR, source)), `services.${name}.volumes: ${source} does not exist`);
      }
    }
  });

  it('Kafka: three KRaft brokers with durable defaults, and kafka-init creates the topic with the documented settings', () => {
    const brokers = Object.keys(services).filter((n) => /^kafka-\d+$/.test(n));
    assert.equal(brokers.length, 3, 'three brokers: the smallest cluster where RF 3 / min ISR 2 survives one broker down');
    const clusterIds = new Set<string>();
    const nodeIds = new Set<string>();
    for (const name of brokers) {
      const s = service(name);
      assert.match(str(s['image'], `${name}.image`), /^apache\/kafka:4\./, `${name}: Apache Kafka 4.x image`);
      const e = obj(s['environment'], `${name}.environment`);
      assert.equal(e['KAFKA_PROCESS_ROLES'], 'broker,controller', `${name}: KRaft combined mode`);
      assert.equal(e['KAFKA_CONTROLLER_QUORUM_VOTERS'], brokers.map((b) => `${b.slice('kafka-'.length)}@${b}:9093`).join(','), `${name}: every broker votes`);
      assert.equal(e['KAFKA_DEFAULT_REPLICATION_FACTOR'], '3', `${name}: default.replication.factor`);
      assert.equal(e['KAFKA_MIN_INSYNC_REPLICAS'], '2', `${name}: min.insync.replicas`);
      assert.equal(e['KAFKA_UNCLEAN_LEADER_ELECTION_ENABLE'], 'false', `${name}: unclean.leader.election.enable`);
      assert.equal(e['KAFKA_AUTO_CREATE_TOPICS_ENABLE'], 'false', `${name}: auto.create.topics.enable`);
      assert.equal(e['KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR'], '3', `${name}: offsets topic replication`);
      assert.ok(obj(s['healthcheck'], name), `${name}: health check`);
      clusterIds.add(str(e['CLUSTER_ID'], `${name}.CLUSTER_ID`));
      nodeIds.add(str(e['KAFKA_NODE_ID'], `${name}.KAFKA_NODE_ID`));
    }
    assert.equal(clusterIds.size, 1, 'one CLUSTER_ID for all brokers');
    assert.match([...clusterIds][0] ?? '', /^[A-Za-z0-9_-]{22}$/, 'CLUSTER_ID is a base64url UUID');
    assert.equal(nodeIds.size, 3, 'distinct node ids');

    const init = service('kafka-init');
    const e = obj(init['environment'], 'kafka-init.environment');
    const topicConfig = Object.fromEntries(str(e['TOPIC_CONFIG'], 'TOPIC_CONFIG').split(',').map((kv) => kv.split('=') as [string, string]));
    assertTopicSettings(topicConfig, Number(e['REPLICATION_FACTOR']), 'compose kafka-init');
    assert.equal(e['BOOTSTRAP'], brokers.map((b) => `${b}:9092`).join(','), 'kafka-init bootstraps from every broker');

    // The gateway's config agrees with what kafka-init created.
    const configText = readFileSync(path.join(COMPOSE_DIR, 'config', 'gateway-kafka.yaml'), 'utf8');
    const log = obj(obj(parseYaml(configText), 'gateway-kafka.yaml')['log'], 'log');
    assert.equal(log['backend'], 'kafka');
    assert.equal(log['topic'], e['TOPIC'], 'gateway-kafka.yaml log.topic = the topic kafka-init creates');
    assert.deepEqual(log['brokers'], brokers.map((b) => `${b}:9092`), 'gateway-kafka.yaml log.brokers = every broker');
    assert.equal(log['replicationFactor'], 3);
    assert.equal(log['minInsyncReplicas'], 2);
    assert.equal(asText(log['retentionMs']), topicConfig['retention.ms'], 'gateway-kafka.yaml log.retentionMs = the topic retention');
    assert.equal(log['createTopic'], false, 'kafka-init owns topic creation in compose');
    assert.equal(log['partitions'], Number(e['PARTITIONS']), 'gateway-kafka.yaml log.partitions = the partitions kafka-init creates');
    assert.equal(log['requireProductionTopic'], true, 'the gateway refuses a weaker topic rather than warn');
  });

  it('the gateway, projector and reporting services run the attest image, non-root and read-only, on configs that exist', () => {
    for (const [name, subcommand] of [['gateway', 'gateway'], ['gateway-kurrent', 'gateway'], ['projector', 'projector'], ['reporting', 'reporting']] as const) {
      const s = service(name);
      assert.equal(s['image'], 'attest:dev', `${name}: the attest image`);
      assert.equal(obj(s['build'], `${name}.build`)['dockerfile'], 'deploy/compose/Dockerfile');
      assert.equal(s['read_only'], true, `${name}: read-only root filesystem`);
      assert.deepEqual(s['cap_drop'], ['ALL'], `${name}: no capabilities`);
      const command = list(s['command'], `${name}.command`).map(String);
      assert.equal(command[0], subcommand, `${name}: attest ${subcommand}`);
      const config = command[command.indexOf('--config') + 1] ?? '';
      assert.ok(config.startsWith('/etc/attest/') && existsSync(path.join(COMPOSE_DIR, 'config', path.basename(config))), `${name}: --config ${config} is a file in deploy/compose/config`);
    }
    for (const later of ['projector', 'reporting']) assert.deepEqual(service(later)['profiles'], ['read-side'], `${later} arrives with a later issue: behind the read-side profile`);
  });

  it('every gateway service runs under its own gateway.instance and Kafka client id (one name per live replica)', () => {
    const names = new Map<string, string>();
    const clientIds = new Map<string, string>();
    for (const [name, raw] of Object.entries(services)) {
      const command = list(obj(raw, name)['command'] ?? [], `${name}.command`).map(String);
      if (command[0] !== 'gateway') continue;
      const file = path.basename(command[command.indexOf('--config') + 1] ?? '');
      const config = obj(parseYaml(readFileSync(path.join(COMPOSE_DIR, 'config', file), 'utf8')), file);
      const instance = str(obj(config['gateway'], `${file} gateway`)['instance'], `${file} gateway.instance`);
      assert.ok(!names.has(instance), `${name} and ${names.get(instance) ?? ''} both run as gateway instance ${instance} (one name per gateway: two live ones on one log fork its chains)`);
      names.set(instance, name);
      const log = obj(config['log'], `${file} log`);
      if (log['backend'] === 'kafka') {
        const clientId = str(log['clientId'], `${file} log.clientId`);
        assert.ok(!clientIds.has(clientId), `${name} and ${clientIds.get(clientId) ?? ''} share Kafka client id ${clientId}`);
        clientIds.set(clientId, name);
      }
    }
    assert.ok(names.size >= 2, `the gateway services: ${[...names.values()].join(', ')}`);
  });

  it('the example gateway configs load with the config schema', () => {
    for (const file of ['gateway-kafka.yaml', 'gateway-kurrent.yaml']) {
      const text = readFileSync(path.join(COMPOSE_DIR, 'config', file), 'utf8');
      const log = checkGatewayConfig(text, file);
      if (log['backend'] === 'kurrent') assert.match(str(log['connectionString'], `${file} log.connectionString`), /^\$\{[A-Z_]+(:-kurrentdb:\/\/[^}]+)?\}$/, `${file}: the connection string is an \${ENV} reference`);
    }
  });

  it('no secret is written into the compose file, its configs or the chart values', () => {
    const found: string[] = [];
    for (const file of filesUnder(COMPOSE_DIR, (f) => /\.ya?ml$/.test(f)).concat(filesUnder(CHART, (f) => /\.ya?ml$/.test(f) && !f.includes(`${path.sep}templates${path.sep}`)))) {
      const rel = path.relative(REPO, file);
      found.push(...literalSecrets(readYaml(file) as Json).map((p) => `${rel}: ${p}`));
      const raw = readFileSync(file, 'utf8');
      for (const [pattern, what] of LITERAL_SECRETS) if (pattern.test(raw)) found.push(`${rel}: ${what} in the text`);
    }
    for (const [name, raw] of Object.entries(obj(obj(readYaml(COMPOSE_FILE), 'compose')['services'], 'services'))) {
      found.push(...literalSecretEnv(obj(raw, name)['environment'], `compose.yaml services.${name}.environment`));
    }
    assert.deepEqual(found, []);
  });

  it('the Dockerfile builds on node:24-slim, installs production dependencies only, runs as a non-root user with the attest entrypoint', () => {
    const dockerfile = readFileSync(path.join(COMPOSE_DIR, 'Dockerfile'), 'utf8');
    const lines = dockerfile.split('\n').filter((l) => !l.trimStart().startsWith('#'));
    const stages = lines.filter((l) => /^FROM\s/i.test(l));
    assert.ok(stages.length >= 2 && stages.every((l) => /^FROM \$\{NODE_IMAGE\}/.test(l)), 'every stage FROM ${NODE_IMAGE}');
    assert.match(dockerfile, /^ARG NODE_IMAGE=node:24-slim$/m);
    const runtime = lines.slice(lines.findIndex((l) => /^FROM .* AS runtime$/i.test(l)));
    assert.ok(runtime.some((l) => l.includes('npm ci --omit=dev')), 'runtime stage: npm ci --omit=dev');
    assert.ok(!runtime.some((l) => /npm (ci|install)(?!.*--omit=dev)/.test(l)), 'runtime stage installs no dev dependencies');
    assert.ok(lines.some((l) => l.includes('npm run build')), 'build stage: npm run build');
    const user = runtime.filter((l) => /^USER\s/.test(l)).at(-1);
    assert.match(user ?? '', /^USER [1-9]\d{3,}:[1-9]\d{3,}$/, 'the last USER is a numeric non-root uid:gid (so runAsNonRoot can verify it)');
    assert.match(runtime.find((l) => /^ENTRYPOINT/.test(l)) ?? '', /"attest"\]$/, 'ENTRYPOINT ends in attest');
    // The build context is the repo root, filtered by Dockerfile.dockerignore: what the build compiles must be admitted.
    const ignore = readFileSync(path.join(COMPOSE_DIR, 'Dockerfile.dockerignore'), 'utf8');
    const build = JSON.parse(readFileSync(path.join(REPO, 'tsconfig.build.json'), 'utf8')) as { include: string[] };
    for (const dir of build.include) assert.ok(ignore.includes(`!${dir}/**`), `Dockerfile.dockerignore admits ${dir}/`);
    for (const file of ['package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json']) assert.ok(ignore.includes(`!${file}`), `Dockerfile.dockerignore admits ${file}`);
  });
});

describe('deploy/helm/attest', () => {
  const values = obj(readYaml(path.join(CHART, 'values.yaml')), 'values.yaml');

  function mergedValues(overrides: readonly JsonObject[]): JsonObject {
    const merge = (a: Json, b: Json): Json => (isObject(a) && isObject(b) ? Object.fromEntries([...new Set([...Object.keys(a), ...Object.keys(b)])].map((k) => [k, k in b ? merge(a[k] ?? null, b[k] ?? null) : (a[k] ?? null)])) : b);
    return overrides.reduce<JsonObject>((acc, o) => obj(merge(acc, o), 'values'), values);
  }

  it('values.schema.json accepts the production defaults and refuses every weakened setting (no helm needed)', () => {
    const schema = JSON.parse(readFileSync(path.join(CHART, 'values.schema.json'), 'utf8')) as Record<string, unknown>;
    delete schema['$schema'];
    const validate = new Ajv({ allErrors: true, strict: false }).compile(schema);
    for (const file of CHART_CI_VALUES) {
      const merged = mergedValues([obj(readYaml(file), file)]);
      assert.ok(validate(merged), `${path.basename(file)}: ${JSON.stringify(validate.errors)}`);
    }
    const topic = (patch: JsonObject): JsonObject => mergedValues([{ log: { kafka: { topic: patch } } }]);
    const weakened: [string, JsonObject][] = [
      ['replication factor 2', topic({ replicationFactor: 2 })],
      ['min.insync.replicas 1', topic({ minInsyncReplicas: 1 })],
      ['retention of seven days', topic({ retentionMs: 7 * 24 * 3600 * 1000 })],
      ['retention of 180 days (shorter than some six-month periods)', topic({ retentionMs: 180 * 24 * 3600 * 1000 })],
      ['the single-writer file backend', mergedValues([{ log: { backend: 'file' } }])],
      ['a literal key hash in values', mergedValues([{ auth: { keys: [{ id: 'a', hash: `sha256:${'0'.repeat(64)}` }] } }])],
    ];
    for (const [what, candidate] of weakened) assert.equal(validate(candidate), false, `values.schema.json accepted ${what}`);
    const defaults = obj(obj(obj(values['log'], 'log')['kafka'], 'kafka')['topic'], 'topic');
    assert.equal(defaults['replicationFactor'], 3);
    assert.equal(defaults['minInsyncReplicas'], 2);
    assert.ok(Number(defaults['retentionMs']) >= MIN_RETENTION_MS);
  });

  it('lints (helm lint --strict) with each CI values file', (t) => {
    if (HELM === undefined) {
      t.skip(`helm is not installed (${INSTALL_HINT}, or set ATTEST_HELM)`);
      return;
    }
    for (const file of CHART_CI_VALUES) {
      const result = run(HELM, ['lint', '--strict', CHART, '--kube-version', KUBE_VERSIONS[0] ?? '', '-f', file]);
      assert.equal(result.status, 0, `helm lint ${path.basename(file)}:\n${result.stdout}${result.stderr}`);
    }
  });

  for (const file of CHART_CI_VALUES) {
    it(`renders with ${path.basename(file)}: probes, non-root read-only pods, resources, PDB, NetworkPolicy, secrets by reference, a valid gateway config`, (t) => {
      if (HELM === undefined) {
        t.skip(`helm is not installed (${INSTALL_HINT}, or set ATTEST_HELM)`);
        return;
      }
      const result = helmTemplate(file);
      assert.equal(result.status, 0, `helm template:\n${result.stderr}`);
      const objects = renderedObjects(result.stdout, path.basename(file));
      const ci = obj(readYaml(file), file);
      const backend = obj(ci['log'], 'log')['backend'];

      assert.deepEqual(byKind(objects, 'Secret'), [], 'the chart creates no Secret: it references existing ones');
      const [deployment] = byKind(objects, 'Deployment');
      const spec = obj(obj(obj(deployment, 'Deployment')['spec'], 'spec')['template'], 'template')['spec'];
      const pod = obj(spec, 'pod spec');
      const podSecurity = obj(pod['securityContext'], 'pod securityContext');
      assert.equal(podSecurity['runAsNonRoot'], true);
      assert.equal(obj(podSecurity['seccompProfile'], 'seccompProfile')['type'], 'RuntimeDefault');
      assert.equal(pod['automountServiceAccountToken'], false, 'no service account token');
      for (const c of list(pod['containers'], 'containers')) {
        const container = obj(c, 'container');
        const name = asText(container['name']);
        for (const probe of ['startupProbe', 'livenessProbe', 'readinessProbe']) {
          const http = obj(obj(container[probe], `${name}.${probe}`)['httpGet'], `${name}.${probe}.httpGet`);
          assert.equal(http['path'], '/healthz', `${name}.${probe} on /healthz`);
        }
        const security = obj(container['securityContext'], `${name}.securityContext`);
        assert.equal(security['readOnlyRootFilesystem'], true, `${name}: read-only root filesystem`);
        assert.equal(security['allowPrivilegeEscalation'], false, `${name}: no privilege escalation`);
        assert.deepEqual(obj(security['capabilities'], 'capabilities')['drop'], ['ALL'], `${name}: drops all capabilities`);
        const resources = obj(container['resources'], `${name}.resources`);
        assert.ok(obj(resources['requests'], 'requests')['memory'] !== undefined && obj(resources['limits'], 'limits')['memory'] !== undefined, `${name}: memory request and limit`);
        for (const e of list(container['env'] ?? [], `${name}.env`)) {
          const entry = obj(e, 'env entry');
          const envName = asText(entry['name']);
          if (SECRET_ENV_NAME.test(envName) || envName.startsWith('ATTEST_KEY_HASH_')) {
            assert.ok(entry['value'] === undefined && isObject(obj(entry['valueFrom'], `${envName}.valueFrom`)['secretKeyRef']), `${name}.env.${envName} comes from a secretKeyRef`);
          }
        }
      }

      // One gateway instance per pod: ATTEST_INSTANCE is the pod's name, and the config takes the
      // instance (and the Kafka client id) from it.
      const gateway = obj(list(pod['containers'], 'containers').map((c) => obj(c, 'container')).find((c) => c['name'] === 'gateway'), 'gateway container');
      const instanceEnv = list(gateway['env'], 'gateway.env').map((e) => obj(e, 'env entry')).find((e) => e['name'] === 'ATTEST_INSTANCE');
      assert.equal(asText(obj(obj(instanceEnv?.['valueFrom'], 'ATTEST_INSTANCE.valueFrom')['fieldRef'], 'ATTEST_INSTANCE fieldRef')['fieldPath']), 'metadata.name', 'ATTEST_INSTANCE is the pod name: unique per replica');

      const [pdb] = byKind(objects, 'PodDisruptionBudget');
      assert.ok(pdb !== undefined, 'a PodDisruptionBudget');
      const replicas = Number(obj(obj(deployment, 'Deployment')['spec'], 'spec')['replicas']);
      assert.ok(Number(obj(pdb['spec'], 'pdb spec')['minAvailable']) < replicas, 'the PDB leaves room to drain a node');

      const [policy] = byKind(objects, 'NetworkPolicy');
      assert.ok(policy !== undefined, 'a NetworkPolicy');
      const policySpec = obj(policy['spec'], 'NetworkPolicy spec');
      assert.deepEqual(policySpec['policyTypes'], ['Ingress', 'Egress'], 'ingress and egress both default-deny');
      const egressPorts = list(policySpec['egress'], 'egress').flatMap((rule) => list(obj(rule, 'egress rule')['ports'] ?? [], 'ports').map((p) => Number(obj(p, 'port')['port'])));
      const backendPorts = backend === 'kurrent' ? [2113] : [9092, 9093];
      for (const port of backendPorts) assert.ok(egressPorts.includes(port), `egress allows the ${asText(backend)} port ${port}`);
      for (const port of egressPorts) assert.ok([53, 443, ...backendPorts].includes(port), `egress port ${port} is not one the gateway needs`);

      const [configMap] = byKind(objects, 'ConfigMap');
      const configText = str(obj(obj(configMap, 'ConfigMap')['data'], 'data')['attest.yaml'], 'attest.yaml');
      assert.deepEqual(literalSecrets(parseYaml(configText) as Json), [], 'the rendered config holds no secret');
      const log = checkGatewayConfig(configText, `${path.basename(file)} ConfigMap attest.yaml`);
      assert.equal(log['backend'], backend);
      assert.equal(obj(obj(parseYaml(configText), 'attest.yaml')['gateway'], 'attest.yaml gateway')['instance'], '${ATTEST_INSTANCE}', 'gateway.instance from the pod name');
      if (backend === 'kafka') assert.match(str(log['clientId'], 'log.clientId'), /\$\{ATTEST_INSTANCE\}$/, 'the Kafka client id names the pod');
      if (backend === 'kafka') {
        assert.equal(log['replicationFactor'], 3);
        assert.equal(log['minInsyncReplicas'], 2);
        assert.equal(log['requireProductionTopic'], true, 'production: the gateway refuses a weaker topic rather than warn');
        const [topic] = byKind(objects, 'KafkaTopic');
        assert.ok(topic !== undefined, 'the Strimzi KafkaTopic (enabled in kafka-values.yaml)');
        const topicSpec = obj(topic['spec'], 'KafkaTopic spec');
        const topicConfig = Object.fromEntries(Object.entries(obj(topicSpec['config'], 'KafkaTopic config')).map(([k, v]) => [k, asText(v)]));
        assertTopicSettings(topicConfig, Number(topicSpec['replicas']), 'KafkaTopic');
        assert.equal(asText(log['retentionMs']), topicConfig['retention.ms']);
        assert.equal(log['partitions'], topicSpec['partitions']);
        assert.equal(obj(obj(topic['metadata'], 'metadata')['annotations'], 'annotations')['helm.sh/resource-policy'], 'keep', 'helm uninstall keeps the audit topic');
      } else {
        assert.equal(log['connectionString'], '${ATTEST_KURRENTDB_CONNECTION_STRING}');
      }
    });
  }

  it('refuses to render values that weaken the guarantees', (t) => {
    if (HELM === undefined) {
      t.skip(`helm is not installed (${INSTALL_HINT}, or set ATTEST_HELM)`);
      return;
    }
    const kafka = CHART_CI_VALUES[0] ?? '';
    const refused: [string, string[], RegExp][] = [
      ['min.insync.replicas 1', ['log.kafka.topic.minInsyncReplicas=1'], /minInsyncReplicas.*minimum/],
      ['replication factor 2', ['log.kafka.topic.replicationFactor=2'], /replicationFactor.*minimum/],
      ['min.insync.replicas equal to the replication factor', ['log.kafka.topic.minInsyncReplicas=3'], /must be below replicationFactor/],
      ['thirty days of retention', ['log.kafka.topic.retentionMs=2592000000'], /retentionMs/],
      ['no brokers', ['log.kafka.brokers=null'], /brokers/],
      ['no upstream', ['upstreams=null'], /upstreams/],
      ['a PDB that blocks every drain', ['podDisruptionBudget.minAvailable=2'], /must be below replicaCount/],
    ];
    for (const [what, sets, message] of refused) {
      const result = helmTemplate(kafka, sets);
      assert.notEqual(result.status, 0, `helm template accepted ${what}`);
      assert.match(result.stderr, message, `helm template refused ${what} without saying why:\n${result.stderr}`);
    }
  });

  it(`rendered objects validate strictly (no unknown fields) against the Kubernetes ${KUBE_VERSIONS.join(' and ')} schemas`, (t) => {
    if (HELM === undefined || KUBERNETES_VALIDATE === undefined) {
      t.skip(`${HELM === undefined ? 'helm' : 'kubernetes-validate'} is not installed (${INSTALL_HINT})`);
      return;
    }
    const dir = mkdtempSync(path.join(os.tmpdir(), 'attest-chart-'));
    try {
      for (const file of CHART_CI_VALUES) {
        const result = helmTemplate(file);
        assert.equal(result.status, 0, result.stderr);
        // Custom resources (the Strimzi KafkaTopic) have no schema there; they were checked above.
        const builtIn = renderedObjects(result.stdout, file).filter((o) => !asText(o['apiVersion']).includes('strimzi.io'));
        assert.ok(builtIn.length >= 6, `expected at least 6 built-in objects, got ${builtIn.length}`);
        const manifest = path.join(dir, `${path.basename(file, '.yaml')}.json`);
        writeFileSync(manifest, builtIn.map((o) => JSON.stringify(o)).join('\n---\n'));
        for (const version of KUBE_VERSIONS) {
          const check = run(KUBERNETES_VALIDATE, ['--strict', '--quiet', '--kubernetes-version', version, manifest]);
          assert.equal(check.status, 0, `kubernetes-validate ${version} ${path.basename(file)}:\n${check.stdout}${check.stderr}`);
        }
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
