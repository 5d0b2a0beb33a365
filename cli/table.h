/* SPDX-License-Identifier: MIT */
/* Aligned tables through libsmartcols (util-linux): the first column
 * left-aligned, the others right-aligned, colour only on a terminal. */
#pragma once

#include <libsmartcols.h>

#include "cli.h"

struct libscols_table *table_new(const struct cli *cli, const char *const *headers, size_t n);
