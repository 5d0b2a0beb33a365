/* SPDX-License-Identifier: MIT */
#pragma once

int lib_compute(int n);
