/* plots.h — the panels of figures/ (internal to the layer): each draws one
 * line plot or scatter, heatmap or bar chart, with its frame, legend or
 * colour bar, inside the rectangle r of a page. */
#ifndef SSM_FIGURES_PLOTS_H
#define SSM_FIGURES_PLOTS_H

#include <cairo.h>

#include "figures/draw.h"
#include "figures/figure.h"

void fig_xy_draw(cairo_t *cr, const fig_xy *plot, fig_rect r);
void fig_heatmap_draw(cairo_t *cr, const fig_heatmap *map, fig_rect r);
void fig_bars_draw(cairo_t *cr, const fig_bars *bars, fig_rect r);

#endif
