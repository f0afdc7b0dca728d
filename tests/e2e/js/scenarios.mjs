// Drives a LangGraph server with the official JavaScript SDK and prints what it saw as one
// JSON object on stdout (tests/e2e/test_js_sdk.py asserts it).
//
//   node scenarios.mjs probes URL            the deterministic probe graphs
//   node scenarios.mjs shipyard URL REPO     a Shipyard run through plan approval
//
// Every observation is plain data (names, keys, values, statuses); an unexpected exception
// ends the script with exit code 1 and the error on stderr.
import { Client } from "@langchain/langgraph-sdk";

const [scenario, url, repo] = process.argv.slice(2);
const client = new Client({ apiUrl: url, apiKey: null });
const MISSING = "00000000-0000-4000-8000-000000000000";

async function collect(stream) {
  const parts = [];
  for await (const part of stream) parts.push(part);
  return parts;
}

async function statusOf(promise) {
  try {
    await promise;
    return null;
  } catch (err) {
    return err.status ?? String(err);
  }
}

async function threadsScenario() {
  const created = await client.threads.create({ metadata: { js: "probe" } });
  const got = await client.threads.get(created.thread_id);
  const found = await client.threads.search({ metadata: { js: "probe" }, limit: 10 });
  return {
    created_keys: Object.keys(created).sort(),
    created_status: created.status,
    got_same: got.thread_id === created.thread_id,
    got_metadata: got.metadata,
    search_ids: found.map((t) => t.thread_id).includes(created.thread_id),
  };
}

async function streamScenario() {
  const tid = (await client.threads.create()).thread_id;
  const parts = await collect(
    client.runs.stream(tid, "probe_chain", {
      input: { count: 0 },
      streamMode: ["values", "updates"],
    }),
  );
  const values = parts.filter((p) => p.event === "values").map((p) => p.data);
  const updates = parts.filter((p) => p.event === "updates").map((p) => p.data);
  return {
    events: parts.map((p) => p.event),
    metadata_keys: Object.keys(parts[0].data).sort(),
    update_nodes: updates.map((u) => Object.keys(u)),
    first_update: updates[0],
    last_values: values[values.length - 1],
    ids: parts.map((p) => p.id ?? null),
  };
}

async function waitAndJoinScenario() {
  const tid = (await client.threads.create()).thread_id;
  const waited = await client.runs.wait(tid, "probe_chain", { input: { count: 5 } });
  const run = await client.runs.create(tid, "probe_chain", { input: { count: 100 } });
  const joined = await client.runs.join(tid, run.run_id);
  const after = await client.runs.get(tid, run.run_id);
  const runs = await client.runs.list(tid);
  return {
    waited,
    created_status: run.status,
    joined_count: joined.count,
    joined_visited: joined.visited.length,
    run_status: after.status,
    run_statuses: runs.map((r) => r.status),
  };
}

async function interruptScenario() {
  const tid = (await client.threads.create()).thread_id;
  const paused = await client.runs.wait(tid, "probe_interrupt", { input: { topic: "js" } });
  const state = await client.threads.getState(tid);
  const thread = await client.threads.get(tid);
  const resumed = await client.runs.wait(tid, "probe_interrupt", {
    command: { resume: "yes" },
  });
  const history = await client.threads.getHistory(tid, { limit: 20 });
  return {
    paused_interrupt: paused.__interrupt__.map((i) => i.value),
    paused_prepared: paused.prepared,
    state_next: state.next,
    state_interrupt: state.interrupts.map((i) => i.value),
    same_interrupt_id: state.interrupts[0].id === paused.__interrupt__[0].id,
    thread_status: thread.status,
    resumed,
    status_after: (await client.threads.get(tid)).status,
    history_next: history.map((s) => s.next),
    history_first_values: history[0].values,
    history_has_checkpoints: history.every((s) => typeof s.checkpoint?.checkpoint_id === "string"),
  };
}

async function resumableScenario() {
  const tid = (await client.threads.create()).thread_id;
  const parts = await collect(
    client.runs.stream(tid, "probe_chain", {
      input: { count: 0 },
      streamMode: "updates",
      streamResumable: true,
    }),
  );
  const runId = parts[0].data.run_id;
  const events = parts.slice(1);
  const replay = await collect(
    client.runs.joinStream(tid, runId, { lastEventId: events[2].id }),
  );
  const ended = await collect(client.runs.joinStream(tid, runId));
  const same = (a, b) => JSON.stringify([a.event, a.data, a.id]) === JSON.stringify([b.event, b.data, b.id]);
  return {
    metadata_id: parts[0].id ?? null,
    event_count: events.length,
    all_have_ids: events.every((p) => p.id !== undefined && p.id !== null),
    replay_matches: replay.length === events.length - 3 && replay.every((p, i) => same(p, events[i + 3])),
    replay_count: replay.length,
    ended_join: ended.map((p) => p.event),
  };
}

async function errorsScenario() {
  const tid = (await client.threads.create()).thread_id;
  return {
    thread_get: await statusOf(client.threads.get(MISSING)),
    thread_state: await statusOf(client.threads.getState(MISSING)),
    run_get: await statusOf(client.runs.get(tid, MISSING)),
    assistant_get: await statusOf(client.assistants.get("no-such-assistant")),
    run_missing_thread: await statusOf(client.runs.wait(MISSING, "probe_chain", { input: {} })),
    run_unknown_graph: await statusOf(client.runs.wait(tid, "no-such-graph", { input: {} })),
  };
}

async function probes() {
  return {
    threads: await threadsScenario(),
    stream: await streamScenario(),
    wait_join: await waitAndJoinScenario(),
    interrupt: await interruptScenario(),
    resumable: await resumableScenario(),
    errors: await errorsScenario(),
  };
}

async function shipyard() {
  const tid = (await client.threads.create()).thread_id;
  const parts = await collect(
    client.runs.stream(tid, "shipyard", {
      input: { goal: "add a note", repo },
      streamMode: "updates",
    }),
  );
  const pauses = parts.filter((p) => p.data && p.data.__interrupt__);
  const request = pauses[0].data.__interrupt__[0].value;
  const statusPaused = (await client.threads.get(tid)).status;
  const stale = { decision: "approve", by: "js", content_hash: "sha256:old" };
  const refused = await statusOf(client.runs.wait(tid, "shipyard", { command: { resume: stale } }));
  const decision = { ...stale, content_hash: request.content_hash };
  const final = await client.runs.wait(tid, "shipyard", { command: { resume: decision } });
  return {
    thread_id: tid,
    request_kind: request.kind,
    has_hash: typeof request.content_hash === "string" && request.content_hash.length > 0,
    status_paused: statusPaused,
    stale_refused: refused,
    final_status: final.status,
    final_branch: final.branch,
    status_after: (await client.threads.get(tid)).status,
  };
}

const scenarios = { probes, shipyard };
if (!(scenario in scenarios)) {
  process.stderr.write(`unknown scenario ${scenario}; one of ${Object.keys(scenarios)}\n`);
  process.exit(2);
}
try {
  process.stdout.write(JSON.stringify(await scenarios[scenario]()) + "\n");
} catch (err) {
  process.stderr.write(`${err.stack ?? err}\n`);
  process.exit(1);
}
