/* figure.c — pages of figures/: the Cairo surface the path's extension asks
 * for (SVG, PDF or a PNG image), streamed into a temporary file that is
 * renamed over the path when the drawing is complete, a white background,
 * the page title and the grid of panels (see figures/figure.h). */
#include "figures/figure.h"

#include <cairo-pdf.h>
#include <cairo-svg.h>
#include <cairo.h>
#include <fontconfig/fontconfig.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "engine/safetensors.h"
#include "figures/draw.h"
#include "figures/plots.h"

#define SINGLE_W 432.0
#define SINGLE_H 288.0
#define PANEL_W 288.0
#define PANEL_H 228.0

static const char *const extensions[FIG_NFORMATS] = {"svg", "png", "pdf"};

const char *fig_format_ext(fig_format format)
{
    return format >= 0 && format < FIG_NFORMATS ? extensions[format] : "?";
}

ssm_status fig_format_of(const char *path, fig_format *format)
{
    const char *dot = strrchr(path, '.');
    for (int f = 0; dot && !strchr(dot, '/') && f < FIG_NFORMATS; f++)
        if (!strcasecmp(dot + 1, extensions[f])) {
            *format = (fig_format)f;
            return SSM_OK;
        }
    return ssm_fail(SSM_ERR_USAGE, "%s: a figure must end in .svg, .png or .pdf", path);
}

/* ------------------------------------------------------------------------ */
/* Canvas: a surface streaming into an atomic file                          */

typedef struct {
    fig_format format;
    ssm_atomic_file af;
    cairo_surface_t *surface;
    cairo_t *cr;
    int write_failed;
} canvas;

static cairo_status_t stream_write(void *closure, const unsigned char *data, unsigned int length)
{
    canvas *c = closure;
    if (fwrite(data, 1, length, c->af.f) == length) return CAIRO_STATUS_SUCCESS;
    c->write_failed = 1;
    return CAIRO_STATUS_WRITE_ERROR;
}

static ssm_status canvas_open(canvas *c, const char *path, double w, double h)
{
    memset(c, 0, sizeof *c);
    ssm_status st = fig_format_of(path, &c->format);
    if (st || (st = ssm_atomic_file_begin(&c->af, path))) return st;
    if (c->format == FIG_SVG) c->surface = cairo_svg_surface_create_for_stream(stream_write, c, w, h);
    else if (c->format == FIG_PDF) c->surface = cairo_pdf_surface_create_for_stream(stream_write, c, w, h);
    else c->surface = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, (int)(w * FIG_PNG_SCALE + 0.5),
                                                 (int)(h * FIG_PNG_SCALE + 0.5));
    c->cr = cairo_create(c->surface);
    if (cairo_status(c->cr)) {
        st = ssm_fail(SSM_ERR_SOFTWARE, "%s: cairo: %s", path, cairo_status_to_string(cairo_status(c->cr)));
        cairo_destroy(c->cr);
        cairo_surface_destroy(c->surface);
        ssm_atomic_file_abort(&c->af);
        return st;
    }
    if (c->format == FIG_PNG) cairo_scale(c->cr, FIG_PNG_SCALE, FIG_PNG_SCALE);
    cairo_set_source_rgb(c->cr, 1, 1, 1);
    cairo_paint(c->cr);
    return SSM_OK;
}

/* Finish the drawing, write it out and rename the file into place. */
static ssm_status canvas_close(canvas *c, const char *path)
{
    cairo_status_t cs = cairo_status(c->cr);
    cairo_destroy(c->cr);
    if (!cs && c->format == FIG_PNG) cs = cairo_surface_write_to_png_stream(c->surface, stream_write, c);
    cairo_surface_finish(c->surface);
    if (!cs) cs = cairo_surface_status(c->surface);
    cairo_surface_destroy(c->surface);
    if (cs) {
        ssm_atomic_file_abort(&c->af);
        if (c->write_failed) return ssm_fail(SSM_ERR_IO, "%s: write failed", path);
        return ssm_fail(SSM_ERR_SOFTWARE, "%s: cairo: %s", path, cairo_status_to_string(cs));
    }
    return ssm_atomic_file_commit(&c->af);
}

/* ------------------------------------------------------------------------ */
/* Pages                                                                    */

static void panel_draw(cairo_t *cr, const fig_panel *p, fig_rect r)
{
    cairo_save(cr);
    if (p->kind == FIG_PANEL_XY) fig_xy_draw(cr, &p->xy, r);
    else if (p->kind == FIG_PANEL_HEATMAP) fig_heatmap_draw(cr, &p->heat, r);
    else fig_bars_draw(cr, &p->bars, r);
    cairo_restore(cr);
}

static void page_draw(cairo_t *cr, const fig_page *p, double w, double h)
{
    int cols = p->cols > 0 && p->cols < p->n_panels ? p->cols : p->n_panels;
    int rows = (p->n_panels + cols - 1) / cols;
    double top = 0;
    if (p->title) {
        top = fig_text_height(cr, FIG_SIZE_TITLE + 1) + 2 * FIG_PAD;
        cairo_set_source_rgb(cr, 0, 0, 0);
        fig_title(cr, p->title, w / 2, FIG_PAD, FIG_SIZE_TITLE + 1, w - 2 * FIG_PAD);
    }
    double pw = w / cols, ph = (h - top) / rows;
    for (int i = 0; i < p->n_panels; i++)
        panel_draw(cr, &p->panels[i], (fig_rect){(i % cols) * pw, top + (i / cols) * ph, pw, ph});
}

ssm_status fig_page_write(const char *path, const fig_page *p)
{
    if (p->n_panels < 1) return ssm_fail(SSM_ERR_USAGE, "%s: a figure needs a panel", path);
    int cols = p->cols > 0 && p->cols < p->n_panels ? p->cols : p->n_panels;
    int rows = (p->n_panels + cols - 1) / cols;
    double w = p->width > 0 ? p->width : p->n_panels == 1 ? SINGLE_W : cols * PANEL_W;
    double h = p->height > 0 ? p->height : p->n_panels == 1 ? SINGLE_H : rows * PANEL_H + (p->title ? 24 : 0);
    canvas c;
    ssm_status st = canvas_open(&c, path, w, h);
    if (st) return st;
    page_draw(c.cr, p, w, h);
    return canvas_close(&c, path);
}

void fig_release(void)
{
    cairo_debug_reset_static_data();
    FcFini();
}

static ssm_status one_panel(const char *path, const fig_panel *panel)
{
    fig_page page = {.panels = panel, .n_panels = 1};
    return fig_page_write(path, &page);
}

ssm_status fig_xy_write(const char *path, const fig_xy *plot)
{
    return one_panel(path, &(fig_panel){.kind = FIG_PANEL_XY, .xy = *plot});
}

ssm_status fig_heatmap_write(const char *path, const fig_heatmap *map)
{
    return one_panel(path, &(fig_panel){.kind = FIG_PANEL_HEATMAP, .heat = *map});
}

ssm_status fig_bars_write(const char *path, const fig_bars *bars)
{
    return one_panel(path, &(fig_panel){.kind = FIG_PANEL_BARS, .bars = *bars});
}
