// Small helpers shared by the vocabulary converters.

import { isJSONObject, JSONValue } from '../json';

/** tokenizer_config tokens are a string or an AddedToken object { content, ... }. */
export function tokenContent(v: JSONValue | undefined): string | undefined {
  if (typeof v === 'string') return v;
  if (isJSONObject(v) && typeof v.content === 'string') return v.content;
  return undefined;
}

export interface AddedTokenSpec {
  readonly id: number;
  readonly content: string;
  readonly special: boolean;
  readonly lstrip: boolean;
  readonly rstrip: boolean;
}

/** tokenizer.json `added_tokens`, validated loosely (bad entries are skipped). */
export function addedTokens(v: JSONValue | undefined): AddedTokenSpec[] {
  if (!Array.isArray(v)) return [];
  const out: AddedTokenSpec[] = [];
  for (const t of v) {
    if (!isJSONObject(t) || typeof t.content !== 'string' || typeof t.id !== 'number' || !Number.isInteger(t.id) || t.id < 0) continue;
    out.push({ id: t.id, content: t.content, special: t.special === true, lstrip: t.lstrip === true, rstrip: t.rstrip === true });
  }
  return out;
}

/** A BPE merge as [left, right], from "a b" (split at the first space after position 0) or ["a", "b"]. */
export function parseMerge(m: JSONValue): [string, string] | undefined {
  if (Array.isArray(m) && m.length === 2 && typeof m[0] === 'string' && typeof m[1] === 'string') return [m[0], m[1]];
  if (typeof m === 'string') {
    const at = m.indexOf(' ', 1);
    if (at > 0) return [m.slice(0, at), m.slice(at + 1)];
  }
  return undefined;
}
