/* SPDX-License-Identifier: MIT */
/* Names known at compile time, numbered on first use (intern.c). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The number of @name, given one now if it has none; 0 when the table is
 * full or out of memory. @name must live as long as the program. */
uint32_t intern_name(const char *name);
/* The text of number @id and its length. */
const char *intern_lookup(uint32_t id, size_t *ret_len);
void intern_before_fork(void);
void intern_after_fork(bool child);
