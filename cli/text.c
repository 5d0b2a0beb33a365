/* SPDX-License-Identifier: MIT */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "text.h"
#include "utf8.h"

static uint32_t code_point(const unsigned char *p, size_t n)
{
        if (n == 1)
                return p[0];
        uint32_t cp = p[0] & (0x7F >> n);
        for (size_t i = 1; i < n; i++)
                cp = cp << 6 | (p[i] & 0x3F);
        return cp;
}

static bool unsafe(uint32_t cp)
{
        return cp < 0x20 || (cp >= 0x7F && cp <= 0x9F) || cp == 0x061C || cp == 0x200E || cp == 0x200F ||
               cp == 0x2028 || cp == 0x2029 || (cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x2069);
}

/* The bytes at @p to show as they are (0: escape the next byte). */
static size_t safe_run(const unsigned char *p)
{
        size_t len = 0;
        while (p[len]) {
                size_t n = utf8_sequence(p + len);
                if (!n || unsafe(code_point(p + len, n)))
                        break;
                len += n;
        }
        return len;
}

/* The bytes of the unsafe character at @p (one when it is not UTF-8). */
static size_t unsafe_bytes(const unsigned char *p)
{
        size_t n = utf8_sequence(p);
        return n ? n : 1;
}

void term_put(FILE *f, const char *s)
{
        const unsigned char *p = (const unsigned char *)(s ? s : "");
        while (*p) {
                size_t n = safe_run(p);
                fwrite(p, 1, n, f);
                p += n;
                if (*p)
                        for (size_t k = unsafe_bytes(p); k--; p++)
                                fprintf(f, "\\x%02X", *p);
        }
}

const char *term_text(const char *s, char **copy)
{
        const unsigned char *p = (const unsigned char *)(s ? s : "");
        *copy = NULL;
        size_t len = strlen((const char *)p);
        if (safe_run(p) == len)
                return (const char *)p;
        char *out = malloc(4 * len + 1), *o = out;
        if (!out)
                return NULL;
        while (*p) {
                size_t n = safe_run(p);
                memcpy(o, p, n);
                o += n;
                p += n;
                if (*p)
                        for (size_t k = unsafe_bytes(p); k--; p++)
                                o += sprintf(o, "\\x%02X", *p);
        }
        *o = '\0';
        return *copy = out;
}

void markup_put(FILE *f, const char *s)
{
        const unsigned char *p = (const unsigned char *)(s ? s : "");
        while (*p) {
                const unsigned char *end = p + safe_run(p);
                for (; p < end; p++) {
                        switch (*p) {
                        case '&': fputs("&amp;", f); break;
                        case '<': fputs("&lt;", f); break;
                        case '>': fputs("&gt;", f); break;
                        case '"': fputs("&quot;", f); break;
                        case '\'': fputs("&#39;", f); break;
                        default: fputc(*p, f);
                        }
                }
                if (*p)
                        for (size_t k = unsafe_bytes(p); k--; p++)
                                fprintf(f, "\\x%02X", *p);
        }
}
