/* SPDX-License-Identifier: MIT */
/* Branch hints for the hot paths. */
#pragma once

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
