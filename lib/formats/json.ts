// JSON values and a file reader with typed errors.

import { promises as fsp } from 'fs';
import * as path from 'path';
import { QuantMoeError } from '../errors';
import { ioError } from './file-reader';

export type JSONValue = null | boolean | number | string | JSONValue[] | JSONObject;
export interface JSONObject { [key: string]: JSONValue }

export function isJSONObject(v: unknown): v is JSONObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Parses `file` as JSON; E_IO when unreadable, E_FORMAT when not valid JSON. */
export async function readJSONFile(file: string): Promise<JSONValue> {
  let text: string;
  try {
    text = await fsp.readFile(file, 'utf8');
  } catch (e) {
    throw ioError(file, 'read', e);
  }
  try {
    return JSON.parse(text) as JSONValue;
  } catch (e) {
    throw new QuantMoeError('E_FORMAT',
      `${path.basename(file)}: invalid JSON: ${e instanceof Error ? e.message : String(e)} (${file})`);
  }
}

/** Like readJSONFile but undefined when the file does not exist. */
export async function readOptionalJSONFile(file: string): Promise<JSONValue | undefined> {
  try {
    await fsp.access(file);
  } catch {
    return undefined;
  }
  return readJSONFile(file);
}

/** Reads a JSON file that must hold an object. */
export async function readJSONObjectFile(file: string): Promise<JSONObject> {
  const v = await readJSONFile(file);
  if (!isJSONObject(v)) {
    throw new QuantMoeError('E_FORMAT', `${path.basename(file)}: expected a JSON object at top level (${file})`);
  }
  return v;
}
