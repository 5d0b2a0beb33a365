/* SPDX-License-Identifier: MIT */
/* Code addresses to function names, off the hot path (symbols.c). */
#pragma once

#include <stdint.h>

/* The name of the function at @address; never NULL, valid for the life of
 * the process. */
const char *symbols_name(uint64_t address);
