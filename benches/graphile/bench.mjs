// graphile-worker's side of ../compare_graphile.sh: enqueue N no-op jobs, then drain them
// with one worker at the given concurrency and print jobs per second. `batched` turns on
// graphile-worker's local queue (size concurrency + 1, as its docs recommend) and batched
// completions; `default` leaves both off. Timed from just before the worker starts until
// it has stopped with every job completed (the batches flushed).
//
//   node bench.mjs batched|default N CONCURRENCY SCHEMA   (DATABASE_URL in the environment)
import { Logger, makeWorkerUtils, run } from "graphile-worker";

// Silent: logging each job would measure the console, not the queue.
const logger = new Logger(() => () => {});

const [mode, nArg, cArg, schema] = process.argv.slice(2);
const n = Number(nArg);
const concurrency = Number(cArg);
const connectionString = process.env.DATABASE_URL;
if (!["batched", "default"].includes(mode) || !(n > 0) || !(concurrency > 0) || !schema) {
  console.error("usage: node bench.mjs batched|default N CONCURRENCY SCHEMA");
  process.exit(64);
}

const utils = await makeWorkerUtils({ connectionString, schema, logger });
await utils.migrate();
await utils.addJobs(Array.from({ length: n }, (_, i) => ({ identifier: "noop", payload: { i } })));

const batched = mode === "batched";
let done = 0;
let allDone;
const finished = new Promise((resolve) => (allDone = resolve));
const preset = {
  worker: {
    connectionString,
    schema,
    concurrentJobs: concurrency,
    maxPoolSize: concurrency + 2,
    pollInterval: 1000,
    ...(batched
      ? { localQueue: { size: concurrency + 1 }, completeJobBatchDelay: 0, failJobBatchDelay: 0 }
      : {}),
  },
};
const start = process.hrtime.bigint();
const runner = await run({
  preset,
  noHandleSignals: true,
  logger,
  crontab: "",
  taskList: {
    noop: async () => {
      done += 1;
      if (done === n) allDone();
    },
  },
});
await finished;
await runner.stop();
const seconds = Number(process.hrtime.bigint() - start) / 1e9;
const left = await utils.withPgClient((client) =>
  client.query(`select count(*)::int as c from "${schema}"._private_jobs`),
);
await utils.release();
if (left.rows[0].c !== 0) {
  console.error(`${left.rows[0].c} jobs left`);
  process.exit(1);
}
console.log((n / seconds).toFixed(0));
