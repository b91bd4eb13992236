// A PNG heat map of expert usage: one row per layer, one column per expert, each cell colored by
// the expert's share of that layer's routed tokens (viridis scale from 0 to the largest share,
// rounded up), the share in % written in the cell, per-layer CV and normalised entropy at the
// right, and a legend bar with the uniform share 1/E marked. Pixels are drawn here (a 5×7 bitmap
// font for the labels); pngjs only encodes.
import * as fs from 'fs';

import { PNG } from 'pngjs';

import { QuantMoeError } from '../errors';
import type { ExpertUsage } from './experts';

export interface HeatmapOptions {
  /** Cell size in pixels, default 24. */
  cell?: number;
  /** Title line, default 'EXPERT SHARE OF ROUTED TOKENS'. */
  title?: string;
}

type RGB = readonly [number, number, number];

// viridis at 0, 1/8, ..., 1
const VIRIDIS: RGB[] = [
  [68, 1, 84], [71, 45, 123], [59, 82, 139], [44, 114, 142], [33, 145, 140],
  [40, 174, 128], [94, 201, 98], [173, 220, 48], [253, 231, 37],
];

export function viridis(t: number): RGB {
  const x = Math.max(0, Math.min(1, Number.isFinite(t) ? t : 0)) * (VIRIDIS.length - 1);
  const i = Math.min(VIRIDIS.length - 2, Math.floor(x));
  const f = x - i;
  const a = VIRIDIS[i];
  const b = VIRIDIS[i + 1];
  return [Math.round(a[0] + (b[0] - a[0]) * f), Math.round(a[1] + (b[1] - a[1]) * f), Math.round(a[2] + (b[2] - a[2]) * f)];
}

// 5×7 glyphs, rows top to bottom, '#' = ink.
const FONT: Record<string, string> = {
  '0': '.###.#...##..###.#.###..##...#.###.', '1': '..#...##....#....#....#....#...###.',
  '2': '.###.#...#....#...#...#...#...#####', '3': '#####...#...#.....#.....##...#.###.',
  '4': '...#...##..#.#.#..#.#####...#....#.', '5': '######....####.....#....##...#.###.',
  '6': '..##..#...#....####.#...##...#.###.', '7': '#####....#...#...#...#....#....#...',
  '8': '.###.#...##...#.###.#...##...#.###.', '9': '.###.#...##...#.####....#...#..##..',
  A: '.###.#...##...#######...##...##...#', B: '####.#...##...#####.#...##...#####.',
  C: '.###.#...##....#....#....#...#.###.', D: '###..#..#.#...##...##...##..#.###..',
  E: '######....#....####.#....#....#####', F: '######....#....####.#....#....#....',
  G: '.###.#...##....#.####...##...#.####', H: '#...##...##...#######...##...##...#',
  I: '.###...#....#....#....#....#...###.', J: '..###...#....#....#....#.#..#..##..',
  K: '#...##..#.#.#..##...#.#..#..#.#...#', L: '#....#....#....#....#....#....#####',
  M: '#...###.###.#.##.#.##...##...##...#', N: '#...##...###..##.#.##..###...##...#',
  O: '.###.#...##...##...##...##...#.###.', P: '####.#...##...#####.#....#....#....',
  Q: '.###.#...##...##...##.#.##..#..##.#', R: '####.#...##...#####.#.#..#..#.#...#',
  S: '.#####....#.....###.....#....#####.', T: '#####..#....#....#....#....#....#..',
  U: '#...##...##...##...##...##...#.###.', V: '#...##...##...##...##...#.#.#...#..',
  W: '#...##...##...##.#.##.#.##.#.#.#.#.', X: '#...##...#.#.#...#...#.#.#...##...#',
  Y: '#...##...#.#.#...#....#....#....#..', Z: '#####....#...#...#...#...#....#####',
  '%': '##...##..#...#...#...#...#..##...##', '.': '..........................##...##..',
  '-': '...............#####...............', '(': '...#...#...#....#....#.....#.....#.',
  ')': '.#.....#.....#....#....#...#...#...', ':': '......##...##........##...##.......',
  '/': '.........#...#...#...#...#.........', '=': '..........#####.....#####..........',
  ',': '....................##....#...#....', ' ': '...................................',
  '+': '.......#....#..#####..#....#.......', "'": '..#....#...........................',
};

class Canvas {
  readonly png: PNG;
  constructor(readonly width: number, readonly height: number, bg: RGB) {
    this.png = new PNG({ width, height });
    this.rect(0, 0, width, height, bg);
  }
  rect(x: number, y: number, w: number, h: number, c: RGB): void {
    x = Math.round(x);
    y = Math.round(y);
    w = Math.round(w);
    h = Math.round(h);
    const d = this.png.data;
    for (let yy = Math.max(0, y); yy < Math.min(this.height, y + h); yy++) {
      for (let xx = Math.max(0, x); xx < Math.min(this.width, x + w); xx++) {
        const o = (yy * this.width + xx) * 4;
        d[o] = c[0];
        d[o + 1] = c[1];
        d[o + 2] = c[2];
        d[o + 3] = 255;
      }
    }
  }
  /** Text at (x, y) = top-left; returns its width. */
  text(s: string, x: number, y: number, c: RGB, scale = 1): number {
    let cx = x;
    for (const ch of s.toUpperCase()) {
      const g = FONT[ch] ?? FONT[' '];
      for (let r = 0; r < 7; r++) for (let k = 0; k < 5; k++) if (g[r * 5 + k] === '#') this.rect(cx + k * scale, y + r * scale, scale, scale, c);
      cx += 6 * scale;
    }
    return cx - x;
  }
}

const textWidth = (s: string, scale = 1) => s.length * 6 * scale - scale;

const INK: RGB = [40, 40, 40];
const MUTED: RGB = [110, 110, 110];
const WHITE: RGB = [255, 255, 255];
const DENSE: RGB = [200, 200, 200];

function pct(x: number): string {
  const p = Math.round(x * 1000) / 10;
  return `${Number.isInteger(p) ? p.toFixed(0) : p.toFixed(1)}%`;
}

const CAPTION = "COLOR: EXPERT'S SHARE OF ITS LAYER'S ROUTED TOKENS (NUMBERS IN %)";

/** Where the heat map puts things: cell (layer l, expert e) covers [gridX + e·cell, +cell−1) × [gridY + l·cell, +cell−1). */
export interface HeatmapLayout {
  width: number;
  height: number;
  cell: number;
  gridX: number;
  gridY: number;
  /** Share mapped to the top of the color scale (the largest share rounded up to 5%). */
  vmax: number;
}

const PAD = 12;
const titleOf = (o: HeatmapOptions) => o.title ?? 'EXPERT SHARE OF ROUTED TOKENS';
const subtitleOf = (u: ExpertUsage) => `${u.tokens} TOKENS, TOP-${u.expertsPerToken} OF ${u.experts} EXPERTS, ${u.layers.length} LAYERS`;
const statsOf = (u: ExpertUsage) => u.layers.map((l) => (l.moe ? `CV ${l.cv.toFixed(2)}  H ${l.normalizedEntropy.toFixed(2)}` : 'DENSE'));

export function heatmapLayout(usage: ExpertUsage, options: HeatmapOptions = {}): HeatmapLayout {
  const cell = options.cell ?? 24;
  if (!Number.isInteger(cell) || cell < 4 || cell > 256) throw new QuantMoeError('E_ARGUMENT', `heat map cell must be an integer in [4, 256], got ${cell}`);
  const L = usage.layers.length;
  const E = usage.experts;
  if (L === 0 || E === 0) throw new QuantMoeError('E_ARGUMENT', 'the model has no routed experts: nothing to draw');
  const maxShare = Math.max(...usage.layers.map((l) => l.maxShare));
  const vmax = Math.min(1, Math.max(0.05, Math.ceil(maxShare * 20 - 1e-9) / 20));
  const rowLabelW = textWidth(`L${L - 1}`) + 8;
  const statsW = Math.max(...statsOf(usage).map((s) => textWidth(s)), textWidth('CV    H/LOG E')) + 12;
  const gridX = PAD + rowLabelW;
  const gridY = PAD + 14 + 6 + 7 + 14 + 7 + 6 + 7 + 4; // title, subtitle, "EXPERT", column numbers
  const gridW = E * cell;
  const legendW = Math.max(200, Math.min(gridW, 480));
  const width = Math.max(
    gridX + gridW + 8 + statsW + PAD, PAD + textWidth(titleOf(options), 2) + PAD, PAD + textWidth(subtitleOf(usage)) + PAD,
    gridX + legendW + PAD + 40, gridX + textWidth(CAPTION) + PAD,
  );
  const height = gridY + L * cell + 18 + 7 + 4 + 14 + 4 + 7 + 4 + 7 + PAD;
  return { width, height, cell, gridX, gridY, vmax };
}

/** Renders the heat map; returns PNG bytes. */
export function renderExpertHeatmap(usage: ExpertUsage, options: HeatmapOptions = {}): Buffer {
  const { width, height, cell, gridX, gridY, vmax } = heatmapLayout(usage, options);
  const L = usage.layers.length;
  const E = usage.experts;
  const title = titleOf(options);
  const subtitle = subtitleOf(usage);
  const stats = statsOf(usage);
  const pad = PAD;
  const gridW = E * cell;
  const legendW = Math.max(200, Math.min(gridW, 480));
  const legendY = gridY + L * cell + 18;
  const cv = new Canvas(width, height, WHITE);

  cv.text(title, pad, pad, INK, 2);
  cv.text(subtitle, pad, pad + 14 + 6, MUTED);
  const headY = gridY - 4 - 7 - 6 - 7;
  cv.text('EXPERT', gridX + Math.max(0, (gridW - textWidth('EXPERT')) / 2), headY, MUTED);
  const showCellText = cell >= 18;
  for (let e = 0; e < E; e++) {
    const s = String(e);
    if (cell >= textWidth(s) + 2 || e % Math.ceil((textWidth(s) + 4) / cell) === 0) {
      cv.text(s, gridX + e * cell + Math.floor((cell - textWidth(s)) / 2), gridY - 4 - 7, INK);
    }
  }
  cv.text('CV    H/LOG E', gridX + gridW + 8, gridY - 4 - 7, MUTED);
  for (let l = 0; l < L; l++) {
    const row = usage.layers[l];
    const y = gridY + l * cell;
    const label = `L${l}`;
    cv.text(label, gridX - 8 - textWidth(label), y + Math.floor((cell - 7) / 2), INK);
    for (let e = 0; e < E; e++) {
      const x = gridX + e * cell;
      const share = row.share[e] ?? 0;
      const color = row.moe ? viridis(share / vmax) : DENSE;
      cv.rect(x, y, cell - 1, cell - 1, color);
      if (showCellText && row.moe) {
        const s = String(Math.round(share * 100));
        const lum = 0.299 * color[0] + 0.587 * color[1] + 0.114 * color[2];
        cv.text(s, x + Math.floor((cell - 1 - textWidth(s)) / 2), y + Math.floor((cell - 1 - 7) / 2), lum > 140 ? INK : WHITE);
      }
    }
    cv.text(stats[l], gridX + gridW + 8, y + Math.floor((cell - 7) / 2), row.moe ? INK : MUTED);
  }

  // legend: gradient bar 0..vmax; ticks and labels at 0 and vmax (first row below the bar) and at
  // the uniform share 1/E (first row where it fits, else the second)
  cv.text(CAPTION, gridX, legendY, MUTED);
  const barY = legendY + 7 + 4;
  for (let i = 0; i < legendW; i++) cv.rect(gridX + i, barY, 1, 14, viridis(i / (legendW - 1)));
  const xOf = (v: number) => gridX + Math.round((v / vmax) * (legendW - 1));
  const label = (v: number, text: string, row: number): [number, number] => {
    const x = xOf(v);
    cv.rect(x, barY + 14, 1, 4 + row * 11, INK);
    const tx = Math.max(gridX, Math.min(gridX + legendW - textWidth(text), x - Math.floor(textWidth(text) / 2)));
    cv.text(text, tx, barY + 14 + 4 + row * 11, INK);
    return [tx, tx + textWidth(text)];
  };
  const [, zeroEnd] = label(0, '0%', 0);
  const [maxStart] = label(vmax, pct(vmax), 0);
  const uniform = 1 / E;
  if (uniform <= vmax) {
    const text = `UNIFORM 1/${E} = ${pct(uniform)}`;
    const x = xOf(uniform);
    cv.rect(x, barY, 1, 14, WHITE);
    const fits = x - textWidth(text) / 2 > zeroEnd + 6 && x + textWidth(text) / 2 < maxStart - 6;
    label(uniform, text, fits ? 0 : 1);
  }
  return PNG.sync.write(cv.png);
}

/** Renders the heat map to a PNG file; E_IO when it cannot be written. */
export async function writeExpertHeatmap(usage: ExpertUsage, file: string, options: HeatmapOptions = {}): Promise<void> {
  const png = renderExpertHeatmap(usage, options);
  try {
    await fs.promises.writeFile(file, png);
  } catch (e) {
    throw new QuantMoeError('E_IO', `cannot write heat map '${file}': ${(e as Error).message}`);
  }
}
