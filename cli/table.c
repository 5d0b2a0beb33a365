/* SPDX-License-Identifier: MIT */
#include "table.h"

struct libscols_table *table_new(const struct cli *cli, const char *const *headers, size_t n)
{
        struct libscols_table *tb = scols_new_table();
        if (!tb)
                return NULL;
        scols_table_enable_colors(tb, cli->color);
        /* Cells of recorded text come escaped by term_text() (text.h), the
         * one policy of every output; the library's own encoding would
         * escape those escapes again. */
        scols_table_enable_noencoding(tb, 1);
        /* Through a pipe, never cut lines to a guessed terminal width. */
        scols_table_set_termforce(tb, cli->color ? SCOLS_TERMFORCE_AUTO : SCOLS_TERMFORCE_NEVER);
        for (size_t i = 0; i < n; i++) {
                struct libscols_column *c = scols_table_new_column(tb, headers[i], i == 0 ? 0.3 : 1, i == 0 ? 0 : SCOLS_FL_RIGHT);
                if (!c) {
                        scols_unref_table(tb);
                        return NULL;
                }
                if (cli->color)
                        scols_cell_set_color(scols_column_get_header(c), "bold");
        }
        return tb;
}
