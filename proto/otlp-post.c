/* SPDX-License-Identifier: MIT */
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "otlp-post.h"
#include "otlp.pb-c.h"

/* An answer's body is a small ExportTraceServiceResponse: more is not read. */
#define MAX_RESPONSE_BYTES (64 * 1024)

struct otlp_post {
        CURL *curl;
        struct curl_slist *headers;
        char *url;
        /* The answer being read. */
        char *body;
        size_t body_len;
        int64_t retry_after_ms;
};

void otlp_post_global_init(void)
{
        curl_global_init(CURL_GLOBAL_DEFAULT);
}

static size_t on_body(char *data, size_t size, size_t n, void *userdata)
{
        struct otlp_post *p = userdata;
        size_t len = size * n;
        if (p->body_len + len > MAX_RESPONSE_BYTES)
                return len;           /* the rest is not ours to keep */
        char *b = realloc(p->body, p->body_len + len + 1);
        if (!b)
                return 0;
        memcpy(b + p->body_len, data, len);
        p->body = b;
        p->body_len += len;
        return len;
}

/* Retry-After: a number of seconds, or an HTTP date. */
static size_t on_header(char *data, size_t size, size_t n, void *userdata)
{
        struct otlp_post *p = userdata;
        size_t len = size * n;
        static const char name[] = "retry-after:";
        if (len > sizeof(name) - 1 && strncasecmp(data, name, sizeof(name) - 1) == 0) {
                char value[128];
                size_t v = len - (sizeof(name) - 1);
                if (v >= sizeof(value))
                        v = sizeof(value) - 1;
                memcpy(value, data + sizeof(name) - 1, v);
                value[v] = '\0';
                char *s = value;
                while (*s == ' ' || *s == '\t')
                        s++;
                char *end;
                long secs = strtol(s, &end, 10);
                if (end != s && (*end == '\r' || *end == '\n' || *end == '\0') && secs >= 0)
                        p->retry_after_ms = (int64_t)secs * 1000;
                else {
                        time_t when = curl_getdate(s, NULL);
                        time_t now = time(NULL);
                        if (when > 0)
                                p->retry_after_ms = when > now ? (int64_t)(when - now) * 1000 : 0;
                }
        }
        return len;
}

int otlp_post_new(const char *url, struct otlp_post **ret)
{
        if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)
                return -EINVAL;
        struct otlp_post *p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        size_t len = strlen(url);
        while (len > 0 && url[len - 1] == '/')
                len--;
        static const char path[] = "/v1/traces";
        bool has_path = len >= sizeof(path) - 1 && strncmp(url + len - (sizeof(path) - 1), path, sizeof(path) - 1) == 0;
        if (asprintf(&p->url, "%.*s%s", (int)len, url, has_path ? "" : path) < 0) {
                free(p);
                return -ENOMEM;
        }
        p->curl = curl_easy_init();
        p->headers = curl_slist_append(NULL, "Content-Type: application/x-protobuf");
        if (!p->curl || !p->headers) {
                otlp_post_free(p);
                return -ENOMEM;
        }
        curl_easy_setopt(p->curl, CURLOPT_URL, p->url);
        curl_easy_setopt(p->curl, CURLOPT_HTTPHEADER, p->headers);
        curl_easy_setopt(p->curl, CURLOPT_POST, 1L);
        curl_easy_setopt(p->curl, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(p->curl, CURLOPT_WRITEDATA, p);
        curl_easy_setopt(p->curl, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(p->curl, CURLOPT_HEADERDATA, p);
        /* Threads and signals: libcurl's name lookups must not use alarm(). */
        curl_easy_setopt(p->curl, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(p->curl, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(p->curl, CURLOPT_USERAGENT, "ferret");
        *ret = p;
        return 0;
}

const char *otlp_post_url(const struct otlp_post *p)
{
        return p->url;
}

/* A 2xx answer's partial success, if it has one. */
static void read_partial_success(struct otlp_post *p, struct otlp_post_result *r)
{
        if (!p->body_len)
                return;
        Otlp__ExportTraceServiceResponse *resp =
                otlp__export_trace_service_response__unpack(NULL, p->body_len, (const uint8_t *)p->body);
        if (!resp)
                return;
        if (resp->partial_success) {
                r->rejected_spans = resp->partial_success->rejected_spans;
                snprintf(r->message, sizeof(r->message), "%s", resp->partial_success->error_message);
        }
        otlp__export_trace_service_response__free_unpacked(resp, NULL);
}

int otlp_post_send(struct otlp_post *p, const void *body, size_t len, long timeout_ms, struct otlp_post_result *ret)
{
        struct otlp_post_result r = { .retry_after_ms = -1 };
        p->body_len = 0;
        p->retry_after_ms = -1;
        curl_easy_setopt(p->curl, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(p->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
        curl_easy_setopt(p->curl, CURLOPT_TIMEOUT_MS, timeout_ms);
        CURLcode c = curl_easy_perform(p->curl);
        if (c != CURLE_OK) {
                r.retryable = true;   /* no answer: the collector may come back */
                snprintf(r.message, sizeof(r.message), "%s", curl_easy_strerror(c));
        } else {
                curl_easy_getinfo(p->curl, CURLINFO_RESPONSE_CODE, &r.status);
                r.ok = r.status >= 200 && r.status < 300;
                r.retryable = r.status == 429 || r.status == 502 || r.status == 503 || r.status == 504;
                r.retry_after_ms = p->retry_after_ms;
                if (r.ok)
                        read_partial_success(p, &r);
                else
                        snprintf(r.message, sizeof(r.message), "the collector answered %ld", r.status);
        }
        *ret = r;
        return r.ok ? 0 : -EIO;
}

void otlp_post_free(struct otlp_post *p)
{
        if (!p)
                return;
        if (p->curl)
                curl_easy_cleanup(p->curl);
        curl_slist_free_all(p->headers);
        free(p->url);
        free(p->body);
        free(p);
}
