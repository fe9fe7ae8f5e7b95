/* palette.c — the colours of figures/: the eight Okabe-Ito colours for
 * series and categories (distinguishable with the common colour-vision
 * deficiencies), a sequential ramp from dark purple through blue and green
 * to yellow in the manner of viridis (lightness rises steadily, so it reads
 * in grey too), and a blue-white-red diverging ramp for signed values.
 * The ramps are piecewise linear through the stops below. */
#include <math.h>

#include "figures/figure.h"

#define HEX(h) {((h) >> 16 & 0xff) / 255.0, ((h) >> 8 & 0xff) / 255.0, ((h) & 0xff) / 255.0}

/* Okabe & Ito (2008), ordered so that the first colours differ most. */
static const fig_rgb okabe_ito[FIG_PALETTE_N] = {
    HEX(0x0072B2),   /* blue */
    HEX(0xD55E00),   /* vermillion */
    HEX(0x009E73),   /* bluish green */
    HEX(0xE69F00),   /* orange */
    HEX(0xCC79A7),   /* reddish purple */
    HEX(0x56B4E9),   /* sky blue */
    HEX(0x000000),   /* black */
    HEX(0xF0E442),   /* yellow (last: faint on white) */
};

static const fig_rgb grey = HEX(0x8C8C8C);

/* Sequential stops at 0, 1/9, ..., 1: dark purple to yellow. */
static const fig_rgb sequential[] = {
    HEX(0x440154), HEX(0x482878), HEX(0x3E4A89), HEX(0x31688E), HEX(0x26828E),
    HEX(0x1F9E89), HEX(0x35B779), HEX(0x6DCD59), HEX(0xB4DE2C), HEX(0xFDE725),
};

/* Diverging stops at 0, 1/6, ..., 1: blue, white at the middle, red. */
static const fig_rgb diverging_stops[] = {
    HEX(0x2166AC), HEX(0x67A9CF), HEX(0xD1E5F0), HEX(0xF7F7F7),
    HEX(0xFDDBC7), HEX(0xEF8A62), HEX(0xB2182B),
};

fig_rgb fig_palette(int index)
{
    if (index < 0) return grey;
    return okabe_ito[index % FIG_PALETTE_N];
}

static fig_rgb ramp_at(const fig_rgb *stops, int n, double t)
{
    if (!(t > 0)) t = 0;   /* NaN too */
    if (t > 1) t = 1;
    double u = t * (n - 1);
    int i = (int)floor(u);
    if (i >= n - 1) return stops[n - 1];
    double f = u - i;
    const fig_rgb *a = &stops[i], *b = &stops[i + 1];
    return (fig_rgb){a->r + f * (b->r - a->r), a->g + f * (b->g - a->g), a->b + f * (b->b - a->b)};
}

fig_rgb fig_ramp(double t, int diverging)
{
    if (diverging) return ramp_at(diverging_stops, (int)(sizeof diverging_stops / sizeof *diverging_stops), t);
    return ramp_at(sequential, (int)(sizeof sequential / sizeof *sequential), t);
}
