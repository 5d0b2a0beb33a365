/* SPDX-License-Identifier: MIT */
/*
 * An interactive SVG flame graph of a run's merged call paths: each frame a
 * call path, as wide as its total time (the part of it no child covers is
 * its self time), children above their parent, the largest first. The
 * frames carry their numbers for assets/flame.js, which zooms, searches and
 * describes them; a frame's <title> says everything about it without the
 * script. Frames narrower than a ten-thousandth of the whole are left out
 * and counted in the picture.
 */
#pragma once

#include <stdbool.h>
#include <stdio.h>

#include "ferret.pb-c.h"

/* Writes the flame graph of @t (a merged tree answered with quantiles) to
 * @f: a whole SVG document when @standalone, else an <svg> element to
 * inline in an HTML page (which must carry flame.css and then runs the
 * element's own script). Returns 0 or -ENOMEM. */
int flame_svg_write(FILE *f, const Ferret__TreeResponse *t, bool standalone);
