#!/usr/bin/env node
// SPDX-License-Identifier: MIT
// send.mjs — create spans with the OpenTelemetry JS SDK and export them over
// OTLP/HTTP (protobuf or JSON) using OpenTelemetry's own exporters, then print
// on stdout, as one JSON document, exactly what was exported.
//
// This program is the *independent party* in ferretd's tests: all span
// creation, id generation (unless --seed), batching, serialisation and HTTP
// transport is done by the OpenTelemetry JS packages pinned in package.json
// (stable line 1.25.1 + experimental line 0.52.1, @opentelemetry/api 1.9.0).
//
// Usage:
//   node send.mjs --url http://127.0.0.1:PORT/v1/traces --encoding proto|json
//                 [--plan plan.json] [--seed N] [--traces N] [--base-time-ns NS]
//                 [--mode per-service|single] [--batch-size N] [--gzip]
//                 [--timeout-ms N] [--out sent.json] [--verbose]
//
//   --url        full OTLP/HTTP traces URL. The exporters use it verbatim; if it
//                has no path (or just "/"), "/v1/traces" is appended here.
//   --encoding   proto -> @opentelemetry/exporter-trace-otlp-proto
//                          (Content-Type: application/x-protobuf)
//                json  -> @opentelemetry/exporter-trace-otlp-http
//                          (Content-Type: application/json)
//   --plan       JSON file describing services and span trees (format below).
//                Without it a fixed built-in scenario is used.
//   --seed       make trace/span ids and sub-millisecond time parts
//                deterministic (seeded PRNG id generator). Without it the SDK's
//                own RandomIdGenerator is used. Same seed twice = same ids
//                (handy for duplicate-detection tests).
//   --base-time-ns  Unix ns start of the first root span (overrides the
//                plan's baseTimeNs; default now - 60 s + random nanos). With
//                --seed and --base-time-ns two runs produce identical spans.
//   --traces     instantiate the plan's traces N times (default 1), each time
//                with fresh ids; use it to make larger exports.
//   --mode       per-service (default): one BasicTracerProvider per service,
//                each with BatchSpanProcessor -> its own OTLP exporter; the
//                SDK's normal pipeline. One request per service (more if
//                --batch-size is smaller than that service's span count).
//                single: all providers feed an in-memory list; then ONE
//                exporter.export() call sends every span in one request that
//                holds several ResourceSpans.
//   --batch-size BatchSpanProcessor maxExportBatchSize (per-service mode).
//   --gzip       exporter compression 'gzip' (Content-Encoding: gzip).
//   --timeout-ms exporter timeoutMillis (default 10000). NOTE: this single
//                timer covers the first attempt AND all retries.
//   --out        write the JSON result to this file instead of stdout.
//   --verbose    OpenTelemetry diag logging (DEBUG) to stderr.
//
// Exit status: 0 if every span that was ended was exported successfully,
// 1 if any export failed (HTTP error, retries exhausted, timeout, connection
// refused...) or if spans went missing, 2 on usage errors. The JSON result is
// printed in every case ("ok": false plus "errors" on failure).
//
// Plan format (all fields optional unless stated):
// {
//   "baseTimeNs": "1700000000123456789",   // start of the first root span;
//                                          // default: now (+ seeded nanos)
//   "services": {                          // service.name -> options
//     "frontend": { "resource": {"ferret.run.id": "r1"},     // extra resource attrs
//                   "scope": {"name": "ferret-test", "version": "1.0.0"} }
//   },
//   "traces": [                            // root spans, each starts a trace
//     { "service": "frontend",             // required on roots; children inherit
//       "name": "GET /x",                  // required
//       "label": "root1",                  // optional, for links
//       "kind": "server",                  // internal|server|client|producer|consumer
//       "offsetNs": 0,                     // start, relative to parent start
//                                          // (roots: relative to previous root)
//       "durationNs": 5000000,
//       "attributes": {"k": "v", "n": 1, "d": 1.5, "b": true, "a": [1, 2]},
//       "status": {"code": "ok"|"error"|"unset", "message": "..."},
//       "events": [{"name": "e", "offsetNs": 10, "attributes": {}}],
//       "links": [{"label": "someEarlierSpan", "attributes": {}}],
//       "children": [ { ...same shape, may set its own "service"... } ] }
//   ]
// }
// Attribute values follow the OpenTelemetry API: string, number, boolean or a
// homogeneous array of one of those (null elements allowed). A JS number is an
// OTLP intValue if Number.isInteger(n), otherwise a doubleValue — so 3.0 can
// NOT be sent as a double (JS has no distinct float type).
//
// Output document:
// { "ok": true, "encoding": "proto", "url": "...", "mode": "per-service",
//   "exportCalls": 3, "errors": [],
//   "spans": [ { "traceId","spanId","parentSpanId" (lower-case hex, "" for
//                roots), "name", "service", "kind" (OTLP enum 0..5),
//                "kindName", "startTimeUnixNano","endTimeUnixNano" (decimal
//                strings), "resource" {typed}, "scope" {name,version},
//                "attributes" {typed}, "status" {code (OTLP 0..2), message},
//                "events" [...], "links" [...] } ],
//   "failedSpans": [ same shape, only when something failed ] }
// Typed values: {"type":"string","value":"x"} | {"type":"int","value":"42"}
// (decimal string, exact) | {"type":"double","value":1.5} |
// {"type":"bool","value":true} | {"type":"array","value":[typed...]} |
// {"type":"empty"} (a null array element is sent as an AnyValue with no value).
// receive.mjs writes the same shapes, so check.mjs can compare them directly.

import { parseArgs, format } from 'node:util';
import { readFileSync, writeFileSync } from 'node:fs';
import { context, trace, SpanKind, SpanStatusCode, diag, DiagLogLevel } from '@opentelemetry/api';
import { setGlobalErrorHandler, ExportResultCode } from '@opentelemetry/core';
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { Resource } from '@opentelemetry/resources';
import { SEMRESATTRS_SERVICE_NAME, SEMRESATTRS_SERVICE_VERSION } from '@opentelemetry/semantic-conventions';
import { OTLPTraceExporter as OTLPProtoExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { OTLPTraceExporter as OTLPJsonExporter } from '@opentelemetry/exporter-trace-otlp-http';

// ---------------------------------------------------------------- arguments
function usage(msg) {
  if (msg) process.stderr.write(`send.mjs: ${msg}\n`);
  process.stderr.write('usage: node send.mjs --url URL --encoding proto|json [--plan plan.json] [--seed N] ' +
    '[--traces N] [--base-time-ns NS] [--mode per-service|single] [--batch-size N] [--gzip] [--timeout-ms N] [--out FILE] [--verbose]\n');
  process.exit(2);
}

let args;
try {
  ({ values: args } = parseArgs({
    options: {
      url: { type: 'string' },
      encoding: { type: 'string', default: 'proto' },
      plan: { type: 'string' },
      seed: { type: 'string' },
      traces: { type: 'string', default: '1' },
      'base-time-ns': { type: 'string' },
      mode: { type: 'string', default: 'per-service' },
      'batch-size': { type: 'string' },
      gzip: { type: 'boolean', default: false },
      'timeout-ms': { type: 'string', default: '10000' },
      out: { type: 'string' },
      verbose: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  }));
} catch (e) {
  usage(e.message);
}
if (args.help) usage();
if (!args.url) usage('--url is required');
if (!['proto', 'json'].includes(args.encoding)) usage('--encoding must be proto or json');
if (!['per-service', 'single'].includes(args.mode)) usage('--mode must be per-service or single');
const nTraces = Number.parseInt(args.traces, 10);
if (!(nTraces >= 1)) usage('--traces must be >= 1');
const timeoutMillis = Number.parseInt(args['timeout-ms'], 10);
if (!(timeoutMillis > 0)) usage('--timeout-ms must be > 0');

let url = args.url;
{
  const u = new URL(url); // throws on garbage, which is what we want
  if (u.pathname === '' || u.pathname === '/') {
    u.pathname = '/v1/traces';
    url = u.toString();
  }
}

// diag logger to stderr only (DiagConsoleLogger would print debug/info via
// console.debug/console.info, i.e. on stdout, mixing with the JSON result).
if (args.verbose) {
  const w = (lvl) => (msg, ...rest) => process.stderr.write(`[otel ${lvl}] ${format(msg, ...rest)}\n`);
  diag.setLogger({ error: w('error'), warn: w('warn'), info: w('info'), debug: w('debug'), verbose: w('verbose') },
    DiagLogLevel.DEBUG);
}

// ------------------------------------------------- failure detection, part 1
// Anything the SDK reports through the global error handler (a failed export
// from BatchSpanProcessor's timer path or SimpleSpanProcessor, a processor
// timeout, ...) is recorded. By default the SDK only logs these via diag.error,
// which is silent unless a diag logger is installed — so an unhandled export
// failure is otherwise invisible.
const errors = [];
setGlobalErrorHandler((err) => {
  errors.push({ source: 'globalErrorHandler', message: describeError(err) });
});

function describeError(err) {
  if (err == null) return 'unknown error';
  if (Array.isArray(err)) return err.map(describeError).join('; ');
  const parts = [err.name && err.name !== 'Error' ? err.name : null, err.message || String(err)];
  if (err.code !== undefined) parts.push(`code=${err.code}`); // OTLPExporterError: HTTP status
  if (err.data) parts.push(`body=${JSON.stringify(String(err.data)).slice(0, 200)}`);
  return parts.filter(Boolean).join(' ');
}

// ------------------------------------------------------- seeded randomness
// mulberry32: tiny deterministic PRNG, used only when --seed is given.
function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const seeded = args.seed !== undefined;
const rand = seeded ? mulberry32(Number.parseInt(args.seed, 10) || 0) : Math.random;

function randomHex(bytes) {
  let s = '';
  for (let i = 0; i < bytes; i++) s += Math.floor(rand() * 256).toString(16).padStart(2, '0');
  return s;
}
// IdGenerator interface of sdk-trace-base (config.idGenerator). Never returns
// the all-zero id, which would be invalid.
const seededIdGenerator = {
  generateTraceId() { let id; do id = randomHex(16); while (/^0+$/.test(id)); return id; },
  generateSpanId() { let id; do id = randomHex(8); while (/^0+$/.test(id)); return id; },
};

// ------------------------------------------------------------ the scenario
// Built-in scenario: three services, one carrying the custom resource
// attribute ferret.run.id; a 7-span cross-service trace (4 levels deep) with
// every span kind, attributes of every allowed type, an ERROR status with a
// message, an OK status, events; and a second trace whose CONSUMER root links
// to the PRODUCER span of the first.
function builtinPlan() {
  const runId = seeded ? `run-seed-${args.seed}` : `run-${process.pid}-${Date.now()}`;
  return {
    services: {
      'ferret-frontend': {
        resource: { 'ferret.run.id': runId, [SEMRESATTRS_SERVICE_VERSION]: '1.2.3' },
        scope: { name: 'ferret-test-frontend', version: '0.1.0' },
      },
      'ferret-backend': { scope: { name: 'ferret-test-backend', version: '0.2.0' } },
      'ferret-db': { scope: { name: 'ferret-test-db' } },
    },
    traces: [
      {
        service: 'ferret-frontend', name: 'GET /checkout', kind: 'server', durationNs: 25_000_123,
        attributes: {
          'http.request.method': 'GET',
          'str.empty': '',
          'str.unicode': 'héllo ✓ 日本語 \u{1F980} "quoted" \\ back\nnewline',
          'int.positive': 42,
          'int.zero': 0,
          'int.negative': -7,
          'int.max_safe': Number.MAX_SAFE_INTEGER,
          'int.min_safe': Number.MIN_SAFE_INTEGER,
          'double.simple': 0.1,
          'double.negative': -2.5,
          // Every double >= 2^53 in magnitude is integral, so the JS SDK sends
          // it as intValue (and protobufjs then mangles it): large doubles
          // must be non-integral to stay doubles.
          'double.precise': 123456789.12345679,
          'double.tiny': 5e-324,
          'double.neg_tiny': -1e-300,
          'bool.true': true,
          'bool.false': false,
          'array.string': ['a', '', 'ünï'],
          'array.int': [1, -2, 3000000000],
          'array.double': [1.5, -0.25, 3.14159],
          'array.bool': [true, false, true],
          'array.empty': [],
        },
        status: { code: 'ok' },
        events: [{ name: 'request.received', offsetNs: 1_001, attributes: { 'bytes': 512, 'compressed': false } }],
        children: [
          { name: 'render', kind: 'internal', offsetNs: 1_000_000, durationNs: 2_000_000,
            attributes: { 'template': 'checkout.html' } },
          { name: 'POST /pay', label: 'client-pay', kind: 'client', offsetNs: 4_000_000, durationNs: 18_000_000,
            attributes: { 'server.address': 'backend', 'server.port': 8080 },
            children: [
              { service: 'ferret-backend', name: 'POST /pay', kind: 'server', offsetNs: 500_000, durationNs: 17_000_000,
                attributes: { 'http.response.status_code': 500 },
                status: { code: 'error', message: 'payment failed: db deadlock' },
                children: [
                  { name: 'validate', kind: 'internal', offsetNs: 100_000, durationNs: 300_000,
                    attributes: { 'valid': true, 'rules': ['amount', 'currency'] } },
                  { name: 'SELECT payments', kind: 'client', offsetNs: 1_000_000, durationNs: 9_000_000,
                    attributes: { 'db.system': 'postgresql' },
                    status: { code: 'error', message: 'deadlock detected' },
                    children: [
                      { service: 'ferret-db', name: 'query', kind: 'server', offsetNs: 250_000, durationNs: 8_000_000,
                        attributes: { 'db.rows': 0, 'db.cost': 12.75 },
                        status: { code: 'error', message: 'ERROR: deadlock detected (SQLSTATE 40P01)' },
                        events: [{ name: 'exception', offsetNs: 7_999_999,
                          attributes: { 'exception.type': 'DeadlockError', 'exception.message': 'deadlock detected' } }] },
                    ] },
                  { name: 'publish payment.failed', label: 'producer', kind: 'producer', offsetNs: 12_000_000, durationNs: 1_000_000,
                    attributes: { 'messaging.system': 'kafka', 'messaging.batch.message_count': 1 } },
                ] },
            ] },
        ],
      },
      {
        service: 'ferret-backend', name: 'consume payment.failed', kind: 'consumer', offsetNs: 30_000_000, durationNs: 4_000_000,
        links: [{ label: 'producer', attributes: { 'link.reason': 'caused-by' } }],
        children: [
          { name: 'notify', kind: 'internal', offsetNs: 1_000, durationNs: 3_000_000, status: { code: 'unset' } },
        ],
      },
    ],
  };
}

const plan = args.plan ? JSON.parse(readFileSync(args.plan, 'utf8')) : builtinPlan();
if (!Array.isArray(plan.traces) || plan.traces.length === 0) usage('plan has no traces');

// Base time as an exact BigInt of Unix nanoseconds. Sub-millisecond digits are
// deliberately non-zero so that nanosecond precision is exercised end to end.
let baseNs;
if (args['base-time-ns'] !== undefined) baseNs = BigInt(args['base-time-ns']);
else if (plan.baseTimeNs !== undefined) baseNs = BigInt(plan.baseTimeNs);
else baseNs = BigInt(Date.now() - 60_000) * 1_000_000n + BigInt(Math.floor(rand() * 999_999) + 1);

// HrTime ([seconds, nanos]) is the only TimeInput the SDK keeps exactly
// (numbers are milliseconds as floats and get rounded).
const toHrTime = (ns) => [Number(ns / 1_000_000_000n), Number(ns % 1_000_000_000n)];
const hrToNsString = (hr) => (BigInt(hr[0]) * 1_000_000_000n + BigInt(hr[1])).toString();

const KINDS = {
  internal: SpanKind.INTERNAL, server: SpanKind.SERVER, client: SpanKind.CLIENT,
  producer: SpanKind.PRODUCER, consumer: SpanKind.CONSUMER,
};
const OTLP_KIND_NAMES = ['SPAN_KIND_UNSPECIFIED', 'SPAN_KIND_INTERNAL', 'SPAN_KIND_SERVER',
  'SPAN_KIND_CLIENT', 'SPAN_KIND_PRODUCER', 'SPAN_KIND_CONSUMER'];
const STATUS = { unset: SpanStatusCode.UNSET, ok: SpanStatusCode.OK, error: SpanStatusCode.ERROR };

// ------------------------------------------- providers, processors, exporters
function makeExporter() {
  const config = { url, timeoutMillis };
  if (args.gzip) config.compression = 'gzip';
  return args.encoding === 'proto' ? new OTLPProtoExporter(config) : new OTLPJsonExporter(config);
}

// ------------------------------------------------- failure detection, part 2
// The authoritative signal: SpanExporter.export(spans, resultCallback) calls
// resultCallback({code: ExportResultCode.SUCCESS|FAILED, error}). The OTLP
// exporters call it only after the HTTP exchange (including all retries)
// finished. We wrap the exporter to see every result and every span.
class RecordingExporter {
  constructor(inner) { this.inner = inner; }
  export(spans, resultCallback) {
    exportCalls++;
    this.inner.export(spans, (result) => {
      if (result.code === ExportResultCode.SUCCESS) {
        exported.push(...spans);
      } else {
        failed.push(...spans);
        errors.push({ source: 'export', spans: spans.length, message: describeError(result.error) });
      }
      resultCallback(result);
    });
  }
  shutdown() { return this.inner.shutdown(); }
  forceFlush() { return this.inner.forceFlush ? this.inner.forceFlush() : Promise.resolve(); }
}

let exportCalls = 0;
const exported = []; // ReadableSpans confirmed sent
const failed = [];   // ReadableSpans whose export failed
const ended = [];    // every span we ended (to catch silently dropped spans)

// Collects ended spans (single mode) — a minimal SpanProcessor.
class CollectingProcessor {
  onStart() {}
  onEnd(span) { collected.push(span); }
  forceFlush() { return Promise.resolve(); }
  shutdown() { return Promise.resolve(); }
}
const collected = [];

// forceFlushTimeoutMillis must outlast the exporter's own timeout (which
// covers retries), otherwise the provider gives up first.
const providerConfigBase = { forceFlushTimeoutMillis: timeoutMillis + 10_000 };
if (seeded) providerConfigBase.idGenerator = seededIdGenerator;
const services = new Map(); // name -> { provider, tracer, exporter }
function service(name) {
  if (services.has(name)) return services.get(name);
  const opts = (plan.services && plan.services[name]) || {};
  // BasicTracerProvider merges Resource.default() (service.name
  // "unknown_service:node", telemetry.sdk.*) with this resource.
  const resource = new Resource({ ...(opts.resource || {}), [SEMRESATTRS_SERVICE_NAME]: name });
  const provider = new BasicTracerProvider({ ...providerConfigBase, resource });
  let exporter = null;
  if (args.mode === 'per-service') {
    exporter = new RecordingExporter(makeExporter());
    const bspConfig = { scheduledDelayMillis: 60_000, exportTimeoutMillis: timeoutMillis + 5_000 };
    if (args['batch-size']) {
      bspConfig.maxExportBatchSize = Number.parseInt(args['batch-size'], 10);
      bspConfig.maxQueueSize = Math.max(2048, bspConfig.maxExportBatchSize);
    } else {
      bspConfig.maxExportBatchSize = 512;
      bspConfig.maxQueueSize = 100_000; // never drop spans in large tests
    }
    provider.addSpanProcessor(new BatchSpanProcessor(exporter, bspConfig));
  } else {
    provider.addSpanProcessor(new CollectingProcessor());
  }
  const scope = opts.scope || { name: 'ferret-test' };
  const tracer = provider.getTracer(scope.name, scope.version);
  const entry = { name, provider, tracer, exporter };
  services.set(name, entry);
  return entry;
}

// --------------------------------------------------------- build the spans
const labels = new Map(); // label -> SpanContext (for links)

function buildSpan(node, parentSpan, parentStartNs, inheritedService) {
  const svcName = node.service || inheritedService;
  if (!svcName) throw new Error(`span "${node.name}" has no service`);
  if (!node.name) throw new Error('span without name');
  // Validate attribute values up front (throws for values the SDK would mangle).
  typedAttributes(node.attributes || {});
  for (const x of [...(node.events || []), ...(node.links || [])]) typedAttributes(x.attributes || {});
  const svc = service(svcName);
  const startNs = parentStartNs + BigInt(node.offsetNs ?? 0);
  const endNs = startNs + BigInt(node.durationNs ?? 1_000_000);

  const links = (node.links || []).map((l) => {
    const ctx = labels.get(l.label);
    if (!ctx) throw new Error(`link to unknown label "${l.label}" (links may only point to earlier spans)`);
    return { context: ctx, attributes: l.attributes || {} };
  });
  // Parent is passed explicitly through an API Context, which also works
  // across providers (cross-service parent/child within one trace).
  const parentCtx = parentSpan ? trace.setSpan(context.active(), parentSpan) : context.active();
  const kind = node.kind === undefined ? SpanKind.INTERNAL : KINDS[node.kind];
  if (kind === undefined) throw new Error(`unknown kind "${node.kind}"`);
  const span = svc.tracer.startSpan(node.name, {
    kind,
    startTime: toHrTime(startNs),
    attributes: node.attributes || {},
    links,
    root: !parentSpan,
  }, parentCtx);
  if (node.label) labels.set(node.label, span.spanContext());

  for (const ev of node.events || []) {
    span.addEvent(ev.name, ev.attributes || {}, toHrTime(startNs + BigInt(ev.offsetNs ?? 0)));
  }
  if (node.status) {
    const code = STATUS[node.status.code];
    if (code === undefined) throw new Error(`unknown status code "${node.status.code}"`);
    const st = { code };
    if (node.status.message !== undefined) st.message = node.status.message;
    span.setStatus(st);
  }
  for (const child of node.children || []) buildSpan(child, span, startNs, svcName);
  span.end(toHrTime(endNs));
  ended.push(span);
}

try {
  let rootStart = baseNs;
  for (let rep = 0; rep < nTraces; rep++) {
    for (const root of plan.traces) {
      rootStart += BigInt(root.offsetNs ?? 0);
      buildSpan(root, null, rootStart, root.service);
    }
  }
} catch (e) {
  usage(`bad plan: ${e.message}`);
}

// ------------------------------------------------------------------ export
async function run() {
  if (args.mode === 'per-service') {
    // Flush services one after another so request order is deterministic.
    // forceFlush() rejects (with an array of errors) when an export failed.
    for (const svc of services.values()) {
      try {
        await svc.provider.forceFlush();
      } catch (e) {
        errors.push({ source: `forceFlush(${svc.name})`, message: describeError(e) });
      }
    }
    for (const svc of services.values()) {
      try {
        await svc.provider.shutdown();
      } catch (e) {
        errors.push({ source: `shutdown(${svc.name})`, message: describeError(e) });
      }
    }
  } else {
    // One export call with all spans: the OTLP transformer groups them into
    // one ResourceSpans per Resource object and one ScopeSpans per scope.
    const exporter = new RecordingExporter(makeExporter());
    await new Promise((resolve) => exporter.export(collected, () => resolve()));
    await exporter.shutdown();
  }
}

function describeSpan(s) {
  const ctx = s.spanContext();
  return {
    traceId: ctx.traceId,
    spanId: ctx.spanId,
    parentSpanId: s.parentSpanId || '', // sdk-trace-base 1.x: ReadableSpan.parentSpanId
    name: s.name,
    service: String(s.resource.attributes[SEMRESATTRS_SERVICE_NAME]),
    kind: s.kind + 1, // API SpanKind has no UNSPECIFIED; OTLP enum = API + 1
    kindName: OTLP_KIND_NAMES[s.kind + 1],
    startTimeUnixNano: hrToNsString(s.startTime),
    endTimeUnixNano: hrToNsString(s.endTime),
    resource: typedAttributes(s.resource.attributes),
    scope: { name: s.instrumentationLibrary.name, version: s.instrumentationLibrary.version || '' },
    attributes: typedAttributes(s.attributes),
    status: { code: s.status.code, message: s.status.message || '' },
    events: s.events.map((e) => ({
      name: e.name, timeUnixNano: hrToNsString(e.time), attributes: typedAttributes(e.attributes || {}),
    })),
    links: s.links.map((l) => ({
      traceId: l.context.traceId, spanId: l.context.spanId, attributes: typedAttributes(l.attributes || {}),
    })),
  };
}

// Same typing rule as the OTLP transformer's toAnyValue (and the only one JS
// allows): integral numbers -> int, others -> double.
function typedValue(v) {
  if (v === null || v === undefined) return { type: 'empty' };
  if (typeof v === 'string') return { type: 'string', value: v };
  if (typeof v === 'boolean') return { type: 'bool', value: v };
  if (typeof v === 'number') {
    if (Number.isInteger(v)) {
      // An integral number beyond 2^53 would be sent as intValue by the SDK
      // and come out wrong (protobufjs wraps it; JSON gets an inexact number).
      if (!Number.isSafeInteger(v)) throw new Error(`attribute value ${v} is integral but not a safe integer; the JS SDK cannot send it faithfully`);
      return { type: 'int', value: BigInt(v).toString() };
    }
    return { type: 'double', value: Number.isFinite(v) ? v : String(v) };
  }
  if (Array.isArray(v)) return { type: 'array', value: v.map(typedValue) };
  return { type: 'unsupported', value: String(v) };
}
function typedAttributes(attrs) {
  const out = {};
  for (const [k, v] of Object.entries(attrs)) out[k] = typedValue(v);
  return out;
}

let exitCode = 0;
try {
  await run();
} catch (e) {
  errors.push({ source: 'run', message: describeError(e) });
}
const missing = ended.filter((s) => !exported.includes(s) && !failed.includes(s));
if (missing.length) errors.push({ source: 'sender', message: `${missing.length} ended spans were never handed to the exporter` });
const ok = errors.length === 0 && failed.length === 0 && exported.length === ended.length;
if (!ok) exitCode = 1;

const result = {
  ok,
  encoding: args.encoding,
  url,
  mode: args.mode,
  exportCalls,
  errors,
  spans: exported.map(describeSpan),
};
if (!ok) result.failedSpans = failed.concat(missing).map(describeSpan);
const text = JSON.stringify(result, null, 2) + '\n';
if (args.out) writeFileSync(args.out, text);
else process.stdout.write(text);
if (!ok) process.stderr.write(`send.mjs: export FAILED: ${errors.map((e) => `[${e.source}] ${e.message}`).join(' | ')}\n`);
process.exitCode = exitCode;
