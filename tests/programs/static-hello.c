/* SPDX-License-Identifier: MIT */
/* Linked statically: LD_PRELOAD cannot reach it, so it must be reported
 * as an untraced process. */
#include <stdio.h>

int main(void)
{
        puts("static hello");
        return 0;
}
