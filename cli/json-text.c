/* SPDX-License-Identifier: MIT */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json-text.h"
#include "text.h"

/* @s, or a malloc'd copy with invalid bytes escaped (*copy set). */
static const char *valid_utf8(const char *s, char **copy)
{
        const unsigned char *p = (const unsigned char *)s;
        size_t bad = 0, len = 0;
        while (p[len]) {
                size_t n = utf8_sequence(p + len);
                bad += n == 0;
                len += n ? n : 1;
        }
        *copy = NULL;
        if (!bad)
                return s;
        char *out = malloc(len + 3 * bad + 1), *o = out;
        if (!out)
                return NULL;
        for (size_t i = 0; p[i];) {
                size_t n = utf8_sequence(p + i);
                if (n) {
                        memcpy(o, p + i, n);
                        o += n;
                        i += n;
                } else {
                        o += sprintf(o, "\\x%02X", p[i]);
                        i++;
                }
        }
        *o = '\0';
        return *copy = out;
}

json_t *json_text(const char *s)
{
        char *copy;
        const char *text = valid_utf8(s ? s : "", &copy);
        json_t *v = text ? json_string(text) : NULL;
        free(copy);
        return v;
}

json_t *json_double(double d)
{
        if (isnan(d))
                return json_string("NaN");
        if (isinf(d))
                return json_string(d > 0 ? "Infinity" : "-Infinity");
        return json_real(d);
}

json_t *json_uint(uint64_t v)
{
        _Static_assert(sizeof(json_int_t) == sizeof(int64_t), "jansson holds 64-bit integers");
        if (v <= (uint64_t)INT64_MAX)
                return json_integer((json_int_t)v);
        char digits[24];
        snprintf(digits, sizeof(digits), "%llu", (unsigned long long)v);
        return json_string(digits);
}

int json_set_text_key(json_t *o, const char *key, json_t *value)
{
        char *copy;
        const char *text = valid_utf8(key ? key : "", &copy);
        int r = text ? json_object_set_new(o, text, value) : (json_decref(value), -1);
        free(copy);
        return r;
}

void json_put_text(FILE *f, const char *s)
{
        const unsigned char *p = (const unsigned char *)(s ? s : "");
        fputc('"', f);
        while (*p) {
                size_t n = utf8_sequence(p);
                if (n == 0) {
                        fprintf(f, "\\\\x%02X", *p++);
                } else if (*p == '"' || *p == '\\') {
                        fputc('\\', f);
                        fputc(*p++, f);
                } else if (*p < 0x20) {
                        fprintf(f, "\\u%04x", *p++);
                } else {
                        fwrite(p, 1, n, f);
                        p += n;
                }
        }
        fputc('"', f);
}
