/**
 * The bench's noisy neighbour: a process that takes about `BENCH_HOG_SHARE` (0.5) of a core all through the run, in
 * bursts (busy for a share of every 200 ms, then idle), the way a neighbour pod's work comes and goes. Runs until
 * it is killed.
 */
const share = Number(process.env.BENCH_HOG_SHARE ?? 0.5);
const periodMs = 200;
let x = 0;
const burst = (): void => {
  const until = performance.now() + share * periodMs;
  while (performance.now() < until) x = (x * 1103515245 + 12345) % 2147483648;
  setTimeout(burst, (1 - share) * periodMs);
};
burst();
