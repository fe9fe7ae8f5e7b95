/* probe.c — the interventions of a forward probe: their specs parsed and
 * checked against the model, and applied to one layer's A and keep mask.
 * The forward pass itself (engine/model.c) calls the hook and the patch. */
#include "engine/probe.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ssm_probe_intervenes(const ssm_probe *p)
{
    return p && (p->n_ablate > 0 || p->n_pin > 0 || p->patch_kind != SSM_PATCH_NONE);
}

/* Split s at ':' into at most max fields (copied into buf); returns the count. */
static int fields_split(const char *s, char *buf, size_t cap, char **f, int max)
{
    snprintf(buf, cap, "%s", s);
    int n = 0;
    for (char *p = buf; n < max; n++) {
        f[n] = p;
        char *c = strchr(p, ':');
        if (!c) return n + 1;
        *c = '\0';
        p = c + 1;
    }
    return max + 1;   /* too many */
}

static int field_int(const char *s, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!*s || *end || errno || v < 0 || v > 1 << 30) return -1;
    *out = (int)v;
    return 0;
}

static int spec_fail(char *why, size_t cap, const char *s, const char *form)
{
    snprintf(why, cap, "'%s' is not %s", s, form);
    return -1;
}

int ssm_probe_parse_ablation(const char *s, ssm_ablation *out, char *why, size_t cap)
{
    char buf[128], *f[4];
    int n = fields_split(s, buf, sizeof buf, f, 3);
    out->n = -1;
    if ((n != 2 && n != 3) || field_int(f[0], &out->layer) || field_int(f[1], &out->e) ||
        (n == 3 && field_int(f[2], &out->n)))
        return spec_fail(why, cap, s, "LAYER:CHANNEL[:STATE] (numbers from 0)");
    return 0;
}

int ssm_probe_parse_pin(const char *s, ssm_pin *out, char *why, size_t cap)
{
    char buf[128], *f[5], *end;
    int n = fields_split(s, buf, sizeof buf, f, 4);
    out->n = -1;
    if ((n != 3 && n != 4) || field_int(f[0], &out->layer) || field_int(f[1], &out->e) ||
        (n == 4 && field_int(f[2], &out->n)))
        return spec_fail(why, cap, s, "LAYER:CHANNEL[:STATE]:VALUE");
    errno = 0;
    const char *val = f[n - 1];
    double v = strtod(val, &end);
    if (!*val || *end || errno || !isfinite(v) || v > 0.0)
        return spec_fail(why, cap, s, "LAYER:CHANNEL[:STATE]:VALUE with a finite VALUE <= 0");
    out->value = (float)v;
    return 0;
}

int ssm_probe_parse_patch(const char *s, int *layer, int *pos, int *kind, char *why, size_t cap)
{
    char buf[128], *f[4];
    int n = fields_split(s, buf, sizeof buf, f, 3);
    *kind = SSM_PATCH_RESIDUAL;
    if ((n != 2 && n != 3) || field_int(f[0], layer) || field_int(f[1], pos))
        return spec_fail(why, cap, s, "LAYER:POSITION[:residual|state]");
    if (n == 3 && strcmp(f[2], "residual") && strcmp(f[2], "state"))
        return spec_fail(why, cap, s, "LAYER:POSITION[:residual|state]");
    if (n == 3 && !strcmp(f[2], "state")) *kind = SSM_PATCH_STATE;
    return 0;
}

static ssm_status range_fail(const char *what, int l, int e, int n, const char *part, int v, int lim)
{
    char spec[64];
    if (n >= 0) snprintf(spec, sizeof spec, "%d:%d:%d", l, e, n);
    else snprintf(spec, sizeof spec, "%d:%d", l, e);
    return ssm_fail(SSM_ERR_USAGE, "%s %s: %s %d is out of range (the model has 0 to %d)",
                    what, spec, part, v, lim - 1);
}

/* layer, channel and state entry (n < 0: all; below ns, named state) of one spec */
static ssm_status channel_check(const char *what, int l, int e, int n, const ssm_probe_shape *s, int ns,
                                const char *state)
{
    if (l >= s->n_layer) return range_fail(what, l, e, n, "layer", l, s->n_layer);
    if (e >= s->channels) return range_fail(what, l, e, n, s->channel, e, s->channels);
    if (n >= ns) return range_fail(what, l, e, n, state, n, ns);
    return SSM_OK;
}

ssm_status ssm_probe_check_shape(const ssm_probe *p, const ssm_probe_shape *s, int L)
{
    ssm_status st;
    for (int i = 0; i < p->n_ablate; i++) {
        const ssm_ablation *a = &p->ablate[i];
        if ((st = channel_check("--ablate", a->layer, a->e, a->n, s, s->states, s->state))) return st;
    }
    for (int i = 0; i < p->n_pin; i++) {
        const ssm_pin *a = &p->pin[i];
        if ((st = channel_check("--pin", a->layer, a->e, a->n, s, s->a_states, s->a_state))) return st;
    }
    if (p->patch_kind == SSM_PATCH_NONE) return SSM_OK;
    if (p->patch_layer >= s->n_layer)
        return ssm_fail(SSM_ERR_USAGE, "--patch %d:%d: layer %d is out of range (the model has 0 to %d)",
                        p->patch_layer, p->patch_pos, p->patch_layer, s->n_layer - 1);
    if (p->patch_pos >= L)
        return ssm_fail(SSM_ERR_USAGE, "--patch %d:%d: position %d is out of range (the input has 0 to %d)",
                        p->patch_layer, p->patch_pos, p->patch_pos, L - 1);
    return SSM_OK;
}

ssm_status ssm_probe_check(const ssm_probe *p, int n_layer, int E, int Ns, int L)
{
    ssm_probe_shape s = {n_layer, E, Ns, Ns, "channel", "state channel", "state channel"};
    return ssm_probe_check_shape(p, &s, L);
}

/* A[e,n] (Ns per channel) of every pin of layer: its value, or 0 (zero set) */
static void pins_set(const ssm_probe *p, int layer, int Ns, float *A, int zero)
{
    for (int i = 0; p && i < p->n_pin; i++) {
        const ssm_pin *q = &p->pin[i];
        if (q->layer != layer) continue;
        for (int n = q->n < 0 ? 0 : q->n; n < (q->n < 0 ? Ns : q->n + 1); n++)
            A[(size_t)q->e * Ns + n] = zero ? 0.0f : q->value;
    }
}

void ssm_probe_pin_A(const ssm_probe *p, int layer, int E, int Ns, float *A)
{
    (void)E;
    pins_set(p, layer, Ns, A, 0);
}

void ssm_probe_unpin_grad(const ssm_probe *p, int layer, int Ns, float *dA)
{
    pins_set(p, layer, Ns, dA, 1);
}

int ssm_probe_keep(const ssm_probe *p, int layer, int E, int Ns, float *keep)
{
    int any = 0;
    for (size_t i = 0; i < (size_t)E * Ns; i++) keep[i] = 1.0f;
    for (int i = 0; p && i < p->n_ablate; i++) {
        const ssm_ablation *a = &p->ablate[i];
        if (a->layer != layer) continue;
        for (int n = a->n < 0 ? 0 : a->n; n < (a->n < 0 ? Ns : a->n + 1); n++)
            keep[(size_t)a->e * Ns + n] = 0.0f;
        any = 1;
    }
    return any;
}

/* append printf-style to buf at *len, clipped to cap */
static void buf_add(char *buf, size_t cap, size_t *len, const char *sep, const char *spec)
{
    if (*len >= cap) return;
    int k = snprintf(buf + *len, cap - *len, "%s%s", *len ? sep : "", spec);
    if (k > 0) *len += (size_t)k;
}

void ssm_probe_describe(const ssm_probe *p, char *buf, size_t cap)
{
    size_t len = 0;
    char s[96];
    buf[0] = '\0';
    for (int i = 0; p && i < p->n_ablate; i++) {
        const ssm_ablation *a = &p->ablate[i];
        if (a->n < 0) snprintf(s, sizeof s, "ablate %d:%d", a->layer, a->e);
        else snprintf(s, sizeof s, "ablate %d:%d:%d", a->layer, a->e, a->n);
        buf_add(buf, cap, &len, ", ", s);
    }
    for (int i = 0; p && i < p->n_pin; i++) {
        if (p->pin[i].n < 0)
            snprintf(s, sizeof s, "pin %d:%d=%g", p->pin[i].layer, p->pin[i].e, (double)p->pin[i].value);
        else
            snprintf(s, sizeof s, "pin %d:%d:%d=%g", p->pin[i].layer, p->pin[i].e, p->pin[i].n,
                     (double)p->pin[i].value);
        buf_add(buf, cap, &len, ", ", s);
    }
    if (p && p->patch_kind != SSM_PATCH_NONE) {
        snprintf(s, sizeof s, "patch %d:%d:%s", p->patch_layer, p->patch_pos,
                 p->patch_kind == SSM_PATCH_STATE ? "state" : "residual");
        buf_add(buf, cap, &len, ", ", s);
    }
    if (!len) snprintf(buf, cap, "none");
}
