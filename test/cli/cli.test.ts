// The quantmoe command line, run as a user would (compiled dist/, child processes).
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

const cli = path.resolve(__dirname, '../../dist/lib/cli/main.js');
const run = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 120000 });

describe('quantmoe CLI', () => {
  it('generate runs the shipped model by default and is deterministic at temperature 0', () => {
    const a = run('generate', 'And God said', '-n', '8', '--temperature', '0', '--json', '-t', '1');
    expect(a.status).toBe(0);
    const ja = JSON.parse(a.stdout);
    expect(ja.tokens).toHaveLength(8);
    const b = JSON.parse(run('generate', 'And God said', '-n', '8', '--temperature', '0', '--json', '-t', '1').stdout);
    expect(b.text).toBe(ja.text);
  });

  it('info, backends and --help', () => {
    const info = JSON.parse(run('info', '--json').stdout);
    expect(info.architecture).toBe('qwen2moe');
    expect(info.experts).toBe(8);
    const b = JSON.parse(run('backends', '--json').stdout);
    expect(b.cpu.threads).toBeGreaterThan(0);
    for (const cmd of ['generate', 'chat', 'info', 'convert', 'perplexity', 'compare', 'experts', 'bench', 'serve', 'backends']) {
      const h = run(cmd, '--help');
      expect({ cmd, status: h.status }).toEqual({ cmd, status: 0 });
    }
  });

  it('convert writes a GGUF that loads back', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qm-cli-'));
    try {
      const out = path.join(dir, 'kjv-q8.gguf');
      const c = run('convert', path.resolve(__dirname, '../../models/kjv-moe'), out, '--type', 'q8_0', '--no-progress');
      expect(c.status).toBe(0);
      const info = JSON.parse(run('info', '-m', out, '--json').stdout);
      expect(info.source).toBe('gguf');
      expect(Object.values(info.tensorTypes)).toContain('q8_0');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('errors are one line with a non-zero exit code (stack only with --verbose)', () => {
    const r = run('generate', 'x', '-m', '/nonexistent/model.gguf');
    expect(r.status).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/E_IO/);
    const v = run('generate', 'x', '-m', '/nonexistent/model.gguf', '--verbose');
    expect(v.stderr.split('\n').length).toBeGreaterThan(2);
    const bad = run('generate', 'x', '-n', 'lots');
    expect(bad.status).not.toBe(0);
  });
});
