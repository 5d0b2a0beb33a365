/* SPDX-License-Identifier: MIT */
/* ferretd's configuration file (/etc/ferret/ferretd.conf), any content. */
#include <stdint.h>
#include <stdio.h>

#include "log.h"
#include "settings.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static int quiet;
        if (!quiet++)
                log_set_level(-1);        /* the parser logs each line at fault */
        struct settings s = { 0 };
        FILE *f = fmemopen((void *)data, size, "r");
        if (!f)
                return 0;
        settings_load_stream(&s, f, "fuzz.conf");
        fclose(f);
        return 0;
}
