/* SPDX-License-Identifier: MIT */
/*
 * UTF-8 as RFC 3629 has it (no overlong forms, no surrogates, nothing past
 * U+10FFFF): what the terminal outputs escape (cli/text.c), what OTLP
 * insists on for its strings, both ways (otlp-out.c, ferretd/otlp-in.c).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* The length of the valid sequence at @p (NUL-terminated), or 0. */
static inline size_t utf8_sequence(const unsigned char *p)
{
        unsigned char c = p[0];
        if (c < 0x80)
                return 1;
        size_t n;
        unsigned char lo = 0x80, hi = 0xBF;
        if (c >= 0xC2 && c <= 0xDF)
                n = 2;
        else if (c >= 0xE0 && c <= 0xEF) {
                n = 3;
                if (c == 0xE0)
                        lo = 0xA0;
                else if (c == 0xED)
                        hi = 0x9F;
        } else if (c >= 0xF0 && c <= 0xF4) {
                n = 4;
                if (c == 0xF0)
                        lo = 0x90;
                else if (c == 0xF4)
                        hi = 0x8F;
        } else
                return 0;
        if (p[1] < lo || p[1] > hi)
                return 0;
        for (size_t i = 2; i < n; i++)
                if (p[i] < 0x80 || p[i] > 0xBF)
                        return 0;
        return n;
}

/* Whether the @len bytes at @s are UTF-8 (and hold no NUL). */
static inline bool utf8_valid(const char *s, size_t len)
{
        const unsigned char *p = (const unsigned char *)s, *end = p + len;
        while (p < end) {
                if (*p < 0x80) {
                        if (!*p)
                                return false;
                        p++;
                        continue;
                }
                size_t n = (size_t)(end - p) >= 4 ? utf8_sequence(p) : 0;
                if (!n) {
                        /* Near the end: check on a padded copy. */
                        unsigned char tail[5] = { 0 };
                        for (size_t i = 0; i < 4 && p + i < end; i++)
                                tail[i] = p[i];
                        n = utf8_sequence(tail);
                        if (!n || p + n > end)
                                return false;
                }
                p += n;
        }
        return true;
}
