/* SPDX-License-Identifier: MIT */
/*
 * The report's timeline: a lane per thread (and one for a thread's async
 * spans), time from left to right. A run of up to TIMELINE_MAX_SPANS spans
 * is drawn span by span, each a bar, nested spans stacked below the span
 * they began in. A larger run is drawn aggregated, so that the page stays
 * small whatever the run: each lane is cut into TIMELINE_COLUMNS slices of
 * time, and a slice is coloured by the name that holds most of its time
 * among the lane's outermost spans, as dark as the share of the slice those
 * spans cover. Past TIMELINE_MAX_LANES lanes, the rest are counted, not
 * drawn.
 */
#pragma once

#include <stdio.h>

#include "ferret.pb-c.h"
#include "lane-sort.h"

#define TIMELINE_MAX_SPANS 20000
#define TIMELINE_COLUMNS 600
#define TIMELINE_MAX_LANES 200

/* Draws the spans in @sort (lane_sort_each() is called: once only) of run
 * @run as an <svg> element on @f. Returns 0 or a negative errno (printed). */
int timeline_svg_write(FILE *f, struct lane_sort *sort, const Ferret__RunInfo *run);
/* What the timeline shows for a run of @spans spans, in a sentence. */
const char *timeline_how(uint64_t spans);
