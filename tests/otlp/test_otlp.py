#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""OTLP both ways, against OpenTelemetry's own code (tests/otlp/package.json).

In: OpenTelemetry's JS SDK and its exporters (send.mjs) export nested spans
of several services, with attributes of every type and error statuses, to
ferretd --otlp-listen, as protobuf and as JSON; every span must come back
from `ferret query --tree --expand --json` with its parent, times, tags and
status. Out: ferretd --forward sends what a C program records to a receiver
that decodes with the OpenTelemetry project's generated code (receive.mjs);
every span must arrive once, with its ids, parent, times, attributes,
status and resource attributes, also when the receiver refuses for a while
(503), is gone, and ferretd restarts meanwhile. And bad input: the right
status, counted, the daemon serving on.
"""
import gzip
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import struct
import sys
import tempfile
import time
import unittest
import zlib

FERRET = os.environ["FERRET_CLI"]
FERRETD = os.environ["FERRETD"]
SPAN_MIX = os.environ["FERRET_SPAN_MIX"]
HERE = os.path.dirname(os.path.abspath(__file__))
NODE = shutil.which("node")
CI = os.environ.get("CI") == "true"


def require_node():
    missing = None
    if not NODE:
        missing = "no node (scripts/test installs Node.js where npm is missing)"
    elif not os.path.isdir(os.path.join(HERE, "node_modules", "@opentelemetry")):
        missing = "no OpenTelemetry packages in tests/otlp/node_modules (scripts/test runs npm ci there)"
    if missing:
        print(f"{'FAIL' if CI else 'SKIP'}: {missing}")
        sys.exit(1 if CI else 77)


def ferret(*args, check=True):
    r = subprocess.run([FERRET, *args], capture_output=True, text=True, timeout=120)
    if check and r.returncode != 0:
        raise AssertionError(f"ferret {' '.join(args)} failed: {r.stderr}")
    return r


def ferret_json(*args):
    return json.loads(ferret(*args, "--json").stdout)


def wait_for(what, condition, timeout=60):
    """Polls @condition until it holds: the states waited on here (a
    daemon's counters, a receiver's file) have no event to wait on."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


class Daemon:
    """A ferretd on a private runtime directory, waited for by its READY=1."""

    def __init__(self, db, runtime_dir, args=()):
        self.runtime_dir = runtime_dir
        notify = runtime_dir + ".notify"
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(notify)
        env = dict(os.environ, NOTIFY_SOCKET=notify)
        self.log = open(runtime_dir + ".log", "a")
        self.proc = subprocess.Popen([FERRETD, "--db", db, "--runtime-dir", runtime_dir, *args], env=env,
                                     stderr=self.log)
        sock.settimeout(30)
        try:
            while b"READY=1" not in sock.recv(4096):
                pass
        finally:
            sock.close()
            os.unlink(notify)

    def status(self):
        return ferret_json("status", "--runtime-dir", self.runtime_dir)

    def describe(self):
        """Whether it still runs, and the end of its log: for a failure's message."""
        self.log.flush()
        with open(self.log.name, errors="replace") as f:
            tail = f.read()[-4000:]
        code = self.proc.poll()
        state = "still running" if code is None else f"exited with {code}"
        return f"ferretd {state}; its log ends:\n{tail}"

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=60)
        self.log.close()
        return self.proc.returncode


class Receiver:
    """receive.mjs: decodes with otlp-transformer's root.js, one JSON line a span."""

    def __init__(self, out, port=0, append=False):
        self.out = out
        args = [NODE, os.path.join(HERE, "receive.mjs"), "--port", str(port), "--out", out, "--quiet"]
        self.proc = subprocess.Popen(args + (["--append"] if append else []), stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("listening "):
            raise AssertionError(f"receive.mjs did not start: {line!r}")
        self.port = int(line.split()[1])
        self.url = f"http://127.0.0.1:{self.port}"

    def request(self, method, path, body=None):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        c.request(method, path, body=json.dumps(body) if body is not None else None,
                  headers={"Content-Type": "application/json"})
        r = c.getresponse()
        data = r.read()
        c.close()
        return json.loads(data) if data else None

    def stats(self):
        return self.request("GET", "/stats")

    def spans(self):
        with open(self.out) as f:
            return [json.loads(line) for line in f if line.strip()]

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=30)


def stored_spans(runtime_dir, run):
    """Every span of @run, with its parent's span id, from --expand."""
    tree = ferret_json("query", "--tree", "--expand", "--run", run, "--runtime-dir", runtime_dir)
    out = {}

    def walk(nodes, parent):
        for n in nodes:
            n["parent_id"] = parent
            out[n["span_id"]] = n
            walk(n.get("children", []), n["span_id"])
    walk(tree["roots"], None)
    return out


def send(url, encoding, seed, traces=2, extra=(), daemon=None):
    r = subprocess.run([NODE, os.path.join(HERE, "send.mjs"), "--url", url + "/v1/traces", "--encoding", encoding,
                        "--seed", str(seed), "--traces", str(traces), *extra],
                       capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        raise AssertionError(f"send.mjs failed: {r.stderr[-2000:]}\n{r.stdout[-1000:]}\n"
                             + (daemon.describe() if daemon else ""))
    return json.loads(r.stdout)


KINDS = {1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}


# A few protobuf fields, to make requests no SDK would make.
def pb_varint(v):
    out = bytearray()
    while True:
        b, v = v & 0x7F, v >> 7
        out.append(b | (0x80 if v else 0))
        if not v:
            return bytes(out)


def pb_len(field, data):
    return pb_varint(field << 3 | 2) + pb_varint(len(data)) + data


def pb_fixed64(field, v):
    return pb_varint(field << 3 | 1) + v.to_bytes(8, "little")


def pb_int(field, v):
    return pb_varint(field << 3) + pb_varint(v)


def otlp_request(service, span_id, n_attributes):
    """An ExportTraceServiceRequest of one span with @n_attributes ints."""
    attr = lambda key, value: pb_len(1, key.encode()) + pb_len(2, value)
    resource = pb_len(1, attr("service.name", pb_len(1, service.encode())))
    span = (pb_len(1, bytes(range(1, 17))) + pb_len(2, span_id.to_bytes(8, "big")) + pb_len(5, b"wide") +
            pb_fixed64(7, 1700000000000000000) + pb_fixed64(8, 1700000000000001000) +
            b"".join(pb_len(9, attr(f"k{i}", pb_int(3, i))) for i in range(n_attributes)))
    return pb_len(1, pb_len(1, resource) + pb_len(2, pb_len(2, span)))


class OtlpTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="ferret-otlp-")
        self.daemons, self.receivers = [], []

    def tearDown(self):
        for d in self.daemons:
            if d.proc.poll() is None:
                d.stop()
        for r in self.receivers:
            if r.proc.poll() is None:
                r.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def daemon(self, *args, name="rt"):
        d = Daemon(self.path("db"), self.path(name), args)
        self.daemons.append(d)
        return d

    def receiver(self, **kw):
        r = Receiver(self.path("received.jsonl"), **kw)
        self.receivers.append(r)
        return r


class In(OtlpTest):
    def listening(self):
        d = self.daemon("--otlp-listen", "127.0.0.1:0")
        host, port = d.status()["otlp"]["listen"].rsplit(":", 1)
        return d, f"http://{host}:{port}", int(port)

    def assert_tags(self, span, tags):
        for key, attr in span["attributes"].items():
            got = tags.get(key)
            kind, value = attr["type"], attr["value"]
            if kind == "string":
                self.assertEqual(got, value, key)
            elif kind == "int":
                self.assertEqual(got, int(value), key)
            elif kind == "double":
                self.assertEqual(float(got), float(value), key)
            elif kind == "bool":
                self.assertIs(got, value, key)
            else:   # arrays and maps: as their text
                self.assertIsInstance(got, str, key)
        self.assertEqual(tags.get("otel.kind"), KINDS.get(span["kind"]), span["name"])

    def check_sent(self, d, sent):
        """Every span sent is stored, under the run of its service (or its
        ferret.run.id), with its parent when the parent is in that run."""
        runs = {}
        for s in sent["spans"]:
            run = s["resource"].get("ferret.run.id", {}).get("value") or s["service"]
            runs.setdefault(run, []).append(s)
        for run, spans in runs.items():
            stored = stored_spans(d.runtime_dir, run)
            ids = set(stored)
            for s in spans:
                got = stored.get(s["spanId"])
                self.assertIsNotNone(got, f"{run}: span {s['name']} {s['spanId']} not stored")
                self.assertEqual(got["name"], s["name"])
                self.assertEqual(got["trace_id"], s["traceId"])
                parent = s.get("parentSpanId") or None
                self.assertEqual(got["parent_id"], parent if parent in ids else None, s["name"])
                start, end = int(s["startTimeUnixNano"]), int(s["endTimeUnixNano"])
                self.assertEqual((got["start_ns"], got["duration_ns"]), (start, end - start), s["name"])
                if s["status"]["code"] == 2:
                    self.assertEqual((got["status"], got.get("message")), ("error", s["status"]["message"] or None))
                else:
                    self.assertEqual(got["status"], "ok")
                self.assert_tags(s, got["tags"])

    def test_the_sdk_exports_protobuf_and_json(self):
        d, url, _ = self.listening()
        total = 0
        for encoding, seed, extra in (("proto", 1, []), ("json", 2, ["--gzip"])):
            sent = send(url, encoding, seed=seed, extra=extra, daemon=d)
            self.assertTrue(sent["ok"], sent.get("errors"))
            self.check_sent(d, sent)
            total += len(sent["spans"])
        # Nothing more was stored than was sent.
        self.assertEqual(sum(r["spans"] for r in ferret_json("runs", "--runtime-dir", d.runtime_dir)), total)
        st = d.status()["otlp"]
        self.assertEqual((st["refused_requests"], st["rejected_spans"]), (0, 0))
        self.assertGreaterEqual(st["requests"], 6)
        # The trees and pictures work on them unchanged.
        ferret("query", "--tree", "--run", "ferret-backend", "--runtime-dir", d.runtime_dir)
        ferret("flame", "--run", "ferret-backend", "-o", self.path("otlp.svg"), "--runtime-dir", d.runtime_dir)

    def test_more_connections_than_places_are_all_answered(self):
        # The SDK opens a connection for each of up to 30 exports in flight
        # and keeps them open: more than the receiver's 16 places. Those
        # past them wait in the backlog; near the limit answers close their
        # connections, so none waits until it times out.
        d, url, _ = self.listening()
        sent = send(url, "proto", seed=5, traces=1000, daemon=d)
        self.assertTrue(sent["ok"], sent.get("errors"))
        stored = sum(r["spans"] for r in ferret_json("runs", "--runtime-dir", d.runtime_dir))
        self.assertEqual(stored, len(sent["spans"]))

    def post(self, port, body, content_type="application/x-protobuf", headers=None, method="POST", path="/v1/traces"):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        c.request(method, path, body=body, headers={"Content-Type": content_type, **(headers or {})})
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, data

    def test_bad_input_gets_the_right_answer_and_is_counted(self):
        d, url, port = self.listening()
        with open(os.path.join(HERE, "example-request.bin"), "rb") as f:
            example = f.read()
        with open(os.path.join(HERE, "example-request.json")) as f:
            good_json = json.load(f)
        refused = 0

        def expect(status, *args, **kw):
            nonlocal refused
            got, _ = self.post(port, *args, **kw)
            self.assertEqual(got, status, args[:1])
            refused += status != 200

        expect(400, b"\x0a\xff\xff\xff\xff\x0f garbage")
        expect(400, example[:len(example) // 2])
        expect(400, b"{not json", "application/json")
        expect(415, example, "text/plain")
        expect(415, example, headers={"Content-Encoding": "br"})
        expect(405, None, method="GET")
        expect(404, example, path="/v1/logs")
        # Text that is not UTF-8, in JSON and in protobuf (a span's name).
        bad = json.dumps(good_json).encode()
        self.assertIn(b'"POST /pay"', bad)
        expect(400, bad.replace(b'"POST /pay"', b'"POST \xff"', 1), "application/json")
        self.assertIn(b"render", example)
        expect(400, example.replace(b"render", b"rend\xffr", 1))
        # A 1 GB body is refused on its headers, without reading it.
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        c.putrequest("POST", "/v1/traces")
        c.putheader("Content-Type", "application/x-protobuf")
        c.putheader("Content-Length", str(1 << 30))
        c.endheaders()
        c.send(b"\0" * 65536)
        self.assertEqual(c.getresponse().status, 413)
        c.close()
        refused += 1
        # The same sent in chunks, with no length said: read and thrown away.
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        c.request("POST", "/v1/traces", body=(b"\0" * 1048576 for _ in range(6)),
                  headers={"Content-Type": "application/x-protobuf"}, encode_chunked=True)
        self.assertEqual(c.getresponse().status, 413)
        c.close()
        refused += 1

        # A gzipped body whose header holds a 200 KB comment: the first
        # pieces the server reads inflate to nothing, before any body is
        # allocated (UBSan caught memcpy() given NULL there in CI).
        deflate = zlib.compressobj(wbits=-15)
        zipped = (b"\x1f\x8b\x08\x10" + bytes(6) + b"x" * 200000 + b"\0"
                  + deflate.compress(example) + deflate.flush()
                  + struct.pack("<II", zlib.crc32(example), len(example)))
        self.assertEqual(gzip.decompress(zipped), example)
        status, _ = self.post(port, zipped, headers={"Content-Encoding": "gzip"})
        self.assertEqual(status, 200)

        # 100,000 attributes on one span (1.4 MB of protobuf): stored with
        # the first 250, the rest counted on it.
        status, _ = self.post(port, otlp_request("wide", 0xabc, 100000))
        self.assertEqual(status, 200)
        got = stored_spans(d.runtime_dir, "wide")["0000000000000abc"]
        self.assertEqual(got["tags"]["ferret.omitted"], 100000 - 250)
        self.assertEqual((got["tags"]["k0"], got["tags"]["k249"], "k250" in got["tags"]), (0, 249, False))
        # A span without a span id: the others stored, it rejected (partial success).
        span = dict(good_json["resourceSpans"][0]["scopeSpans"][0]["spans"][0], attributes=[], spanId="")
        good_json["resourceSpans"] = good_json["resourceSpans"][:1]
        good_json["resourceSpans"][0]["scopeSpans"] = good_json["resourceSpans"][0]["scopeSpans"][:1]
        good_json["resourceSpans"][0]["scopeSpans"][0]["spans"] = [span, dict(span, spanId="00000000000000aa")]
        status, body = self.post(port, json.dumps(good_json).encode(), "application/json")
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(body)["partialSuccess"]["rejectedSpans"], "1")

        st = d.status()
        self.assertEqual(st["otlp"]["refused_requests"], refused)
        self.assertEqual(st["otlp"]["rejected_spans"], 1)
        self.assertGreaterEqual(st["rejected_messages"], refused)
        sent = send(url, "proto", seed=3, daemon=d)   # and it serves on
        self.check_sent(d, sent)

    def test_only_loopback_unless_told(self):
        r = subprocess.run([FERRETD, "--db", self.path("db2"), "--runtime-dir", self.path("rt2"),
                            "--otlp-listen", "0.0.0.0:0"], capture_output=True, text=True, timeout=60)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("not a loopback address", r.stderr)


class Out(OtlpTest):
    def record(self, rt, seed, spans=3000):
        env = dict(os.environ, FERRET_RUNTIME_DIR=rt, FERRET_RUN_ID=f"mix-{seed}")
        r = subprocess.run([SPAN_MIX, str(seed), "2", str(spans)], env=env, capture_output=True, text=True,
                           timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        return f"mix-{seed}"

    def sent_all(self, d):
        f = d.status().get("forward", {})
        return f.get("backlog") == 0 and f

    def check_received(self, d, runs, received):
        by_id = {}
        for s in received:
            by_id.setdefault(s["spanId"], []).append(s)
        total = 0
        for run in runs:
            stored = stored_spans(d.runtime_dir, run)
            total += len(stored)
            for sid, want in stored.items():
                got = by_id.get(sid, [])
                self.assertEqual(len(got), 1, f"span {sid} of {run} received {len(got)} times")
                got = got[0]
                self.assertEqual(got["traceId"], want["trace_id"])
                self.assertEqual(got["parentSpanId"] or None, want["parent_id"])
                self.assertEqual(got["name"], want["name"])
                self.assertEqual(int(got["startTimeUnixNano"]), want["start_ns"])
                self.assertEqual(int(got["endTimeUnixNano"]) - int(got["startTimeUnixNano"]), want["duration_ns"])
                self.assertEqual(got["status"]["code"], 2 if want["status"] == "error" else 0)
                if want["status"] == "error":
                    self.assertEqual(got["status"]["message"], want["message"])
                if want["status"] == "warning":
                    self.assertEqual(got["attributes"]["ferret.status"]["value"], "warning")
                attrs = got["attributes"]
                for key, value in want["tags"].items():
                    a = attrs[key]
                    if isinstance(value, bool):
                        self.assertEqual((a["type"], a["value"]), ("bool", value), key)
                    elif isinstance(value, int):
                        self.assertEqual((a["type"], int(a["value"])), ("int", value), key)
                    elif isinstance(value, float):
                        self.assertEqual(a["type"], "double", key)
                        self.assertAlmostEqual(float(a["value"]), value, places=9)
                    else:
                        self.assertEqual((a["type"], a["value"]), ("string", value), key)
                self.assertEqual(int(attrs["thread.id"]["value"]), want["tid"])
                if want["kind"] == "async":
                    self.assertEqual(attrs["ferret.kind"]["value"], "async")
                res = got["resource"]
                self.assertEqual(res["ferret.run.id"]["value"], run)
                self.assertEqual(res["service.name"]["value"], "span-mix")
                self.assertEqual(int(res["process.pid"]["value"]), want["pid"])
                self.assertIn("span-mix", res["process.command_line"]["value"])
                self.assertEqual(res["host.name"]["value"], socket.gethostname())
        self.assertEqual(len(received), total)

    def test_what_is_stored_is_forwarded_once(self):
        recv = self.receiver()
        d = self.daemon("--forward", recv.url)
        runs = [self.record(d.runtime_dir, 1)]
        stored = ferret_json("query", "--run", runs[0], "--runtime-dir", d.runtime_dir)["spans"]
        wait_for("the forwarder", lambda: (self.sent_all(d) or {}).get("sent") == stored)
        self.check_received(d, runs, recv.spans())

        # The receiver refuses for a while (503, no Retry-After), then is
        # gone altogether while ferretd restarts; nothing is lost, nothing
        # sent twice.
        recv.request("POST", "/control", {"mode": "503", "forMs": 3000})
        runs.append(self.record(d.runtime_dir, 2))
        wait_for("a refused request", lambda: d.status()["forward"]["failures"] > 0)
        recv.stop()
        runs.append(self.record(d.runtime_dir, 3))
        self.assertGreater(d.status()["forward"]["backlog"], 0)
        self.assertEqual(d.stop(), 0)
        d = self.daemon("--forward", recv.url, name="rt2")
        self.assertGreater(d.status()["forward"]["backlog"], 0)
        runs.append(self.record(d.runtime_dir, 4))
        recv = self.receiver(port=recv.port, append=True)
        wait_for("the backlog", lambda: self.sent_all(d))
        f = d.status()["forward"]
        self.assertEqual((f["dropped"], f["rejected"]), (0, 0))
        self.check_received(d, runs, recv.spans())
        self.assertEqual(recv.stats()["duplicates"], 0)

    def test_export_otlp_sends_one_run(self):
        recv = self.receiver()
        d = self.daemon()
        run = self.record(d.runtime_dir, 5, spans=500)
        stored = ferret_json("query", "--run", run, "--runtime-dir", d.runtime_dir)["spans"]
        r = ferret("export", "--run", run, "--format", "otlp", "--to", recv.url, "--runtime-dir", d.runtime_dir)
        self.assertIn(f"{stored} spans sent", r.stderr)
        self.check_received(d, [run], recv.spans())


if __name__ == "__main__":
    require_node()
    unittest.main(verbosity=2)
