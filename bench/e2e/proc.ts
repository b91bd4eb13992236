// /proc readings shared by the end-to-end benchmark's driver and its quantmoe runner
// (bench/e2e/run-llama-cpp.mjs carries a copy of the same few lines).
//  - machine busy time: /proc/stat "cpu" line, user+nice+system+irq+softirq+steal jiffies;
//  - this process's CPU time: /proc/self/stat utime+stime (all threads, worker threads included);
//  - peak RSS: VmHWM in /proc/self/status.
// CPU time of OTHER processes over a window = Δ machine busy − Δ own CPU time.
import * as fs from 'fs';

export interface CpuSnapshot {
  /** performance.now() in ms. */
  t: number;
  /** Machine-wide busy jiffies. */
  busy: number;
  /** This process's utime+stime jiffies. */
  self: number;
}

export function machineBusyJiffies(): number {
  const line = fs.readFileSync('/proc/stat', 'utf8').split('\n', 1)[0];
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal guest guest_nice (guest is already in user)
  return f[0] + f[1] + f[2] + f[5] + f[6] + (f[7] ?? 0);
}

export function processJiffies(pid: number | 'self' = 'self'): number {
  const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  // fields after the ")" that closes the command name: state is field 3, utime 14, stime 15
  const rest = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return Number(rest[11]) + Number(rest[12]);
}

export function cpuSnapshot(): CpuSnapshot {
  return { t: performance.now(), busy: machineBusyJiffies(), self: processJiffies() };
}

/** kB values of VmHWM / VmRSS from /proc/self/status. */
export function memoryStatus(): { vmHWMkB: number; vmRSSkB: number } {
  const s = fs.readFileSync('/proc/self/status', 'utf8');
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(s)?.[1] ?? NaN);
  return { vmHWMkB: kb('VmHWM'), vmRSSkB: kb('VmRSS') };
}

/** Window between two snapshots, in seconds (CLK_TCK = 100 on Linux). */
export interface CpuWindow {
  wallS: number;
  selfS: number;
  otherS: number;
}

export function cpuWindow(a: CpuSnapshot, b: CpuSnapshot, hz = 100): CpuWindow {
  const selfS = (b.self - a.self) / hz;
  return { wallS: (b.t - a.t) / 1000, selfS, otherS: Math.max(0, (b.busy - a.busy) / hz - selfS) };
}
