// Loading on a machine without a binary: one error that lists what was tried and how to fix it.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

const loader = path.resolve(__dirname, '../../scripts/load-addon.js');

describe('addon loading', () => {
  it('a package without any binary fails with E_LOAD naming what was tried and the fix', () => {
    const pkg = fs.mkdtempSync(path.join(os.tmpdir(), 'qm-nobin-'));
    try {
      fs.mkdirSync(path.join(pkg, 'scripts'));
      fs.copyFileSync(loader, path.join(pkg, 'scripts', 'load-addon.js'));
      fs.writeFileSync(path.join(pkg, 'package.json'), JSON.stringify({ name: 'quantmoe', version: '0.0.0' }));
      const code = `try { require(${JSON.stringify(path.join(pkg, 'scripts', 'load-addon.js'))}).load(); }
        catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })); }`;
      const r = spawnSync(process.execPath, ['-e', code], {
        encoding: 'utf8', env: { ...process.env, QUANTMOE_ADDON: '', NODE_PATH: path.resolve(__dirname, '../../node_modules') },
      });
      const out = JSON.parse(r.stdout);
      expect(out.code).toBe('E_LOAD');
      expect(out.message).toMatch(/build[/\\]Release/);
      expect(out.message).toMatch(/prebuilds/);
      expect(out.message).toMatch(/npm rebuild quantmoe/);
    } finally {
      fs.rmSync(pkg, { recursive: true, force: true });
    }
  });

  it('a bad QUANTMOE_ADDON path fails with E_LOAD, not a raw require error', () => {
    const r = spawnSync(process.execPath, ['-e', `try { require(${JSON.stringify(loader)}).load(); } catch (e) { console.log(e.code, e.message); }`], {
      encoding: 'utf8', env: { ...process.env, QUANTMOE_ADDON: '/nonexistent/quantmoe.node' },
    });
    expect(r.stdout).toMatch(/^E_LOAD .*QUANTMOE_ADDON=\/nonexistent\/quantmoe\.node/);
  });
});
