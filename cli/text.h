/* SPDX-License-Identifier: MIT */
/*
 * Recorded text on its way out. Names, tags, messages, run ids and notes
 * come from whatever program was traced (or whatever peer wrote to the
 * socket): on a terminal, a control character in them would move the
 * cursor, clear the screen or retitle the window, and a bidirectional
 * override would reorder what the reader sees. Every text output of the
 * CLI goes through term_put() or term_text(); JSON has its own rules
 * (json-text.h).
 */
#pragma once

#include <stddef.h>
#include <stdio.h>

#include "utf8.h"      /* utf8_sequence() */

/* Writes @s to @f as it is, except for each byte of a control character
 * (C0, DEL, C1), a line or paragraph separator (U+2028, U+2029), a
 * bidirectional formatting character (U+061C, U+200E, U+200F, U+202A to
 * U+202E, U+2066 to U+2069) or a sequence that is not UTF-8:
 * those as the four characters \xHH ("x\x1b[2J" prints as x\x1B[2J). */
void term_put(FILE *f, const char *s);
/* The same as a string, for table cells: @s itself when it needs no
 * escape, else a malloc'd copy in *@copy (the caller frees it); NULL when
 * memory is short. */
const char *term_text(const char *s, char **copy);
/* The same rule for SVG and HTML, with & < > " ' as character references
 * too, so that recorded text is text wherever it lands in markup (element
 * content or an attribute value), and never a control character, which
 * XML does not allow. */
void markup_put(FILE *f, const char *s);
