/** Reads the config file (YAML, or JSON which YAML parses too) and validates it once, at start. */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { checkSigningKeyIsReference, ConfigError, parseConfig } from '#schemas';
import type { ParsedConfig } from '#schemas';

export interface LoadedConfig extends ParsedConfig {
  readonly file: string;
}

export function loadConfigFile(file: string, env: NodeJS.ProcessEnv = process.env): LoadedConfig {
  const absolute = path.resolve(file);
  let text: string;
  try {
    text = readFileSync(absolute, 'utf8');
  } catch (error) {
    throw new ConfigError(`cannot read config file ${absolute}: ${(error as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (error) {
    throw new ConfigError(`config file ${absolute} is not valid YAML: ${(error as Error).message}`);
  }
  checkSigningKeyIsReference(raw);
  return { ...parseConfig(raw, { env, baseDir: path.dirname(absolute) }), file: absolute };
}
