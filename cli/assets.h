/* SPDX-License-Identifier: MIT */
/*
 * The scripts and style sheets that the pictures carry inside them (a flame
 * graph or a report opens from disk, with no network): the .js and .css
 * files of cli/assets, made into these strings at build time by embed.py.
 */
#pragma once

extern const char asset_flame_js[];
extern const char asset_flame_css[];
extern const char asset_report_js[];
extern const char asset_report_css[];
