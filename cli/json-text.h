/* SPDX-License-Identifier: MIT */
/*
 * JSON values for what programs recorded, which JSON cannot always hold as
 * it is: text that is not UTF-8 (a file name in Latin-1, a name cut
 * mid-character), NaN or infinite doubles, and counts or times beyond the
 * signed 64-bit integers that JSON readers (and jansson) hold exactly. Nothing recorded may vanish
 * from --json output, so these are written in a visible form instead.
 */
#pragma once

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>

/* @s as a JSON string: valid UTF-8 as it is, each other byte as the four
 * characters \xHH ("sl\xe9ep" becomes "sl\\xE9ep" in JSON). */
json_t *json_text(const char *s);
/* A double: NaN and the infinities as the strings "NaN", "Infinity" and
 * "-Infinity". */
json_t *json_double(double d);
/* An unsigned count or time: a number up to 2^63 - 1, beyond it the exact
 * decimal as a string ("18446744073709551615"), never a negative number. */
json_t *json_uint(uint64_t v);
/* json_object_set_new() with a key that is recorded text (escaped so). */
int json_set_text_key(json_t *o, const char *key, json_t *value);
/* Writes @s to @f as a quoted JSON string by the rule of json_text(), for
 * outputs streamed without building a document (exports of every span). */
void json_put_text(FILE *f, const char *s);
