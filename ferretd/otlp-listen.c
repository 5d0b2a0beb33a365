/* SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

#include "log.h"
#include "otlp-in.h"
#include "otlp-json.h"
#include "otlp-listen.h"
#include "pb-write.h"

#define CONNECTION_TIMEOUT_S 30

struct otlp_listen {
        struct MHD_Daemon *mhd;
        struct otlp_in *in;
        uint16_t port;
        char address[280];            /* as given, with the port it got */
};

/* One request's state, from its headers to its answer. */
struct request {
        bool json, gzip;
        bool too_large, bad_gzip;
        uint8_t *body;
        size_t len, cap;
        z_stream z;
        bool z_ready;
};

static void request_free(struct request *r)
{
        if (!r)
                return;
        if (r->z_ready)
                inflateEnd(&r->z);
        free(r->body);
        free(r);
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe)
{
        request_free(*con_cls);
        *con_cls = NULL;
}

/* Connections past OTLP_MAX_CONNECTIONS wait in the kernel's backlog until
 * one of ours closes, and the SDKs keep theirs open between requests: a
 * burst of exports from one SDK (the JavaScript one sends up to 30 at once)
 * could hold every place while idle, and the requests waiting behind them
 * would time out. So near the limit each answer closes its connection, and
 * frees its place for the next. */
static bool nearly_full(struct MHD_Connection *c)
{
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_DAEMON);
        const union MHD_DaemonInfo *di = ci ? MHD_get_daemon_info(ci->daemon, MHD_DAEMON_INFO_CURRENT_CONNECTIONS)
                                            : NULL;
        return !di || di->num_connections >= OTLP_MAX_CONNECTIONS * 3 / 4;
}

static enum MHD_Result respond(struct MHD_Connection *c, unsigned status, const char *type, const void *body,
                               size_t len, const char *retry_after)
{
        struct MHD_Response *resp = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
        if (!resp)
                return MHD_NO;
        if (type)
                MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
        if (retry_after)
                MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, retry_after);
        if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
                MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "POST");
        if (nearly_full(c))
                MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
        enum MHD_Result r = MHD_queue_response(c, status, resp);
        MHD_destroy_response(resp);
        return r;
}

/* A refusal, as OTLP says: a google.rpc.Status (code, message) in the
 * request's encoding. Counted with the rejected messages. */
static enum MHD_Result refuse(struct MHD_Connection *c, unsigned status, bool json, const char *message)
{
        enum { RPC_INVALID_ARGUMENT = 3, RPC_UNAVAILABLE = 14, RPC_RESOURCE_EXHAUSTED = 8 };
        int code = status == 503 ? RPC_UNAVAILABLE : status == 413 ? RPC_RESOURCE_EXHAUSTED : RPC_INVALID_ARGUMENT;
        atomic_fetch_add(&counters_g.rejected_messages, 1);
        atomic_fetch_add(&counters_g.otlp_refused_requests, 1);
        log_debug("OTLP request refused with %u: %s", status, message);
        if (json) {
                size_t n = strlen(message);
                char *text = malloc(2 * n + 64);
                if (!text)
                        return MHD_NO;
                char *o = text + sprintf(text, "{\"code\":%d,\"message\":\"", code);
                for (const char *p = message; *p; p++) {
                        if (*p == '"' || *p == '\\')
                                *o++ = '\\';
                        *o++ = (unsigned char)*p < 0x20 ? ' ' : *p;
                }
                o += sprintf(o, "\"}");
                enum MHD_Result r = respond(c, status, "application/json", text, (size_t)(o - text),
                                            status == 503 ? "1" : NULL);
                free(text);
                return r;
        }
        size_t n = strlen(message);
        uint8_t buf[600], *p = buf;
        if (n > 512)
                n = 512;
        p = pb_put_varint(pb_put_tag(p, 1, PB_VARINT), (uint64_t)code);
        p = pb_put_bytes(p, 2, message, n);
        return respond(c, status, "application/x-protobuf", buf, (size_t)(p - buf), status == 503 ? "1" : NULL);
}

/* 200: an ExportTraceServiceResponse, its partial success when spans were
 * rejected. */
static enum MHD_Result accept_request(struct MHD_Connection *c, bool json, const struct otlp_in_result *res)
{
        if (json) {
                char text[512];
                int n = res->rejected
                                ? snprintf(text, sizeof(text),
                                           "{\"partialSuccess\":{\"rejectedSpans\":\"%llu\",\"errorMessage\":\"%s\"}}",
                                           (unsigned long long)res->rejected, res->message)
                                : snprintf(text, sizeof(text), "{}");
                return respond(c, MHD_HTTP_OK, "application/json", text, (size_t)n, NULL);
        }
        Otlp__ExportTraceServiceResponse resp = OTLP__EXPORT_TRACE_SERVICE_RESPONSE__INIT;
        Otlp__ExportTracePartialSuccess partial = OTLP__EXPORT_TRACE_PARTIAL_SUCCESS__INIT;
        if (res->rejected) {
                partial.rejected_spans = (int64_t)res->rejected;
                partial.error_message = (char *)res->message;
                resp.partial_success = &partial;
        }
        uint8_t buf[600];
        size_t len = otlp__export_trace_service_response__pack(&resp, buf);
        return respond(c, MHD_HTTP_OK, "application/x-protobuf", buf, len, NULL);
}

static bool type_is(const char *header, const char *type)
{
        size_t n = strlen(type);
        return header && strncasecmp(header, type, n) == 0 && (header[n] == '\0' || header[n] == ';' || header[n] == ' ');
}

static int append(struct request *r, const void *data, size_t len)
{
        /* Once too large, the rest of the body is read and thrown away; an empty
         * piece (a gzip step that gave nothing) must not reach memcpy() while
         * no body has been allocated yet. */
        if (r->too_large || len == 0)
                return 0;
        if (r->len + len > OTLP_MAX_BODY) {
                r->too_large = true;
                free(r->body);
                r->body = NULL;
                r->len = r->cap = 0;
                return 0;
        }
        if (r->len + len > r->cap) {
                size_t cap = r->cap ? r->cap : 64 * 1024;
                while (cap < r->len + len)
                        cap *= 2;
                if (cap > OTLP_MAX_BODY)
                        cap = OTLP_MAX_BODY;
                uint8_t *b = realloc(r->body, cap);
                if (!b)
                        return -ENOMEM;
                r->body = b;
                r->cap = cap;
        }
        memcpy(r->body + r->len, data, len);
        r->len += len;
        return 0;
}

/* Takes @len bytes of the body as they come, inflating a gzipped one. */
static int take(struct request *r, const char *data, size_t len)
{
        if (!r->gzip)
                return append(r, data, len);
        r->z.next_in = (Bytef *)data;
        r->z.avail_in = (uInt)len;
        while (r->z.avail_in && !r->too_large && !r->bad_gzip) {
                uint8_t out[16384];
                r->z.next_out = out;
                r->z.avail_out = sizeof(out);
                int z = inflate(&r->z, Z_NO_FLUSH);
                if (z != Z_OK && z != Z_STREAM_END && z != Z_BUF_ERROR) {
                        r->bad_gzip = true;
                        break;
                }
                if (append(r, out, sizeof(out) - r->z.avail_out) < 0)
                        return -ENOMEM;
                if (z == Z_STREAM_END || (z == Z_BUF_ERROR && r->z.avail_out == sizeof(out)))
                        break;
        }
        return 0;
}

static enum MHD_Result decode_and_store(struct otlp_listen *l, struct MHD_Connection *c, struct request *r)
{
        if (r->too_large) {
                char why[96];
                snprintf(why, sizeof(why), "the request is larger than %u bytes", OTLP_MAX_BODY);
                return refuse(c, MHD_HTTP_CONTENT_TOO_LARGE, r->json, why);
        }
        if (r->bad_gzip)
                return refuse(c, MHD_HTTP_BAD_REQUEST, r->json, "the body is not gzip");
        char why[256] = "";
        Otlp__ExportTraceServiceRequest *req =
                r->json ? otlp_json_parse((const char *)r->body, r->len, why, sizeof(why))
                        : otlp__export_trace_service_request__unpack(NULL, r->len, r->body);
        if (!req)
                return refuse(c, MHD_HTTP_BAD_REQUEST, r->json,
                              *why ? why : "the body is not an OTLP ExportTraceServiceRequest");
        struct otlp_in_result res;
        int e = otlp_in_store(l->in, req, &res);
        otlp__export_trace_service_request__free_unpacked(req, NULL);
        if (e == -EBADMSG)
                return refuse(c, MHD_HTTP_BAD_REQUEST, r->json, res.message);
        if (e < 0) {
                log_warning("OTLP spans not confirmed stored: %s; the sender is asked to try again",
                            strerror(-e));
                return refuse(c, MHD_HTTP_SERVICE_UNAVAILABLE, r->json, "not stored in time: try again");
        }
        atomic_fetch_add(&counters_g.otlp_requests, 1);
        atomic_fetch_add(&counters_g.otlp_rejected_spans, res.rejected);
        return accept_request(c, r->json, &res);
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                              const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls)
{
        struct otlp_listen *l = cls;
        struct request *r = *con_cls;
        if (!r) {
                const char *type = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
                bool json = type_is(type, "application/json");
                if (strcmp(url, "/v1/traces") != 0)
                        return refuse(c, MHD_HTTP_NOT_FOUND, json, "OTLP traces go to POST /v1/traces");
                if (strcmp(method, MHD_HTTP_METHOD_POST) != 0)
                        return refuse(c, MHD_HTTP_METHOD_NOT_ALLOWED, json, "OTLP traces are POSTed");
                if (!json && !type_is(type, "application/x-protobuf") && !type_is(type, "application/protobuf"))
                        return refuse(c, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, false,
                                      "Content-Type must be application/x-protobuf or application/json");
                const char *enc = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_ENCODING);
                bool gzip = enc && strcasecmp(enc, "gzip") == 0;
                if (enc && !gzip && strcasecmp(enc, "identity") != 0)
                        return refuse(c, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, json, "Content-Encoding must be gzip or none");
                const char *length = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
                if (length && strtoull(length, NULL, 10) > OTLP_MAX_BODY) {
                        char why[96];
                        snprintf(why, sizeof(why), "the request is larger than %u bytes", OTLP_MAX_BODY);
                        return refuse(c, MHD_HTTP_CONTENT_TOO_LARGE, json, why);
                }
                if (!(r = calloc(1, sizeof(*r))))
                        return MHD_NO;
                r->json = json;
                r->gzip = gzip;
                if (gzip) {
                        if (inflateInit2(&r->z, 16 + MAX_WBITS) != Z_OK) {
                                free(r);
                                return MHD_NO;
                        }
                        r->z_ready = true;
                }
                *con_cls = r;
                return MHD_YES;
        }
        if (*upload_data_size) {
                /* Past the bound the rest is read and thrown away: the
                 * answer (413) comes when the sender has finished. */
                if (!r->too_large && !r->bad_gzip && take(r, upload_data, *upload_data_size) < 0)
                        return MHD_NO;
                *upload_data_size = 0;
                return MHD_YES;
        }
        return decode_and_store(l, c, r);
}

/* libmicrohttpd's messages: its own format strings. */
static void mhd_log(void *cls, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
        char line[512];
        vsnprintf(line, sizeof(line), fmt, ap);
        size_t n = strlen(line);
        while (n && line[n - 1] == '\n')
                line[--n] = '\0';
        log_debug("OTLP listener: %s", line);
}

/* "host:port", "[v6]:port": a loopback check and an address to bind. */
static int parse_address(const char *address, bool allow_remote, struct sockaddr_storage *ret, bool *ret_v6)
{
        char host[256];
        const char *colon = strrchr(address, ':');
        if (!colon || colon == address || !colon[1])
                return log_error_errno(EINVAL, "--otlp-listen takes ADDRESS:PORT (127.0.0.1:4318), not '%s'", address);
        size_t n = (size_t)(colon - address);
        if (address[0] == '[' && colon[-1] == ']') {
                address++;
                n -= 2;
        }
        if (n >= sizeof(host))
                return log_error_errno(EINVAL, "--otlp-listen: the address is too long");
        memcpy(host, address, n);
        host[n] = '\0';
        char *end;
        unsigned long port = strtoul(colon + 1, &end, 10);
        if (*end || port > 65535)
                return log_error_errno(EINVAL, "--otlp-listen: '%s' is not a port", colon + 1);
        struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE }, *ai;
        if (strcmp(host, "localhost") != 0)
                hints.ai_flags |= AI_NUMERICHOST;
        int g = getaddrinfo(strcmp(host, "localhost") == 0 ? "127.0.0.1" : host, NULL, &hints, &ai);
        if (g != 0)
                return log_error_errno(EINVAL, "--otlp-listen: '%s' is not an address: %s", host, gai_strerror(g));
        bool loopback = false;
        if (ai->ai_family == AF_INET) {
                struct sockaddr_in *in = (struct sockaddr_in *)ai->ai_addr;
                in->sin_port = htons((uint16_t)port);
                loopback = (ntohl(in->sin_addr.s_addr) >> 24) == 127;
                *ret_v6 = false;
        } else {
                struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ai->ai_addr;
                in6->sin6_port = htons((uint16_t)port);
                loopback = IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
                *ret_v6 = true;
        }
        memcpy(ret, ai->ai_addr, ai->ai_addrlen);
        freeaddrinfo(ai);
        if (!loopback && !allow_remote)
                return log_error_errno(EPERM, "--otlp-listen %s: not a loopback address. OTLP has no authentication: "
                                              "anyone who reaches the port could write spans. Add --otlp-allow-remote "
                                              "to listen there anyway",
                                       host);
        return 0;
}

int otlp_listen_start(const char *address, bool allow_remote, struct otlp_in *in, struct otlp_listen **ret)
{
        struct sockaddr_storage addr;
        bool v6 = false;
        int r = parse_address(address, allow_remote, &addr, &v6);
        if (r < 0)
                return r;
        struct otlp_listen *l = calloc(1, sizeof(*l));
        if (!l)
                return -ENOMEM;
        l->in = in;
        unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG |
                         (v6 ? MHD_USE_IPv6 : 0);
        uint16_t port = ntohs(v6 ? ((struct sockaddr_in6 *)&addr)->sin6_port : ((struct sockaddr_in *)&addr)->sin_port);
        l->mhd = MHD_start_daemon(flags, port, NULL, NULL, handle, l, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
                                  MHD_OPTION_CONNECTION_LIMIT, (unsigned)OTLP_MAX_CONNECTIONS,
                                  MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)CONNECTION_TIMEOUT_S,
                                  MHD_OPTION_NOTIFY_COMPLETED, completed, l, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, l,
                                  MHD_OPTION_END);
        if (!l->mhd) {
                free(l);
                return log_error_errno(EADDRINUSE, "Failed to listen for OTLP on %s", address);
        }
        const union MHD_DaemonInfo *info = MHD_get_daemon_info(l->mhd, MHD_DAEMON_INFO_BIND_PORT);
        l->port = info ? info->port : port;
        const char *colon = strrchr(address, ':');
        snprintf(l->address, sizeof(l->address), "%.*s:%u", (int)(colon - address), address, l->port);
        log_info("Listening for OTLP/HTTP on %s: POST /v1/traces", l->address);
        *ret = l;
        return 0;
}

uint16_t otlp_listen_port(const struct otlp_listen *l)
{
        return l->port;
}

const char *otlp_listen_address(const struct otlp_listen *l)
{
        return l->address;
}

void otlp_listen_stop(struct otlp_listen *l)
{
        if (!l)
                return;
        MHD_stop_daemon(l->mhd);
        free(l);
}
