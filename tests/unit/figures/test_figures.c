/* test_figures.c — unit tests of figures/: one page drawn as SVG (valid
 * XML under xmllint), PNG (the signature, the IHDR size, read back by
 * Cairo, not blank, the first series' colour present) and PDF (%PDF ...
 * %%EOF); every panel kind with awkward data (NaN, inf, log axes with
 * non-positive values, legend-only series, empty series, a map large
 * enough to be drawn as an image, invalid UTF-8 in labels); ticks and their
 * labels; the palette; and the errors (an unknown extension, a missing
 * directory, no panel), which name the path and leave no temporary file. */
#include <cairo.h>
#include <criterion/criterion.h>
#include <dirent.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/status.h"
#include "figures/draw.h"
#include "figures/figure.h"
#include "tests/tmpdir.h"

/* fontconfig's caches outlive a test: released so LeakSanitizer sees none */
static void suite_fini(void)
{
    tmpdir_remove();
    fig_release();
}

TestSuite(figures, .init = tmpdir_make, .fini = suite_fini);

/* ------------------------------------------------------------------------ */
/* Helpers                                                                  */

static char *path_in(const char *name)
{
    static char buf[4][512];
    static int k;
    char *p = buf[k++ % 4];
    snprintf(p, 512, "%s/%s", tmpdir, name);
    return p;
}

static long file_read(const char *path, unsigned char *buf, long cap)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s was not written", path);
    long n = (long)fread(buf, 1, (size_t)cap, f);
    fclose(f);
    return n;
}

static void assert_svg(const char *path)
{
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "xmllint --noout '%s' 2>&1", path);
    cr_assert_eq(system(cmd), 0, "%s is not well-formed XML (xmllint)", path);
    unsigned char head[256] = {0};
    file_read(path, head, sizeof head - 1);
    cr_assert(strstr((char *)head, "<svg"), "%s has no <svg element", path);
}

static void assert_pdf(const char *path)
{
    static unsigned char buf[1 << 20];
    long n = file_read(path, buf, sizeof buf);
    cr_assert(n > 100 && !memcmp(buf, "%PDF-", 5), "%s does not start with %%PDF", path);
    cr_assert(memmem(buf + n - 16, 16, "%%EOF", 5), "%s does not end with %%%%EOF", path);
}

static uint32_t be32(const unsigned char *p) { return (uint32_t)p[0] << 24 | p[1] << 16 | p[2] << 8 | p[3]; }

/* A valid PNG of w x h points at FIG_PNG_SCALE; returns how many pixels
 * are not white and counts those within 8 levels of colour c in *near. */
static long assert_png(const char *path, double w, double h, fig_rgb c, long *near)
{
    unsigned char head[32];
    cr_assert_eq(file_read(path, head, sizeof head), (long)sizeof head);
    cr_assert(!memcmp(head, "\x89PNG\r\n\x1a\n", 8), "%s: not a PNG signature", path);
    cr_assert(!memcmp(head + 12, "IHDR", 4), "%s: the first chunk is not IHDR", path);
    cr_assert_eq(be32(head + 16), (uint32_t)lround(w * FIG_PNG_SCALE), "%s: IHDR width %u", path, be32(head + 16));
    cr_assert_eq(be32(head + 20), (uint32_t)lround(h * FIG_PNG_SCALE), "%s: IHDR height %u", path, be32(head + 20));
    cairo_surface_t *s = cairo_image_surface_create_from_png(path);
    cr_assert_eq(cairo_surface_status(s), CAIRO_STATUS_SUCCESS, "%s: Cairo cannot read it back", path);
    int W = cairo_image_surface_get_width(s), H = cairo_image_surface_get_height(s);
    int stride = cairo_image_surface_get_stride(s);
    const unsigned char *d = cairo_image_surface_get_data(s);
    long other = 0, k = 0;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            uint32_t px = ((const uint32_t *)(d + (size_t)y * stride))[x];
            int r = px >> 16 & 0xff, g = px >> 8 & 0xff, b = px & 0xff;
            other += (px & 0xffffff) != 0xffffff;
            k += abs(r - (int)lround(c.r * 255)) <= 8 && abs(g - (int)lround(c.g * 255)) <= 8 &&
                 abs(b - (int)lround(c.b * 255)) <= 8;
        }
    cairo_surface_destroy(s);
    *near = k;
    return other;
}

/* No temporary file is left in tmpdir. */
static void assert_no_temporary(void)
{
    DIR *d = opendir(tmpdir);
    cr_assert_not_null(d);
    for (struct dirent *e; (e = readdir(d));)
        cr_assert_neq(strncmp(e->d_name, ".ssmlab-tmp", 11), 0, "temporary file %s left behind", e->d_name);
    closedir(d);
}

/* ------------------------------------------------------------------------ */
/* A page of every kind of panel                                            */

#define N 24

static double xs[N], ys[3][N], lo[N], hi[N], map[N * N];
static const char *const cats[] = {"lm-default", "lm-positive", "a \"quoted\", long preset name", "x", "nan"};
static const double bar_v[] = {1.5, -0.5, INFINITY, 2, NAN}, bar_lo[] = {1.2, -0.7, NAN, 1.8, NAN},
                    bar_hi[] = {1.8, -0.3, NAN, 2.2, NAN};

static void data_fill(void)
{
    for (int i = 0; i < N; i++) {
        xs[i] = i;
        ys[0][i] = exp(0.2 * i);
        ys[1][i] = i % 5 == 3 ? NAN : 2 + sin(i);   /* a gap */
        ys[2][i] = i - 5.0;                          /* not positive at first: left out on log y */
        lo[i] = 0.8 * ys[0][i];
        hi[i] = 1.25 * ys[0][i];
        for (int j = 0; j < N; j++) map[i * N + j] = j <= i ? exp(-(i - j) / 4.0) * (j % 2 ? 1 : -1) : NAN;
    }
}

static fig_page sample_page(fig_panel *p, fig_series *s)
{
    data_fill();
    s[0] = (fig_series){"mean \xc2\xb1 sd", xs, ys[0], lo, hi, N, FIG_AUTO, FIG_AUTO, FIG_LINES};
    s[1] = (fig_series){"bad \xff utf-8 \n label", xs, ys[1], NULL, NULL, N, FIG_AUTO, FIG_AUTO, FIG_LINES | FIG_MARKERS};
    s[2] = (fig_series){"i - 5", xs, ys[2], NULL, NULL, N, FIG_AUTO, FIG_AUTO, FIG_MARKERS};
    s[3] = (fig_series){"key only", NULL, NULL, NULL, NULL, 0, FIG_GREY, FIG_AUTO, FIG_DASHED};
    p[0] = (fig_panel){.kind = FIG_PANEL_XY,
                       .xy = {{.title = "Lines, log y", .xlabel = "layer l", .ylabel = "norm (log scale)", .log_y = 1,
                               .x_integer = 1},
                              s, 4}};
    p[1] = (fig_panel){.kind = FIG_PANEL_HEATMAP,
                       .heat = {{.title = "Map", .xlabel = "source s", .ylabel = "target t"}, map, N, N, 1, 0, 0, 1,
                                "alpha (row-normalised)"}};
    p[2] = (fig_panel){.kind = FIG_PANEL_BARS,
                       .bars = {{.title = "Bars", .xlabel = "preset", .ylabel = "value (units)"}, cats, bar_v, bar_lo,
                                bar_hi, 5, NULL}};
    return (fig_page){.title = "A page of three panels", .panels = p, .n_panels = 3, .cols = 2};
}

Test(figures, one_page_as_svg_png_and_pdf)
{
    fig_panel p[3];
    fig_series s[4];
    fig_page page = sample_page(p, s);
    cr_assert_eq(fig_page_write(path_in("page.svg"), &page), SSM_OK, "%s", ssm_last_error());
    cr_assert_eq(fig_page_write(path_in("page.png"), &page), SSM_OK, "%s", ssm_last_error());
    cr_assert_eq(fig_page_write(path_in("page.PDF"), &page), SSM_OK, "%s", ssm_last_error());
    assert_svg(path_in("page.svg"));
    assert_pdf(path_in("page.PDF"));
    long near, other = assert_png(path_in("page.png"), 2 * 288, 2 * 228 + 24, fig_palette(0), &near);
    cr_assert_gt(other, 20000, "the PNG is nearly blank: %ld pixels differ from white", other);
    cr_assert_gt(near, 200, "the first series' colour is missing: %ld pixels", near);
    assert_no_temporary();
}

Test(figures, single_panels_have_the_default_size)
{
    data_fill();
    fig_series s = {"one", xs, ys[0], NULL, NULL, N, FIG_AUTO, FIG_AUTO, FIG_MARKERS};
    fig_xy xy = {{.title = "Scatter", .xlabel = "Re", .ylabel = "Im", .equal_aspect = 1, .zero_lines = 1}, &s, 1};
    cr_assert_eq(fig_xy_write(path_in("xy.png"), &xy), SSM_OK, "%s", ssm_last_error());
    long near, other = assert_png(path_in("xy.png"), 432, 288, fig_palette(0), &near);
    cr_assert_gt(other, 5000);
    cr_assert_gt(near, 100);
    fig_bars b = {{.title = "Bars", .ylabel = "v"}, cats, bar_v, NULL, NULL, 5, (const int[]){3, 3, 3, 3, 3}};
    cr_assert_eq(fig_bars_write(path_in("bars.png"), &b), SSM_OK, "%s", ssm_last_error());
    assert_png(path_in("bars.png"), 432, 288, fig_palette(3), &near);
    cr_assert_gt(near, 1000, "the bars' colour choice was not used: %ld pixels", near);
}

/* A map larger than the rectangle limit is one image; NaN cells stay blank. */
Test(figures, large_heatmap_and_empty_data)
{
    int n = 300;
    double *v = malloc(sizeof(double) * n * n);
    for (int i = 0; i < n * n; i++) v[i] = i % 7 ? sin(i * 0.01) : NAN;
    fig_heatmap h = {{.title = "Large"}, v, n, n, 0, 0, 0, 0, "value"};
    cr_assert_eq(fig_heatmap_write(path_in("large.svg"), &h), SSM_OK, "%s", ssm_last_error());
    cr_assert_eq(fig_heatmap_write(path_in("large.pdf"), &h), SSM_OK, "%s", ssm_last_error());
    assert_svg(path_in("large.svg"));
    assert_pdf(path_in("large.pdf"));
    for (int i = 0; i < n * n; i++) v[i] = NAN;   /* nothing to colour */
    cr_assert_eq(fig_heatmap_write(path_in("blank.png"), &h), SSM_OK, "%s", ssm_last_error());
    free(v);
    fig_series none = {"no points", xs, ys[0], NULL, NULL, 0, FIG_AUTO, FIG_AUTO, 0};
    fig_xy xy = {{.title = "Empty", .log_x = 1, .log_y = 1}, &none, 1};
    cr_assert_eq(fig_xy_write(path_in("empty.svg"), &xy), SSM_OK, "%s", ssm_last_error());
    assert_svg(path_in("empty.svg"));
}

/* ------------------------------------------------------------------------ */
/* Errors                                                                   */

Test(figures, errors_name_the_path)
{
    fig_panel p[3];
    fig_series s[4];
    fig_page page = sample_page(p, s);
    fig_format f;
    cr_assert_eq(fig_format_of("a/b.Svg", &f), SSM_OK);
    cr_assert_eq(f, FIG_SVG);
    cr_assert_eq(fig_format_of("x.pdf", &f), SSM_OK);
    cr_assert_eq(f, FIG_PDF);
    cr_assert_eq(fig_format_of("dir.png/file", &f), SSM_ERR_USAGE);
    cr_assert_eq(fig_page_write(path_in("page.txt"), &page), SSM_ERR_USAGE);
    cr_assert(strstr(ssm_last_error(), "page.txt") && strstr(ssm_last_error(), ".svg, .png or .pdf"),
              "%s", ssm_last_error());
    cr_assert_eq(fig_page_write(path_in("missing/page.svg"), &page), SSM_ERR_CANTCREAT);
    cr_assert(strstr(ssm_last_error(), "missing/page.svg"), "%s", ssm_last_error());
    page.n_panels = 0;
    cr_assert_eq(fig_page_write(path_in("none.svg"), &page), SSM_ERR_USAGE);
    assert_no_temporary();
}

/* ------------------------------------------------------------------------ */
/* Ticks, labels, text, palette                                             */

static int ticks_of(double lo, double hi, int log, int integer, int max_n, double *t, double *step)
{
    fig_scale s = {.lo = log ? log10(lo) : lo, .hi = log ? log10(hi) : hi, .log = log, .integer = integer};
    return fig_scale_ticks(&s, max_n, t, step);
}

Test(figures, ticks)
{
    double t[FIG_MAX_TICKS], step;
    int n = ticks_of(-0.05, 1.05, 0, 0, 6, t, &step);
    cr_assert_eq(n, 6);
    cr_assert_float_eq(step, 0.2, 1e-12);
    cr_assert_float_eq(t[0], 0, 1e-12);
    cr_assert_float_eq(t[5], 1, 1e-12);
    n = ticks_of(-0.5, 3.5, 0, 1, 20, t, &step);   /* integers only */
    cr_assert_eq(step, 1);
    cr_assert_eq(n, 4);
    n = ticks_of(0.5, 2e4, 1, 0, 8, t, &step);   /* decades */
    cr_assert_eq(step, -1);
    cr_assert_eq(n, 5);
    cr_assert_float_eq(t[0], 1, 1e-12);
    cr_assert_float_eq(t[4], 1e4, 1e-6);
    n = ticks_of(1e-9, 1e9, 1, 0, 5, t, &step);   /* every 5th decade */
    cr_assert(n <= 5 && step < -1, "%d ticks, step %g", n, step);
    n = ticks_of(1.5, 9, 1, 0, 8, t, &step);   /* less than a decade: 2 .. 9 */
    cr_assert_eq(step, 0);
    cr_assert_eq(n, 8);
    cr_assert_float_eq(t[0], 2, 1e-12);
    n = ticks_of(1.5, 9, 1, 0, 5, t, &step);   /* fewer allowed: 2, 5 */
    cr_assert_eq(step, 0);
    cr_assert_eq(n, 2);
    cr_assert_float_eq(t[1], 5, 1e-12);
    n = ticks_of(0.15, 0.9, 1, 0, 8, t, &step);   /* 0.2, 0.5 and more: 1 .. 9 x 0.1 */
    cr_assert_eq(n, 8);
    n = ticks_of(3.1, 3.9, 1, 0, 8, t, &step);   /* not even two of 1 .. 9: linear */
    cr_assert(n >= 2 && step > 0);
    cr_assert_eq(ticks_of(1, 1, 0, 0, 5, t, &step), 0);   /* empty range */
}

Test(figures, tick_labels_and_text)
{
    char b[64];
    fig_tick_label(-0.5, 0.5, b, sizeof b);
    cr_assert_str_eq(b, "\xe2\x88\x92" "0.5");   /* a true minus */
    fig_tick_label(2.5, 0.5, b, sizeof b);
    cr_assert_str_eq(b, "2.5");
    fig_tick_label(0.75, 0.25, b, sizeof b);
    cr_assert_str_eq(b, "0.75");
    fig_tick_label(40, 20, b, sizeof b);
    cr_assert_str_eq(b, "40");
    fig_tick_label(1e-5, -1, b, sizeof b);
    cr_assert_str_eq(b, "10\xe2\x81\xbb\xe2\x81\xb5");   /* 10 to the superscript -5 */
    fig_tick_label(0.001, -1, b, sizeof b);
    cr_assert_str_eq(b, "0.001");
    fig_tick_label(1e12, -2, b, sizeof b);
    cr_assert_str_eq(b, "10\xc2\xb9\xc2\xb2");
    fig_text_clean("a\n\tb\xff\x01 \xc3\xa9", b, sizeof b);
    cr_assert_str_eq(b, "a\\n\\tb\xef\xbf\xbd^A \xc3\xa9");
}

static double luminance(fig_rgb c) { return 0.2126 * c.r + 0.7152 * c.g + 0.0722 * c.b; }

Test(figures, palette)
{
    fig_rgb c = fig_palette(0);
    cr_assert(fabs(c.r) < 1e-9 && fabs(c.g - 0x72 / 255.0) < 1e-9 && fabs(c.b - 0xB2 / 255.0) < 1e-9);
    for (int i = 0; i < FIG_PALETTE_N; i++)
        for (int j = 0; j < i; j++) {
            fig_rgb a = fig_palette(i), b = fig_palette(j);
            cr_assert(fabs(a.r - b.r) + fabs(a.g - b.g) + fabs(a.b - b.b) > 0.2, "colours %d and %d alike", i, j);
        }
    cr_assert_eq(fig_palette(FIG_PALETTE_N).b, fig_palette(0).b);   /* it cycles */
    for (int i = 1; i <= 20; i++)   /* the sequential ramp brightens steadily */
        cr_assert_gt(luminance(fig_ramp(i / 20.0, 0)), luminance(fig_ramp((i - 1) / 20.0, 0)));
    fig_rgb mid = fig_ramp(0.5, 1), neg = fig_ramp(0, 1), pos = fig_ramp(1, 1);
    cr_assert(mid.r > 0.95 && mid.g > 0.95 && mid.b > 0.95, "the diverging middle is not white");
    cr_assert(neg.b > neg.r && pos.r > pos.b, "negative blue, positive red");
    fig_rgb lo = fig_ramp(-3, 0), nan_c = fig_ramp(NAN, 0), z = fig_ramp(0, 0);
    cr_assert(lo.r == z.r && nan_c.g == z.g, "out of range clamps");
}
