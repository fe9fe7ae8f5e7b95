/* probe.h — a look inside one forward pass (ssmlab-inspect(1) DUMP, STATES,
 * LENS and INTERVENTIONS): a hook that sees every layer's intermediates as
 * soon as the layer has run, the state h_t of every position, and causal
 * interventions: state channels held at zero (ablations), entries of A
 * replaced (pins), and a residual or a state patched in from another input.
 *
 * A probe is attached with ssm_model_set_probe and changes every forward
 * until it is detached.  Ablations and pins also hold in the backward pass
 * (influence maps see them); a patch is forward-only and a backward after a
 * patched forward fails.
 *
 * Mamba-2 (ssmlab-inspect(1) MAMBA-2): the "channel" e of a spec is a head
 * h, and the state entries n of a head are its (P, N) state flattened, j =
 * p N + n, so an ablation holds a head (n = -1) or one entry of it at zero
 * with the same struct; a pin replaces the head's scalar A_h (n = -1 or
 * 0); states and patches of states are (H, P, N) per position, which is
 * the (E, N) layout of Mamba-1 with E = H P.  A layer probed for states or
 * interventions runs the SSD's naive recurrent twin (engine/ssd.h). */
#ifndef SSM_PROBE_H
#define SSM_PROBE_H

#include <stddef.h>

#include "engine/status.h"

enum { SSM_PATCH_NONE = 0, SSM_PATCH_RESIDUAL, SSM_PATCH_STATE };

/* Hold h[e,n] of layer `layer` at zero; n = -1: every n of channel e.  n
 * counts the scan's state channels, polarized ones included
 * ([one-polarized, learned, zero-polarized], 0 .. Ns-1).  Mamba-2: e a
 * head, n = p N + n of its (P, N) state. */
typedef struct { int layer, e, n; } ssm_ablation;

/* Replace A[e,n] of layer `layer` by value (n as for ablations; n = -1:
 * every n of channel e).  Mamba-2: A_h of head e (n = -1 or 0). */
typedef struct { int layer, e, n; float value; } ssm_pin;

/* One layer's intermediates for the forward's (B, L) batch (L = the run's
 * length, with the appended cls token under pool cls).  Valid only during
 * the on_layer call.  In a reordering layer u, delta, B, C, h and y are in
 * the sorted order the scan runs in; x, z and out keep input order.
 *
 * A Mamba-2 layer (H > 0) fills the same fields with its own shapes:
 * Ns = N (d_state); u the SSD's input x (B, L, ldu), first E = H P
 * columns of SiLU(conv(xBC)) (ldu = Cw = E + 2 G N: B and C follow it);
 * conv_in the conv's input xBC, first Cw columns; delta dt (B, L, H); Bm
 * and Cm B_t and C_t of every group, G N columns (group g's at g N); h
 * (B, L, H, P, N) = (B, L, E, N); y the SSD output with D x, before the
 * gated norm; A (H). */
typedef struct {
    int layer, B, L, D, E, Ns;
    const float *x;     /* (B, L, D)  residual stream entering the layer */
    const float *u;     /* (B, L, ldu) SiLU(conv), the scan's input, first E columns */
    const float *z;     /* (B, L, ldz) gate branch before SiLU, first E columns */
    const float *conv_in; /* (B, L, ldz) the conv's input (the other half of
                           * in_proj's output), first E columns */
    int ldz;
    const float *delta; /* (B, L, E)  softplus(W_dt delta + b_dt) */
    const float *Bm;    /* (B, L, ldbc) B_t, first Ns columns */
    const float *Cm;    /* (B, L, ldbc) C_t, first Ns columns */
    int ldbc;
    const float *h;     /* (B, L, E, Ns) state after each token; NULL unless want_states */
    const float *y;     /* (B, L, E)  scan output C_t h_t + D u_t, before gating */
    const float *out;   /* (B, L, D)  mixer output (after out_proj) */
    const float *A;     /* (E, Ns)    A as run, pins applied; Mamba-2: (H) */
    int ldu;            /* u's row stride: E (Mamba-1), Cw (Mamba-2) */
    int H, P, G;        /* Mamba-2's heads, head_dim, groups; 0 in Mamba-1 */
} ssm_layer_view;

typedef struct ssm_probe {
    int want_states;              /* compute h_t for every position */
    void (*on_layer)(void *ctx, const ssm_layer_view *v);   /* NULL: none */
    void *ctx;
    const ssm_ablation *ablate;   /* (n_ablate) */
    int n_ablate;
    const ssm_pin *pin;           /* (n_pin) */
    int n_pin;
    int patch_kind;               /* SSM_PATCH_* */
    int patch_layer, patch_pos;
    const float *patch_value;     /* RESIDUAL: (B, D), x entering patch_layer at
                                   * patch_pos; STATE: (B, E, Ns), h after
                                   * patch_pos in patch_layer (Mamba-2:
                                   * (B, H, P, N)) */
    float *final_h;               /* NULL, or (n_layer, B, E, Ns): each layer's
                                   * state after the last token (fast scans;
                                   * Mamba-2: (n_layer, B, H, P, N)) */
} ssm_probe;

/* Whether the probe changes the model's output (ablations, pins, a patch). */
int ssm_probe_intervenes(const ssm_probe *p);

/* Parse one spec: "L:E" or "L:E:N" (ablate), "L:E:N:VALUE" or
 * "L:E:VALUE" (pin, n = -1),
 * "L:POS" or "L:POS:residual|state" (patch, kind written to *kind).  Each
 * returns 0, or -1 and a reason in why (cap bytes). */
int ssm_probe_parse_ablation(const char *s, ssm_ablation *out, char *why, size_t cap);
int ssm_probe_parse_pin(const char *s, ssm_pin *out, char *why, size_t cap);
int ssm_probe_parse_patch(const char *s, int *layer, int *pos, int *kind, char *why, size_t cap);

/* The ranges a probe's specs must fall in: layers, channels (Mamba-1's E,
 * Mamba-2's H), state entries of a channel (Ns; P N), entries of A of a
 * channel (Ns; 1), and the names of a channel, a state entry and an entry
 * of A in messages. */
typedef struct {
    int n_layer, channels, states, a_states;
    const char *channel, *state, *a_state;
} ssm_probe_shape;

/* Every layer, channel, state channel and position of the probe against
 * the model's shape and a run of L tokens: SSM_OK, or SSM_ERR_USAGE with a
 * message naming the spec and the range it left.  ssm_probe_check is the
 * Mamba-1 shape (channels d_inner, states and a_states state_dim);
 * ssm_model_probe_check (engine/model.h) picks the model's. */
ssm_status ssm_probe_check_shape(const ssm_probe *p, const ssm_probe_shape *s, int L);
ssm_status ssm_probe_check(const ssm_probe *p, int n_layer, int d_inner, int state_dim, int L);

/* Apply the probe's pins of `layer` to that layer's A (E, Ns) (Mamba-2:
 * E = H, Ns = 1); keep (E, Ns) (Mamba-2: E = H, Ns = P N)
 * gets 0 at the layer's ablated channels and 1 elsewhere; returns whether
 * the layer has any ablation. */
void ssm_probe_pin_A(const ssm_probe *p, int layer, int E, int Ns, float *A);
int ssm_probe_keep(const ssm_probe *p, int layer, int E, int Ns, float *keep);

/* A pinned entry does not depend on the parameters: dA (E, Ns) gets 0 at
 * every pin of `layer`. */
void ssm_probe_unpin_grad(const ssm_probe *p, int layer, int Ns, float *dA);

/* The probe's interventions in one line ("ablate 0:3:1, pin 1:2:0=0"),
 * "none" without any. */
void ssm_probe_describe(const ssm_probe *p, char *buf, size_t cap);

#endif
