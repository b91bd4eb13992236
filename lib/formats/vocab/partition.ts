// Splitting raw text around special tokens before the model sees it, as llama.cpp's
// tokenizer_st_partition does: tokens are tried longest first, every occurrence becomes its own
// fragment, the text between occurrences stays text (empty text yields no fragments).

export type Fragment = { readonly text: string } | { readonly id: number };

export interface SpecialToken {
  readonly id: number;
  readonly text: string;
}

/** `specials` must be sorted longest first (see sortSpecials) and have non-empty texts. */
export function partitionSpecial(text: string, specials: readonly SpecialToken[]): Fragment[] {
  if (text.length === 0) return [];
  let frags: Fragment[] = [{ text }];
  for (const sp of specials) {
    if (!text.includes(sp.text)) continue;
    const next: Fragment[] = [];
    for (const f of frags) {
      if (!('text' in f)) {
        next.push(f);
        continue;
      }
      let from = 0;
      for (;;) {
        const at = f.text.indexOf(sp.text, from);
        if (at < 0) break;
        if (at > from) next.push({ text: f.text.slice(from, at) });
        next.push({ id: sp.id });
        from = at + sp.text.length;
      }
      if (from < f.text.length) next.push({ text: f.text.slice(from) });
    }
    frags = next;
  }
  return frags;
}

export function sortSpecials(specials: readonly SpecialToken[]): SpecialToken[] {
  return specials.filter((s) => s.text.length > 0).sort((a, b) => b.text.length - a.text.length || a.id - b.id);
}
