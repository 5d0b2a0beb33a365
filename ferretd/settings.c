/* SPDX-License-Identifier: MIT */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buckets.h"
#include "settings.h"
#include "log.h"

static int parse_size(const char *v, uint64_t *ret)
{
        char *end;
        errno = 0;
        double n = strtod(v, &end);
        if (errno || end == v || n < 0)
                return -EINVAL;
        static const char units[] = "BKMGT";
        double mult = 1;
        if (*end) {
                const char *u = strchr(units, toupper((unsigned char)*end));
                if (!u || !*u)
                        return -EINVAL;
                for (const char *p = units; p < u; p++)
                        mult *= 1024;
                end++;
                if (*end == 'i' || *end == 'B' || *end == 'b')   /* 10GiB, 10GB */
                        end += (*end == 'i' && end[1] == 'B') ? 2 : 1;
        }
        if (*end)
                return -EINVAL;
        *ret = (uint64_t)(n * mult);
        return 0;
}

int settings_set(struct settings *s, const char *key, const char *value, const char *where)
{
        if (strcmp(key, "db") == 0)
                snprintf(s->db, sizeof(s->db), "%s", value);
        else if (strcmp(key, "runtime-dir") == 0)
                snprintf(s->runtime_dir, sizeof(s->runtime_dir), "%s", value);
        else if (strcmp(key, "log-level") == 0) {
                int level = log_level_from_string(value);
                if (level < 0)
                        return log_error_errno(EINVAL, "%sUnknown log level '%s' (error, warning, notice, info, debug)",
                                               where, value);
                s->log_level = level;
        } else if (strcmp(key, "retain-days") == 0 || strcmp(key, "retain") == 0) {
                char *end;
                errno = 0;
                double days = strtod(value, &end);
                if (errno || end == value || *end || days < 0)
                        return log_error_errno(EINVAL, "%s'%s' takes a number of days (0: keep), not '%s'", where,
                                               key, value);
                s->retention.retain_days = days;
        } else if (strcmp(key, "max-size") == 0) {
                if (parse_size(value, &s->retention.max_size_bytes) < 0)
                        return log_error_errno(EINVAL, "%s'max-size' takes a size such as 500M or 20G, not '%s'",
                                               where, value);
        } else if (strcmp(key, "max-clients") == 0 || strcmp(key, "max-paths") == 0) {
                unsigned limit = key[4] == 'c' ? MAX_CLIENTS_LIMIT : MAX_PATHS_LIMIT;
                char *end;
                errno = 0;
                unsigned long n = strtoul(value, &end, 10);
                if (errno || end == value || *end || value[0] == '-' || n < 1 || n > limit)
                        return log_error_errno(EINVAL, "%s'%s' takes a number from 1 to %u, not '%s'", where, key,
                                               limit, value);
                *(key[4] == 'c' ? &s->max_clients : &s->max_paths) = (unsigned)n;
        } else if (strcmp(key, "bucket-seconds") == 0) {
                char *end;
                errno = 0;
                unsigned long n = strtoul(value, &end, 10);
                if (errno || end == value || *end || value[0] == '-' || n < 1 || n > BUCKET_SECONDS_LIMIT)
                        return log_error_errno(EINVAL, "%s'%s' takes a number of seconds from 1 to %u, not '%s'",
                                               where, key, BUCKET_SECONDS_LIMIT, value);
                s->bucket_seconds = (unsigned)n;
        } else if (strcmp(key, "forward") == 0) {
                if (strncmp(value, "http://", 7) != 0 && strncmp(value, "https://", 8) != 0)
                        return log_error_errno(EINVAL, "%s'forward' takes a collector's http:// or https:// URL, not '%s'",
                                               where, value);
                if (strlen(value) >= sizeof(s->forward_url))
                        return log_error_errno(EINVAL, "%s'forward': the URL is too long", where);
                snprintf(s->forward_url, sizeof(s->forward_url), "%s", value);
        } else if (strcmp(key, "forward-service") == 0) {
                if (strlen(value) >= sizeof(s->forward_service))
                        return log_error_errno(EINVAL, "%s'forward-service': the name is too long", where);
                snprintf(s->forward_service, sizeof(s->forward_service), "%s", value);
        } else if (strcmp(key, "forward-backlog") == 0) {
                char *end;
                errno = 0;
                unsigned long long n = strtoull(value, &end, 10);
                if (errno || end == value || *end || value[0] == '-' || n < 1)
                        return log_error_errno(EINVAL, "%s'forward-backlog' takes a number of spans, 1 or more, not '%s'",
                                               where, value);
                s->forward_backlog = n;
        } else if (strcmp(key, "otlp-listen") == 0) {
                if (strlen(value) >= sizeof(s->otlp_listen) || !strchr(value, ':'))
                        return log_error_errno(EINVAL, "%s'otlp-listen' takes ADDRESS:PORT (127.0.0.1:4318), not '%s'",
                                               where, value);
                snprintf(s->otlp_listen, sizeof(s->otlp_listen), "%s", value);
        } else if (strcmp(key, "otlp-allow-remote") == 0)
                s->otlp_allow_remote = strcmp(value, "yes") == 0 || strcmp(value, "true") == 0 || strcmp(value, "1") == 0;
        else if (strcmp(key, "read-only") == 0)
                s->read_only = strcmp(value, "yes") == 0 || strcmp(value, "true") == 0 || strcmp(value, "1") == 0;
        else
                return log_error_errno(EINVAL, "%sUnknown setting '%s'", where, key);
        return 0;
}

static char *trim(char *s)
{
        while (isspace((unsigned char)*s))
                s++;
        char *e = s + strlen(s);
        while (e > s && isspace((unsigned char)e[-1]))
                *--e = '\0';
        return s;
}

int settings_load_file(struct settings *s, const char *path)
{
        FILE *f = fopen(path, "re");
        if (!f)
                return errno == ENOENT ? -ENOENT : log_error_errno(errno, "Failed to open %s: %m", path);
        int r = settings_load_stream(s, f, path);
        fclose(f);
        return r;
}

int settings_load_stream(struct settings *s, FILE *f, const char *path)
{
        char line[4096], where[PATH_MAX + 32];
        int r = 0;
        for (unsigned n = 1; fgets(line, sizeof(line), f); n++) {
                char *hash = strchr(line, '#');
                if (hash)
                        *hash = '\0';
                char *text = trim(line);
                if (!*text)
                        continue;
                snprintf(where, sizeof(where), "%s:%u: ", path, n);
                char *eq = strchr(text, '=');
                if (!eq) {
                        r = log_error_errno(EINVAL, "%sExpected 'key = value'", where);
                        break;
                }
                *eq = '\0';
                r = settings_set(s, trim(text), trim(eq + 1), where);
                if (r < 0)
                        break;
        }
        return r;
}
