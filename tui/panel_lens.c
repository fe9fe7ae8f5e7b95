/* panel_lens.c — the logit lens (ssmlab-inspect(1) LENS) at the selected
 * token of a language model: for every residual row x0..xn (the heatmap's
 * rows; x_l is the output of layer l-1) the final norm and head applied
 * to x_l[t] give a distribution; a row shows its top-1 token (through the
 * model's tokenizer), the top-1 probability as a number and a bar, the
 * entropy and KL(final || lens) in nats.  The last row is the model's own
 * output (KL 0).  It follows the intervened model when ablations or pins
 * are set.  An image classifier gets a sentence: the lens needs a
 * language model.  Rows scroll to keep the selected one in view. */
#include <math.h>
#include <string.h>

#include "tui/app.h"
#include "tui/colors.h"

#define ROW_W 4        /* "x12 " */
#define NUMS_W 18      /* "  p.pp  H.HH KL.KK" */

typedef struct {
    int ok, rows, sel, token, utf8, iv;
    char note[96];
    char top[SSM_SNAP_MAX_LAYER + 1][48];   /* visible top-1 labels */
    float prob[SSM_SNAP_MAX_LAYER + 1], entropy[SSM_SNAP_MAX_LAYER + 1], kl[SSM_SNAP_MAX_LAYER + 1];
    tui_tokens tok;
} lens_state;

static void lens_update(tui_panel *p, const tui_view *v)
{
    lens_state *st = p->st;
    const ssm_snapshot *s = v->snap;
    st->ok = s->ready && s->lens_ok && s->measured_step >= 0;
    st->rows = (s->n_layer < SSM_SNAP_MAX_LAYER ? s->n_layer : SSM_SNAP_MAX_LAYER) + 1;
    st->sel = v->layer;
    st->token = s->lens_token;
    st->utf8 = v->utf8;
    st->iv = s->iv_desc[0] != 0;
    snprintf(st->note, sizeof st->note, "%s", s->lens_note[0] ? s->lens_note : "measuring the lens...");
    tui_tokens_set(&st->tok, s, v->utf8);
    for (int l = 0; l < st->rows; l++) {
        tui_token_visible(s->lens_label[l], v->utf8, st->top[l], sizeof st->top[l]);
        st->prob[l] = s->lens_prob[l];
        st->entropy[l] = s->lens_entropy[l];
        st->kl[l] = s->lens_kl[l];
    }
}

static void lens_title(tui_panel *p, const lens_state *st)
{
    char t[4][160];
    const char *iv = st->iv ? " (intervened)" : "";
    const char *name = st->ok ? tui_token_name(&st->tok, st->token) : "";
    snprintf(t[0], sizeof t[0], " logit lens at %s (token %d)%s: top-1, p, entropy, KL(final||lens) ", name,
             st->token, iv);
    snprintf(t[1], sizeof t[1], " logit lens at %s (token %d)%s ", name, st->token, iv);
    snprintf(t[2], sizeof t[2], " logit lens at %s%s ", name, iv);
    snprintf(t[3], sizeof t[3], " lens%s ", iv);
    const char *titles[4] = {t[0], t[1], t[2], t[3]};
    tui_panel_title(p, st->ok ? 4 : 1, st->ok ? titles : (const char *const[]){" logit lens "});
}

/* One residual row: label, top-1, a bar of p, and the numbers at the right. */
static void lens_row(tui_panel *p, const lens_state *st, int y, int l)
{
    int sel = l == st->sel, tw = TUI_TOKEN_COLS + 2, nums = p->w - NUMS_W, bar_x = ROW_W + tw + 1;
    attr_t la = sel ? tui_attr(TUI_C_SELECT) : tui_attr(TUI_C_DIM);
    char top[64];
    tui_draw_fmt(p->win, y, 0, ROW_W - 1, la, "x%-2d", l);
    snprintf(top, sizeof top, "'%s'", st->top[l]);
    tui_draw_text(p->win, y, ROW_W, tw, sel ? la : A_NORMAL, top);
    if (nums < ROW_W + tw) nums = ROW_W + tw;
    int bar_w = nums - bar_x - 1;
    for (int i = 0; i < bar_w && i < (int)lrintf(st->prob[l] * (float)bar_w); i++)
        tui_draw_text(p->win, y, bar_x + i, 1, tui_attr(TUI_C_SERIES1), st->utf8 ? "\u2588" : "#");
    char n[3][48];
    snprintf(n[0], sizeof n[0], "%6.2f%6.2f%6.2f", st->prob[l], st->entropy[l], st->kl[l]);
    snprintf(n[1], sizeof n[1], "%5.2f%5.2f", st->prob[l], st->kl[l]);
    snprintf(n[2], sizeof n[2], "%5.2f", st->prob[l]);
    const char *texts[3] = {n[0], n[1], n[2]};
    tui_draw_first(p->win, y, nums, p->w - nums, A_NORMAL, 3, texts);
}

static void lens_draw(tui_panel *p)
{
    lens_state *st = p->st;
    werase(p->win);
    lens_title(p, st);
    if (!st->ok) {
        tui_draw_text(p->win, 1, 1, p->w - 2, tui_attr(TUI_C_DIM), st->note);
        return;
    }
    int rows = p->h - 3, nums = p->w - NUMS_W < ROW_W + TUI_TOKEN_COLS + 2 ? ROW_W + TUI_TOKEN_COLS + 2 : p->w - NUMS_W;
    if (rows < 1) rows = p->h - 1, nums = -1;   /* no room for the header and the legend */
    if (rows > st->rows) rows = st->rows;
    if (nums >= 0) {
        tui_draw_text(p->win, 1, 0, p->w, tui_attr(TUI_C_DIM), "row top-1");
        const char *head[3] = {"     p     H    KL", "    p   KL", "    p"};
        tui_draw_first(p->win, 1, nums, p->w - nums, tui_attr(TUI_C_DIM), 3, head);
    }
    int first = tui_scroll_first(st->sel, rows, st->rows), y0 = nums >= 0 ? 2 : 1;
    for (int r = 0; r < rows; r++) lens_row(p, st, y0 + r, first + r);
    if (nums < 0) return;
    const char *legend[2] = {"p: top-1 probability; H entropy, KL(final||lens): nats", "nats; last row = output"};
    tui_draw_first(p->win, p->h - 1, 0, p->w, tui_attr(TUI_C_DIM), 2, legend);
}

const tui_panel_class tui_panel_lens_class = {
    .name = "lens", .state_size = sizeof(lens_state), .update = lens_update, .draw = lens_draw,
};
